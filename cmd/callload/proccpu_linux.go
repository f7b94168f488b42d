package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// procCPU returns the CPU time (user + system) process pid has used, from
// /proc (in clock ticks of 10 ms, USER_HZ being 100 on Linux).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid ...": utime and stime are the 14th and 15th
	// fields, the 12th and 13th after the command.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

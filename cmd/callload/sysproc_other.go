//go:build !linux

package main

import "os/exec"

// setPdeathsig does nothing here: children end when their stdin closes
// (the simulator) or are killed at exit (redis-server).
func setPdeathsig(cmd *exec.Cmd) {}

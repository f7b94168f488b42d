//go:build linux || darwin || freebsd || netbsd || openbsd

package ari

import (
	"net"
	"syscall"
)

// canPeek: open can tell whether a connection is open here, so
// StartOriginate is on.
const canPeek = true

// open reports whether nc is open with nothing unread: a peek that does
// not wait finds neither data nor the end of the stream.
func open(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	idle := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		idle = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait
	})
	return err == nil && idle
}

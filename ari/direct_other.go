//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package ari

import "net"

// canPeek: open cannot tell whether a connection is open here, so
// StartOriginate is off (it reports false, and Originate is used instead).
const canPeek = false

// open cannot tell here whether nc is open, so no connection is used by
// StartOriginate (it reports false, and Originate is used instead).
func open(net.Conn) bool { return false }

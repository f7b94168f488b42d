package main

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes a child die with callload, even if callload is killed.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

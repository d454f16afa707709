package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// protectProcess keeps the server's memory, which holds unsealed key
// material, out of core dumps and out of reach of other processes: the
// process is made non-dumpable (PR_SET_DUMPABLE 0: no core dump, and
// ptrace and /proc/PID/mem need CAP_SYS_PTRACE, even for the same user)
// and its core file size limit is set to 0.
func protectProcess() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("making the process non-dumpable (prctl PR_SET_DUMPABLE): %v", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("turning core dumps off (RLIMIT_CORE): %v", err)
	}
	return nil
}

//go:build unix && !linux

package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// protectProcess keeps the server's memory, which holds unsealed key
// material, out of core dumps: the core file size limit is set to 0.
// (Linux also makes the process non-dumpable.)
func protectProcess() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("turning core dumps off (RLIMIT_CORE): %v", err)
	}
	return nil
}

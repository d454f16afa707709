//go:build !unix

package durable

import (
	"os"
	"runtime"
)

// processRuns reports whether a process pid exists. Only Windows can tell
// here; elsewhere every process is taken to run, so that no temporary is
// removed on a guess.
func processRuns(pid int) bool {
	if runtime.GOOS != "windows" {
		return true
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}

// keepOwner does nothing where files have no Unix owner.
func keepOwner(f *os.File, old os.FileInfo) error { return nil }

// foreignInShared is false where files have no Unix owner.
func foreignInShared(path string, st os.FileInfo) bool { return false }

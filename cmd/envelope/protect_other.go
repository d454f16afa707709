//go:build !unix

package main

// protectProcess does nothing on systems without core file limits.
func protectProcess() error { return nil }

//go:build !unix

package awsapi

import "os"

// lockFile does nothing where flock is missing: each server's audit log
// must be its own.
func lockFile(*os.File) error { return nil }

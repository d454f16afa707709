//go:build !unix

package awsapi

import "os"

// lockFile does nothing where flock is missing: the operator must keep
// each server's audit log its own.
func lockFile(*os.File) error { return nil }

// Package durable writes files so that what it reports done survives a
// crash: a new file written whole and synced (or not at all), and a
// directory's entries synced after a rename or a creation.
//
// # Output files
//
// [Create] begins an output file for a path, which [File.Commit] makes
// appear whole or [File.Abort] discards, leaving the path as it was: no
// partial file is ever visible at the path, and on Linux nothing named
// exists before the commit (the file is unnamed until then), so a process
// killed while writing leaves nothing behind. Devices, FIFOs and sockets
// are written straight into, never replaced; symbolic links are followed.
// [Batch] commits many files with one sync pass.
//
// # Errors
//
// Errors are *os.PathError values, as those of the os package are: Op names
// the step that failed ("create", "sync", "commit", …) and Path the file,
// and Err is the cause, a system error or one of this package's (a path
// planted by another user, say). Their text is os's, "create out.txt: is a
// directory", without the "durable: " other packages' errors begin with.
package durable

import (
	"errors"
	"os"
	"runtime"
)

// WriteNew creates path, which must not exist, with mode perm exactly
// (whatever the umask), writes data and syncs it. If path exists, the error
// wraps os.ErrExist and nothing is touched; after any other failure nothing
// is left at path. Errors are the os package's *os.PathError, whose Op says
// which step failed ([CreateFailed] tells the first from the rest). The
// directory entry is not synced: see [SyncDir].
func WriteNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// CreateFailed reports whether err, from [WriteNew], is a failure to create
// the file (so nothing was written), rather than to write it.
func CreateFailed(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Op == "open"
}

// SyncDir makes the entries of directory dir (files created or renamed
// into it) durable. On Windows, where a directory cannot be opened for
// syncing, it does nothing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

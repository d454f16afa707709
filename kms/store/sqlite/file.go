package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/envelopekms/envelope/internal/durable"
)

const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// makeDir makes sure dir is a directory, creating it and any missing parent
// with mode 0700. A directory that exists, or that another process creates
// meanwhile, is not ours and keeps its mode.
func makeDir(dir string) error {
	// Find the missing directories, deepest first.
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%q is not a directory", d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		err := os.Mkdir(d, dirMode)
		if errors.Is(err, fs.ErrExist) {
			if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
				return fmt.Errorf("%q is not a directory", d)
			}
			continue
		}
		if err != nil {
			return err
		}
		// The umask can only have narrowed the mode; make it exact.
		if err := os.Chmod(d, dirMode); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// createFile creates an empty database file at path with mode 0600 unless
// a file is there, which must then be a regular file. SQLite creates no
// file itself (the DSN says mode=rw), so the mode is ours.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if errors.Is(err, fs.ErrExist) {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return errors.New("not a regular file")
		}
		return nil
	}
	if err != nil {
		return err
	}
	// The umask can only have narrowed the mode; make it exact. Then make
	// the new file and its directory entry durable.
	err = f.Chmod(fileMode)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the entries of directory dir durable.
func syncDir(dir string) error {
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("sync directory %q: %v", dir, err)
	}
	return nil
}

// restrictSidecars sets the mode of the database's -wal and -shm files, when
// they exist, to 0600.
//
// It changes them by name and never opens them: closing any descriptor of a
// file releases every POSIX lock the process holds on it, SQLite's
// included. Symbolic links and other non-regular files are left alone
// (SQLite refuses to open them anyway).
func restrictSidecars(dbPath string) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		p := dbPath + suffix
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() == fileMode {
			continue
		}
		if err := os.Chmod(p, fileMode); err != nil {
			return err
		}
	}
	return nil
}

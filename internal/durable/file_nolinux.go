//go:build !linux

package durable

import (
	"errors"
	"os"
)

// errNoUnnamed says that unnamed files are not available: only Linux has
// O_TMPFILE.
var errNoUnnamed = errors.New("unnamed files are not available here")

func openUnnamed(dir string, perm os.FileMode) (*os.File, error) { return nil, errNoUnnamed }

// linkFile is never called without unnamed files.
func linkFile(f *os.File, path string) error { return errNoUnnamed }

func pidNamespace() string { return "" }

// maxOpenUnnamed is unused without unnamed files.
var maxOpenUnnamed = func() int { return 0 }

// syncer makes the files of a batch durable. Without Linux's syncfs(2), it
// fsyncs each file.
type syncer struct{}

// watch is called with the directory of each file as it is created.
func (s *syncer) watch(dir string) error { return nil }

// sync makes the files durable: their data and their inodes.
func (s *syncer) sync(files []*File) error {
	for _, f := range files {
		if f.tmp == "" {
			continue
		}
		file, err := os.OpenFile(f.tmp, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		err = file.Sync()
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// close releases what watch holds; it may be called more than once.
func (s *syncer) close() {}

// magicLink is false without Linux's /proc. (/dev/fd/N on other systems is
// a device, written into as one.)
func magicLink(path string) bool { return false }

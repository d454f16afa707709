//go:build !linux

package main

import "os"

// syncer makes the temporary files of a batch durable. Without Linux's
// syncfs(2), it fsyncs each file.
type syncer struct{}

// watch is called for each temporary file as it is created.
func (s *syncer) watch(tmp string) error { return nil }

// sync makes the files tmps durable: their data and their inodes.
func (s *syncer) sync(tmps []string) error {
	for _, t := range tmps {
		f, err := os.OpenFile(t, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
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

package main

import (
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncer makes the temporary files of a batch durable with one syncfs(2)
// per file system they are on: the kernel writes all their dirty pages and
// inodes in one pass, where an fsync per file would wait for a journal
// commit per file.
//
// syncfs reports a writeback error (Linux 5.8 and later) only if it
// happened after the descriptor it is given was opened, so watch opens a
// directory of each file system before the first temporary on it is
// written, and sync uses that descriptor.
type syncer struct {
	dirs map[string]bool     // directories seen
	fs   map[uint64]*os.File // by device: a directory on that file system
}

// watch is called for each temporary file as it is created.
func (s *syncer) watch(tmp string) error {
	dir := filepath.Dir(tmp)
	if s.dirs[dir] {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	st, err := d.Stat()
	if err != nil {
		d.Close()
		return err
	}
	if s.dirs == nil {
		s.dirs, s.fs = map[string]bool{}, map[uint64]*os.File{}
	}
	s.dirs[dir] = true
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || s.fs[uint64(sys.Dev)] != nil {
		d.Close()
		return nil
	}
	s.fs[uint64(sys.Dev)] = d
	return nil
}

// sync makes the files tmps durable: their data and their inodes.
func (s *syncer) sync(tmps []string) error {
	for _, d := range s.fs {
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return &os.PathError{Op: "syncfs", Path: d.Name(), Err: err}
		}
	}
	return nil
}

// close releases the directories; it may be called more than once.
func (s *syncer) close() {
	for dev, d := range s.fs {
		d.Close()
		delete(s.fs, dev)
	}
}

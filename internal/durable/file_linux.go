package durable

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// errNoUnnamed says that dir's file system (or the kernel) makes no
// unnamed files, or that they could not be named later: use a named
// temporary.
var errNoUnnamed = errors.New("unnamed files are not available here")

// openUnnamed opens a new unnamed file in dir (O_TMPFILE), with mode perm
// less the umask. The file is named later by linkFile, through
// /proc/self/fd, which needs no privilege: that is checked first, since a
// file written whole that cannot then be named would be lost.
func openUnnamed(dir string, perm os.FileMode) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, uint32(perm.Perm()))
	switch {
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EINVAL):
		// EISDIR: a kernel older than O_TMPFILE saw only O_DIRECTORY.
		return nil, errNoUnnamed
	case err != nil:
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	var st, via unix.Stat_t
	if unix.Fstat(fd, &st) != nil || unix.Stat(procFD(fd), &via) != nil || st.Dev != via.Dev || st.Ino != via.Ino {
		unix.Close(fd)
		return nil, errNoUnnamed
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), nil
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// linkFile gives the unnamed file f the name path, which must not exist
// (else the error wraps os.ErrExist).
func linkFile(f *os.File, path string) error {
	err := unix.Linkat(unix.AT_FDCWD, procFD(int(f.Fd())), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	runtime.KeepAlive(f)
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: path, Err: err}
	}
	return nil
}

// pidNamespace identifies the PID namespace of the process.
func pidNamespace() string {
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return ns
}

// maxOpenUnnamed is how many complete unnamed files a batch may hold open
// (each is a descriptor) before it names the next ones as temporaries:
// half of the descriptor limit (which Go raises to the hard limit at
// start), at most 16384. Tests lower it.
var maxOpenUnnamed = func() int {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil || lim.Cur < 256 {
		return 64
	}
	return int(min(lim.Cur/2, 16384))
}

// syncer makes the files of a batch durable with one syncfs(2) per file
// system they are on: the kernel writes all their dirty pages and inodes
// in one pass, where an fsync per file would wait for a journal commit per
// file.
//
// syncfs reports a writeback error (Linux 5.8 and later) only if it
// happened after the descriptor it is given was opened, so watch opens a
// directory of each file system before the first file on it is written,
// and sync uses that descriptor.
type syncer struct {
	dirs map[string]bool     // directories seen
	fs   map[uint64]*os.File // by device: a directory on that file system
}

// watch is called with the directory of each file as it is created.
func (s *syncer) watch(dir string) error {
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

// sync makes the files durable: their data and their inodes.
func (s *syncer) sync(files []*File) error {
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

// magicLink reports whether the symbolic link path lives in /proc, where
// links such as /proc/self/fd/N lead to open files rather than to paths.
func magicLink(path string) bool {
	dir, _ := split(path)
	var fs unix.Statfs_t
	return unix.Statfs(dir, &fs) == nil && fs.Type == unix.PROC_SUPER_MAGIC
}

//go:build unix

package durable

import (
	"errors"
	"os"
	"syscall"
)

// processRuns reports whether a process pid exists (signal 0 checks
// without sending anything; EPERM means it exists under another user).
func processRuns(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// keepOwner gives f the owner and group of old, the file it replaces, when
// the process may: root can; another user can keep only a group it
// belongs to. A refusal (EPERM) leaves f the process's.
func keepOwner(f *os.File, old os.FileInfo) error {
	ost, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	now, err := f.Stat()
	if err != nil {
		return err
	}
	nst, ok := now.Sys().(*syscall.Stat_t)
	if !ok || nst.Uid == ost.Uid && nst.Gid == ost.Gid {
		return nil
	}
	err = f.Chown(int(ost.Uid), int(ost.Gid))
	if errors.Is(err, syscall.EPERM) {
		if err = f.Chown(-1, int(ost.Gid)); errors.Is(err, syscall.EPERM) {
			err = nil
		}
	}
	return err
}

// foreignInShared reports whether st, the file or symbolic link at path,
// sits in a shared directory — sticky and writable by all, as /tmp — and
// belongs neither to this process's user nor to the directory's owner.
// Another user may have planted it there: Create neither follows such a
// link nor writes into or replaces such a file. These are the kernel's
// protected_symlinks, protected_regular and protected_fifos rules, which
// Create would otherwise bypass by reading links itself and by renaming
// over a file instead of opening it.
func foreignInShared(path string, st os.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || int(sys.Uid) == os.Geteuid() {
		return false
	}
	dir, _ := split(path)
	dst, err := os.Stat(dir)
	if err != nil || dst.Mode()&os.ModeSticky == 0 || dst.Mode().Perm()&0o002 == 0 {
		return false
	}
	dsys, ok := dst.Sys().(*syscall.Stat_t)
	return ok && sys.Uid != dsys.Uid
}

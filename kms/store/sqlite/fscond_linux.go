package sqlite

import (
	"os"
	"syscall"
)

// stRDONLY is ST_RDONLY, the read-only flag of statfs(2)'s f_flags.
const stRDONLY = 0x1

// lowSpace is the free space under which a failure to write is put down to
// a full disk: SQLite needs a page or two for a transaction and 32 KiB to
// set up its shared-memory file.
const lowSpace = 1 << 20

// fsCondition returns ErrReadOnlyFS when dir is on a read-only file system,
// ErrDiskFull when its file system has (almost) no space or no free inode
// left for this user, and nil otherwise or when it cannot tell.
func fsCondition(dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil
	}
	if st.Flags&stRDONLY != 0 {
		return ErrReadOnlyFS
	}
	free := st.Bavail
	if os.Geteuid() == 0 {
		free = st.Bfree // root may use the reserved blocks
	}
	if free*uint64(st.Bsize) < lowSpace || st.Files > 0 && st.Ffree == 0 {
		return ErrDiskFull
	}
	return nil
}

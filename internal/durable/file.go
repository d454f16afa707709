package durable

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Options adjust [Create].
type Options struct {
	// NoClobber refuses to replace an existing file: Create fails if one is
	// at the path (or the path is a block device, whose data writing would
	// overwrite), and Commit if one appeared there while the file was
	// written. The refusal is a *os.PathError wrapping [os.ErrExist], and
	// the existing file is not touched. Character devices, FIFOs and
	// sockets are streams, not stored data: they are written into as usual.
	NoClobber bool
}

// A File is an output file being written: [Create] makes one for a path,
// the caller writes it, then [File.Commit] makes it appear at the path,
// whole and durable, or [File.Abort] discards it. Until the commit the path
// is untouched: a new path does not exist, an existing file keeps its old
// content, and after a crash or a SIGKILL there is nothing to clean up.
//
// How: on Linux the data goes to an unnamed file (O_TMPFILE) in the
// path's directory, which the commit names with linkat(2) — or, to replace
// an existing file, links to a fresh unique name and renames over it, so
// that the one moment a temporary name exists is between those two calls,
// with the file complete. Where unnamed files are refused (other systems,
// file systems without them), the data goes to a named temporary file in
// the directory (see [Create] for its name), renamed into place at the
// commit; a temporary left by a process that was killed is removed by the
// next Create in that directory whose process finds the killed one gone.
//
// A path that exists and is a character or block device, a FIFO or a Unix
// socket is written straight into (opened, or connected to, then closed by
// Commit): no temporary, no rename, so /dev/null stays /dev/null. So is
// whatever a magic link of /proc leads to (/dev/stdout, /dev/fd/N), which
// is an open file: a pipe, a terminal, or a regular file, appended to. What was
// written then stays written if the caller aborts. A symbolic link is
// followed, to its final target, and the file is made there: the link
// stays a link. In a shared directory (sticky and writable by all, as
// /tmp), a link, file, FIFO or socket that belongs to another user (and
// not to the directory's owner) is refused, as the kernel's
// protected_symlinks and protected_regular settings would: another user
// may have planted it to catch the output.
//
// A File is not safe for concurrent use, except that Abort may be called
// while another goroutine is blocked in Write.
type File struct {
	name      string      // the path given to Create, for errors
	target    string      // name with its symbolic links followed
	dir, base string      // target split, uncleaned
	perm      os.FileMode // for a named temporary
	noClobber bool
	replace   bool // a regular file was at target when Create looked

	direct bool // target is a device, FIFO or socket, written into
	block  bool // ... a block device, synced by Commit

	w    io.Writer // what Write writes to: f or conn
	f    *os.File  // open until committed, aborted or closed for a batch
	conn net.Conn
	tmp  string // the named temporary holding the data, if there is one

	state fileState
}

type fileState int

const (
	stateOpen     fileState = iota
	stateFinished           // complete, waiting for its batch's commit
	stateDone               // committed or aborted
)

// Create begins an output file for path (see [File]). A new file gets
// mode perm less the umask; a file that replaces one keeps that one's
// permission bits exactly (and, when the process may, its owner and
// group). ctx bounds only what may wait indefinitely: the opening of a
// FIFO, which blocks until the FIFO has a reader, and the connection to a
// socket.
//
// Errors are a *os.PathError with Op "create" and Path the path given:
// its Err is syscall.EISDIR for a directory, wraps [os.ErrExist] for a
// refusal of [Options.NoClobber], and is ctx's error if ctx ended first.
//
// Named temporaries (where unnamed files are refused, and for an instant
// when an existing file is replaced) are called
// ".BASE.envelope-HOST-PID-RANDOM" in the path's directory: BASE the path's
// last element (cut to 100 bytes), HOST eight hex digits that identify the
// host and its PID namespace, PID the process that made it, RANDOM twelve
// hex digits. The first Create in a directory in each process removes the
// regular files there so named whose HOST is this one's and whose PID is
// no running process: a process that was killed while it wrote.
func Create(ctx context.Context, path string, perm os.FileMode, opts Options) (*File, error) {
	fail := func(err error) (*File, error) {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &os.PathError{Op: "create", Path: path, Err: err}
	}
	target, magic, err := resolve(path)
	if err != nil {
		return fail(err)
	}
	f := &File{name: path, target: target, perm: perm, noClobber: opts.NoClobber}
	if magic {
		// A link of /proc (/dev/stdout, /dev/fd/N): to an open file, which
		// only the kernel can reach. Write into what it opens.
		st, err := os.Stat(path)
		switch {
		case err != nil:
			return fail(err)
		case st.IsDir():
			return fail(syscall.EISDIR)
		}
		f.target = path
		if err := f.openDirect(ctx, st); err != nil {
			return fail(err)
		}
		return f, nil
	}
	f.dir, f.base = split(target)
	if f.base == "" || f.base == "." || f.base == ".." {
		return fail(syscall.EISDIR)
	}
	st, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A new file.
	case err != nil:
		return fail(err)
	case st.IsDir():
		return fail(syscall.EISDIR)
	case foreignInShared(target, st):
		return fail(errForeign)
	case st.Mode().IsRegular():
		if opts.NoClobber {
			return fail(syscall.EEXIST)
		}
		f.replace, f.perm = true, st.Mode().Perm()
	default:
		if err := f.openDirect(ctx, st); err != nil {
			return fail(err)
		}
		return f, nil
	}
	removeStale(f.dir)
	var file *os.File
	err = errNoUnnamed
	if useUnnamed {
		file, err = openUnnamed(f.dir, f.perm)
	}
	if errors.Is(err, errNoUnnamed) {
		file, f.tmp, err = createTemp(f.dir, f.base, f.perm)
	}
	if err != nil {
		return fail(err)
	}
	f.f, f.w = file, file
	if f.replace {
		// Exactly the old mode, whatever the umask.
		err = file.Chmod(f.perm)
		if err == nil {
			err = keepOwner(file, st)
		}
		if err != nil {
			f.Abort()
			return fail(err)
		}
	}
	return f, nil
}

// errForeign refuses a path planted by another user (see foreignInShared).
var errForeign = errors.New("owned by another user in a shared directory (sticky and writable by all): not followed, written into or replaced")

// useUnnamed is false in tests of the named temporaries.
var useUnnamed = true

// resolve follows the symbolic links of path's last element until it
// names something else or nothing: where the file is to be made. It stops
// at a magic link of /proc (/dev/stdout leads to one), whose text is no
// path to write at ("pipe:[123]", or a file opened for appending): magic
// reports that the kernel must follow path itself.
func resolve(path string) (target string, magic bool, err error) {
	p := path
	for range 40 {
		st, err := os.Lstat(p)
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			return p, false, nil // a missing or unreadable path is the caller's to report
		}
		if magicLink(p) {
			return p, true, nil
		}
		if foreignInShared(p, st) {
			return "", false, errForeign
		}
		to, err := os.Readlink(p)
		if err != nil {
			return "", false, err
		}
		if !filepath.IsAbs(to) {
			// Relative to the link's directory, joined without cleaning:
			// "dir/../x" must go through dir if dir is itself a link.
			dir, _ := split(p)
			to = dir + string(filepath.Separator) + to
		}
		p = to
	}
	return "", false, syscall.ELOOP
}

// split cuts path into its directory and last element, without cleaning
// either (filepath.Dir would fold "link/.." lexically).
func split(path string) (dir, base string) {
	vol := len(filepath.VolumeName(path))
	i := len(path) - 1
	for i >= vol && !os.IsPathSeparator(path[i]) {
		i--
	}
	switch {
	case i < vol && vol == 0:
		return ".", path
	case i < vol: // "C:name": relative to the drive's current directory
		return path[:vol] + ".", path[vol:]
	case i == vol: // in the root
		return path[:i+1], path[i+1:]
	}
	return path[:i], path[i+1:]
}

// openDirect opens the device, FIFO or socket st at f.target for writing,
// or the regular file a magic link leads to, for appending (as a shell's
// ">>" or ">" left it).
func (f *File) openDirect(ctx context.Context, st os.FileInfo) error {
	mode := st.Mode()
	f.direct = true
	if mode&fs.ModeSocket != 0 {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", f.target)
		if err != nil {
			var oe *net.OpError
			if errors.As(err, &oe) && oe.Err != nil {
				err = oe.Err
			}
			return err
		}
		f.conn, f.w = conn, conn
		return nil
	}
	flag := os.O_WRONLY
	switch {
	case mode.IsRegular():
		flag |= os.O_APPEND // only through a magic link
	case mode&(fs.ModeDevice|fs.ModeNamedPipe) == 0:
		return errors.New("not a regular file, device, FIFO or socket")
	}
	f.block = mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0
	if f.block && f.noClobber {
		return syscall.EEXIST
	}
	// Opening a FIFO waits for a reader: do it aside, so that ctx can end
	// the wait (a late success is then closed). Without O_CREATE, a node
	// that vanished meanwhile is an error, not a new regular file.
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		file, err := os.OpenFile(f.target, flag, 0)
		ch <- opened{file, err}
	}()
	var r opened
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.f != nil {
				r.f.Close()
			}
		}()
		return ctx.Err()
	}
	if r.err != nil {
		return r.err
	}
	// The node may have been swapped for something else between the Lstat
	// and the open: write only into what was looked at (the open did not
	// truncate).
	now, err := r.f.Stat()
	if err == nil && now.Mode().Type() != mode.Type() {
		err = errors.New("changed while it was opened")
	}
	if err != nil {
		r.f.Close()
		return err
	}
	f.f, f.w = r.f, r.f
	return nil
}

// Name returns the path given to [Create].
func (f *File) Name() string { return f.name }

// Direct reports whether f writes straight into an existing device, FIFO
// or socket (see [File]).
func (f *File) Direct() bool { return f.direct }

// Write writes to the file.
func (f *File) Write(p []byte) (int, error) { return f.w.Write(p) }

// Writer returns what f's data is written to: the *os.File (so that
// io.Copy and in-kernel copies can use it as a file) or a socket's
// connection. Writing to it is writing to f. Do not close it.
func (f *File) Writer() io.Writer { return f.w }

// errDone is the error of a second Commit.
var errDone = errors.New("already committed or aborted")

// Commit makes the file appear at its path: it syncs the data, names the
// file (replacing the file there, if any), and syncs the directory. For a
// direct output it syncs a block device and closes what it opened. After
// an error f is aborted unless the error's Op is "syncdir". Errors are a
// *os.PathError with Path the path given to Create and Op "sync" (nothing
// was committed), "commit" (nothing was committed; [os.ErrExist] when
// [Options.NoClobber] found a file that appeared meanwhile) or, with Path
// the directory, "syncdir" (the file is in place, but the new directory
// entry may not survive a crash).
func (f *File) Commit() error {
	if f.state != stateOpen {
		return &os.PathError{Op: "commit", Path: f.name, Err: errDone}
	}
	if f.direct {
		f.state = stateDone
		var err error
		if f.block {
			if err = f.f.Sync(); err != nil {
				f.closeAll()
				return &os.PathError{Op: "sync", Path: f.name, Err: unwrapPath(err)}
			}
		}
		if err = f.closeAll(); err != nil {
			return &os.PathError{Op: "commit", Path: f.name, Err: unwrapPath(err)}
		}
		return nil
	}
	if err := f.f.Sync(); err != nil {
		f.Abort()
		return &os.PathError{Op: "sync", Path: f.name, Err: unwrapPath(err)}
	}
	if err := f.place(); err != nil {
		return err
	}
	if err := SyncDir(f.dir); err != nil {
		return &os.PathError{Op: "syncdir", Path: f.dir, Err: unwrapPath(err)}
	}
	return nil
}

// place names the complete file at its target, without syncing anything,
// and marks it done: committed, or aborted after an error (a *os.PathError
// with Op "commit").
func (f *File) place() error {
	var err error
	if f.tmp == "" {
		err = f.linkUnnamed()
	} else {
		if f.f != nil {
			err = f.f.Close()
			f.f = nil
		}
		if err == nil {
			err = f.renameTemp()
		}
	}
	if err != nil {
		f.Abort()
		return &os.PathError{Op: "commit", Path: f.name, Err: unwrapPath(err)}
	}
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	f.state = stateDone
	return nil
}

// linkUnnamed names the open unnamed file f.f at its target: with one
// linkat for a new file; to replace one, or when a file appeared at the
// target meanwhile, by a link to a unique name renamed over the target.
func (f *File) linkUnnamed() error {
	if !f.replace || f.noClobber {
		err := linkFile(f.f, f.target)
		if err == nil || f.noClobber || !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if err := f.nameTemp(); err != nil {
		return err
	}
	return f.renameTemp()
}

// nameTemp gives the open unnamed file f.f a temporary name.
func (f *File) nameTemp() error {
	for range 100 {
		tmp := tempName(f.dir, f.base)
		err := linkFile(f.f, tmp)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			f.tmp = tmp
		}
		return err
	}
	return errors.New("could not find a free temporary name")
}

// renameTemp moves the named temporary to the target, or removes it.
func (f *File) renameTemp() error {
	var err error
	if f.noClobber {
		err = renameNoReplace(f.tmp, f.target)
	} else {
		err = os.Rename(f.tmp, f.target)
	}
	if err != nil {
		os.Remove(f.tmp)
	}
	f.tmp = ""
	return err
}

// renameNoReplace renames tmp to target unless target exists. A hard link
// refuses an existing target atomically; on a file system without hard
// links, the check and the rename are two steps (another process could
// create target between them).
func renameNoReplace(tmp, target string) error {
	err := os.Link(tmp, target)
	if err == nil {
		return os.Remove(tmp)
	}
	if errors.Is(err, fs.ErrExist) {
		return syscall.EEXIST
	}
	if _, serr := os.Lstat(target); serr == nil {
		return syscall.EEXIST
	}
	return os.Rename(tmp, target)
}

// Abort discards the file: an unnamed file vanishes with its descriptor, a
// named temporary is removed, a direct output is closed (what was written
// into it stays written). It is safe after Commit and more than once.
func (f *File) Abort() {
	if f.state == stateDone {
		return
	}
	f.state = stateDone
	f.closeAll()
	if f.tmp != "" {
		os.Remove(f.tmp)
		f.tmp = ""
	}
}

// closeAll closes what f holds open.
func (f *File) closeAll() error {
	var err error
	if f.f != nil {
		err = f.f.Close()
		f.f = nil
	}
	if f.conn != nil {
		err = f.conn.Close()
		f.conn = nil
	}
	return err
}

// unwrapPath returns the error inside a *os.PathError or *os.LinkError,
// which name temporary paths the caller has no use for.
func unwrapPath(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// Ensure File is a writer.
var _ io.Writer = (*File)(nil)

// trimBase cuts a file name to at most n bytes, for temporary names that
// must stay within the file system's name limit.
func trimBase(base string, n int) string {
	if len(base) <= n {
		return base
	}
	return strings.ToValidUTF8(base[:n], "")
}

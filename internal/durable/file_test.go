//go:build linux

package durable

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary stand in for a process that writes a File
// and is killed (see writerProcess).
func TestMain(m *testing.M) {
	if path := os.Getenv("DURABLE_TEST_WRITER"); path != "" {
		writerProcess(path, os.Getenv("DURABLE_TEST_NAMED") != "")
		return
	}
	os.Exit(m.Run())
}

// writerProcess creates a File for path, writes to it, says "writing" on
// stdout and waits for its stdin to close (it is killed before).
func writerProcess(path string, named bool) {
	useUnnamed = !named
	f, err := Create(context.Background(), path, 0o600, Options{})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	f.Write(make([]byte, 1<<20))
	fmt.Println("writing")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(2)
}

// modes runs t in both ways of writing: unnamed files (O_TMPFILE) and
// named temporaries (the fallback).
func modes(t *testing.T, test func(t *testing.T, named bool)) {
	for _, named := range []bool{false, true} {
		name := "unnamed"
		if named {
			name = "named"
		}
		t.Run(name, func(t *testing.T) {
			useUnnamed = !named
			defer func() { useUnnamed = true }()
			test(t, named)
		})
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func create(t *testing.T, path string, perm os.FileMode, opts Options) *File {
	t.Helper()
	f, err := Create(context.Background(), path, perm, opts)
	if err != nil {
		t.Fatalf("Create(%q) = %v", path, err)
	}
	return f
}

func TestCreateNew(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	modes(t, func(t *testing.T, named bool) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		f := create(t, out, 0o666, Options{})
		if _, err := io.WriteString(f, "data"); err != nil {
			t.Fatal(err)
		}
		// Before the commit: nothing at the path; a temporary name only
		// in the fallback.
		during := names(t, dir)
		switch {
		case !named && len(during) != 0:
			t.Fatalf("an unnamed file shows names %q before its commit", during)
		case named && (len(during) != 1 || !strings.HasPrefix(during[0], ".out.envelope-")):
			t.Fatalf("the fallback shows %q before its commit; want one temporary", during)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := names(t, dir); len(got) != 1 || got[0] != "out" {
			t.Fatalf("after the commit the directory holds %q", got)
		}
		if s := readString(t, out); s != "data" {
			t.Fatalf("out holds %q", s)
		}
		if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
			t.Fatalf("a new file has mode %v; want 0666 less the umask 022", st.Mode().Perm())
		}
		if err := f.Commit(); !errors.Is(err, errDone) {
			t.Fatalf("a second Commit: %v", err)
		}
		f.Abort() // after a commit: nothing
		if s := readString(t, out); s != "data" {
			t.Fatalf("Abort after Commit changed the file to %q", s)
		}
	})
}

func TestCreateReplace(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	modes(t, func(t *testing.T, named bool) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		os.WriteFile(out, []byte("old"), 0o600)
		os.Chmod(out, 0o654)
		root := os.Geteuid() == 0
		if root {
			os.Chown(out, 1234, 5678)
		}
		f := create(t, out, 0o600, Options{})
		io.WriteString(f, "new")
		if s := readString(t, out); s != "old" {
			t.Fatalf("before the commit the file being replaced holds %q", s)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if s := readString(t, out); s != "new" {
			t.Fatalf("after the commit: %q", s)
		}
		st, _ := os.Stat(out)
		if st.Mode().Perm() != 0o654 {
			t.Fatalf("the replaced file has mode %v; want the old one's, 0654, whatever the umask", st.Mode().Perm())
		}
		if sys := st.Sys().(*syscall.Stat_t); root && (sys.Uid != 1234 || sys.Gid != 5678) {
			t.Fatalf("the replaced file belongs to %d:%d; want the old one's 1234:5678", sys.Uid, sys.Gid)
		}
		if got := names(t, dir); len(got) != 1 {
			t.Fatalf("after the commit the directory holds %q", got)
		}
	})
}

func TestAbort(t *testing.T) {
	modes(t, func(t *testing.T, named bool) {
		dir := t.TempDir()
		f := create(t, filepath.Join(dir, "new"), 0o600, Options{})
		io.WriteString(f, "partial")
		f.Abort()
		f.Abort()
		if got := names(t, dir); len(got) != 0 {
			t.Fatalf("an aborted new file left %q", got)
		}
		if err := f.Commit(); err == nil {
			t.Fatal("Commit after Abort succeeded")
		}
		old := filepath.Join(dir, "old")
		os.WriteFile(old, []byte("precious"), 0o600)
		f = create(t, old, 0o600, Options{})
		io.WriteString(f, "partial")
		f.Abort()
		if s := readString(t, old); s != "precious" {
			t.Fatalf("an aborted replacement changed the file to %q", s)
		}
		if got := names(t, dir); len(got) != 1 {
			t.Fatalf("an aborted replacement left %q", got)
		}
	})
}

func TestNoClobber(t *testing.T) {
	modes(t, func(t *testing.T, named bool) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		os.WriteFile(out, []byte("precious"), 0o600)
		_, err := Create(context.Background(), out, 0o600, Options{NoClobber: true})
		var pe *os.PathError
		if !errors.Is(err, os.ErrExist) || !errors.As(err, &pe) || pe.Op != "create" || pe.Path != out {
			t.Fatalf("Create over an existing file with NoClobber: %v; want a create error wrapping ErrExist", err)
		}
		// A file appears while the new one is written: the commit refuses
		// to replace it, atomically.
		late := filepath.Join(dir, "late")
		f := create(t, late, 0o600, Options{NoClobber: true})
		io.WriteString(f, "mine")
		os.WriteFile(late, []byte("theirs"), 0o600)
		err = f.Commit()
		if !errors.Is(err, os.ErrExist) || !errors.As(err, &pe) || pe.Op != "commit" || pe.Path != late {
			t.Fatalf("Commit with NoClobber over a file that appeared: %v; want a commit error wrapping ErrExist", err)
		}
		if s := readString(t, late); s != "theirs" {
			t.Fatalf("the file that appeared became %q", s)
		}
		if got := names(t, dir); len(got) != 2 {
			t.Fatalf("after the refusal the directory holds %q; want out and late", got)
		}
		// Without NoClobber, such a file is replaced.
		late2 := filepath.Join(dir, "late2")
		f = create(t, late2, 0o600, Options{})
		io.WriteString(f, "mine")
		os.WriteFile(late2, []byte("theirs"), 0o600)
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if s := readString(t, late2); s != "mine" {
			t.Fatalf("late2 holds %q", s)
		}
	})
}

func TestSymlinks(t *testing.T) {
	modes(t, func(t *testing.T, named bool) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "sub"), 0o755)
		os.WriteFile(filepath.Join(dir, "sub", "target"), []byte("old"), 0o640)
		os.Symlink("sub/target", filepath.Join(dir, "link"))
		os.Symlink("link", filepath.Join(dir, "chain"))
		os.Symlink(filepath.Join(dir, "sub", "new"), filepath.Join(dir, "dangling"))
		os.Symlink("loop2", filepath.Join(dir, "loop1"))
		os.Symlink("loop1", filepath.Join(dir, "loop2"))
		os.Symlink("sub", filepath.Join(dir, "dirlink"))
		// "sub/../target2" through a link to sub: the kernel resolves ".."
		// from where the link leads, which a lexical clean would not.
		os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
		os.Symlink(filepath.Join(dir, "a", "b"), filepath.Join(dir, "blink"))
		os.Symlink("blink/../dotdot", filepath.Join(dir, "updown"))
		for _, tc := range []struct{ path, final string }{
			{"chain", "sub/target"},
			{"link", "sub/target"},
			{"dangling", "sub/new"},
			{"updown", "a/dotdot"},
		} {
			f := create(t, filepath.Join(dir, tc.path), 0o600, Options{})
			io.WriteString(f, "via "+tc.path)
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Lstat(filepath.Join(dir, tc.path)); err != nil || st.Mode().Type() != os.ModeSymlink {
				t.Fatalf("%s is no longer a symbolic link: %v, %v", tc.path, st.Mode(), err)
			}
			if s := readString(t, filepath.Join(dir, tc.final)); s != "via "+tc.path {
				t.Fatalf("writing through %s: %s holds %q", tc.path, tc.final, s)
			}
		}
		if st, _ := os.Stat(filepath.Join(dir, "sub", "target")); st.Mode().Perm() != 0o640 {
			t.Fatalf("the target replaced through links has mode %v; want 0640 kept", st.Mode().Perm())
		}
		_, err := Create(context.Background(), filepath.Join(dir, "loop1"), 0o600, Options{})
		if !errors.Is(err, syscall.ELOOP) {
			t.Fatalf("Create through a loop of links: %v", err)
		}
		_, err = Create(context.Background(), filepath.Join(dir, "dirlink"), 0o600, Options{})
		if !errors.Is(err, syscall.EISDIR) {
			t.Fatalf("Create through a link to a directory: %v", err)
		}
		_, err = Create(context.Background(), dir, 0o600, Options{})
		if !errors.Is(err, syscall.EISDIR) {
			t.Fatalf("Create of a directory: %v", err)
		}
		_, err = Create(context.Background(), filepath.Join(dir, "nodir", "x"), 0o600, Options{})
		var pe *os.PathError
		if !errors.Is(err, os.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "create" || pe.Path != filepath.Join(dir, "nodir", "x") {
			t.Fatalf("Create in a missing directory: %v", err)
		}
	})
}

func TestDirect(t *testing.T) {
	dir := t.TempDir()
	t.Run("device", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("making a device node needs root (CAP_MKNOD)")
		}
		node := filepath.Join(dir, "null")
		if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		for _, opts := range []Options{{}, {NoClobber: true}} {
			f := create(t, node, 0o600, opts)
			if !f.Direct() {
				t.Fatal("a character device is not written straight into")
			}
			io.WriteString(f, "discarded")
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Lstat(node, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
				t.Fatalf("the node became mode %#o rdev %#x (%v)", st.Mode, st.Rdev, err)
			}
		}
		// A block device holds data: NoClobber refuses it before opening it.
		// (The node's numbers name no device: it is never opened.)
		blk := filepath.Join(dir, "blk")
		if err := unix.Mknod(blk, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 250))); err != nil {
			t.Fatal(err)
		}
		if _, err := Create(context.Background(), blk, 0o600, Options{NoClobber: true}); !errors.Is(err, os.ErrExist) {
			t.Fatalf("NoClobber over a block device: %v", err)
		}
	})
	t.Run("fifo", func(t *testing.T) {
		fifo := filepath.Join(dir, "fifo")
		unix.Mkfifo(fifo, 0o600)
		got := make(chan string, 1)
		go func() {
			b, _ := os.ReadFile(fifo)
			got <- string(b)
		}()
		f := create(t, fifo, 0o600, Options{NoClobber: true})
		io.WriteString(f, "through the pipe")
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != "through the pipe" {
			t.Fatalf("the reader got %q", s)
		}
		if st, err := os.Lstat(fifo); err != nil || st.Mode().Type() != os.ModeNamedPipe {
			t.Fatalf("the FIFO became %v, %v", st.Mode(), err)
		}
		// No reader: Create waits, and ctx ends the wait.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := Create(ctx, fifo, 0o600, Options{})
			done <- err
		}()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Create of a FIFO without reader, cancelled: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("cancelling ctx did not end Create's wait for a reader")
		}
		// Release the abandoned open.
		if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			r.Close()
		}
	})
	t.Run("socket", func(t *testing.T) {
		sock := filepath.Join(dir, "sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		got := make(chan string, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				got <- err.Error()
				return
			}
			b, _ := io.ReadAll(c)
			got <- string(b)
		}()
		f := create(t, sock, 0o600, Options{})
		io.WriteString(f, "through the socket")
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != "through the socket" {
			t.Fatalf("the listener got %q", s)
		}
		if st, err := os.Lstat(sock); err != nil || st.Mode().Type() != os.ModeSocket {
			t.Fatalf("the socket became %v, %v", st.Mode(), err)
		}
	})
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	dead := deadPID(t)
	tag := hostTag()
	for _, tc := range []struct {
		name string
		gone bool
	}{
		{fmt.Sprintf(".out%s%s-%d-0123456789ab", tempMarker, tag, dead), true},
		{fmt.Sprintf(".a.b-c%s%s-%d-ba9876543210", tempMarker, tag, dead), true},
		{fmt.Sprintf(".out%s%s-%d-0123456789ab", tempMarker, tag, os.Getppid()), false}, // running
		{fmt.Sprintf(".out%s%s-%d-0123456789ab", tempMarker, tag, os.Getpid()), false},  // this process
		{fmt.Sprintf(".out%s%s-%d-0123456789ab", tempMarker, "00000000", dead), false},  // another host
		{fmt.Sprintf(".out%s0123456789ab", tempMarker), false},                          // the old form: no owner
		{fmt.Sprintf(".out%s%s-%d-0123456789", tempMarker, tag, dead), false},           // malformed
		{fmt.Sprintf("out%s%s-%d-0123456789ab", tempMarker, tag, dead), false},          // not hidden
		{fmt.Sprintf(".out%s%s-0%d-0123456789ab", tempMarker, tag, dead), false},        // PID not canonical
	} {
		if err := os.WriteFile(filepath.Join(dir, tc.name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	subdir := fmt.Sprintf(".dir%s%s-%d-0123456789ab", tempMarker, tag, dead)
	os.Mkdir(filepath.Join(dir, subdir), 0o700)
	f := create(t, filepath.Join(dir, "new"), 0o600, Options{})
	f.Abort()
	left := map[string]bool{}
	for _, n := range names(t, dir) {
		left[n] = true
	}
	if !left[subdir] {
		t.Errorf("a directory with a temporary's name was removed")
	}
	for _, n := range []string{
		fmt.Sprintf(".out%s%s-%d-0123456789ab", tempMarker, tag, dead),
		fmt.Sprintf(".a.b-c%s%s-%d-ba9876543210", tempMarker, tag, dead),
	} {
		if left[n] {
			t.Errorf("the stale temporary %q was not removed", n)
		}
	}
	if len(left) != 8 {
		t.Errorf("left %d names, want 8 (7 files that are not stale and the directory): %q", len(left), names(t, dir))
	}
}

// TestKilledWriter kills a process while it writes a File: with unnamed
// files nothing is left; with named temporaries one is, and the next
// Create in the directory removes it.
func TestKilledWriter(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprint("named=", named), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "DURABLE_TEST_WRITER="+filepath.Join(dir, "out"))
			if named {
				cmd.Env = append(cmd.Env, "DURABLE_TEST_NAMED=1")
			}
			stdin, _ := cmd.StdinPipe()
			defer stdin.Close()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			if line != "writing\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the writer said %q", line)
			}
			cmd.Process.Kill()
			cmd.Wait()
			left := names(t, dir)
			if !named {
				if len(left) != 0 {
					t.Fatalf("a killed writer of an unnamed file left %q", left)
				}
				return
			}
			if len(left) != 1 || !strings.HasPrefix(left[0], ".out"+tempMarker) || !strings.HasSuffix(strings.TrimRight(left[0], "0123456789abcdef"), "-"+strconv.Itoa(cmd.Process.Pid)+"-") {
				t.Fatalf("a killed writer of a named temporary left %q; want its temporary, naming its PID %d", left, cmd.Process.Pid)
			}
			f := create(t, filepath.Join(dir, "other"), 0o600, Options{})
			f.Abort()
			if left := names(t, dir); len(left) != 0 {
				t.Fatalf("the next Create did not remove the killed writer's temporary: %q", left)
			}
		})
	}
}

func TestBatch(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	modes(t, func(t *testing.T, named bool) {
		for _, limit := range []int{1000, 1} {
			t.Run(fmt.Sprint("open=", limit), func(t *testing.T) {
				defer func(f func() int) { maxOpenUnnamed = f }(maxOpenUnnamed)
				maxOpenUnnamed = func() int { return limit }
				d1, d2 := t.TempDir(), t.TempDir()
				os.WriteFile(filepath.Join(d2, "c"), []byte("old"), 0o640)
				var b Batch
				for _, p := range []string{filepath.Join(d1, "a"), filepath.Join(d1, "b"), filepath.Join(d2, "c")} {
					f, err := b.Create(context.Background(), p, 0o666, Options{})
					if err != nil {
						t.Fatal(err)
					}
					io.WriteString(f, "content of "+filepath.Base(p))
					if err := b.Add(f); err != nil {
						t.Fatal(err)
					}
				}
				// Before the commit, no output exists: temporaries only
				// where the batch named them (the fallback, or past the
				// open-file limit).
				for _, n := range append(names(t, d1), names(t, d2)...) {
					if n != "c" && !strings.Contains(n, tempMarker) {
						t.Fatalf("%q exists before the commit", n)
					}
				}
				if s := readString(t, filepath.Join(d2, "c")); s != "old" {
					t.Fatalf("c became %q before the commit", s)
				}
				n, errs := b.Commit()
				if n != 3 || len(errs) != 0 {
					t.Fatalf("Commit = %d, %v", n, errs)
				}
				for _, p := range []string{filepath.Join(d1, "a"), filepath.Join(d1, "b"), filepath.Join(d2, "c")} {
					if s := readString(t, p); s != "content of "+filepath.Base(p) {
						t.Fatalf("%s holds %q", p, s)
					}
				}
				if st, _ := os.Stat(filepath.Join(d2, "c")); st.Mode().Perm() != 0o640 {
					t.Fatalf("c has mode %v; want its 0640 kept", st.Mode().Perm())
				}
				if st, _ := os.Stat(filepath.Join(d1, "a")); st.Mode().Perm() != 0o644 {
					t.Fatalf("a has mode %v; want 0666 less the umask", st.Mode().Perm())
				}
				if got := append(names(t, d1), names(t, d2)...); len(got) != 3 {
					t.Fatalf("after the commit: %q", got)
				}
			})
		}
		t.Run("abort", func(t *testing.T) {
			dir := t.TempDir()
			var b Batch
			for _, n := range []string{"a", "b"} {
				f, err := b.Create(context.Background(), filepath.Join(dir, n), 0o600, Options{})
				if err != nil {
					t.Fatal(err)
				}
				b.Add(f)
			}
			b.Abort()
			if got := names(t, dir); len(got) != 0 {
				t.Fatalf("an aborted batch left %q", got)
			}
		})
		t.Run("noclobber", func(t *testing.T) {
			dir := t.TempDir()
			var b Batch
			for _, n := range []string{"a", "b"} {
				f, err := b.Create(context.Background(), filepath.Join(dir, n), 0o600, Options{NoClobber: true})
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(f, "mine")
				b.Add(f)
			}
			os.WriteFile(filepath.Join(dir, "b"), []byte("theirs"), 0o600)
			n, errs := b.Commit()
			var pe *os.PathError
			if n != 1 || len(errs) != 1 || !errors.Is(errs[0], os.ErrExist) || !errors.As(errs[0], &pe) || pe.Op != "commit" || pe.Path != filepath.Join(dir, "b") {
				t.Fatalf("Commit = %d, %v; want a, and b refused", n, errs)
			}
			if s := readString(t, filepath.Join(dir, "b")); s != "theirs" {
				t.Fatalf("b became %q", s)
			}
			if got := names(t, dir); len(got) != 2 {
				t.Fatalf("left %q", got)
			}
		})
	})
}

// TestSharedDirectory checks that in a sticky directory writable by all (a
// /tmp of its own), what another user planted is neither followed, nor
// written into, nor replaced, while the process's own files and the
// directory owner's are.
func TestSharedDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("planting files of another user needs root (chown)")
	}
	const other = 4321
	shared := filepath.Join(t.TempDir(), "tmp")
	os.Mkdir(shared, 0o777)
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious"), 0o600)
	plant := func(name string, make func(string) error) string {
		p := filepath.Join(shared, name)
		if err := make(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, other, other); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := plant("link", func(p string) error { return os.Symlink(victim, p) })
	file := plant("file", func(p string) error { return os.WriteFile(p, []byte("theirs"), 0o666) })
	fifo := plant("fifo", func(p string) error { return unix.Mkfifo(p, 0o666) })
	for _, p := range []string{link, file, fifo} {
		// Bounded: were the FIFO opened, the open would wait for a reader.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := Create(ctx, p, 0o600, Options{})
		cancel()
		if !errors.Is(err, errForeign) {
			t.Errorf("Create(%s) planted by another user: %v; want a refusal", filepath.Base(p), err)
		}
	}
	if s := readString(t, victim); s != "precious" {
		t.Fatalf("the link's target became %q", s)
	}
	if s := readString(t, file); s != "theirs" {
		t.Fatalf("the planted file became %q", s)
	}
	// The process's own link and file, and a new name, are fine.
	own := filepath.Join(shared, "own")
	os.Symlink(filepath.Join(shared, "own-target"), own)
	for _, p := range []string{own, filepath.Join(shared, "new")} {
		f := create(t, p, 0o600, Options{})
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// So are the directory owner's.
	if err := os.Chown(shared, other, other); err != nil {
		t.Fatal(err)
	}
	f := create(t, file, 0o600, Options{})
	io.WriteString(f, "replaced")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := readString(t, file); s != "replaced" {
		t.Fatalf("the directory owner's file holds %q", s)
	}
}

// TestMagicLinks writes through links to /proc/self/fd/N (what /dev/stdout
// and /dev/fd/N are), made in a scratch directory: the kernel follows
// them, so a pipe is written into and a regular file appended to (as the
// shell's ">>" opened it), and the links stay.
func TestMagicLinks(t *testing.T) {
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	pipeLink := filepath.Join(dir, "stdout")
	os.Symlink(fmt.Sprintf("/proc/self/fd/%d", w.Fd()), pipeLink)
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 100)
		n, _ := r.Read(b)
		got <- string(b[:n])
	}()
	f := create(t, pipeLink, 0o600, Options{NoClobber: true})
	if !f.Direct() {
		t.Fatal("a link to a pipe is not written straight into")
	}
	io.WriteString(f, "into the pipe")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "into the pipe" {
		t.Fatalf("the pipe's reader got %q", s)
	}

	log := filepath.Join(dir, "log")
	os.WriteFile(log, []byte("header\n"), 0o600)
	lf, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	// Through a chain: a link to /proc/self/fd, as /dev/fd is.
	fdDir := filepath.Join(dir, "fd")
	os.Symlink("/proc/self/fd", fdDir)
	f = create(t, filepath.Join(fdDir, fmt.Sprint(lf.Fd())), 0o600, Options{})
	io.WriteString(f, "appended\n")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := readString(t, log); s != "header\nappended\n" {
		t.Fatalf("the file open for appending holds %q", s)
	}
	for _, l := range []string{pipeLink, fdDir} {
		if st, err := os.Lstat(l); err != nil || st.Mode().Type() != os.ModeSymlink {
			t.Fatalf("%s is no longer a link: %v", l, err)
		}
	}
	if got := names(t, dir); len(got) != 3 {
		t.Fatalf("the directory holds %q", got)
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct{ path, dir, base string }{
		{"x", ".", "x"},
		{"/x", "/", "x"},
		{"a/b", "a", "b"},
		{"a/../b", "a/..", "b"},
		{"/a/b/", "/a/b", ""},
	} {
		if dir, base := split(tc.path); dir != tc.dir || base != tc.base {
			t.Errorf("split(%q) = %q, %q; want %q, %q", tc.path, dir, base, tc.dir, tc.base)
		}
	}
}

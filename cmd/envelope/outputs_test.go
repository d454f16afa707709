//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests run the envelope command as a process (the test binary
// standing in for it, as in the scripts: TestMain puts it on $PATH), to see
// what it leaves on disk when it is killed or interrupted, and what it does
// to outputs that are not regular files. Everything they write is inside
// their own t.TempDir(): device nodes are made there with mknod, never the
// machine's /dev.

// procEnv is a scratch directory with an AES key for the envelope command.
type procEnv struct {
	t   *testing.T
	dir string
	key string // the -k value
}

func newProcEnv(t *testing.T) *procEnv {
	t.Helper()
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, "app.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	return &procEnv{t: t, dir: dir, key: "aes:file=" + filepath.Join(dir, "app.key") + ",namespace=app,name=k1"}
}

// command returns the envelope command with args, run in the scratch
// directory with a keystore of its own.
func (e *procEnv) command(args ...string) *exec.Cmd {
	path, err := exec.LookPath("envelope")
	if err != nil {
		e.t.Fatalf("the envelope command is not on $PATH (TestMain puts it there): %v", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = e.dir
	cmd.Env = append(filterEnv(os.Environ(), "ENVELOPE_HOME", "ENVELOPE_PASSPHRASE", "ENVELOPE_KMS", "ENVELOPE_STORE", "ENVELOPE_ROOT_KEY_FILE", "ENVELOPE_ROOT_KMS", "ENVELOPE_ROOT_KEY_ID", "GORACE"),
		"ENVELOPE_HOME="+filepath.Join(e.dir, "envhome"), "GORACE=atexit_sleep_ms=0")
	return cmd
}

// run runs envelope to completion, with stdin as its input, and fails the
// test unless it succeeds.
func (e *procEnv) run(t *testing.T, stdin io.Reader, args ...string) []byte {
	t.Helper()
	cmd := e.command(args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := waitBounded(t, cmd, cmd.Start()); err != nil {
		t.Fatalf("envelope %q: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// waitBounded waits for a started command, killing it (and failing the
// test) if it has not exited within a generous deadline.
func waitBounded(t *testing.T, cmd *exec.Cmd, startErr error) error {
	t.Helper()
	if startErr != nil {
		t.Fatalf("starting %q: %v", cmd.Args, startErr)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%q did not exit within 30 s", cmd.Args)
		return nil
	}
}

// pollUntil polls cond every few milliseconds until it holds, failing the
// test after the deadline.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writingInto reports whether process pid has a file open in dir that is
// not empty: its output, under whatever name (or none) it has.
func writingInto(pid int, dir string) bool {
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fds)
	if err != nil {
		return false
	}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(fds, e.Name()))
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue
		}
		if st, err := os.Stat(filepath.Join(fds, e.Name())); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
			return true
		}
	}
	return false
}

// feeder writes zeros into w a MiB at a time, counting what the reader
// took, until it has written limit bytes or a write fails; then it closes
// w if closeAtEnd.
type feeder struct {
	fed  atomic.Int64
	done chan struct{}
}

func feed(w io.WriteCloser, limit int64, closeAtEnd bool) *feeder {
	f := &feeder{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		buf := make([]byte, 1<<20)
		for f.fed.Load() < limit {
			n, err := w.Write(buf[:min(int64(len(buf)), limit-f.fed.Load())])
			f.fed.Add(int64(n))
			if err != nil {
				w.Close()
				return
			}
		}
		if closeAtEnd {
			w.Close()
		}
	}()
	return f
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestKillLeavesNoFile kills envelope with SIGKILL while it writes its
// output (one -o file, a plaintext one, or a batch of several) and checks
// that nothing at all is left in the output directory: no hidden temporary
// file, no output.
func TestKillLeavesNoFile(t *testing.T) {
	e := newProcEnv(t)
	// A message for decrypt to read, 16 MiB of plaintext.
	plain := filepath.Join(e.dir, "plain")
	if err := os.WriteFile(plain, make([]byte, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run(t, nil, "encrypt", "-k", e.key, "--suite", "0x0478", "-o", filepath.Join(e.dir, "msg"), plain)
	msg, err := os.ReadFile(filepath.Join(e.dir, "msg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  func(out string) []string
		input func(w io.Writer) // what to write before the kill; the input then stays open
	}{
		{"encrypt", func(out string) []string { return []string{"encrypt", "-k", e.key, "-o", filepath.Join(out, "msg")} },
			func(w io.Writer) { w.Write(make([]byte, 8<<20)) }},
		{"decrypt", func(out string) []string { return []string{"decrypt", "-k", e.key, "-o", filepath.Join(out, "plain")} },
			func(w io.Writer) { w.Write(msg[:8<<20]) }},
		{"replace", func(out string) []string {
			os.WriteFile(filepath.Join(out, "msg"), []byte("old"), 0o644)
			return []string{"encrypt", "-k", e.key, "-o", filepath.Join(out, "msg")}
		}, func(w io.Writer) { w.Write(make([]byte, 8<<20)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			cmd := e.command(tc.args(out)...)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			tc.input(stdin)
			pollUntil(t, "envelope writes its output", func() bool { return writingInto(cmd.Process.Pid, out) })
			cmd.Process.Kill()
			cmd.Wait()
			names := listDir(t, out)
			if tc.name == "replace" {
				if b, err := os.ReadFile(filepath.Join(out, "msg")); err != nil || string(b) != "old" {
					t.Errorf("the file being replaced holds %q, %v; want it untouched", b, err)
				}
				names = slices.DeleteFunc(names, func(n string) bool { return n == "msg" })
			}
			if len(names) > 0 {
				t.Errorf("SIGKILL left %q in the output directory", names)
			}
		})
	}
	// Several FILEs: one complete output waits for the batch's commit
	// while the next is written (from a FIFO that stays open).
	t.Run("batch", func(t *testing.T) {
		out := t.TempDir()
		in := t.TempDir()
		os.WriteFile(filepath.Join(in, "a"), []byte("first file"), 0o644)
		fifo := filepath.Join(in, "b")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := e.command("encrypt", "-k", e.key, "--output-dir", out, filepath.Join(in, "a"), fifo)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
		defer w.Close()
		w.Write(make([]byte, 4<<20))
		pollUntil(t, "envelope writes the second output", func() bool { return writingInto(cmd.Process.Pid, out) })
		cmd.Process.Kill()
		cmd.Wait()
		if names := listDir(t, out); len(names) > 0 {
			t.Errorf("SIGKILL left %q in the output directory", names)
		}
	})
}

// TestInterrupt sends SIGINT (and SIGTERM) to envelope in the middle of
// encrypting a 1 GiB stream from a pipe, fed as it is read: it must stop,
// leave neither its output nor any temporary file, say so in one line and
// exit with status 130 (143 for SIGTERM).
func TestInterrupt(t *testing.T) {
	e := newProcEnv(t)
	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		status int
		fed    int64 // bytes of input before the signal (and the stream goes on)
	}{
		{"SIGINT mid-stream", syscall.SIGINT, 130, 8 << 20},
		{"SIGTERM mid-stream", syscall.SIGTERM, 143, 8 << 20},
		// A producer that sends nothing: the command waits in a read of its
		// input when the signal comes, and must still stop at once.
		{"SIGINT on a silent pipe", syscall.SIGINT, 130, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			cmd := e.command("encrypt", "-k", e.key, "-o", filepath.Join(out, "big.esdk"))
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			var f *feeder
			if tc.fed > 0 {
				f = feed(stdin, 1<<30, true)
				pollUntil(t, "envelope has read some input and written output", func() bool {
					return f.fed.Load() >= tc.fed && writingInto(cmd.Process.Pid, out)
				})
			} else {
				// Wait until it has set up and waits for input: its output
				// is open (made just before the first read) and every
				// thread sleeps.
				pollUntil(t, "envelope waits for its input", func() bool {
					return hasOpenIn(cmd.Process.Pid, out) && asleep(cmd.Process.Pid)
				})
			}
			cmd.Process.Signal(tc.sig)
			err = waitBounded(t, cmd, nil)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.status {
				t.Fatalf("after %v: %v, want exit status %d; stderr:\n%s", tc.sig, err, tc.status, stderr.String())
			}
			if f != nil {
				<-f.done
				if f.fed.Load() >= 1<<30 {
					t.Fatalf("envelope read the whole 1 GiB stream: it did not stop at the signal")
				}
			}
			want := fmt.Sprintf("envelope: interrupted by %s; the command stopped and wrote no output file\n", unix.SignalName(tc.sig))
			if stderr.String() != want {
				t.Errorf("stderr is %q; want the one line %q", stderr.String(), want)
			}
			if names := listDir(t, out); len(names) > 0 {
				t.Errorf("the interrupted command left %q in the output directory", names)
			}
		})
	}
}

// hasOpenIn reports whether process pid has a file open in dir.
func hasOpenIn(pid int, dir string) bool {
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(fds)
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			return true
		}
	}
	return false
}

// asleep reports whether every thread of process pid is sleeping (state
// S): waiting, not running.
func asleep(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// The state follows the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'S' {
			return false
		}
	}
	return true
}

// TestOutputNotRegular writes with -o (encrypt, decrypt, rewrap) and with
// several FILEs into outputs that are not regular files: a character
// device node (the null device's numbers, made in a scratch directory), a
// FIFO with a reader, and symbolic links. The node must stay a node and
// the FIFO a FIFO, written straight into; a symbolic link stays a link,
// and its target receives the output.
func TestOutputNotRegular(t *testing.T) {
	e := newProcEnv(t)
	plain := filepath.Join(e.dir, "plain")
	data := []byte("the plaintext, for a device, a FIFO and a symbolic link\n")
	os.WriteFile(plain, data, 0o644)
	msg := filepath.Join(e.dir, "msg")
	e.run(t, nil, "encrypt", "-k", e.key, "-o", msg, plain)

	t.Run("device", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("making a device node needs root (CAP_MKNOD)")
		}
		dir := t.TempDir()
		node := filepath.Join(dir, "null")
		if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatalf("mknod: %v", err)
		}
		checkNode := func(what string) {
			t.Helper()
			var st unix.Stat_t
			if err := unix.Lstat(node, &st); err != nil {
				t.Fatalf("after %s: %v", what, err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
				t.Fatalf("after %s the node is mode %#o rdev %#x; want the character device 1:3", what, st.Mode, st.Rdev)
			}
			if names := listDir(t, dir); len(names) != 1 {
				t.Fatalf("after %s the directory holds %q; want the node alone", what, names)
			}
		}
		e.run(t, nil, "encrypt", "-k", e.key, "-o", node, plain)
		checkNode("encrypt -o")
		e.run(t, nil, "decrypt", "-k", e.key, "-o", node, msg)
		checkNode("decrypt -o")
		e.run(t, nil, "rewrap", "--from", e.key, "-k", e.key, "-o", node, msg)
		checkNode("rewrap -o")
		// Several FILEs: plain's output, dir/plain.esdk, is a node too.
		os.Remove(node)
		node = filepath.Join(dir, "plain.esdk")
		unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		e.run(t, nil, "encrypt", "-k", e.key, "--output-dir", dir, plain)
		checkNode("encrypt --output-dir")
	})

	t.Run("fifo", func(t *testing.T) {
		dir := t.TempDir()
		fifo := filepath.Join(dir, "fifo")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		// read returns what a reader of the FIFO gets while cmd runs.
		read := func(args ...string) []byte {
			t.Helper()
			got := make(chan []byte, 1)
			go func() {
				f, err := os.Open(fifo)
				if err != nil {
					got <- nil
					return
				}
				b, _ := io.ReadAll(f)
				f.Close()
				got <- b
			}()
			e.run(t, nil, args...)
			select {
			case b := <-got:
				return b
			case <-time.After(10 * time.Second):
				t.Fatalf("envelope %q never wrote into the FIFO", args)
				return nil
			}
		}
		check := func(what string) {
			t.Helper()
			st, err := os.Lstat(fifo)
			if err != nil || st.Mode().Type() != os.ModeNamedPipe {
				t.Fatalf("after %s the FIFO is %v, %v", what, st.Mode(), err)
			}
			if names := listDir(t, dir); len(names) != 1 {
				t.Fatalf("after %s the directory holds %q; want the FIFO alone", what, names)
			}
		}
		got := read("encrypt", "-k", e.key, "-o", fifo, plain)
		check("encrypt -o")
		if p := e.run(t, bytes.NewReader(got), "decrypt", "-k", e.key); !bytes.Equal(p, data) {
			t.Fatalf("the message read from the FIFO decrypts to %q", p)
		}
		if got := read("decrypt", "-k", e.key, "-o", fifo, msg); !bytes.Equal(got, data) {
			t.Fatalf("decrypt -o FIFO: the reader got %q", got)
		}
		check("decrypt -o")
		got = read("rewrap", "--from", e.key, "-k", e.key, "-o", fifo, msg)
		check("rewrap -o")
		if p := e.run(t, bytes.NewReader(got), "decrypt", "-k", e.key); !bytes.Equal(p, data) {
			t.Fatalf("the rewrapped message read from the FIFO decrypts to %q", p)
		}
		os.Remove(fifo)
		fifo = filepath.Join(dir, "plain.esdk")
		unix.Mkfifo(fifo, 0o600)
		got = read("encrypt", "-k", e.key, "--output-dir", dir, plain)
		check("encrypt --output-dir")
		if p := e.run(t, bytes.NewReader(got), "decrypt", "-k", e.key); !bytes.Equal(p, data) {
			t.Fatalf("the message read from the FIFO decrypts to %q", p)
		}
	})

	// -o /dev/stdout: a link to /proc/self/fd/1, made here, never the
	// machine's. The kernel follows it to the process's standard output: a
	// pipe, or a file opened for appending, which keeps what it held.
	t.Run("stdout link", func(t *testing.T) {
		dir := t.TempDir()
		link := filepath.Join(dir, "stdout")
		if err := os.Symlink("/proc/self/fd/1", link); err != nil {
			t.Fatal(err)
		}
		got := e.run(t, nil, "decrypt", "-k", e.key, "-o", link, msg)
		if !bytes.Equal(got, data) {
			t.Fatalf("decrypt -o a link to /proc/self/fd/1 wrote %q to its pipe", got)
		}
		log := filepath.Join(dir, "log")
		os.WriteFile(log, []byte("header\n"), 0o644)
		lf, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer lf.Close()
		cmd := e.command("decrypt", "-k", e.key, "-o", link, msg)
		cmd.Stdout = lf
		if err := waitBounded(t, cmd, cmd.Start()); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(log); string(b) != "header\n"+string(data) {
			t.Fatalf("the log appended to holds %q", b)
		}
		if to, err := os.Readlink(link); err != nil || to != "/proc/self/fd/1" {
			t.Fatalf("the link became %q, %v", to, err)
		}
		if names := listDir(t, dir); len(names) != 2 {
			t.Fatalf("the directory holds %q", names)
		}
	})

	t.Run("symlink", func(t *testing.T) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "sub"), 0o755)
		target := filepath.Join(dir, "sub", "target")
		os.WriteFile(target, []byte("old"), 0o640)
		link := filepath.Join(dir, "link")
		chain := filepath.Join(dir, "chain")
		dangling := filepath.Join(dir, "dangling")
		for _, l := range []struct{ name, to string }{
			{link, "sub/target"}, // relative to the link's directory
			{chain, "link"},      // a link to a link
			{dangling, filepath.Join(dir, "sub", "new")},
		} {
			if err := os.Symlink(l.to, l.name); err != nil {
				t.Fatal(err)
			}
		}
		checkLink := func(what, l, to, final string) {
			t.Helper()
			got, err := os.Readlink(l)
			if err != nil || got != to {
				t.Fatalf("after %s, %s is %q, %v; want a symbolic link to %q", what, filepath.Base(l), got, err, to)
			}
			if p := e.run(t, nil, "decrypt", "-k", e.key, final); !bytes.Equal(p, data) {
				t.Fatalf("after %s, %s decrypts to %q", what, final, p)
			}
		}
		e.run(t, nil, "encrypt", "-k", e.key, "-o", link, plain)
		checkLink("encrypt -o link", link, "sub/target", target)
		if st, _ := os.Stat(target); st.Mode().Perm() != 0o640 {
			t.Errorf("the replaced target has mode %v; want its 0640 kept", st.Mode().Perm())
		}
		e.run(t, nil, "rewrap", "--from", e.key, "-k", e.key, "-o", chain, msg)
		checkLink("rewrap -o chain", chain, "link", target)
		checkLink("rewrap -o chain", link, "sub/target", target)
		e.run(t, nil, "encrypt", "-k", e.key, "-o", dangling, plain)
		checkLink("encrypt -o dangling", dangling, filepath.Join(dir, "sub", "new"), filepath.Join(dir, "sub", "new"))
		// decrypt -o through a link.
		plainLink := filepath.Join(dir, "plain-link")
		os.Symlink("sub/plain-out", plainLink)
		e.run(t, nil, "decrypt", "-k", e.key, "-o", plainLink, msg)
		if b, err := os.ReadFile(filepath.Join(dir, "sub", "plain-out")); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("decrypt -o link wrote %q, %v into its target", b, err)
		}
		if st, err := os.Lstat(plainLink); err != nil || st.Mode().Type() != os.ModeSymlink {
			t.Fatalf("decrypt -o link: the link became %v, %v", st.Mode(), err)
		}
		// Several FILEs: the output dir/plain.esdk is a link.
		batchLink := filepath.Join(dir, "plain.esdk")
		os.Symlink("sub/batch-target", batchLink)
		e.run(t, nil, "encrypt", "-k", e.key, "--output-dir", dir, plain)
		checkLink("encrypt --output-dir", batchLink, "sub/batch-target", filepath.Join(dir, "sub", "batch-target"))
		for _, d := range []string{dir, filepath.Join(dir, "sub")} {
			for _, n := range listDir(t, d) {
				if strings.Contains(n, ".envelope-") {
					t.Errorf("a temporary file %q is left in %s", n, d)
				}
			}
		}
	})
}

// TestOutputIsStandardInput refuses -o FILE when standard input is FILE
// (decrypt -o x.esdk < x.esdk): the same check as for a named input, by
// device and inode.
func TestOutputIsStandardInput(t *testing.T) {
	e := newProcEnv(t)
	plain := filepath.Join(e.dir, "plain")
	os.WriteFile(plain, []byte("plaintext"), 0o644)
	msg := filepath.Join(e.dir, "x.esdk")
	e.run(t, nil, "encrypt", "-k", e.key, "-o", msg, plain)
	before, _ := os.ReadFile(msg)
	f, err := os.Open(msg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := e.command("decrypt", "-k", e.key, "-o", msg)
	cmd.Stdin = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = waitBounded(t, cmd, cmd.Start())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("decrypt -o x.esdk < x.esdk: %v, want exit status 2; stderr:\n%s", err, stderr.String())
	}
	if want := "envelope: the output \"" + msg + "\" is the file standard input reads: writing it would replace the input\n"; !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr is %q; want %q first", stderr.String(), want)
	}
	if after, _ := os.ReadFile(msg); !bytes.Equal(after, before) {
		t.Errorf("the message was changed")
	}
}

// TestBlockedIO checks, in process, that the end of the command's context
// ends a read of an input and a write to standard output that wait for
// ever (a pipe nobody writes to, a pipe nobody reads), both through a
// descriptor in Go's poller (a deadline) and, without one, through the
// pump.
func TestBlockedIO(t *testing.T) {
	defer func(v bool) { reopenProc = v }(reopenProc)
	// blockingPipe returns a pipe whose ends are blocking descriptors, as a
	// shell gives a command (os.Pipe's are in the poller).
	blockingPipe := func() (r, w *os.File) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		return os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	}
	within := func(what string, f func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not end when the context did", what)
			return nil
		}
	}
	for _, reopen := range []bool{true, false} {
		t.Run(fmt.Sprint("reopen=", reopen), func(t *testing.T) {
			reopenProc = reopen
			r, w := blockingPipe()
			defer r.Close()
			defer w.Close()
			ctx, cancel := context.WithCancelCause(context.Background())
			c := &cli{ctx: ctx, stdin: r, stdout: w}
			in, err := c.openInput(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			_, viaPump := in.r.(*io.PipeReader)
			if viaPump == reopen {
				t.Fatalf("reading standard input through a pump: %v, want %v", viaPump, !reopen)
			}
			time.AfterFunc(50*time.Millisecond, func() { cancel(errors.New("stop")) })
			if err := within("a read of a silent pipe", func() error {
				_, err := in.r.Read(make([]byte, 10))
				return err
			}); err == nil {
				t.Fatal("the read ended without an error")
			}

			// Standard output: a pipe nobody reads, filled until a write
			// waits.
			r2, w2 := blockingPipe()
			defer r2.Close()
			defer w2.Close()
			ctx, cancel = context.WithCancelCause(context.Background())
			c = &cli{ctx: ctx, stdout: w2}
			out, err := c.createOutput("", 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if (out.pump != nil) == reopen {
				t.Fatalf("writing standard output through a pump: %v, want %v", out.pump != nil, !reopen)
			}
			time.AfterFunc(50*time.Millisecond, func() { cancel(errors.New("stop")) })
			err = within("a write to a full pipe", func() error {
				buf := make([]byte, 64<<10)
				for {
					if _, err := out.w.Write(buf); err != nil {
						return err
					}
				}
			})
			if err == nil {
				t.Fatal("the write ended without an error")
			}
			if err := out.commit(); err == nil {
				t.Fatal("commit after the end of the context succeeded")
			}
		})
	}
}

package main

// Inputs and outputs of the commands, and how they stop on a signal.
//
// Every command runs under a context that SIGINT or SIGTERM cancels (see
// run). The commands stream from their input to their output, so stopping
// the input stops them: a regular file is closed when the context ends (its
// reads never wait long). A read of anything else (a pipe, a terminal, a
// FIFO) or a write to it may wait for ever, so it goes through Go's poller,
// and the end of the context sets a deadline in the past, which ends the
// wait: a FIFO opened by path is in the poller already; standard input and
// output (blocking descriptors shared with the shell) are opened a second
// time through /proc/self/fd on Linux, which gives a descriptor of their
// own that can be. Failing that, a goroutine copies through a pipe that
// the end of the context closes (pump). A named output is a durable.File:
// nothing exists at its path until it commits, which it does only if the
// context has not ended, and the code that created it aborts it on the way
// out.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/envelopekms/envelope/internal/durable"
)

// input is the command's input: a file or standard input.
type input struct {
	r    io.Reader
	name string      // for messages
	size int64       // -1 when unknown
	f    *os.File    // a named FILE, nil for standard input
	st   os.FileInfo // a regular file's (named or standard input), else nil
	stop func()      // releases what watches the context
}

func (c *cli) openInput(args []string) (*input, error) {
	if len(args) > 1 {
		return nil, usageErrorf("too many arguments %q: give at most one input FILE", args)
	}
	if len(args) == 0 || args[0] == "-" {
		in := &input{r: c.stdin, name: "standard input", size: -1}
		if f, ok := c.stdin.(*os.File); ok {
			st, err := f.Stat()
			if err == nil && st.Mode().IsRegular() {
				in.size, in.st = st.Size(), st
			}
			c.interruptible(in, f)
		}
		return in, nil
	}
	in, err := c.openFile(args[0])
	switch {
	case errors.Is(err, errIsDirectory):
		return nil, fmt.Errorf("input %q is a directory", args[0])
	case err != nil:
		return nil, fmt.Errorf("opening input: %w", unwrapPathError(err, args[0]))
	}
	return in, nil
}

// errIsDirectory is openFile's error for a directory.
var errIsDirectory = errors.New("is a directory")

// openFile opens a named input. Its errors are an *os.PathError or
// errIsDirectory.
func (c *cli) openFile(path string) (*input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, errIsDirectory
	}
	in := &input{r: f, name: fmt.Sprintf("%q", path), size: -1, f: f}
	if st.Mode().IsRegular() {
		in.size, in.st = st.Size(), st
	}
	c.interruptible(in, f)
	return in, nil
}

// interruptible makes in, read from f, end when the command's context
// does: a regular file by closing it (its reads never wait long, and the
// next one fails), anything else with a read deadline (see pollable) or,
// without one, by reading it in a goroutine through a pipe that the end of
// the context closes (a read waiting on f is then left behind).
func (c *cli) interruptible(in *input, f *os.File) {
	if in.st != nil {
		stop := context.AfterFunc(c.ctx, func() { f.Close() })
		in.stop = func() { stop() }
		return
	}
	if r := pollable(f, os.O_RDONLY); r != nil {
		stop := context.AfterFunc(c.ctx, func() { r.SetReadDeadline(time.Unix(1, 0)) })
		in.r = r
		in.stop = func() {
			stop()
			if r != f {
				r.Close()
			}
		}
		return
	}
	pr, pw := io.Pipe()
	go func() {
		// Hide f's WriteTo, which would copy through a 32 KiB buffer: a
		// larger one means fewer hand-overs between the goroutines.
		_, err := io.CopyBuffer(pw, struct{ io.Reader }{f}, make([]byte, pumpBuffer))
		pw.CloseWithError(err)
	}()
	stop := context.AfterFunc(c.ctx, func() { pr.CloseWithError(context.Cause(c.ctx)) })
	in.r = pr
	in.stop = func() {
		stop()
		pr.Close() // the goroutine's next write fails, and it ends
	}
}

func (in *input) Close() {
	if in.stop != nil {
		in.stop()
	}
	if in.f != nil {
		in.f.Close()
	}
}

// inputFiles are the files a command reads, so that an output that would
// replace one is refused before anything is written: the same absolute
// path, or the same file under another name (hard or symbolic links, to it
// or to a directory on its path: the same device and inode). It is the one
// check of both -o and several FILEs.
type inputFiles struct {
	byPath map[string]string      // absolute path → FILE
	bySize map[int64][]inputEntry // existing regular inputs, by size
}

type inputEntry struct {
	name string
	st   os.FileInfo
}

// add records an input: its name as given, the path it was read from (""
// for standard input) and, for a regular file, its FileInfo.
func (s *inputFiles) add(name, path string, st os.FileInfo) {
	if s.byPath == nil {
		s.byPath, s.bySize = map[string]string{}, map[int64][]inputEntry{}
	}
	if p, err := filepath.Abs(path); path != "" && err == nil {
		s.byPath[p] = name
	}
	if st != nil && st.Mode().IsRegular() {
		s.bySize[st.Size()] = append(s.bySize[st.Size()], inputEntry{name, st})
	}
}

// find returns the input that writing out would replace, and whether out
// names it under its own name.
func (s *inputFiles) find(out string) (name string, ownName, found bool) {
	if p, err := filepath.Abs(out); err == nil {
		if in, ok := s.byPath[p]; ok {
			return in, true, true
		}
	}
	if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() {
		for _, in := range s.bySize[st.Size()] {
			if os.SameFile(in.st, st) {
				return in.name, false, true
			}
		}
	}
	return "", false, false
}

// refuseInputAsOutput refuses an output path that is the single input in:
// writing it would replace the input (a decrypt would leave the plaintext
// where the message was). Devices and FIFOs are not replaced: only a
// regular input counts.
func refuseInputAsOutput(path string, in *input) error {
	if in.st == nil {
		return nil
	}
	var s inputFiles
	if in.f != nil {
		s.add(in.f.Name(), in.f.Name(), in.st)
	} else {
		s.add("", "", in.st)
	}
	name, own, found := s.find(path)
	hint := "write the output to another path"
	switch {
	case !found:
		return nil
	case in.f == nil:
		return &exitError{code: 2, err: &hintError{fmt.Errorf("the output %q is the file standard input reads: writing it would replace the input", path), hint}}
	case own:
		return &exitError{code: 2, err: &hintError{fmt.Errorf("the output %q is the input: writing it would replace the input", path), hint}}
	}
	return &exitError{code: 2, err: &hintError{fmt.Errorf("the output %q is the input %q under another name: writing it would replace the input", path, name), hint}}
}

// output is where a command writes: standard output, or a named file (a
// durable.File) that appears only when commit succeeds. On any failure no
// output file exists and an existing file is left untouched, except a
// device, FIFO or socket, which is written into as the command goes.
// A new file's mode is the one given (0644 for messages, 0600 for
// plaintext) less the umask; a replaced file keeps its mode.
type output struct {
	w       io.Writer     // what the command writes to
	file    *durable.File // nil for standard output
	pump    *pump         // when writes go through a goroutine
	release func()        // stops watching the context, if that was needed
	ctx     context.Context
	path    string
	done    bool
}

// createOutput creates the output path ("" or "-": standard output) with
// mode for a new file, honouring --no-clobber, and refuses a path that is
// one of ins.
func (c *cli) createOutput(path string, mode os.FileMode, ins ...*input) (*output, error) {
	if path == "" || path == "-" {
		o := &output{w: c.stdout, ctx: c.ctx}
		if f, ok := c.stdout.(*os.File); ok {
			o.watchStdout(f)
		}
		return o, nil
	}
	for _, in := range ins {
		if err := refuseInputAsOutput(path, in); err != nil {
			return nil, err
		}
	}
	f, err := durable.Create(c.ctx, path, mode, durable.Options{NoClobber: c.noClobber})
	if err != nil {
		return nil, c.createError(path, err)
	}
	return newOutput(c.ctx, f), nil
}

func newOutput(ctx context.Context, f *durable.File) *output {
	o := &output{w: f.Writer(), file: f, ctx: ctx, path: f.Name()}
	if f.Direct() {
		// A FIFO, terminal or socket: writes may wait, and a write
		// deadline can end them. Other devices never make a write wait
		// long (and have no deadlines).
		if d, ok := o.w.(interface{ SetWriteDeadline(time.Time) error }); ok && d.SetWriteDeadline(time.Time{}) == nil {
			stop := context.AfterFunc(ctx, func() { d.SetWriteDeadline(time.Unix(1, 0)) })
			o.release = func() { stop() }
		}
	}
	return o
}

// watchStdout makes writes to standard output f end when the context does,
// if f is not a regular file (whose writes never wait long): through a
// pollable descriptor of its own, else through a pump.
func (o *output) watchStdout(f *os.File) {
	st, err := f.Stat()
	if err != nil || st.Mode().IsRegular() {
		return
	}
	if w := pollable(f, os.O_WRONLY); w != nil {
		stop := context.AfterFunc(o.ctx, func() { w.SetWriteDeadline(time.Unix(1, 0)) })
		o.release = func() {
			stop()
			if w != f {
				w.Close()
			}
		}
		if w != f {
			o.w = brokenPipeTo{w, f}
		}
		return
	}
	if st.Mode()&os.ModeDevice == 0 {
		o.pump = newPump(o.ctx, f) // a pipe or socket where /proc is not
		o.w = o.pump
	}
}

// brokenPipeTo writes to standard output through w, a second descriptor of
// it. A write to a closed pipe is made again to standard output itself,
// where Go's runtime turns the error into SIGPIPE: "envelope decrypt f |
// head" ends quietly, as a program writing standard output does.
type brokenPipeTo struct{ w, stdout *os.File }

func (b brokenPipeTo) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		m, err := b.stdout.Write(p[n:])
		return n + m, err
	}
	return n, err
}

// reopenProc says whether pollable may open /proc/self/fd/N: Linux's
// (tests turn it off to reach the pump).
var reopenProc = runtime.GOOS == "linux"

// pollable returns a descriptor for f's reads (flag os.O_RDONLY) or writes
// (os.O_WRONLY) that waits in Go's poller, so that a deadline can end a
// wait: f itself if it is one (a FIFO opened by path), or on Linux a new
// non-blocking open of the same pipe, FIFO or terminal through
// /proc/self/fd (a description of its own: f's, which the shell may share,
// stays as it is). It returns nil if there is none: a regular file, a
// device other than a terminal, a socket, a system without /proc.
func pollable(f *os.File, flag int) *os.File {
	if f.SetDeadline(time.Time{}) == nil {
		return f
	}
	st, err := f.Stat()
	if !reopenProc || err != nil || st.Mode().IsRegular() || st.Mode()&os.ModeSocket != 0 {
		return nil
	}
	// Non-blocking: opening a FIFO's writing end would otherwise wait for a
	// reader (with none, the open fails and writes go to f, where they
	// fail at once).
	r, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), flag|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	if rst, err := r.Stat(); err != nil || !os.SameFile(st, rst) || r.SetDeadline(time.Time{}) != nil {
		r.Close()
		return nil
	}
	return r
}

// createError explains a failure of durable.Create.
func (c *cli) createError(path string, err error) error {
	switch {
	case c.ctx.Err() != nil:
		return context.Cause(c.ctx)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("output %q is a directory", path)
	case errors.Is(err, fs.ErrExist) && c.noClobber:
		return fmt.Errorf("output %q exists, and --no-clobber refuses to replace it", path)
	}
	return fmt.Errorf("creating output: %w", unwrapPathError(err, path))
}

// commitError explains a failure of durable.File.Commit or of a batch's.
func commitError(err error) error {
	var pe *os.PathError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.Op == "syncdir":
		return fmt.Errorf("syncing directory %q after writing the output into it: %v", pe.Path, pe.Err)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("output %q appeared while it was written, and --no-clobber refuses to replace it; the output was not written", pe.Path)
	}
	return fmt.Errorf("writing output %q: %v", pe.Path, pe.Err)
}

// flush waits until what was written has reached the output (through the
// pump, if there is one), and stops watching the context.
func (o *output) flush() error {
	if o.release != nil {
		o.release()
		o.release = nil
	}
	if o.pump == nil {
		return nil
	}
	err := o.pump.flush()
	o.pump = nil
	if err != nil && o.path != "" {
		return fmt.Errorf("writing output %q: %w", o.path, err)
	}
	return err
}

// commit makes the output final: fsync, name it, sync its directory. If the
// command's context has ended (a signal), it aborts instead.
func (o *output) commit() error {
	if o.done {
		return nil
	}
	if err := o.flush(); err != nil {
		o.abort()
		return err
	}
	if o.ctx.Err() != nil {
		o.abort()
		return context.Cause(o.ctx)
	}
	o.done = true
	if o.file == nil {
		return nil
	}
	return commitError(o.file.Commit())
}

// abort discards the output. It is safe after commit and more than once.
func (o *output) abort() {
	if o.done {
		return
	}
	o.done = true
	o.flush() // what was streamed goes out; then the stream ends
	if o.file != nil {
		o.file.Abort()
	}
}

// pumpBuffer is the size of the buffer of the goroutines that read inputs
// and write outputs that may block.
const pumpBuffer = 256 << 10

// pump writes what a command writes to dst from a goroutine, so that a
// write that waits (a full pipe, a FIFO or terminal nobody reads) does not
// keep the command from stopping when its context ends: the command's
// writes then fail at once.
type pump struct {
	pw   *io.PipeWriter
	ctx  context.Context
	done chan error
	stop func() bool
}

func newPump(ctx context.Context, dst io.Writer) *pump {
	pr, pw := io.Pipe()
	p := &pump{pw: pw, ctx: ctx, done: make(chan error, 1)}
	go func() {
		// Hide dst's ReadFrom: os.File's would look for an in-kernel copy
		// from a pipe reader in vain, then copy through 32 KiB.
		_, err := io.CopyBuffer(struct{ io.Writer }{dst}, pr, make([]byte, pumpBuffer))
		pr.CloseWithError(err) // a failed write fails the command's next one
		p.done <- err
	}()
	p.stop = context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	return p
}

func (p *pump) Write(b []byte) (int, error) { return p.pw.Write(b) }

// flush ends the stream and waits until the goroutine has written it all,
// or the context ends.
func (p *pump) flush() error {
	p.pw.Close()
	select {
	case err := <-p.done:
		p.stop()
		return err
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// unwrapPathError keeps the OS's reason and the path, without Go's
// "open" operation prefix.
func unwrapPathError(err error, path string) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%q: %v", path, pe.Err)
	}
	return err
}

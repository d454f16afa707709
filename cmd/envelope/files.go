package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/envelopekms/envelope/internal/durable"
)

// temporaries are output files being written, removed if the process is
// interrupted so that no partial output survives.
var temporaries sync.Map

func removeTemporaries() {
	temporaries.Range(func(k, _ any) bool {
		os.Remove(k.(string))
		return true
	})
}

// input is the command's input: a file or standard input.
type input struct {
	r    io.Reader
	name string // for messages
	size int64  // -1 when unknown
	f    *os.File
}

func (c *cli) openInput(args []string) (*input, error) {
	if len(args) > 1 {
		return nil, usageErrorf("too many arguments %q: give at most one input FILE", args)
	}
	if len(args) == 0 || args[0] == "-" {
		in := &input{r: c.stdin, name: "standard input", size: -1}
		if f, ok := c.stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				in.size = st.Size()
			}
		}
		return in, nil
	}
	in, err := openFile(args[0])
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
func openFile(path string) (*input, error) {
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
	size := int64(-1)
	if st.Mode().IsRegular() {
		size = st.Size()
	}
	return &input{r: f, name: fmt.Sprintf("%q", path), size: size, f: f}, nil
}

func (in *input) Close() {
	if in.f != nil {
		in.f.Close()
	}
}

// output is where a command writes. A named file is written to a temporary
// file beside it and renamed into place by commit (or by a batch), so that
// on any failure no output file exists (and an existing file is left
// untouched). Its mode is the one given (0644 for messages, 0600 for
// plaintext) less the umask.
type output struct {
	w      io.Writer
	f      *os.File
	path   string
	tmp    string
	closed bool // f is closed: the temporary waits for its batch
}

func (c *cli) createOutput(path string, mode os.FileMode) (*output, error) {
	if path == "" || path == "-" {
		return &output{w: c.stdout}, nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("output %q is a directory", path)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := createTemp(dir, "."+base+".envelope-", mode)
	if err != nil {
		return nil, fmt.Errorf("creating output: %w", unwrapPathError(err, path))
	}
	temporaries.Store(f.Name(), true)
	return &output{w: f, f: f, path: path, tmp: f.Name()}, nil
}

// commit makes the output final: fsync, close, rename.
func (o *output) commit() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	o.closed = true
	if err == nil {
		err = os.Rename(o.tmp, o.path)
	}
	if err != nil {
		o.abort()
		return fmt.Errorf("writing output %q: %w", o.path, errors.Unwrap(err))
	}
	temporaries.Delete(o.tmp)
	o.f = nil
	return nil
}

// finish closes the temporary file of a complete output without syncing
// it: a batch makes it durable and renames it with the others.
func (o *output) finish() error {
	err := o.f.Close()
	o.closed = true
	if err != nil {
		o.abort()
		return fmt.Errorf("writing output %q: %w", o.path, errors.Unwrap(err))
	}
	return nil
}

// abort discards the output. It is safe after commit and more than once.
func (o *output) abort() {
	if o.f == nil {
		return
	}
	if !o.closed {
		o.f.Close()
	}
	os.Remove(o.tmp)
	temporaries.Delete(o.tmp)
	o.f = nil
}

// batch holds the complete outputs of a command given several FILEs until
// the end, when they are made durable together and renamed into place:
// one sync pass (see syncer) instead of an fsync per file, and no output
// appears before every one of them is on disk.
type batch struct {
	outs []*output
	sync syncer
}

// create creates an output that the batch will commit.
func (b *batch) create(c *cli, path string, mode os.FileMode) (*output, error) {
	o, err := c.createOutput(path, mode)
	if err != nil {
		return nil, err
	}
	if err := b.sync.watch(o.tmp); err != nil {
		o.abort()
		return nil, fmt.Errorf("creating output: %w", unwrapPathError(err, path))
	}
	return o, nil
}

// add takes a complete output, finished or not.
func (b *batch) add(o *output) error {
	if !o.closed {
		if err := o.finish(); err != nil {
			return err
		}
	}
	b.outs = append(b.outs, o)
	return nil
}

// abort discards every output not yet committed.
func (b *batch) abort() {
	for _, o := range b.outs {
		o.abort()
	}
	b.outs = nil
	b.sync.close()
}

// commit makes the outputs durable, renames each into place and syncs the
// directories that received them, so that the renames are durable too. It
// returns how many outputs it wrote and the errors, each naming the output
// or directory it is about. If the sync pass fails, no output is written.
func (b *batch) commit() (int, []error) {
	defer b.sync.close()
	if len(b.outs) == 0 {
		return 0, nil
	}
	tmps := make([]string, len(b.outs))
	for i, o := range b.outs {
		tmps[i] = o.tmp
	}
	if err := b.sync.sync(tmps); err != nil {
		n := len(b.outs)
		b.abort()
		return 0, []error{fmt.Errorf("making the %d outputs durable: %v; none was written", n, err)}
	}
	var errs []error
	var dirs []string
	seen := map[string]bool{}
	written := 0
	for _, o := range b.outs {
		if err := os.Rename(o.tmp, o.path); err != nil {
			o.abort()
			errs = append(errs, fmt.Errorf("writing output %q: %w", o.path, errors.Unwrap(err)))
			continue
		}
		temporaries.Delete(o.tmp)
		o.f = nil
		written++
		if d := filepath.Dir(o.path); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	b.outs = nil
	for _, d := range dirs {
		if err := durable.SyncDir(d); err != nil {
			errs = append(errs, fmt.Errorf("syncing directory %q after renaming outputs into it: %v", d, err))
		}
	}
	return written, errs
}

// createTemp creates a new file dir/prefix+random with mode perm (less the
// umask), like os.CreateTemp but without forcing 0600 on every output.
func createTemp(dir, prefix string, perm os.FileMode) (*os.File, error) {
	for range 100 {
		var b [6]byte
		rand.Read(b[:])
		name := filepath.Join(dir, prefix+hex.EncodeToString(b[:]))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, errors.New("could not create a temporary output file")
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

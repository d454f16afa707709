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
	f, err := os.Open(args[0])
	if err != nil {
		return nil, fmt.Errorf("opening input: %w", unwrapPathError(err, args[0]))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("input %q is a directory", args[0])
	}
	size := int64(-1)
	if st.Mode().IsRegular() {
		size = st.Size()
	}
	return &input{r: f, name: fmt.Sprintf("%q", args[0]), size: size, f: f}, nil
}

func (in *input) Close() {
	if in.f != nil {
		in.f.Close()
	}
}

// output is where a command writes. A named file is written to a temporary
// file beside it and renamed into place by commit, so that on any failure
// no output file exists (and an existing file is left untouched). Its mode
// is the one given (0644 for messages, 0600 for plaintext) less the umask.
type output struct {
	w    io.Writer
	f    *os.File
	path string
	tmp  string
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

// commit makes the output final.
func (o *output) commit() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
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

// abort discards the output. It is safe after commit.
func (o *output) abort() {
	if o.f == nil {
		return
	}
	o.f.Close()
	os.Remove(o.tmp)
	temporaries.Delete(o.tmp)
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

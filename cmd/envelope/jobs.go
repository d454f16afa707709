package main

// Commands given several FILEs: each FILE's output is named before
// anything is written (planJobs); each FILE is done in turn, its failure
// reported by name while the others go on (eachFile); the outputs are made
// durable and named together at the end (batch).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/envelopekms/envelope/internal/durable"
)

// fileJob is one FILE of a command given several, and its output.
type fileJob struct {
	in, out string
}

// planJobs names the output of each FILE: FILE+suffix (encrypt) or FILE
// without suffix (decrypt), beside FILE or in outDir. It refuses, before
// anything is written, names it cannot derive, two FILEs with one output,
// and outputs that would replace an input.
func planJobs(files []string, suffix, outDir string, decrypt bool) ([]fileJob, error) {
	if suffix == "" || strings.ContainsAny(suffix, `/`+string(filepath.Separator)) {
		return nil, usageErrorf("--suffix %q: want a file name ending such as .esdk (not empty, no directory)", suffix)
	}
	if outDir != "" {
		st, err := os.Stat(outDir)
		switch {
		case err != nil:
			return nil, fmt.Errorf("--output-dir: %w", unwrapPathError(err, outDir))
		case !st.IsDir():
			return nil, fmt.Errorf("--output-dir: %q is not a directory", outDir)
		}
	}
	jobs := make([]fileJob, len(files))
	var inputs inputFiles
	for i, name := range files {
		if name == "-" {
			return nil, usageErrorf("standard input (\"-\") cannot be one of several FILEs: its output would have no name; use -o with it alone")
		}
		st, _ := os.Stat(name)
		inputs.add(name, name, st)
		dir, base := filepath.Split(name)
		switch {
		case !decrypt:
			base += suffix
		case strings.HasSuffix(base, suffix) && len(base) > len(suffix):
			base = strings.TrimSuffix(base, suffix)
		case outDir == "":
			return nil, &exitError{code: 2, err: &hintError{
				fmt.Errorf("%q does not end in %q, so its output has no name", name, suffix),
				"give --output-dir DIR to decrypt it into another directory under the same name, or --suffix"}}
		}
		if outDir != "" {
			dir = outDir
		}
		jobs[i] = fileJob{in: name, out: filepath.Join(dir, base)}
	}
	outputs := make(map[string]string, len(jobs)) // absolute path → FILE
	for _, j := range jobs {
		p, err := filepath.Abs(j.out)
		if err != nil {
			return nil, err
		}
		if other, dup := outputs[p]; dup {
			return nil, usageErrorf("%q and %q would both be written to %q", other, j.in, j.out)
		}
		outputs[p] = j.in
		switch in, own, found := inputs.find(j.out); {
		case found && own:
			return nil, usageErrorf("the output of %q would replace the input %q", j.in, in)
		case found:
			return nil, usageErrorf("the output of %q, %q, is the input %q under another name", j.in, j.out, in)
		}
	}
	return jobs, nil
}

// eachFile runs do on each job's input and output, reporting each failure
// by its FILE's name as it happens and going on with the others. The
// outputs are committed together at the end (batch).
func (c *cli) eachFile(jobs []fileJob, verb string, mode os.FileMode, do func(in *input, dst io.Writer) error) error {
	var b batch
	defer b.abort()
	for _, j := range jobs {
		err := c.oneFile(&b, j, mode, do)
		if c.ctx.Err() != nil {
			return context.Cause(c.ctx) // a signal: nothing is committed
		}
		if err != nil {
			c.report(fmt.Errorf("%s %q: %w", verb, j.in, err))
		}
	}
	written, errs := b.commit()
	for _, err := range errs {
		c.report(err)
	}
	if failed := len(jobs) - written; failed > 0 {
		switch {
		case len(jobs) == 1:
			return errSilent // its error is reported above
		case written == 0:
			return fmt.Errorf("no output written: all %d files failed", len(jobs))
		}
		return fmt.Errorf("%d of %d files failed; the others' outputs were written", failed, len(jobs))
	}
	if len(errs) > 0 {
		return errSilent
	}
	return nil
}

// oneFile runs do on one job into an output of batch b.
func (c *cli) oneFile(b *batch, j fileJob, mode os.FileMode, do func(in *input, dst io.Writer) error) error {
	in, err := c.openFile(j.in)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return err
	}
	defer in.Close()
	out, err := b.create(c, j.out, mode)
	if err != nil {
		return err
	}
	if err := do(in, out.w); err != nil {
		out.abort()
		var be *bodyError
		if errors.As(err, &be) {
			return be.err
		}
		return err
	}
	return b.add(out)
}

// batch holds the complete outputs of a command given several FILEs until
// the end, when they are made durable together and named (durable.Batch):
// one sync pass instead of an fsync per file, and no output appears before
// every one of them is on disk.
type batch struct {
	b      durable.Batch
	n      int // outputs added, waiting for the commit
	direct int // outputs written straight into a device, FIFO or socket
}

// create creates an output that the batch will commit.
func (b *batch) create(c *cli, path string, mode os.FileMode) (*output, error) {
	f, err := b.b.Create(c.ctx, path, mode, durable.Options{NoClobber: c.noClobber})
	if err != nil {
		return nil, c.createError(path, err)
	}
	return newOutput(c.ctx, f), nil
}

// add takes a complete output.
func (b *batch) add(o *output) error {
	if err := o.flush(); err != nil {
		o.abort()
		return err
	}
	o.done = true
	if err := b.b.Add(o.file); err != nil {
		return commitError(err)
	}
	if o.file.Direct() {
		b.direct++ // Add committed it
	} else {
		b.n++
	}
	return nil
}

// abort discards every output not yet committed.
func (b *batch) abort() { b.b.Abort() }

// commit makes the outputs durable, names each and syncs the directories
// that received them, so that the names are durable too. It returns how
// many outputs it wrote (those written straight into a device, FIFO or
// socket included) and the errors, each naming the output or directory it
// is about. If the sync pass fails, no output file is written.
func (b *batch) commit() (int, []error) {
	n, errs := b.b.Commit()
	n += b.direct
	for i, err := range errs {
		var pe *os.PathError
		switch {
		case errors.As(err, &pe) && pe.Op == "sync":
			errs[i] = fmt.Errorf("making the %d outputs durable: %v; none was written", b.n, err)
		case errors.As(err, &pe) && pe.Op == "syncdir":
			errs[i] = fmt.Errorf("syncing directory %q after renaming outputs into it: %v", pe.Path, pe.Err)
		default:
			errs[i] = commitError(err)
		}
	}
	return n, errs
}

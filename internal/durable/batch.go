package durable

import (
	"context"
	"os"
)

// A Batch commits several files together, for a command that writes many
// outputs: they are made durable in one pass (one syncfs(2) per file
// system on Linux, an fsync per file elsewhere) instead of one fsync each,
// and none appears before all of them are on disk.
//
// Files made by [Batch.Create] are written, then handed to [Batch.Add]
// when complete (or aborted). On Linux a complete unnamed file keeps its
// descriptor open until the commit; past a limit on open descriptors, the
// next ones are given temporary names (see [Create]) and closed. Direct
// outputs (devices, FIFOs, sockets) cannot wait: Add commits them at once.
type Batch struct {
	files []*File
	sync  syncer
	open  int // unnamed files in files, holding a descriptor
}

// Create begins a file for path, as [Create] does, that the batch will
// commit.
func (b *Batch) Create(ctx context.Context, path string, perm os.FileMode, opts Options) (*File, error) {
	f, err := Create(ctx, path, perm, opts)
	if err != nil || f.direct {
		return f, err
	}
	if err := b.sync.watch(f.dir); err != nil {
		f.Abort()
		return nil, &os.PathError{Op: "create", Path: path, Err: unwrapPath(err)}
	}
	return f, nil
}

// Add takes f, complete, for the batch's commit. A direct output is
// committed at once, with [File.Commit]'s errors. Otherwise an error (a
// *os.PathError with Op "close") means that f was aborted.
func (b *Batch) Add(f *File) error {
	if f.direct {
		return f.Commit()
	}
	var err error
	switch {
	case f.tmp != "":
		err = f.f.Close() // a named temporary: the name is enough
		f.f = nil
	case b.open >= maxOpenUnnamed():
		if err = f.nameTemp(); err == nil {
			err = f.f.Close()
			f.f = nil
		}
	default:
		b.open++
	}
	if err != nil {
		f.Abort()
		return &os.PathError{Op: "close", Path: f.name, Err: unwrapPath(err)}
	}
	f.state = stateFinished
	b.files = append(b.files, f)
	return nil
}

// Commit makes the added files durable, names each at its path and syncs
// the directories that received them, so that the names are durable too.
// It returns how many files it committed and what failed, each a
// *os.PathError: Op "sync" if the sync pass failed (then it is the only
// error, and no file was committed), "commit" for a file it could not name
// (Path is the file's, as given to Create), "syncdir" for a directory it
// could not sync (Path is the directory; its files are in place but may
// not survive a crash).
func (b *Batch) Commit() (int, []error) {
	defer b.sync.close()
	files := b.files
	b.files, b.open = nil, 0
	if len(files) == 0 {
		return 0, nil
	}
	if err := b.sync.sync(files); err != nil {
		for _, f := range files {
			f.Abort()
		}
		return 0, []error{&os.PathError{Op: "sync", Path: errPath(err), Err: unwrapPath(err)}}
	}
	var errs []error
	var dirs []string
	seen := map[string]bool{}
	committed := 0
	for _, f := range files {
		if err := f.place(); err != nil {
			errs = append(errs, err)
			continue
		}
		committed++
		if !seen[f.dir] {
			seen[f.dir] = true
			dirs = append(dirs, f.dir)
		}
	}
	for _, d := range dirs {
		if err := SyncDir(d); err != nil {
			errs = append(errs, &os.PathError{Op: "syncdir", Path: d, Err: unwrapPath(err)})
		}
	}
	return committed, errs
}

// Abort discards every file added and not committed.
func (b *Batch) Abort() {
	for _, f := range b.files {
		f.Abort()
	}
	b.files, b.open = nil, 0
	b.sync.close()
}

// errPath returns the path an error from the os package is about.
func errPath(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Path
	}
	return ""
}

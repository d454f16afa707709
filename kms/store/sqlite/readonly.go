package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/envelopekms/envelope/kms"
)

// Why a keystore cannot be written. Errors of [Open], of [Store.Update] and
// of the writing methods of a [kms.Tx] wrap ErrDiskFull or ErrReadOnlyFS
// when that is the cause, so that callers can tell the user in plain words
// (errors.Is, never the text). Their texts are such words, sentences the
// CLI shows as they are: unlike this package's other errors they do not
// begin with "sqlite: ".
var (
	// ErrDiskFull means the file system holding the keystore has no
	// space left (for data or for new files).
	ErrDiskFull = errors.New("the keystore's disk is full")
	// ErrReadOnlyFS means the keystore is on a read-only file system.
	ErrReadOnlyFS = errors.New("the keystore is on a read-only file system")
	// ErrReadOnly is wrapped by every write to a store opened with
	// [OpenReadOnly], together with the reason it was opened so
	// (ErrDiskFull or ErrReadOnlyFS) when [OpenReadOnly] found one.
	ErrReadOnly = errors.New("the keystore is open read-only")
)

// fsError is a failure whose cause is the state of the file system: kind
// is ErrDiskFull or ErrReadOnlyFS.
type fsError struct {
	kind error
	err  error
}

func (e *fsError) Error() string   { return e.kind.Error() + " (" + e.err.Error() + ")" }
func (e *fsError) Unwrap() []error { return []error{e.kind, kms.ErrStoreUnwritable, e.err} }

// readOnlyError is what the writing methods of a read-only store return.
type readOnlyError struct{ reason error }

func (e *readOnlyError) Error() string {
	if e.reason != nil {
		return e.reason.Error() + " (it is open read-only)"
	}
	return ErrReadOnly.Error()
}

func (e *readOnlyError) Unwrap() []error {
	if e.reason != nil {
		return []error{ErrReadOnly, kms.ErrStoreUnwritable, e.reason}
	}
	return []error{ErrReadOnly, kms.ErrStoreUnwritable}
}

// classify returns err, wrapped in an error that says so when its cause is
// a full disk or a read-only file system under dir. SQLite reports a full
// disk as SQLITE_FULL when a write fails, but as an I/O error when it
// cannot grow its shared-memory file (SQLITE_IOERR_SHMSIZE), and a
// read-only file system as "unable to open" (SQLITE_CANTOPEN) or
// SQLITE_READONLY: for those the file system itself is asked.
func classify(err error, dir string) error {
	if err == nil || errors.Is(err, ErrDiskFull) || errors.Is(err, ErrReadOnlyFS) {
		return err
	}
	var e *sqlitedriver.Error
	switch {
	case errors.As(err, &e):
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_FULL:
			return &fsError{ErrDiskFull, err}
		case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY:
		default:
			return err
		}
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return &fsError{ErrDiskFull, err}
	case errors.Is(err, syscall.EROFS):
		return &fsError{ErrReadOnlyFS, err}
	default:
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			return err
		}
	}
	if kind := fsCondition(dir); kind != nil {
		return &fsError{kind, err}
	}
	return err
}

// OpenReadOnly opens the keystore in the SQLite database file at path for
// reading only: for commands that only read, when [Open] fails because the
// keystore's disk is full or its file system is read-only. It creates
// nothing and never changes the file. The file must be a keystore ([Open]
// made it); an empty one (a first Open interrupted) fails with an error
// wrapping fs.ErrNotExist.
//
// [Store.View] works as on any store. [Store.Update] runs its function in a
// read-only snapshot too, in which every writing method of the [kms.Tx]
// fails with an error wrapping [ErrReadOnly] (and the reason, see
// [Store.ReadOnly]); Update returns that error if the function tried to
// write, even if it then returned nil, so that Update still returns nil only
// when every change is durable: there were none. A transaction that only
// reads (checking a root key, say) succeeds.
//
// In write-ahead-log mode SQLite needs the -shm file even to read. When
// the -shm cannot be created (a read-only file system) or grown (a full
// one), SQLite still reads a database whose -wal and -shm exist (it builds
// the WAL index in private memory). When they do not — the last process
// closed the keystore cleanly, so the database file holds everything — the
// file is opened as immutable: without locks, which is exact unless another
// process writes to it meanwhile (through another mount, or once space is
// freed); a write-ahead log with frames in it is never ignored.
func OpenReadOnly(path string) (*Store, error) {
	abs, err := absPath(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q read-only: %v", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q read-only: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sqlite: open %q read-only: not a regular file", path)
	}
	dir := filepath.Dir(abs)
	s := &Store{path: path, dir: dir, readOnly: &readOnlyError{reason: fsCondition(dir)}}
	ctx := context.Background()
	s.r, err = openRead(ctx, abs, "mode", "ro")
	var e *sqlitedriver.Error
	if errors.As(err, &e) && (e.Code()&0xff == sqlite3.SQLITE_CANTOPEN || e.Code()&0xff == sqlite3.SQLITE_IOERR) && !walHasFrames(abs) {
		// No -shm to be had, and the database file holds everything.
		s.r, err = openRead(ctx, abs, "mode", "ro", "immutable", "1")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q read-only: %w", path, classify(err, dir))
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)
	queries := [][]string{readQueries}
	if st, err := readState(ctx, s.r); err == nil && st.version >= 2 {
		queries = append(queries, grantQueries) // version 1 has no grants
	}
	if s.rs, err = prepareAll(ctx, s.r, queries...); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %q read-only: %v", path, err)
	}
	return s, nil
}

// openRead opens a pool of read-only connections to the keystore at abs
// with the extra DSN parameters, and checks that it holds a keystore.
func openRead(ctx context.Context, abs string, extra ...string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(abs, append(extra, "_query_only", "1")...))
	if err != nil {
		return nil, err
	}
	st, err := readState(ctx, db)
	if err == nil {
		var fresh bool
		if fresh, err = st.check(); err == nil && fresh {
			err = fmt.Errorf("the file holds no keystore yet: %w", fs.ErrNotExist)
		}
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// walHasFrames reports whether the write-ahead log of the database at abs
// may hold transactions: it exists and is not empty (or cannot be told).
func walHasFrames(abs string) bool {
	fi, err := os.Stat(abs + "-wal")
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	return err != nil || fi.Size() > 0
}

// ReadOnly returns nil for a store opened with [Open], and for one opened
// with [OpenReadOnly] the error its writes fail with: it wraps
// [ErrReadOnly], and [ErrDiskFull] or [ErrReadOnlyFS] when the file system
// was found so when the store was opened.
func (s *Store) ReadOnly() error { return s.readOnly }

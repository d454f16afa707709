package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"sync/atomic"

	"github.com/envelopekms/envelope/kms"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeoutMS is how long a statement waits for a lock another process
// holds before it fails with SQLITE_BUSY, in milliseconds.
const busyTimeoutMS = 10_000

// Store is a [kms.Store] kept in one SQLite database file. It is safe for
// concurrent use by many goroutines. Create it with [Open]; release it with
// [Store.Close].
type Store struct {
	path string
	dir  string // the absolute directory of the database file
	// readOnly is nil for a store made by Open; for one made by
	// OpenReadOnly, the error its writes fail with.
	readOnly error
	// w holds the single connection write transactions use: writers in
	// this process queue for it (honouring their context) instead of
	// polling for SQLite's write lock.
	w *sql.DB
	// r is the pool of read-only (query_only) connections View uses.
	r *sql.DB
	// ws and rs are the statements prepared on w and r.
	ws, rs statements
}

var _ kms.Store = (*Store)(nil)

// Open opens the keystore in the SQLite database file at path, creating the
// file, its missing parent directories and the schema on first use (see the
// package documentation for the modes they get). It fails with
// [ErrNotKeystore] when path holds something other than an envelope keystore,
// and with [ErrSchemaTooNew] when a newer envelope wrote it. When the
// keystore's disk is full or its file system read-only, the error wraps
// [ErrDiskFull] or [ErrReadOnlyFS]: [OpenReadOnly] may still read it.
func Open(path string) (*Store, error) {
	abs, err := absPath(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %v", path, err)
	}
	dir := filepath.Dir(abs)
	if fsCondition(dir) == ErrReadOnlyFS {
		// SQLite would open the file read-only without a word when its
		// -wal and -shm exist, and fail at the first write.
		return nil, fmt.Errorf("sqlite: open %q: %w", path, ErrReadOnlyFS)
	}
	if err := makeDir(dir); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, classify(err, dir))
	}
	if err := createFile(abs); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, classify(err, dir))
	}

	s := &Store{path: path, dir: dir}
	s.w, err = sql.Open("sqlite", dsn(abs, "_txlock", "immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %v", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	ctx := context.Background()
	unlock, err := lockPrepare(dir)
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, classify(err, dir))
	}
	err = s.prepare(ctx)
	unlock()
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, classify(err, dir))
	}
	if s.ws, err = prepareAll(ctx, s.w, readQueries, writeQueries, grantQueries, grantWriteQueries); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, classify(err, dir))
	}

	s.r, err = sql.Open("sqlite", dsn(abs, "_query_only", "1"))
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %q: %v", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)
	if s.rs, err = prepareAll(ctx, s.r, readQueries, grantQueries); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, classify(err, dir))
	}

	// The WAL and shared-memory files exist now (prepare switched to WAL
	// and SQLite keeps them while a connection is open).
	if err := restrictSidecars(abs); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, classify(err, dir))
	}
	return s, nil
}

// absPath returns the absolute form of a keystore's path, which must not
// be empty.
func absPath(path string) (string, error) {
	if path == "" {
		return "", errors.New("the path is empty")
	}
	return filepath.Abs(path)
}

// dsn returns the data source name of the database file at the absolute
// path abs, with the settings every connection needs and the extra driver
// parameters given as name, value pairs.
func dsn(abs string, extra ...string) string {
	q := url.Values{}
	// The file exists (createFile made it): never let SQLite create it
	// with a mode of its own choosing.
	q.Set("mode", "rw")
	q.Set("_busy_timeout", fmt.Sprint(busyTimeoutMS))
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", "FULL")
	q.Add("_pragma", "secure_delete(1)")
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	// A "file:" URI, so that a path holding '?', '#' or '%' is escaped
	// rather than cut short; url.URL escapes each of them.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// View runs fn in a read-only transaction, which sees one consistent
// snapshot of the store and does not wait for writers. The writing methods
// of the [kms.Tx] fail. View returns fn's error.
func (s *Store) View(ctx context.Context, fn func(kms.Tx) error) error {
	return s.run(ctx, s.r, s.rs, false, nil, fn)
}

// Update runs fn in one read-write transaction. When fn returns nil, Update
// commits and returns nil only once the changes are durable (see the package
// documentation). When fn returns an error, Update rolls back and returns
// that error unchanged; when fn panics, Update rolls back and the panic goes
// on. A failure to begin or commit for want of space or of a writable file
// system wraps [ErrDiskFull] or [ErrReadOnlyFS], and so do the errors of
// the Tx's writing methods.
//
// Write transactions are serialized. fn must not call Update on the same
// Store, which would wait for itself; it may call View, which sees the store
// as it was before the transaction.
//
// On a store opened with [OpenReadOnly], fn runs in a read-only snapshot
// whose writing methods fail with [Store.ReadOnly]'s error, and Update
// returns that error whenever fn tried to write.
func (s *Store) Update(ctx context.Context, fn func(kms.Tx) error) error {
	if s.readOnly != nil {
		return s.run(ctx, s.r, s.rs, false, s.readOnly, fn)
	}
	return s.run(ctx, s.w, s.ws, true, nil, fn)
}

// run runs fn in a transaction on db and commits it when writable and fn
// returns nil. refuse, when not nil, is the error the writing methods fail
// with (the Update of a read-only store), and run's if fn tried to write.
func (s *Store) run(ctx context.Context, db *sql.DB, st statements, writable bool, refuse error, fn func(kms.Tx) error) error {
	stx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: !writable})
	if err != nil {
		return fmt.Errorf("sqlite: begin transaction: %w", classify(err, s.dir))
	}
	t := &tx{ctx: ctx, tx: stx, stmts: st, writable: writable, dir: s.dir, readOnly: refuse}
	finished := false
	defer func() {
		t.done.Store(true)
		if !finished {
			// fn failed or panicked: nothing it did is applied.
			_ = stx.Rollback()
		}
	}()

	if err := fn(t); err != nil {
		return err
	}
	finished = true
	t.done.Store(true)
	if !writable {
		// Nothing to commit; a failure to end a read changes nothing.
		_ = stx.Rollback()
		if t.refused.Load() {
			// fn swallowed a refused write: it was not done.
			return fmt.Errorf("sqlite: %w", refuse)
		}
		return nil
	}
	if err := stx.Commit(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, sql.ErrTxDone) {
			// database/sql rolled back when ctx ended.
			err = ctxErr
		}
		return fmt.Errorf("sqlite: commit: %w", classify(err, s.dir))
	}
	return nil
}

// Close releases the store's connections. SQLite folds the write-ahead log
// into the database file when the last connection to it closes. Transactions
// must not be running.
func (s *Store) Close() error {
	s.rs.close()
	s.ws.close()
	var errs []error
	// Readers first, so that the writer's connection is the last one and
	// checkpoints the log.
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %q: %v", s.path, err)
	}
	return nil
}

// tx is a [kms.Tx] on a database/sql transaction.
type tx struct {
	ctx      context.Context
	tx       *sql.Tx
	stmts    statements
	writable bool
	dir      string // the database's directory, for classify
	// readOnly, when not nil, is the error writes fail with: the Update
	// of a read-only store.
	readOnly error
	// done is set once the function the tx was passed to has returned;
	// refused once a write failed with readOnly.
	done, refused atomic.Bool
}

var _ kms.Tx = (*tx)(nil)

// usable reports why t cannot be used, if it cannot.
func (t *tx) usable(write bool) error {
	if t.done.Load() {
		return errors.New("sqlite: transaction used after its function returned")
	}
	if write && t.readOnly != nil {
		t.refused.Store(true)
		return fmt.Errorf("sqlite: %w", t.readOnly)
	}
	if write && !t.writable {
		return errors.New("sqlite: write in a read-only transaction (View); use Update")
	}
	return nil
}

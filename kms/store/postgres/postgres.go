package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is a [kms.Store] in a PostgreSQL database. It is safe for
// concurrent use by many goroutines, and any number of Stores, in any
// number of processes, may share one database. Create it with [Open];
// release it with [Store.Close].
type Store struct {
	pool *pgxpool.Pool
	// conn configures the dedicated connections of Watch and
	// LockCreation, which live outside the pool.
	conn *pgx.ConnConfig
	// name is the store's URL with its password masked: what messages
	// name it by.
	name string
	// id tells this Store's notifications from those of other Stores
	// (see Watch).
	id string
	// roundTrips counts the statements (each a round trip) transactions
	// sent, for tests and benchmarks.
	roundTrips atomic.Int64
}

var (
	_ kms.Store          = (*Store)(nil)
	_ kms.Watcher        = (*Store)(nil)
	_ kms.CreationLocker = (*Store)(nil)
)

// defaultConnectTimeout bounds each connection attempt when the URL sets no
// connect_timeout, so that an unreachable server fails Open in seconds
// rather than after the system's TCP timeout.
const defaultConnectTimeout = 10 * time.Second

// Open connects to the PostgreSQL database that url names (a postgres:// or
// postgresql:// URL, or a keyword/value connection string, as libpq and
// pgx take them; PG* environment variables and ~/.pgpass fill what it leaves
// out), creates the keystore's schema on first use or brings an older one
// up to date (see the package documentation), and returns the Store.
//
// It fails with a one-line error naming the store by its redacted URL
// ([Redact]) when the server cannot be reached, refuses the user or the
// password, or has no such database; with [ErrSchemaTooNew] when a newer
// envelope wrote the schema; and with [ErrNotKeystore] when the database
// holds an "envelope" schema that is not a keystore. ctx bounds the
// connection and the schema's creation (which waits for another process
// creating it).
func Open(ctx context.Context, url string) (*Store, error) {
	return open(ctx, url, nil)
}

// open is Open, with adjust (if not nil) changing the pool's configuration
// (tests count round trips with it).
func open(ctx context.Context, url string, adjust func(*pgxpool.Config)) (*Store, error) {
	name := Redact(url)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %q: %s", name, parseErrorText(url, err))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "envelope"
	}
	if adjust != nil {
		adjust(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %q: %s", name, connErrorText(cfg.ConnConfig, err))
	}
	id := make([]byte, 12)
	rand.Read(id)
	s := &Store{pool: pool, conn: cfg.ConnConfig.Copy(), name: name, id: hex.EncodeToString(id)}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %q: %w", name, err)
	}
	return s, nil
}

// String returns the store's URL with its password masked.
func (s *Store) String() string { return s.name }

// Close closes the store's connections, waiting for those in use to be
// released. Transactions must not be running; a Watch on the store ends
// with its own context, not with Close.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Isolation. View runs at REPEATABLE READ, READ ONLY: every statement of
// the transaction sees the snapshot taken by its first, and readers never
// wait for writers nor make them fail. Update runs at SERIALIZABLE: the
// outcome of concurrent Updates, from any number of processes, is that of
// some serial order of them, whatever fn reads and writes. PostgreSQL
// enforces that by failing one of two conflicting transactions with a
// serialization failure (SQLSTATE 40001), or a deadlock (40P01); Update then
// rolls back and runs fn again in a new transaction (see Update). That alone
// gives each guarantee kms relies on:
//
//   - read-modify-write of a key record (a rotation reads the key, writes
//     the material of version len(Versions)+1 and the key): two Updates
//     on one key are serialized, the second reading what the first wrote,
//     so versions are numbered 1, 2, 3… with no gap, no duplicate and no
//     lost version. GetKey in an Update also locks the key's row (SELECT …
//     FOR NO KEY UPDATE), which makes the loser of such a race fail at its
//     read, before it generates and seals material, rather than at its
//     write;
//   - an alias created when absent (GetAlias finds none, then PutAlias): of
//     two such Updates, the second fails to serialize (its insert meets the
//     first's row, which its snapshot does not see) and, run again, finds
//     the alias: exactly one wins, the other's fn sees ErrNoRecord no more
//     and fails as kms has it fail (AlreadyExistsException);
//   - no lost update of key metadata (tags, description, state): as for
//     rotation, each modification reads the record the previous one
//     wrote.

// beginView and beginUpdate begin the transactions of View and Update.
const (
	beginView   = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	beginUpdate = "BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE"
)

// maxAttempts bounds how many times Update runs fn when its transaction
// keeps failing to serialize. Each failure means another transaction
// committed, so this is reached only under sustained contention on the
// same records.
const maxAttempts = 50

// retryBackoff is the longest pause between two attempts; pauses start at
// a millisecond and double, each drawn at random below its bound so that
// conflicting writers spread out.
const retryBackoff = 100 * time.Millisecond

// View runs fn in a read-only transaction, which sees one consistent
// snapshot of the store (taken at its first read) and never waits for
// writers. The writing methods of the [kms.Tx] fail. View returns fn's
// error. A View whose fn reads nothing costs no round trip to the server;
// otherwise the transaction begins in the same round trip as the first
// read, and each read is one round trip (statements are prepared once per
// connection).
func (s *Store) View(ctx context.Context, fn func(kms.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := &tx{s: s, ctx: ctx}
	defer t.release()
	if err := t.run(fn); err != nil {
		return err
	}
	t.end("ROLLBACK") // nothing to commit; a failure changes nothing
	return nil
}

// Update runs fn in one read-write transaction at SERIALIZABLE isolation.
// When Update returns nil, every change fn made is committed (durable as the
// server's synchronous_commit makes it: by default, flushed to its WAL).
// When fn returns an error, nothing it did is applied and Update returns
// that error unchanged; when fn panics, the transaction is rolled back and
// the panic goes on.
//
// Update may run fn more than once: when PostgreSQL fails the transaction
// to keep concurrent transactions serializable (SQLSTATE 40001) or to break
// a deadlock (40P01) — at one of the Tx's statements or at the commit —,
// Update rolls it back, waits a little and runs fn again in a new
// transaction, up to 50 times. Only the last run's writes are committed;
// fn must not keep anything from an earlier run (see [kms.Store]).
//
// A commit whose outcome is unknown (the connection lost while committing,
// or ctx ending then) returns an error although the transaction may have
// been applied.
//
// Each Update that changes keys or aliases announces them, in the same
// transaction, to the Watch of every Store on the database (see
// [Store.Watch]).
func (s *Store) Update(ctx context.Context, fn func(kms.Tx) error) error {
	var pause time.Duration
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		retry, err := s.attempt(ctx, fn)
		if !retry {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("postgres: transaction failed to serialize %d times: %w", attempt, err)
		}
		pause = min(max(2*pause, time.Millisecond), retryBackoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(mrand.N(pause) + 1):
		}
	}
}

// attempt runs fn in one transaction of Update and commits it; retry
// reports a serialization failure or deadlock, after which fn should run
// again.
func (s *Store) attempt(ctx context.Context, fn func(kms.Tx) error) (retry bool, err error) {
	t := &tx{s: s, ctx: ctx, writable: true}
	defer t.release()
	err = t.run(fn)
	if t.conflict != nil {
		// fn's error, if any, follows from the conflict; whatever fn
		// did is void.
		return true, t.conflict
	}
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err // not committed: release rolls back
	}
	err = t.commit()
	return t.conflict != nil, err
}

// tx is a [kms.Tx] on one connection of the pool. The connection is
// acquired, and the transaction begun, at its first statement.
type tx struct {
	s        *Store
	ctx      context.Context
	writable bool
	conn     *pgxpool.Conn
	begun    bool // BEGIN was sent on conn
	// done is set once the function the tx was passed to has returned.
	done atomic.Bool
	// failed is the first error of a statement: PostgreSQL has aborted
	// the transaction, and every later statement would fail. conflict is
	// that error when it is a serialization failure or a deadlock.
	failed, conflict error
	// keys and aliases are what the transaction changed, to announce.
	keys, aliases []string
}

var _ kms.Tx = (*tx)(nil)

// run calls fn with t, and marks t done when fn returns or panics.
func (t *tx) run(fn func(kms.Tx) error) error {
	defer t.done.Store(true)
	return fn(t)
}

// usable reports why t cannot be used, if it cannot.
func (t *tx) usable(write bool) error {
	if t.done.Load() {
		return errors.New("postgres: transaction used after its function returned")
	}
	if write && !t.writable {
		return errors.New("postgres: write in a read-only transaction (View); use Update")
	}
	return nil
}

// notifyChannel is the channel of the notifications Updates send and Watch
// listens to.
const notifyChannel = "envelope_keystore"

// commit commits t, announcing what it changed in the same transaction.
func (t *tx) commit() error {
	if !t.begun {
		return nil // fn did nothing
	}
	if t.failed != nil {
		// fn went on after an error of the store (and returned nil):
		// PostgreSQL would turn the COMMIT into a ROLLBACK.
		return fmt.Errorf("postgres: commit: the transaction was aborted by an earlier error: %w", t.failed)
	}
	b := &pgx.Batch{}
	if payload, ok := t.notification(); ok {
		b.Queue("SELECT pg_notify($1, $2)", notifyChannel, payload)
	}
	b.Queue("COMMIT")
	t.s.roundTrips.Add(1)
	err := t.conn.SendBatch(t.ctx, b).Close()
	if err != nil {
		if t.conn.Conn().PgConn().TxStatus() == 'I' {
			t.begun = false // the server ended the transaction
		}
		t.fail(err)
		if t.conflict != nil {
			return t.conflict
		}
		if ctxErr := t.ctx.Err(); ctxErr != nil {
			return fmt.Errorf("postgres: commit (the transaction may have been applied): %w", ctxErr)
		}
		return fmt.Errorf("postgres: commit (the transaction may have been applied): %s", errorText(err))
	}
	t.begun = false
	return nil
}

// end ends t's transaction with query (ROLLBACK or COMMIT), ignoring its
// outcome: release discards a connection left in a transaction.
func (t *tx) end(query string) {
	if !t.begun || t.conn == nil || t.conn.Conn().IsClosed() {
		return
	}
	t.s.roundTrips.Add(1)
	if _, err := t.conn.Exec(t.ctx, query); err == nil {
		t.begun = false
	}
}

// release rolls back what t did not commit and returns its connection to
// the pool. The rollback gets a few seconds even when t's context has
// ended; a connection still in a transaction afterwards is closed by the
// pool, which ends the transaction as well.
func (t *tx) release() {
	t.done.Store(true)
	if t.conn == nil {
		return
	}
	if t.begun && !t.conn.Conn().IsClosed() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 5*time.Second)
		t.s.roundTrips.Add(1)
		_, _ = t.conn.Exec(ctx, "ROLLBACK")
		cancel()
	}
	t.conn.Release()
	t.conn = nil
}

// fail records the error of a statement: the transaction is aborted, and a
// serialization failure or deadlock calls for another attempt.
func (t *tx) fail(err error) {
	if t.failed == nil {
		t.failed = err
	}
	var pgErr *pgconn.PgError
	if t.conflict == nil && errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
		t.conflict = err
	}
}

// acquire makes sure t has a connection.
func (t *tx) acquire() error {
	if t.conn != nil {
		return nil
	}
	conn, err := t.s.pool.Acquire(t.ctx)
	if err != nil {
		if ctxErr := t.ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("connect: %s", connErrorText(t.s.conn, err))
	}
	t.conn = conn
	return nil
}

// beginSQL returns the statement that begins t's transaction.
func (t *tx) beginSQL() string {
	if t.writable {
		return beginUpdate
	}
	return beginView
}

// query runs a statement in t's transaction, calling scan (if not nil)
// for each row it returns; it begins the transaction, in the same round
// trip, if this is its first statement. An error of the statement aborts
// the transaction (see fail).
func (t *tx) query(sql string, args []any, scan func(pgx.Rows) error) error {
	if t.failed != nil {
		return fmt.Errorf("the transaction was aborted by an earlier error: %s", errorText(t.failed))
	}
	if err := t.acquire(); err != nil {
		return err
	}
	t.s.roundTrips.Add(1)
	var (
		rows pgx.Rows
		br   pgx.BatchResults
		err  error
	)
	if !t.begun {
		b := &pgx.Batch{}
		b.Queue(t.beginSQL())
		b.Queue(sql, args...)
		br = t.conn.SendBatch(t.ctx, b)
		if _, err = br.Exec(); err == nil {
			t.begun = true
			rows, err = br.Query()
		}
	} else {
		rows, err = t.conn.Query(t.ctx, sql, args...)
	}
	if err == nil {
		for rows.Next() {
			if scan != nil {
				if err = scan(rows); err != nil {
					break
				}
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if br != nil {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.fail(err)
		if ctxErr := t.ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return errors.New(errorText(err))
	}
	return nil
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SchemaVersion is the version of the database schema this package writes
// and reads. It is kept in the file's user_version header field.
const SchemaVersion = 2

// applicationID marks an SQLite file as an envelope keystore, in its
// application_id header field: "EnvK".
const applicationID = 0x456e764b

var (
	// ErrNotKeystore is wrapped by the error of [Open] and [OpenReadOnly]
	// for a file that is not an envelope keystore: another application's
	// SQLite database, or not an SQLite database at all.
	ErrNotKeystore = errors.New("not an envelope keystore")
	// ErrSchemaTooNew is wrapped by the error of [Open] and [OpenReadOnly]
	// for a keystore written by a newer version of envelope, which this
	// one cannot read safely.
	ErrSchemaTooNew = errors.New("keystore schema is newer than this envelope supports")
)

// schema creates the version-1 tables, and migrations bring them to the
// current version. Tables are STRICT so that a value of the wrong type is
// refused instead of stored. Keys, aliases and grants are JSON documents
// beside the columns they are looked up by.
var schema = []string{
	`CREATE TABLE keys (
		id  TEXT NOT NULL PRIMARY KEY,
		doc TEXT NOT NULL
	) STRICT`,
	`CREATE TABLE materials (
		key_id  TEXT    NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
		version INTEGER NOT NULL CHECK (version > 0),
		sealed  BLOB    NOT NULL,
		PRIMARY KEY (key_id, version)
	) STRICT`,
	`CREATE TABLE aliases (
		name   TEXT NOT NULL PRIMARY KEY,
		key_id TEXT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
		doc    TEXT NOT NULL
	) STRICT`,
	`CREATE INDEX aliases_by_key ON aliases (key_id, name)`,
	`CREATE TABLE meta (
		name  TEXT NOT NULL PRIMARY KEY,
		value BLOB NOT NULL
	) STRICT`,
	fmt.Sprintf(`PRAGMA application_id = %d`, applicationID),
	`PRAGMA user_version = 1`,
}

// migrations[i] takes a keystore from schema version i+1 to i+2. A step is
// never changed once released; a change of schema is a new step, which
// ends by setting user_version.
var migrations = [...][]string{
	{ // version 2: grants, removed with their key
		`CREATE TABLE grants (
			id       TEXT NOT NULL PRIMARY KEY,
			key_id   TEXT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
			grantee  TEXT NOT NULL,
			name     TEXT NOT NULL,
			retiring TEXT NOT NULL,
			doc      TEXT NOT NULL
		) STRICT`,
		`CREATE INDEX grants_by_key ON grants (key_id, id)`,
		`CREATE INDEX grants_by_grantee ON grants (key_id, grantee, id)`,
		`CREATE INDEX grants_by_name ON grants (key_id, name, id)`,
		`CREATE INDEX grants_by_retiring ON grants (retiring, id)`,
		`PRAGMA user_version = 2`,
	},
}

// fileState is what the header and catalogue of a database file say about
// it.
type fileState struct {
	appID   int64
	version int64
	objects int64 // tables, indexes, views and triggers
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readState reads the state of the database file through q.
func readState(ctx context.Context, q querier) (fileState, error) {
	var st fileState
	// One statement, so one snapshot: read separately, the three could
	// straddle another process's creation of the schema.
	err := q.QueryRowContext(ctx, `SELECT (SELECT application_id FROM pragma_application_id),
		(SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_schema)`).Scan(&st.appID, &st.version, &st.objects)
	var e *sqlitedriver.Error
	if errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return st, fmt.Errorf("%w (not an SQLite database)", ErrNotKeystore)
	}
	if err != nil {
		return st, fmt.Errorf("read database header: %w", err)
	}
	return st, nil
}

// check reports whether the file is a new, empty database (fresh), or an
// error when it is not a keystore this package can use.
func (st fileState) check() (fresh bool, err error) {
	switch {
	case st.appID == applicationID && st.version == SchemaVersion:
		return false, nil
	case st.appID == applicationID && st.version > SchemaVersion:
		return false, fmt.Errorf("%w: schema version %d, this envelope reads version %d; upgrade envelope",
			ErrSchemaTooNew, st.version, SchemaVersion)
	case st.appID == applicationID && st.version >= 1:
		return false, nil // an older version: prepare migrates it
	case st.appID == applicationID:
		return false, fmt.Errorf("keystore has unknown schema version %d", st.version)
	case st.appID == 0 && st.version == 0 && st.objects == 0:
		return true, nil
	case st.appID != 0:
		return false, fmt.Errorf("%w (an SQLite database with application id %#x); refusing to modify it",
			ErrNotKeystore, st.appID)
	default:
		return false, fmt.Errorf("%w (an SQLite database of another application); refusing to modify it",
			ErrNotKeystore)
	}
}

// prepare checks that the file is a keystore or a new database, switches it
// to WAL, creates the schema in a new database, and checks that the
// connection settings durability depends on are in effect.
func (s *Store) prepare(ctx context.Context) error {
	st, err := readState(ctx, s.w)
	if err != nil {
		return err
	}
	fresh, err := st.check()
	if err != nil {
		return err
	}

	// The journal mode is kept in the file. Switching is a no-op when the
	// file is in WAL already, and is not allowed inside a transaction.
	// Switching needs a lock that SQLite does not wait for (the busy
	// timeout does not apply): when several processes open a new file at
	// once, retry for a while.
	var mode string
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
		if err == nil {
			break
		}
		var e *sqlitedriver.Error
		if !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return fmt.Errorf("switch to WAL journal mode: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("switch to WAL journal mode: journal mode is still %q", mode)
	}

	if fresh {
		if err := s.create(ctx); err != nil {
			return err
		}
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	return s.checkSettings(ctx)
}

// migrate brings the schema to SchemaVersion, each step in a write
// transaction that checks the version again (another process may have
// migrated meanwhile).
func (s *Store) migrate(ctx context.Context) error {
	for {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate schema: %w", err)
		}
		st, err := readState(ctx, tx)
		if err != nil {
			tx.Rollback()
			return err
		}
		if st.version >= SchemaVersion {
			tx.Rollback()
			return nil
		}
		for _, stmt := range migrations[st.version-1] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migrate schema to version %d: %w", st.version+1, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", st.version+1, err)
		}
	}
}

// create creates the schema in a new database. Another process may be doing
// the same: the write transaction (BEGIN IMMEDIATE) orders them, and the one
// that comes second finds the schema there.
func (s *Store) create(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	defer tx.Rollback()
	st, err := readState(ctx, tx)
	if err != nil {
		return err
	}
	fresh, err := st.check()
	if err != nil || !fresh {
		return err
	}
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	for _, m := range migrations {
		for _, stmt := range m {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// checkSettings checks that the write connection runs with the settings the
// DSN asked for, on which the package's promises rest.
func (s *Store) checkSettings(ctx context.Context) error {
	checks := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"secure_delete", "1"},
	}
	for _, c := range checks {
		var got string
		if err := s.w.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
			return fmt.Errorf("read PRAGMA %s: %w", c.pragma, err)
		}
		if !strings.EqualFold(got, c.want) {
			return fmt.Errorf("PRAGMA %s is %q, want %q", c.pragma, got, c.want)
		}
	}
	return nil
}

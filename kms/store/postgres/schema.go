package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the version of the database schema this package writes
// and reads: the number of migrations it knows.
const SchemaVersion = len(migrations)

var (
	// ErrSchemaTooNew is wrapped by the error of [Open] for a keystore
	// whose schema a newer envelope wrote, which this one cannot use
	// safely.
	ErrSchemaTooNew = errors.New("keystore schema is newer than this envelope supports")
	// ErrNotKeystore is wrapped by the error of [Open] for a database whose
	// "envelope" schema was not made by envelope.
	ErrNotKeystore = errors.New("not an envelope keystore")
)

// migrations are the steps from an empty database to the current schema:
// migrations[i] takes a database from version i to version i+1. A step is
// never changed once released; a change of schema is a new step.
//
// Everything lives in the schema "envelope", so that the keystore can share
// a database with other applications. Names are text in the "C" collation:
// they sort, and pages of lists follow, in the byte order of their UTF-8
// whatever the database's locale, as in the SQLite store. Keys and aliases
// are JSON documents beside the columns they are looked up by.
var migrations = [...][]string{
	{ // version 1
		`CREATE TABLE envelope.keys (
				id  text COLLATE "C" NOT NULL PRIMARY KEY,
				doc text NOT NULL
			)`,
		`CREATE TABLE envelope.materials (
				key_id  text COLLATE "C" NOT NULL REFERENCES envelope.keys (id) ON DELETE CASCADE,
				version integer NOT NULL CHECK (version > 0),
				sealed  bytea NOT NULL,
				PRIMARY KEY (key_id, version)
			)`,
		`CREATE TABLE envelope.aliases (
				name   text COLLATE "C" NOT NULL PRIMARY KEY,
				key_id text COLLATE "C" NOT NULL REFERENCES envelope.keys (id) ON DELETE CASCADE,
				doc    text NOT NULL
			)`,
		`CREATE INDEX aliases_by_key ON envelope.aliases (key_id, name)`,
		`CREATE TABLE envelope.meta (
				name  text COLLATE "C" NOT NULL PRIMARY KEY,
				value bytea NOT NULL
			)`,
	},
	{ // version 2: grants, removed with their key
		`CREATE TABLE envelope.grants (
				id       text COLLATE "C" NOT NULL PRIMARY KEY,
				key_id   text COLLATE "C" NOT NULL REFERENCES envelope.keys (id) ON DELETE CASCADE,
				grantee  text COLLATE "C" NOT NULL,
				name     text COLLATE "C" NOT NULL,
				retiring text COLLATE "C" NOT NULL,
				doc      text NOT NULL
			)`,
		`CREATE INDEX grants_by_key ON envelope.grants (key_id, id)`,
		`CREATE INDEX grants_by_grantee ON envelope.grants (key_id, grantee, id)`,
		`CREATE INDEX grants_by_name ON envelope.grants (key_id, name, id)`,
		`CREATE INDEX grants_by_retiring ON envelope.grants (retiring, id)`,
	},
}

// migrationLock is the key of the transaction-level advisory lock under
// which Open reads the schema version and applies migrations: of several
// processes opening the database at once, one migrates while the others
// wait, and then find the schema current. ("EnvK" and a 1: the keystore's
// schema.)
const migrationLock int64 = 0x456e764b_00000001

// migrate brings the database's schema to SchemaVersion, in one transaction
// under migrationLock: the versions table, the schema, and each step
// missing. A schema newer than SchemaVersion is refused unchanged.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return errors.New(connErrorText(s.conn, err))
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx) // READ COMMITTED: each statement sees what was committed before it
	if err != nil {
		return fmt.Errorf("create schema: %s", errorText(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("wait for the schema lock: %s", errorText(err))
	}
	version, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	switch {
	case version == SchemaVersion:
		return nil // the common case: nothing to do, nothing to commit
	case version > SchemaVersion:
		return fmt.Errorf("%w: the database has schema version %d, this envelope knows versions up to %d; upgrade envelope",
			ErrSchemaTooNew, version, SchemaVersion)
	}
	if version == 0 {
		stmts := []string{
			`CREATE SCHEMA IF NOT EXISTS envelope`,
			`CREATE TABLE envelope.schema_migrations (
				version integer NOT NULL PRIMARY KEY,
				applied timestamptz NOT NULL DEFAULT now()
			)`,
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("create schema: %s", errorText(err))
			}
		}
	}
	for v := version + 1; v <= SchemaVersion; v++ {
		for _, q := range migrations[v-1] {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("migrate schema to version %d: %s", v, errorText(err))
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO envelope.schema_migrations (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("migrate schema to version %d: %s", v, errorText(err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create schema: %s", errorText(err))
	}
	return nil
}

// schemaVersion returns the schema version of the database: 0 when it has
// no envelope schema (or an empty one), an error when its envelope schema
// holds something else than a keystore.
func schemaVersion(ctx context.Context, tx pgx.Tx) (int, error) {
	var hasVersions bool
	var objects int
	err := tx.QueryRow(ctx, `SELECT
		to_regclass('envelope.schema_migrations') IS NOT NULL,
		(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'envelope')`).
		Scan(&hasVersions, &objects)
	if err != nil {
		return 0, fmt.Errorf("read the schema version: %s", errorText(err))
	}
	if !hasVersions {
		if objects > 0 {
			return 0, fmt.Errorf(`%w: the database's schema "envelope" holds %d tables or other objects but no schema_migrations table; refusing to modify it`, ErrNotKeystore, objects)
		}
		return 0, nil
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM envelope.schema_migrations`).Scan(&version); err != nil {
		return 0, fmt.Errorf("read the schema version: %s", errorText(err))
	}
	return version, nil
}

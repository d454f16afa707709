package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// creationLock is the key of the session-level advisory lock of
// LockCreation ("EnvK" and a 2: the keystore's creation).
const creationLock int64 = 0x456e764b_00000002

// LockCreation takes the keystore's creation lock, as [kms.CreationLocker]
// says: a PostgreSQL session-level advisory lock (pg_advisory_lock, or
// pg_advisory_lock_shared when shared) on a connection opened for it alone,
// outside the pool, and held until unlock is called. unlock closes that
// connection, which releases the lock; so does the end of the process, or
// the loss of the connection, whose session the server then ends. The lock
// belongs to the database: Stores of other databases do not contend for it.
//
// LockCreation waits until the lock is granted or ctx ends. unlock may be
// called more than once.
func (s *Store) LockCreation(ctx context.Context, shared bool) (unlock func(), err error) {
	conn, err := pgx.ConnectConfig(ctx, s.conn.Copy())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("postgres: creation lock on %q: %s", s.name, connErrorText(s.conn, err))
	}
	q := "SELECT pg_advisory_lock($1)"
	if shared {
		q = "SELECT pg_advisory_lock_shared($1)"
	}
	if _, err := conn.Exec(ctx, q, creationLock); err != nil {
		closeConn(conn)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("postgres: creation lock on %q: %s", s.name, errorText(err))
	}
	var once sync.Once
	return func() { once.Do(func() { closeConn(conn) }) }, nil
}

// closeConn closes a dedicated connection, giving the server a few seconds
// to hear of it (it ends the session, and releases its locks, when the
// socket closes in any case).
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Close(ctx)
}

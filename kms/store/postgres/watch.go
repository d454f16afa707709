package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/jackc/pgx/v5"
)

// notice is the payload of a notification: the Store that sent it and what
// its transaction changed, or All when that did not fit.
type notice struct {
	Source  string   `json:"s"`
	Keys    []string `json:"k,omitempty"`
	Aliases []string `json:"a,omitempty"`
	All     bool     `json:"all,omitempty"`
}

// maxPayload is PostgreSQL's limit on a notification's payload (it must be
// shorter than 8000 bytes in the default configuration).
const maxPayload = 7999

// notification returns the payload announcing what t changed, and false
// when it changed no key and no alias (meta values are not announced: kms
// caches none).
func (t *tx) notification() (string, bool) {
	if len(t.keys) == 0 && len(t.aliases) == 0 {
		return "", false
	}
	b, err := json.Marshal(notice{Source: t.s.id, Keys: t.keys, Aliases: t.aliases})
	if err != nil || len(b) > maxPayload {
		b, _ = json.Marshal(notice{Source: t.s.id, All: true})
	}
	return string(b), true
}

// Watch reports to fn the changes to keys and aliases that other Stores —
// in this process or others — commit to the database, as [kms.Watcher]
// says: each Update that changes keys or aliases sends, in its transaction,
// a notification naming them (or all of them, past PostgreSQL's 8000-byte
// limit on a notification), which PostgreSQL delivers when it commits.
// Notifications this Store sent are skipped: the kms.Service that made the
// change has dropped what it cached already.
//
// Watch listens on a connection of its own, outside the pool. It calls fn
// with Change{All: true} once it listens, and again each time it listens
// anew after losing its connection (a server restart, a network failure,
// pg_terminate_backend): it reconnects by itself, waiting between attempts
// from 100 ms doubling up to 5 s. A connection silent for watchPing is
// checked with a ping, so that one lost without a word is noticed within
// about watchPing plus the ping's timeout.
//
// Watch returns nil when ctx ends, and an error, at once, if it cannot
// listen when it starts.
func (s *Store) Watch(ctx context.Context, fn func(kms.Change)) error {
	conn, err := s.listen(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: watch %q: %s", s.name, err)
	}
	fn(kms.Change{All: true})
	for {
		err := s.receive(ctx, conn, fn)
		closeConn(conn)
		if ctx.Err() != nil {
			return nil
		}
		_ = err // the connection is lost: listen anew
		if conn = s.relisten(ctx); conn == nil {
			return nil // ctx ended
		}
		fn(kms.Change{All: true})
	}
}

// Reconnection and liveness of Watch.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 5 * time.Second
	watchPing     = 10 * time.Second
	watchPingWait = 5 * time.Second
)

// listen opens Watch's connection and listens on the notification channel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.conn.Copy())
	if err != nil {
		return nil, errors.New(connErrorText(s.conn, err))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen: %s", errorText(err))
	}
	return conn, nil
}

// relisten listens anew, retrying with backoff until it succeeds or ctx
// ends (nil).
func (s *Store) relisten(ctx context.Context) *pgx.Conn {
	wait := watchRetryMin
	for {
		// Jitter, so that servers that lost the database together do not
		// come back in step.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait/2 + mrand.N(wait/2+1)):
		}
		if conn, err := s.listen(ctx); err == nil {
			return conn
		}
		wait = min(2*wait, watchRetryMax)
	}
}

// receive passes the notifications conn receives to fn until the
// connection fails (its error) or ctx ends.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn, fn func(kms.Change)) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, watchPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if wctx.Err() == nil || conn.IsClosed() {
				return err // the connection failed
			}
			// Silence for watchPing: is the connection still there?
			pctx, cancel := context.WithTimeout(ctx, watchPingWait)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		if n.Channel != notifyChannel {
			continue
		}
		var m notice
		if err := json.Unmarshal([]byte(n.Payload), &m); err != nil {
			fn(kms.Change{All: true}) // not ours to read: assume the worst
			continue
		}
		if m.Source == s.id {
			continue
		}
		fn(kms.Change{KeyIDs: m.Keys, Aliases: m.Aliases, All: m.All})
	}
}

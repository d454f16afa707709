package postgres

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
)

// RoundTripsForTest returns how many statements (each one round trip to the
// server) the transactions of s have sent so far.
func RoundTripsForTest(s *Store) int64 { return s.roundTrips.Load() }

// OpenCountingForTest opens a store whose pool's connections count in
// writes each message batch they send to the server: with the extended
// protocol, one per round trip.
func OpenCountingForTest(ctx context.Context, url string, writes *atomic.Int64) (*Store, error) {
	return open(ctx, url, func(cfg *pgxpool.Config) {
		dial := cfg.ConnConfig.DialFunc
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, writes: writes}, nil
		}
	})
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

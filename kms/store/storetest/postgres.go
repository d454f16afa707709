package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the environment variable that gives tests the URL of a
// PostgreSQL server to make their databases on (as a user allowed to
// create databases). Without it, tests try DefaultPostgresURL.
const PostgresEnv = "ENVELOPE_TEST_POSTGRES"

// DefaultPostgresURL is the test server tried when PostgresEnv is not set:
// the local server with trust authentication, as on the project's machines.
const DefaultPostgresURL = "postgres://root@127.0.0.1:5432/test"

// serverURL is the test server, found once per process: its URL, or why
// there is none.
var serverURL = sync.OnceValues(func() (string, error) {
	u := os.Getenv(PostgresEnv)
	if u == "" {
		u = DefaultPostgresURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := connect(ctx, u)
	if err != nil {
		return u, err
	}
	conn.Close(ctx)
	return u, nil
})

// connect connects to the server at u (a postgres:// URL).
func connect(ctx context.Context, u string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return nil, fmt.Errorf("%s is not a PostgreSQL URL: %v", PostgresEnv, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// PostgresURL returns the URL of a new, empty database on the test
// PostgreSQL server (envelope_test_ and random hex), dropped — connections
// and all — when t ends, so that tests never see each other's keys. The
// server is $ENVELOPE_TEST_POSTGRES, else DefaultPostgresURL.
//
// When no server answers, the test is skipped with a message saying how to
// run it — unless the environment has CI=true: then it fails, so that CI
// never skips the PostgreSQL tests without a word.
func PostgresURL(t testing.TB) string {
	t.Helper()
	server, err := serverURL()
	if err != nil {
		msg := fmt.Sprintf("no test PostgreSQL at %s: %v; to run this test, start PostgreSQL there "+
			"(pg_ctlcluster $(ls /etc/postgresql) main start) or set %s to a postgres:// URL of a server where the user may create databases",
			redactURL(server), err, PostgresEnv)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s = %q is not a postgres:// URL", PostgresEnv, redactURL(server))
	}
	b := make([]byte, 8)
	rand.Read(b)
	name := "envelope_test_" + hex.EncodeToString(b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, server)
	if err != nil {
		t.Fatalf("connecting to the test PostgreSQL %s: %v", redactURL(server), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("creating the test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := connect(ctx, server)
		if err != nil {
			t.Errorf("dropping the test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping the test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// redactURL masks the password of a URL for a message.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			return "xxxxx" + s[i:]
		}
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

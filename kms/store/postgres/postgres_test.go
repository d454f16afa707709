package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/postgres"
	"github.com/envelopekms/envelope/kms/store/storetest"
)

// backend is the PostgreSQL store for the shared suite: a database of its
// own on the test server for each test.
var backend = storetest.Backend{
	New:  storetest.PostgresURL,
	Open: func(url string) (kms.Store, error) { return postgres.Open(context.Background(), url) },
}

func TestMain(m *testing.M) {
	if code, ok := storetest.Child(backend.Open); ok {
		os.Exit(code)
	}
	if os.Getenv(lockChildEnv) != "" {
		os.Exit(lockChild())
	}
	os.Exit(m.Run())
}

// TestStore runs the shared store suite: the kms.Store contract and its
// guarantees under concurrency, from goroutines and from two processes.
func TestStore(t *testing.T) {
	storetest.Run(t, backend)
}

// openStore opens a store on url, closed when t ends.
func openStore(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open() err = %v, want nil", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawExec runs statements on the database at url without this package.
func rawExec(t testing.TB, url string, stmts ...string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range stmts {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// wantOneLine checks that an error is one line, names the store by its
// redacted URL and holds no password.
func wantOneLine(t *testing.T, err error, password string) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q spans several lines", msg)
	}
	if password != "" && strings.Contains(msg, password) {
		t.Errorf("error %q holds the password", msg)
	}
	if !strings.HasPrefix(msg, "postgres: ") {
		t.Errorf("error %q does not start with the package's name", msg)
	}
}

func TestSchemaTooNew(t *testing.T) {
	url := storetest.PostgresURL(t)
	s := openStore(t, url)
	storetest.Update(t, s, func(tx kms.Tx) error { return storetest.PutAll(tx, "k1") })
	s.Close()
	newer := postgres.SchemaVersion + 1
	rawExec(t, url, fmt.Sprintf(`INSERT INTO envelope.schema_migrations (version) VALUES (%d)`, newer))

	_, err := postgres.Open(t.Context(), url)
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Fatalf("Open() of a newer schema err = %v, want ErrSchemaTooNew", err)
	}
	t.Logf("Open() err = %v", err)
	wantOneLine(t, err, "")
	for _, want := range []string{fmt.Sprintf("schema version %d", newer), fmt.Sprintf("up to %d", postgres.SchemaVersion), "upgrade envelope"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open() err = %q, want it to say %q", err, want)
		}
	}
	// Refused unchanged: the version is still the newer one, the key there.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var version, keys int
	if err := conn.QueryRow(t.Context(), `SELECT (SELECT max(version) FROM envelope.schema_migrations), (SELECT count(*) FROM envelope.keys)`).Scan(&version, &keys); err != nil {
		t.Fatal(err)
	}
	if version != newer || keys != 1 {
		t.Errorf("after the refused Open: schema version %d, %d keys; want %d, 1", version, keys, newer)
	}
}

func TestNotKeystore(t *testing.T) {
	url := storetest.PostgresURL(t)
	rawExec(t, url, `CREATE SCHEMA envelope`, `CREATE TABLE envelope.notes (body text)`)
	_, err := postgres.Open(t.Context(), url)
	if !errors.Is(err, postgres.ErrNotKeystore) {
		t.Fatalf("Open() of another application's schema err = %v, want ErrNotKeystore", err)
	}
	wantOneLine(t, err, "")
	// An empty schema of that name is taken.
	url = storetest.PostgresURL(t)
	rawExec(t, url, `CREATE SCHEMA envelope`)
	s := openStore(t, url)
	storetest.Update(t, s, func(tx kms.Tx) error { return storetest.PutAll(tx, "k1") })
}

func TestOpenErrors(t *testing.T) {
	server := storetest.PostgresURL(t) // a database that exists, to vary
	u, err := neturl.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(u *neturl.URL)) string {
		v := *u
		f(&v)
		return v.String()
	}
	const password = "s3cret-Pa55word"
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"unreachable", with(func(u *neturl.URL) {
			u.User = neturl.UserPassword("root", password)
			u.Host = "127.0.0.1:1"
		}), "cannot connect to 127.0.0.1:1: connection refused"},
		{"missing database", with(func(u *neturl.URL) {
			u.User = neturl.UserPassword(u.User.Username(), password)
			u.Path = "/envelope_no_such_database"
		}), `database "envelope_no_such_database" does not exist`},
		{"unknown user", with(func(u *neturl.URL) {
			u.User = neturl.UserPassword("envelope_no_such_user", password)
		}), `refused user "envelope_no_such_user"`},
		{"bad URL", "postgres://root:" + password + "@127.0.0.1:99999999/test", "invalid connection string"},
		{"bad URL escape", "postgres://root:" + password + "%zz@127.0.0.1/test", "invalid connection string"},
		{"bad parameter", "postgres://root:" + password + "@127.0.0.1/test?sslmode=nonsense", "invalid connection string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := postgres.Open(t.Context(), tt.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open() err = nil, want an error")
			}
			t.Logf("Open() err = %v", err)
			wantOneLine(t, err, password)
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), ":xxxxx@") {
				t.Errorf("Open() err = %q, want it to say %q and name the store as user:xxxxx@", err, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://alice:secret@db.example:5432/keys", "postgres://alice:xxxxx@db.example:5432/keys"},
		{"postgresql://alice@db/keys?sslmode=verify-full", "postgresql://alice@db/keys?sslmode=verify-full"},
		{"postgres://alice:p%40ss%3Aw0rd@db/keys", "postgres://alice:xxxxx@db/keys"},
		{"postgres://db/keys?user=alice&password=secret", "postgres://db/keys?password=xxxxx&user=alice"},
		{"postgres://db/keys?sslpassword=secret", "postgres://db/keys?sslpassword=xxxxx"},
		{"host=db user=alice password=secret dbname=keys", "host=db user=alice password=xxxxx dbname=keys"},
		{"host=db password='se cret' dbname=keys", "host=db password=xxxxx dbname=keys"},
		{"postgres://alice:sec ret@db/%zz", "postgres://alice:xxxxx@db/%zz"},
		{"postgres://alice:a@b@db/%zz", "postgres://alice:xxxxx@db/%zz"},
	}
	for _, tt := range tests {
		got := postgres.Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "sec ret") || strings.Contains(got, "se cret") || strings.Contains(got, "p%40ss") {
			t.Errorf("Redact(%q) = %q keeps the password", tt.in, got)
		}
	}
}

// dbName returns the database a URL names.
func dbName(t testing.TB, u string) string {
	t.Helper()
	v, err := neturl.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(v.Path, "/")
}

// adminURL returns a URL of the same server's "postgres" database.
func adminURL(t testing.TB, u string) string {
	t.Helper()
	v, err := neturl.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	v.Path = "/postgres"
	return v.String()
}

// testRoot returns a new random root key.
func testRoot(t testing.TB) kms.RootKey {
	key := make([]byte, 32)
	rand.Read(key)
	root, err := kms.NewAESRootKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// newService returns a kms.Service over store.
func newService(t testing.TB, store kms.Store, root kms.RootKey, ttl time.Duration) *kms.Service {
	t.Helper()
	svc, err := kms.New(t.Context(), store, root, kms.Options{CacheTTL: ttl})
	if err != nil {
		t.Fatalf("kms.New() err = %v", err)
	}
	return svc
}

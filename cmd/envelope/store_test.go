package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestRedactURL: a store URL in a message keeps what names the store and
// loses its secrets, whether it parses or not.
func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://envelope:s3cret-pw@db.internal:5432/kms", "postgres://envelope:xxxxx@db.internal:5432/kms"},
		{"postgresql://envelope@db.internal/kms?sslmode=verify-full", "postgresql://envelope@db.internal/kms?sslmode=verify-full"},
		{"postgres://db.internal/kms?user=envelope&password=s3cret-pw", "postgres://db.internal/kms?password=xxxxx&user=envelope"},
		{"postgres://u:p%40ss@h/db?sslpassword=keypass&PASSWORD=x2", "postgres://u:xxxxx@h/db?PASSWORD=xxxxx&sslpassword=xxxxx"},
		// Not a URL Go parses (an unescaped '%' in the password): the
		// user info before the last '@' goes, the user name stays.
		{"postgres://u:pa%ss@w@rd@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:pa%zz@h/db?password=a%zz", "postgres://u:xxxxx@h/db?password=a%zz"},
		{"postgres://%zz?password=s3cret", "postgres://xxxxx"},
		{"/var/lib/envelope", "/var/lib/envelope"},
		{"sqlite:/var/lib/envelope", "sqlite:/var/lib/envelope"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRedactSecrets: what a store's driver may print of its URL — the URL,
// its password as written or unescaped — is scrubbed from errors and logs.
func TestRedactSecrets(t *testing.T) {
	t.Parallel()
	c := &cli{}
	loc, err := c.parseStore("--store", "postgres://envelope:p%2Fss-w0rd@db.internal/kms?sslpassword=key-pass")
	if err != nil {
		t.Fatal(err)
	}
	if loc.name != "postgres://envelope:xxxxx@db.internal/kms?sslpassword=xxxxx" {
		t.Errorf("name = %q", loc.name)
	}
	for _, msg := range []string{
		"failed to connect to postgres://envelope:p%2Fss-w0rd@db.internal/kms?sslpassword=key-pass: refused",
		"password authentication failed (password p/ss-w0rd)",
		"password p%2Fss-w0rd was refused",
		"could not decrypt the client key with key-pass",
	} {
		got := c.redact(msg)
		for _, secret := range []string{"p/ss-w0rd", "p%2Fss-w0rd", "key-pass"} {
			if strings.Contains(got, secret) {
				t.Errorf("redact(%q) = %q: still holds %q", msg, got, secret)
			}
		}
	}
	if got := c.redact("failed to connect to postgres://envelope:p%2Fss-w0rd@db.internal/kms?sslpassword=key-pass: refused"); got != "failed to connect to "+loc.name+": refused" {
		t.Errorf("redact(a message with the URL) = %q, want the URL redacted", got)
	}

	// The CLI's reports go through it.
	var stderr bytes.Buffer
	c.stderr = &stderr
	c.report(&hintError{fmt.Errorf("opening store: %w", errors.New("dial postgres://envelope:p%2Fss-w0rd@db.internal/kms: refused")), "the password p/ss-w0rd was refused"})
	if out := stderr.String(); strings.Contains(out, "ss-w0rd") || !strings.Contains(out, "envelope:xxxxx@db.internal") {
		t.Errorf("report printed %q", out)
	}

	// So do the server's logs, message, attributes and groups.
	var logs bytes.Buffer
	log := slog.New(&redactingHandler{slog.NewJSONHandler(&logs, nil), c.secrets}).With("store", loc.url)
	log.Error("cannot reach postgres://envelope:p%2Fss-w0rd@db.internal/kms",
		"err", errors.New("password p/ss-w0rd refused"), slog.Group("g", "url", loc.url), "n", 3)
	if out := logs.String(); strings.Contains(out, "ss-w0rd") || strings.Contains(out, "key-pass") || !strings.Contains(out, `"n":3`) {
		t.Errorf("the log holds a secret, or lost a number: %s", out)
	}

	// A password too short to scrub safely is still left out of names.
	short, err := c.parseStore("--store", "postgres://u:abc@h/db")
	if err != nil {
		t.Fatal(err)
	}
	if short.name != "postgres://u:xxxxx@h/db" {
		t.Errorf("name = %q", short.name)
	}
}

// TestParseStore: the kinds of --store.
func TestParseStore(t *testing.T) {
	t.Parallel()
	c := &cli{}
	for _, tc := range []struct {
		in         string
		kind, name string
		err        string
	}{
		{in: "/var/lib/envelope", kind: storeSQLite, name: "/var/lib/envelope"},
		{in: "sqlite:rel/dir", kind: storeSQLite, name: "rel/dir"},
		{in: "postgres://u@h/db", kind: storePostgres, name: "postgres://u@h/db"},
		{in: "postgresql://u:pw12@h/db", kind: storePostgres, name: "postgresql://u:xxxxx@h/db"},
		{in: "sqlite:", err: `--store "sqlite:": sqlite: needs a directory, as sqlite:/var/lib/envelope`},
		{in: "mysql://u:pw12@h/db", err: `--store "mysql://u:xxxxx@h/db": unknown kind of store "mysql"; want a keystore directory, sqlite:DIR or postgres://…`},
	} {
		loc, err := c.parseStore("--store", tc.in)
		switch {
		case tc.err != "":
			var ee *exitError
			if err == nil || err.Error() != tc.err || !errors.As(err, &ee) || ee.code != 2 {
				t.Errorf("parseStore(%q) err = %v, want the usage error %q", tc.in, err, tc.err)
			}
		case err != nil || loc.kind != tc.kind || loc.name != tc.name:
			t.Errorf("parseStore(%q) = %+v, %v; want kind %s, name %q", tc.in, loc, err, tc.kind, tc.name)
		}
	}
}

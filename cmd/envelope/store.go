package main

// Where the keystore is (--store, $ENVELOPE_STORE) and where its root key
// comes from (--root-key-file, --root-kms and --root-key-id, or
// $ENVELOPE_PASSPHRASE), for every command that opens it; openStore is the
// one place that turns a --store value into an opened kms.Store. Store URLs
// may hold a password: messages name a store by storeLoc.name, and
// cli.redact scrubs what may still hold one (errors of the store, logs).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/kms/store/postgres"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// Kinds of store.
const (
	storeSQLite   = "sqlite"
	storePostgres = "postgres"
)

// storeLoc is a --store value, parsed.
type storeLoc struct {
	kind string
	// dir is the keystore directory of a SQLite store.
	dir string
	// url is the URL of another store, as given: it may hold a password,
	// so it goes nowhere but to the store's driver.
	url string
	// name is how messages name the store: its directory, or its URL
	// with any password replaced by xxxxx.
	name string
	// secrets are the store's secrets as they may appear in its driver's
	// errors: cli.redact replaces them.
	secrets []string
}

// storeFlags are the flags of every command that opens the keystore: where
// it is, and where its root key comes from.
type storeFlags struct {
	store string
	root  rootFlags
}

// rootFlags give a keystore's root key source (with $ENVELOPE_PASSPHRASE).
type rootFlags struct {
	keyFile, kms, keyID string
}

// storeFlagHelp documents --store.
const storeFlagHelp = "the keystore `STORE`: a directory, sqlite:DIR or postgres://…; default $ENVELOPE_STORE, else $ENVELOPE_HOME (~/.local/share/envelope)"

// register adds --store and the root key flags to fs, with the values
// already parsed as defaults (commands parse their flags in several steps).
func (f *storeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.store, "store", f.store, storeFlagHelp)
	f.root.register(fs, "", "the keystore's")
}

// register adds the root key flags to fs, their names after prefix ("" or
// "to-"), whose are the keystore's they are about.
func (r *rootFlags) register(fs *pflag.FlagSet, prefix, whose string) {
	env := func(name string) string {
		if prefix != "" {
			return ""
		}
		return "; default $" + name
	}
	fs.StringVar(&r.keyFile, prefix+"root-key-file", r.keyFile, "read "+whose+" root key from `FILE` (32 bytes, mode 0600; \"envelope keygen root -o FILE\" makes one)"+env("ENVELOPE_ROOT_KEY_FILE"))
	fs.StringVar(&r.kms, prefix+"root-kms", r.kms, whose+" root key is sealed by the KMS at `URL` (an envelope server) or \"aws\" (AWS KMS; AWS config and credentials), under --"+prefix+"root-key-id"+env("ENVELOPE_ROOT_KMS"))
	fs.StringVar(&r.keyID, prefix+"root-key-id", r.keyID, "the `KEY` of --"+prefix+"root-kms that seals "+whose+" root key (key id, ARN or alias)"+env("ENVELOPE_ROOT_KEY_ID"))
}

// location returns where the keystore is: --store, else $ENVELOPE_STORE,
// else the directory keystore.Dir names ($ENVELOPE_HOME …).
func (c *cli) location(flag string) (storeLoc, error) {
	origin := "--store"
	if flag == "" {
		flag, origin = os.Getenv("ENVELOPE_STORE"), "ENVELOPE_STORE"
	}
	if flag == "" {
		dir, err := keystore.Dir()
		if err != nil {
			return storeLoc{}, err
		}
		return storeLoc{kind: storeSQLite, dir: dir, name: dir}, nil
	}
	return c.parseStore(origin, flag)
}

// parseStore parses a store's location v, given by origin (a flag or a
// variable): a directory or sqlite:DIR, or a postgres:// or postgresql://
// URL. The secrets of the URL are added to those cli.redact scrubs.
func (c *cli) parseStore(origin, v string) (storeLoc, error) {
	if strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://") {
		loc := storeLoc{kind: storePostgres, url: v, name: redactURL(v), secrets: urlSecrets(v)}
		c.secrets = append(c.secrets, loc.secrets...)
		return loc, nil
	}
	if scheme, _, ok := strings.Cut(v, "://"); ok {
		return storeLoc{}, usageErrorf("%s %q: unknown kind of store %q; want a keystore directory, sqlite:DIR or postgres://…", origin, redactURL(v), scheme)
	}
	dir := strings.TrimPrefix(v, "sqlite:")
	if dir == "" {
		return storeLoc{}, usageErrorf("%s %q: sqlite: needs a directory, as sqlite:/var/lib/envelope", origin, v)
	}
	return storeLoc{kind: storeSQLite, dir: dir, name: dir}, nil
}

// openStore opens the store of a location that is not a SQLite keystore
// directory (those are opened by keystore.Open, which reads a keystore on a
// full or read-only disk too): a PostgreSQL database. Its errors name the
// store by its redacted URL, and are scrubbed of the URL's secrets again
// when reported (cli.redact).
func (c *cli) openStore(ctx context.Context, loc storeLoc) (kms.Store, error) {
	switch loc.kind {
	case storePostgres:
		st, err := postgres.Open(ctx, loc.url)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("store %s: unknown kind of store %q", loc.name, loc.kind)
}

// openKeystore opens the keystore at loc.
func (c *cli) openKeystore(ctx context.Context, loc storeLoc, opts keystore.Options) (*keystore.Keystore, error) {
	if loc.kind == storeSQLite {
		return keystore.Open(ctx, loc.dir, opts)
	}
	st, err := c.openStore(ctx, loc)
	if err != nil {
		return nil, err
	}
	ks, err := keystore.OpenStore(ctx, keystore.Target{Store: st, Name: loc.name}, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	return ks, nil
}

// target opens the store at loc as the destination of a copy; the caller
// closes its store.
func (c *cli) target(ctx context.Context, loc storeLoc) (keystore.Target, error) {
	if loc.kind != storeSQLite {
		st, err := c.openStore(ctx, loc)
		return keystore.Target{Store: st, Name: loc.name}, err
	}
	st, err := sqlite.Open(filepath.Join(loc.dir, keystore.DBName))
	if err != nil {
		return keystore.Target{}, fmt.Errorf("opening %s: %w", loc.name, err)
	}
	return keystore.Target{Store: st, Name: loc.name, Dir: loc.dir}, nil
}

// checkEmpty checks that the store at loc is empty (or does not exist
// yet), for the dry run of a copy into it: it writes no record, and creates
// no keystore. (Reading a SQLite database that exists makes SQLite leave
// its -wal and -shm files beside it; opening a store of another kind may
// create its schema.)
func (c *cli) checkEmpty(ctx context.Context, loc storeLoc) error {
	var t keystore.Target
	if loc.kind == storeSQLite {
		db := filepath.Join(loc.dir, keystore.DBName)
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		st, err := sqlite.OpenReadOnly(db)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a database without a keystore yet
		}
		if err != nil {
			return fmt.Errorf("opening %s: %w", loc.name, err)
		}
		t = keystore.Target{Store: st, Name: loc.name, Dir: loc.dir}
	} else {
		var err error
		if t, err = c.target(ctx, loc); err != nil {
			return err
		}
	}
	defer t.Store.Close()
	return keystore.CheckEmpty(ctx, t)
}

// rootOptions sets the root key source of opts from r and the
// environment: for the keystore a command opens (prefix "") the flags,
// else $ENVELOPE_ROOT_KEY_FILE, $ENVELOPE_ROOT_KMS and $ENVELOPE_ROOT_KEY_ID,
// and $ENVELOPE_PASSPHRASE; for the destination of a copy (prefix "to-")
// the --to-… flags and $ENVELOPE_TO_PASSPHRASE.
func (c *cli) rootOptions(ctx context.Context, r rootFlags, prefix string, opts *keystore.Options) error {
	passVar := "ENVELOPE_PASSPHRASE"
	if prefix == "" {
		for _, v := range []struct {
			field *string
			name  string
		}{{&r.keyFile, "ENVELOPE_ROOT_KEY_FILE"}, {&r.kms, "ENVELOPE_ROOT_KMS"}, {&r.keyID, "ENVELOPE_ROOT_KEY_ID"}} {
			if *v.field == "" {
				*v.field = os.Getenv(v.name)
			}
		}
	} else {
		passVar = "ENVELOPE_TO_PASSPHRASE"
	}
	pass, err := passphrase(passVar)
	if err != nil {
		return err
	}
	var given []string
	if r.keyFile != "" {
		given = append(given, "--"+prefix+"root-key-file")
	}
	if r.kms != "" || r.keyID != "" {
		if r.kms == "" || r.keyID == "" {
			return usageErrorf("--%sroot-kms and --%sroot-key-id go together", prefix, prefix)
		}
		given = append(given, "--"+prefix+"root-kms")
	}
	if pass != nil {
		given = append(given, passVar)
	}
	if len(given) > 1 {
		return usageErrorf("%s and %s both give a root key; give one", given[0], given[1])
	}
	opts.RootKeyFile, opts.Passphrase = r.keyFile, pass
	if r.kms == "" {
		return nil
	}
	cl, err := kmsClient(ctx, r.kms)
	if err != nil {
		return &hintError{fmt.Errorf("--%sroot-kms %s: %w", prefix, redactURL(r.kms), err),
			fmt.Sprintf("--%sroot-kms takes an http(s):// URL of an AWS-KMS-API endpoint (an envelope server), or aws", prefix)}
	}
	opts.RootKMS = &keystore.RootKMS{API: cl, KeyID: r.keyID, Name: cl.Endpoint()}
	return nil
}

// passphrase returns the passphrase in the environment variable name, nil
// when unset. An empty value is refused: it is more likely a missing secret
// than a chosen passphrase.
func passphrase(name string) ([]byte, error) {
	p, ok := os.LookupEnv(name)
	if !ok {
		return nil, nil
	}
	if p == "" {
		return nil, &hintError{fmt.Errorf("%s is set but empty", name), "unset it to use the keystore's root key file, or give the passphrase"}
	}
	return []byte(p), nil
}

// secretParams are the query parameters of a store URL that hold secrets.
var secretParams = []string{"password", "sslpassword"}

// redactURL returns a store URL fit for messages and logs: the password of
// its user info, and the values of its query parameters that hold secrets,
// replaced by xxxxx. A value that does not parse as a URL loses all its
// user info (everything before its last '@') but the user name.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return redactRaw(s)
	}
	q := u.Query()
	changed := false
	for _, p := range secretParams {
		for k := range q {
			if strings.EqualFold(k, p) {
				q[k], changed = []string{"xxxxx"}, true
			}
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// redactRaw redacts a store URL that does not parse: its user name is what
// precedes the first ':' of everything before the last '@'.
func redactRaw(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		if strings.Contains(s, "password") {
			return scheme + "://xxxxx"
		}
		return s
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return s
	}
	return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
}

// urlSecrets returns the secrets of a store URL in every form its driver
// may print them: as written and unescaped.
func urlSecrets(s string) []string {
	var secrets []string
	add := func(v string) {
		for _, w := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			if w != "" {
				secrets = append(secrets, w)
			}
		}
	}
	if u, err := url.Parse(s); err == nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		q := u.Query()
		for k, vs := range q {
			for _, p := range secretParams {
				if strings.EqualFold(k, p) {
					for _, v := range vs {
						add(v)
					}
				}
			}
		}
	} else if _, rest, ok := strings.Cut(s, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, p, ok := strings.Cut(rest[:at], ":"); ok {
				add(p)
			}
		}
	}
	return append(secrets, s) // the whole URL, last: it holds them all
}

// redact returns s with every secret of the stores the command named
// replaced by xxxxx (the URL as a whole by its redacted form).
func (c *cli) redact(s string) string {
	return redactSecrets(s, c.secrets)
}

// minSecret is the length below which a secret is not scrubbed from text:
// it would match too much that is not the secret.
const minSecret = 4

func redactSecrets(s string, secrets []string) string {
	// Each URL comes after its passwords: the URL first, then what is left.
	for i := len(secrets) - 1; i >= 0; i-- {
		secret := secrets[i]
		if len(secret) < minSecret || !strings.Contains(s, secret) {
			continue
		}
		repl := "xxxxx"
		if strings.Contains(secret, "://") {
			repl = redactURL(secret)
		}
		s = strings.ReplaceAll(s, secret, repl)
	}
	return s
}

// redactingHandler is a slog.Handler that scrubs secrets from the message
// and the string values of every record before they reach next.
type redactingHandler struct {
	next    slog.Handler
	secrets []string
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, redactSecrets(r.Message, h.secrets), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactingHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindString:
		return slog.String(a.Key, redactSecrets(v.String(), h.secrets))
	case slog.KindAny:
		// Errors and other values are logged by their text.
		return slog.String(a.Key, redactSecrets(fmt.Sprint(v.Any()), h.secrets))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = h.attr(a)
	}
	return &redactingHandler{h.next.WithAttrs(out), h.secrets}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{h.next.WithGroup(name), h.secrets}
}

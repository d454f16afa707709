package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsclient"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// defaultAlias names the key used when encrypt is given no -k.
const defaultAlias = "alias/default"

// kmsConn is the KMS a command talks to: the embedded keystore, or a
// remote AWS-KMS-API endpoint (an envelope server, or AWS KMS).
type kmsConn struct {
	api    kms.API
	ks     *keystore.Keystore
	dir    string
	remote string // the --kms URL, "" for the embedded keystore
}

// kmsURL returns the remote KMS the command was pointed at: --kms, else
// $ENVELOPE_KMS, else "" for the embedded keystore.
func (c *cli) kmsURL() string {
	if c.kmsFlag != "" {
		return c.kmsFlag
	}
	return os.Getenv("ENVELOPE_KMS")
}

// kmsNeed is what a command needs of the embedded keystore.
type kmsNeed int

const (
	// needExisting: an existing keystore (reading never makes one).
	needExisting kmsNeed = iota
	// needKeystore: the keystore, created if missing (keys create).
	needKeystore
	// needDefaultKey: the keystore and its key alias/default, created if
	// missing (encrypt without -k).
	needDefaultKey
)

// defaultKeyDescription describes the key made for alias/default.
const defaultKeyDescription = "envelope default key (used when no -k is given)"

// openKMS opens the KMS once per command: the remote one the command names,
// or the embedded keystore, as need says.
//
// Of several processes creating the keystore (or alias/default) at once,
// exactly one does, and says so on stderr; the others use what it made.
// alias/default is made with the keystore only by encrypt without -k (the
// command that needs it); keys create and serve make the keystore without
// it, and the first encrypt without -k adds it later.
func (c *cli) openKMS(ctx context.Context, need kmsNeed) (*kmsConn, error) {
	if c.kms != nil {
		return c.kms, nil
	}
	if url := c.kmsURL(); url != "" {
		var cl *awsclient.Client
		var err error
		if url == "aws" {
			cl, err = awsclient.NewAWS(ctx)
		} else {
			cl, err = awsclient.NewEndpoint(ctx, url)
		}
		if err != nil {
			return nil, &hintError{fmt.Errorf("KMS %s: %w", url, err), "--kms (or ENVELOPE_KMS) takes an http(s):// URL of an AWS-KMS-API endpoint, or aws"}
		}
		c.kms = &kmsConn{api: cl, remote: url}
		return c.kms, nil
	}
	dir, err := keystore.Dir()
	if err != nil {
		return nil, err
	}
	opts := keystore.Options{MustExist: need == needExisting}
	if need == needDefaultKey {
		opts.DefaultAlias, opts.DefaultKeyDescription = defaultAlias, defaultKeyDescription
	}
	if opts.Passphrase, err = passphrase(); err != nil {
		return nil, err
	}
	ks, err := keystore.Open(ctx, dir, opts)
	if err != nil {
		switch {
		case errors.Is(err, keystore.ErrNoKeystore):
			return nil, &hintError{err, "create a key with \"envelope keys create\", or encrypt once without -k; set ENVELOPE_HOME to use a keystore elsewhere"}
		case errors.Is(err, kms.ErrWrongRootKey):
			return nil, &hintError{err, "check ENVELOPE_PASSPHRASE, or that root.key in the keystore directory is the one it was created with"}
		case errors.Is(err, keystore.ErrPassphraseRequired):
			return nil, err
		}
		if h := keystoreFSHint(err, dir, true); h != nil {
			return nil, h
		}
		return nil, fmt.Errorf("opening the keystore: %w", err)
	}
	if ks.Created {
		fmt.Fprintf(c.stderr, "envelope: created a new keystore in %s\n", dir)
	}
	if ks.CreatedDefaultKey {
		fmt.Fprintf(c.stderr, "envelope: created the default key %s (%s)\n", defaultAlias, ks.DefaultKey.Arn)
	}
	if ks.ReadOnly != nil {
		fmt.Fprintf(c.stderr, "envelope: %s; reading it only (changes will fail)\n", fsProblem(ks.ReadOnly))
	}
	c.kms = &kmsConn{api: ks, ks: ks, dir: dir}
	return c.kms, nil
}

// fsProblem says in plain words why the keystore cannot be written, for an
// error that wraps sqlite.ErrDiskFull or sqlite.ErrReadOnlyFS (or
// sqlite.ErrReadOnly alone).
func fsProblem(err error) string {
	switch {
	case errors.Is(err, sqlite.ErrDiskFull):
		return sqlite.ErrDiskFull.Error()
	case errors.Is(err, sqlite.ErrReadOnlyFS):
		return sqlite.ErrReadOnlyFS.Error()
	}
	return sqlite.ErrReadOnly.Error()
}

// keystoreFSHint returns err told in plain words, with a hint, when the
// keystore's disk is full or its file system read-only (or it could only be
// opened read-only), and nil for other errors. opening says that err is
// the failure to open the keystore, whose details it keeps; any other is
// (almost always) a change that was refused.
func keystoreFSHint(err error, dir string, opening bool) error {
	var hint string
	switch {
	case errors.Is(err, sqlite.ErrDiskFull):
		hint = fmt.Sprintf("free space on the file system that holds %s", dir)
	case errors.Is(err, sqlite.ErrReadOnlyFS):
		hint = fmt.Sprintf("%s is on a read-only file system: reading works, changes need it mounted read-write (or set ENVELOPE_HOME to another keystore)", dir)
	case errors.Is(err, sqlite.ErrReadOnly):
		hint = "the keystore could only be opened for reading"
	default:
		return nil
	}
	msg := fsProblem(err) + ": it can be read, not changed"
	if opening {
		msg = fsProblem(err) + ": opening the keystore: " + err.Error()
	}
	return &hintError{&plainError{msg, err}, hint}
}

// plainError is err told as msg.
type plainError struct {
	msg string
	err error
}

func (e *plainError) Error() string { return e.msg }
func (e *plainError) Unwrap() error { return e.err }

// passphrase returns $ENVELOPE_PASSPHRASE, nil when unset. An empty value
// is refused: it is more likely a missing secret than a chosen passphrase.
func passphrase() ([]byte, error) {
	p, ok := os.LookupEnv("ENVELOPE_PASSPHRASE")
	if !ok {
		return nil, nil
	}
	if p == "" {
		return nil, &hintError{errors.New("ENVELOPE_PASSPHRASE is set but empty"), "unset it to use the keystore's root key file, or give the passphrase"}
	}
	return []byte(p), nil
}

// closeKMS closes the keystore if a command opened it.
func (c *cli) closeKMS() {
	if c.kms != nil && c.kms.ks != nil {
		c.kms.ks.Close()
	}
	c.kms = nil
}

// describe resolves a key reference (alias/NAME, key id, key or alias ARN).
func (k *kmsConn) describe(ctx context.Context, ref string) (*kms.KeyMetadata, error) {
	out, err := k.api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: ref})
	if err != nil {
		return nil, kmsHint(err, ref)
	}
	return out.KeyMetadata, nil
}

// keyName is how errors name a key: the reference the user gave and the
// start of its id.
func keyName(ref string, m *kms.KeyMetadata) string {
	if ref == m.KeyId || ref == m.Arn {
		return m.KeyId
	}
	return fmt.Sprintf("%s (%s…)", ref, m.KeyId[:8])
}

// checkUsable refuses a key that is not Enabled, saying how to fix it.
func checkUsable(ref string, m *kms.KeyMetadata) error {
	switch m.KeyState {
	case kms.StateEnabled:
		return nil
	case kms.StateDisabled:
		return &hintError{fmt.Errorf("key %s is disabled", keyName(ref, m)), fmt.Sprintf("enable it with \"envelope keys enable %s\"", ref)}
	case kms.StatePendingDeletion:
		return &hintError{fmt.Errorf("key %s is pending deletion (scheduled for %s)", keyName(ref, m), m.DeletionDate.Format("2006-01-02")),
			fmt.Sprintf("cancel it with \"envelope keys cancel-deletion %s\" (the key then comes back disabled)", ref)}
	}
	return fmt.Errorf("key %s is %s", keyName(ref, m), m.KeyState)
}

// kmsHint adds advice to KMS errors.
func kmsHint(err error, ref string) error {
	var ke *kms.Error
	errors.As(err, &ke)
	switch kms.CodeOf(err) {
	case kms.CodeNotFound:
		what := "key"
		if strings.HasPrefix(ref, "alias/") {
			what = "alias"
		}
		return &hintError{fmt.Errorf("no %s %q: %w", what, ref, err), "\"envelope keys list\" shows the keys and aliases"}
	case kms.CodeDisabled:
		return &hintError{err, fmt.Sprintf("enable the key with \"envelope keys enable %s\"", ref)}
	case kms.CodeInvalidState:
		if ke != nil && strings.Contains(ke.Message, "pending deletion") && !strings.Contains(ke.Message, "not pending") {
			return &hintError{err, fmt.Sprintf("restore the key with \"envelope keys cancel-deletion %s\"", ref)}
		}
	}
	return err
}

// kmsKeyring returns the keyring for a KMS key: the symmetric KMS keyring,
// or the KMS RSA keyring for RSA keys. rsa reports the latter.
func (c *cli) kmsKeyring(ctx context.Context, ref string, decrypt bool) (kr keyring.Keyring, rsa bool, err error) {
	conn, err := c.openKMS(ctx, needExisting)
	if err != nil {
		return nil, false, err
	}
	m, err := conn.describe(ctx, ref)
	if err != nil {
		return nil, false, err
	}
	if !decrypt {
		// On decrypt another -k may still unwrap: let the keyrings try.
		if err := checkUsable(ref, m); err != nil {
			return nil, false, err
		}
	}
	if m.KeySpec == kms.SpecSymmetricDefault {
		kr, err := awskms.New(conn.api, m.Arn)
		return kr, false, err
	}
	if strings.HasPrefix(m.KeySpec, "RSA_") {
		kr, err := awskms.NewRSA(conn.api, m.Arn)
		return kr, true, err
	}
	return nil, false, fmt.Errorf("key %s has spec %s, which cannot wrap data keys", keyName(ref, m), m.KeySpec)
}

// defaultKeyring returns the keyring of alias/default, creating the key
// (and the keystore) on first use and saying so.
func (c *cli) defaultKeyring(ctx context.Context) (keyring.Keyring, error) {
	if c.kmsURL() == "aws" {
		return nil, usageErrorf("with --kms aws, name the KMS key to use with -k (envelope does not create keys in AWS on its own)")
	}
	conn, err := c.openKMS(ctx, needDefaultKey)
	if err != nil {
		return nil, err
	}
	var m *kms.KeyMetadata
	if conn.ks != nil {
		m = conn.ks.DefaultKey // made with the keystore, or found, by Open
	} else if m, err = c.remoteDefaultKey(ctx, conn); err != nil {
		return nil, err
	}
	if err := checkUsable(defaultAlias, m); err != nil {
		return nil, err
	}
	return awskms.New(conn.api, m.Arn)
}

// remoteDefaultKey returns the key of alias/default of a remote KMS,
// creating it if it does not exist. Of several processes creating it at
// once, one wins the alias; the others schedule their key's deletion and
// use the winner's.
func (c *cli) remoteDefaultKey(ctx context.Context, conn *kmsConn) (*kms.KeyMetadata, error) {
	out, err := conn.api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: defaultAlias})
	if err == nil {
		return out.KeyMetadata, nil
	}
	if kms.CodeOf(err) != kms.CodeNotFound {
		return nil, kmsHint(err, defaultAlias)
	}
	ck, err := conn.createKeyWithAlias(ctx, &kms.CreateKeyInput{Description: defaultKeyDescription}, defaultAlias)
	if err == nil {
		fmt.Fprintf(c.stderr, "envelope: created the default key %s (%s)\n", defaultAlias, ck.KeyMetadata.Arn)
		return ck.KeyMetadata, nil
	}
	var oe *orphanError
	if !errors.As(err, &oe) || kms.CodeOf(oe.err) != kms.CodeAlreadyExists || oe.scheduleErr != nil {
		return nil, err
	}
	// Another process made alias/default meanwhile (our key is scheduled
	// for deletion): use its key.
	if out, err = conn.api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: defaultAlias}); err != nil {
		return nil, kmsHint(err, defaultAlias)
	}
	return out.KeyMetadata, nil
}

// aliasKeyCreator is the embedded KMS's ability to create a key and its
// alias in one transaction ([kms.Service.CreateKeyWithAlias]).
type aliasKeyCreator interface {
	CreateKeyWithAlias(ctx context.Context, in *kms.CreateKeyInput, aliasName string) (*kms.CreateKeyOutput, error)
}

var _ aliasKeyCreator = (*kms.Service)(nil)

// orphanWindow is the waiting period, in days, of a key whose alias could
// not be made: the shortest AWS allows.
const orphanWindow = 7

// orphanError is the failure to alias a key just created on a remote KMS:
// the key was scheduled for deletion (unless scheduleErr says otherwise).
type orphanError struct {
	keyID, alias string
	err          error // why the alias was not made
	deletion     *kms.ScheduleKeyDeletionOutput
	scheduleErr  error // why the deletion could not be scheduled
}

func (e *orphanError) Error() string {
	if e.scheduleErr != nil {
		return fmt.Sprintf("key %s was created, but its alias %s was not (%v), and scheduling the key's deletion failed too (%v): the key is left without its alias",
			e.keyID, e.alias, e.err, e.scheduleErr)
	}
	return fmt.Sprintf("key %s was created, but its alias %s was not (%v); the key was scheduled for deletion on %s so that it is not left without its alias",
		e.keyID, e.alias, e.err, e.deletion.DeletionDate.Format("2006-01-02"))
}

func (e *orphanError) Unwrap() error { return e.err }

// createKeyWithAlias creates a key and points alias at it: in one
// transaction on the embedded keystore; on a remote KMS, which has no such
// operation, in two calls, and when the alias fails the new key's deletion
// is scheduled at once (7 days) and the error, an *orphanError, says so.
func (k *kmsConn) createKeyWithAlias(ctx context.Context, in *kms.CreateKeyInput, alias string) (*kms.CreateKeyOutput, error) {
	if c, ok := k.api.(aliasKeyCreator); ok {
		return c.CreateKeyWithAlias(ctx, in, alias)
	}
	out, err := k.api.CreateKey(ctx, in)
	if err != nil {
		return nil, err
	}
	id := out.KeyMetadata.KeyId
	_, aerr := k.api.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: alias, TargetKeyId: id})
	if aerr == nil {
		return out, nil
	}
	e := &orphanError{keyID: id, alias: alias, err: aerr}
	days := int32(orphanWindow)
	// Not ctx: the alias may have failed because ctx ended, and the key
	// must not be left behind for that.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	e.deletion, e.scheduleErr = k.api.ScheduleKeyDeletion(sctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: &days})
	return nil, e
}

// discoveryKeyring decrypts with whichever keystore key a message names.
func (c *cli) discoveryKeyring(ctx context.Context) (keyring.Keyring, error) {
	conn, err := c.openKMS(ctx, needExisting)
	if err != nil {
		return nil, err
	}
	return awskms.NewDiscovery(conn.api, nil)
}

// keyrings turns the -k values into one keyring: raw key specs, KMS key
// references, or (none given) the default key on encrypt and discovery on
// decrypt. rsa reports a KMS RSA key, which needs an unsigned suite.
func (c *cli) keyrings(ctx context.Context, specs []string, decrypt bool) (kr keyring.Keyring, rsa bool, err error) {
	if len(specs) == 0 {
		if decrypt {
			kr, err = c.discoveryKeyring(ctx)
		} else {
			kr, err = c.defaultKeyring(ctx)
		}
		return kr, false, err
	}
	var krs []keyring.Keyring
	for _, s := range specs {
		var k keyring.Keyring
		if keyring.IsSpec(s) {
			k, err = keyring.FromSpec(s, decrypt)
			var se *keyring.SpecError
			if errors.As(err, &se) {
				return nil, false, &exitError{code: 2, err: err}
			}
		} else if isKMSRef(s) {
			var isRSA bool
			k, isRSA, err = c.kmsKeyring(ctx, s, decrypt)
			rsa = rsa || isRSA
		} else {
			return nil, false, usageErrorf("unknown key form %q; want alias/NAME, a key id, a key ARN, aes:file=... or rsa:file=... (see --help)", s)
		}
		if err != nil {
			return nil, false, err
		}
		krs = append(krs, k)
	}
	if len(krs) == 1 {
		return krs[0], rsa, nil
	}
	return keyring.NewMulti(krs[0], krs[1:]...), rsa, nil
}

// isKMSRef reports whether s has the form of a KMS key reference: an alias
// name, an ARN or a key id (a UUID).
func isKMSRef(s string) bool {
	if strings.HasPrefix(s, "alias/") || strings.HasPrefix(s, "arn:") {
		return true
	}
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case '0' <= r && r <= '9', 'a' <= r && r <= 'f':
		default:
			return false
		}
	}
	return true
}

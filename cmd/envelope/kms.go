package main

// The KMS a command talks to, opened once per command: the embedded
// keystore or a remote AWS-KMS-API endpoint (--kms); and what commands
// share about its keys.

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsclient"
	"github.com/envelopekms/envelope/kms/keystore"
)

// defaultAlias names the key used when encrypt is given no -k.
const defaultAlias = "alias/default"

// kmsConn is the KMS a command talks to: the embedded keystore, or a
// remote AWS-KMS-API endpoint (an envelope server, or AWS KMS).
type kmsConn struct {
	api    kms.API
	ks     *keystore.Keystore
	dir    string // the keystore directory of a SQLite keystore
	remote string // the --kms URL, "" for the embedded keystore
}

// kmsFlagHelp documents --kms, shared by every command that uses KMS keys.
const kmsFlagHelp = "use the AWS-KMS-API endpoint at `URL` (an envelope server) or \"aws\" (AWS KMS, default AWS config and credentials) instead of the embedded keystore; default $ENVELOPE_KMS"

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
		if c.store != (storeFlags{}) {
			return nil, usageErrorf("--kms (or ENVELOPE_KMS) uses a remote KMS: --store and the root key flags are for a keystore; give one or the other")
		}
		cl, err := kmsClient(ctx, url)
		if err != nil {
			return nil, &hintError{fmt.Errorf("KMS %s: %w", url, err), "--kms (or ENVELOPE_KMS) takes an http(s):// URL of an AWS-KMS-API endpoint, or aws"}
		}
		c.kms = &kmsConn{api: cl, remote: url}
		return c.kms, nil
	}
	loc, err := c.location(c.store.store)
	if err != nil {
		return nil, err
	}
	opts := keystore.Options{MustExist: need == needExisting}
	if need == needDefaultKey {
		opts.DefaultAlias, opts.DefaultKeyDescription = defaultAlias, defaultKeyDescription
	}
	if err := c.rootOptions(ctx, c.store.root, "", &opts); err != nil {
		return nil, err
	}
	ks, err := c.openKeystore(ctx, loc, opts)
	if err != nil {
		return nil, keystoreHint(err, loc, opts)
	}
	if ks.Created {
		fmt.Fprintf(c.stderr, "envelope: created a new keystore in %s\n", loc.name)
	}
	if ks.CreatedDefaultKey {
		fmt.Fprintf(c.stderr, "envelope: created the default key %s (%s)\n", defaultAlias, ks.DefaultKey.Arn)
	}
	if ks.ReadOnly != nil {
		fmt.Fprintf(c.stderr, "envelope: %s; reading it only (changes will fail)\n", fsProblem(ks.ReadOnly))
	}
	c.kms = &kmsConn{api: ks, ks: ks, dir: ks.Dir}
	return c.kms, nil
}

// kmsClient returns a client of the KMS at url: an AWS-KMS-API endpoint,
// or "aws" for AWS KMS itself (the AWS configuration and credentials).
func kmsClient(ctx context.Context, url string) (*awsclient.Client, error) {
	if url == "aws" {
		return awsclient.NewAWS(ctx)
	}
	return awsclient.NewEndpoint(ctx, url)
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
	case kms.StatePendingImport:
		return &hintError{fmt.Errorf("key %s is pending import: its imported key material is not there (never imported, deleted, or expired)", keyName(ref, m)),
			fmt.Sprintf("import it with \"envelope keys import %s --material FILE\"", ref)}
	}
	return fmt.Errorf("key %s is %s", keyName(ref, m), m.KeyState)
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

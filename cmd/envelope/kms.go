package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
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

// openKMS opens the embedded keystore once per command. create allows a
// new keystore to be made (encrypt, keys create); reads never make one.
func (c *cli) openKMS(ctx context.Context, create bool) (*kmsConn, error) {
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
	opts := keystore.Options{MustExist: !create}
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
		return nil, fmt.Errorf("opening the keystore: %w", err)
	}
	if ks.Created {
		fmt.Fprintf(c.stderr, "envelope: created a new keystore in %s\n", dir)
	}
	c.kms = &kmsConn{api: ks, ks: ks, dir: dir}
	return c.kms, nil
}

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
	conn, err := c.openKMS(ctx, false)
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
	conn, err := c.openKMS(ctx, true)
	if err != nil {
		return nil, err
	}
	out, err := conn.api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: defaultAlias})
	if kms.CodeOf(err) == kms.CodeNotFound {
		ck, cerr := conn.api.CreateKey(ctx, &kms.CreateKeyInput{Description: "envelope default key (used when no -k is given)"})
		if cerr != nil {
			return nil, cerr
		}
		if _, cerr := conn.api.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: defaultAlias, TargetKeyId: ck.KeyMetadata.KeyId}); cerr != nil {
			return nil, cerr
		}
		fmt.Fprintf(c.stderr, "envelope: created the default key %s (%s)\n", defaultAlias, ck.KeyMetadata.Arn)
		out, err = &kms.DescribeKeyOutput{KeyMetadata: ck.KeyMetadata}, nil
	}
	if err != nil {
		return nil, kmsHint(err, defaultAlias)
	}
	if err := checkUsable(defaultAlias, out.KeyMetadata); err != nil {
		return nil, err
	}
	return awskms.New(conn.api, out.KeyMetadata.Arn)
}

// discoveryKeyring decrypts with whichever keystore key a message names.
func (c *cli) discoveryKeyring(ctx context.Context) (keyring.Keyring, error) {
	conn, err := c.openKMS(ctx, false)
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

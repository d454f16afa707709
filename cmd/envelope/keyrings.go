package main

// How the -k values become one keyring: raw keys from their specs, KMS keys
// through the keystore or a remote KMS, and with no -k the default key
// (encrypt) or whichever keystore key a message names (decrypt).

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
)

const keyFormsHelp = `Key forms (-k):
  alias/NAME, a key id, or a key ARN
      a key in the embedded keystore ($ENVELOPE_HOME, default
      ~/.local/share/envelope; "envelope keys" manages it), or with --kms URL
      (or $ENVELOPE_KMS) in an envelope server or AWS KMS. A symmetric key
      wraps through KMS; an RSA key wraps offline with its public key
      (unsigned suite 0x0478, chosen automatically) and unwraps through KMS.
` + keyring.SpecHelp + `  Several -k: on encrypt, each wraps the data key and any one can decrypt;
  on decrypt, they are tried in order. No -k: encrypt uses alias/default
  (created with the keystore on first use); decrypt uses whichever keystore
  key the message names.
`

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
		} else if ref, opts, _ := strings.Cut(s, ","); isKMSRef(ref) {
			var isRSA bool
			k, isRSA, err = c.kmsKeyring(ctx, s, ref, opts, decrypt)
			rsa = rsa || isRSA
		} else {
			return nil, false, usageErrorf("unknown key form %q; want alias/NAME, a key id, a key ARN, aes:file=..., rsa:file=... or ecdh:... (see --help)", s)
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

// kmsKeyring returns the keyring for a KMS key (the -k value spec, ref
// with options opts after a comma): the symmetric KMS keyring, the KMS RSA
// keyring for RSA keys (rsa reports it), or the KMS ECDH keyring for key
// agreement keys.
func (c *cli) kmsKeyring(ctx context.Context, spec, ref, opts string, decrypt bool) (kr keyring.Keyring, rsa bool, err error) {
	var peer string
	if opts != "" {
		v, ok := strings.CutPrefix(opts, "recipient=")
		if !ok || v == "" {
			return nil, false, usageErrorf("key %q: after a KMS key, only recipient=PEER may follow (for a KEY_AGREEMENT key)", spec)
		}
		peer = v
	}
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
	if m.KeyUsage == kms.UsageKeyAgreement {
		kr, err := c.kmsECDHKeyring(ctx, conn, ref, m, peer, decrypt)
		return kr, false, err
	}
	if peer != "" {
		return nil, false, usageErrorf("key %q: recipient= is for KEY_AGREEMENT keys; %s is a %s key of usage %s", spec, keyName(ref, m), m.KeySpec, m.KeyUsage)
	}
	if m.KeyUsage != kms.UsageEncryptDecrypt {
		return nil, false, &hintError{fmt.Errorf("key %s is a %s key of usage %s; it cannot wrap data keys", keyName(ref, m), m.KeySpec, m.KeyUsage),
			"wrap with a SYMMETRIC_DEFAULT or RSA key of usage ENCRYPT_DECRYPT, or an ECC key of usage KEY_AGREEMENT; sign with \"envelope sign\", MAC with \"envelope mac\""}
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

// kmsECDHKeyring returns the KMS ECDH keyring of key agreement key m
// (given as ref): with a peer, the static schema; without, discovery
// (decrypt only). The peer is a public key file, or a KMS key whose public
// key is fetched.
func (c *cli) kmsECDHKeyring(ctx context.Context, conn *kmsConn, ref string, m *kms.KeyMetadata, peer string, decrypt bool) (keyring.Keyring, error) {
	if peer == "" {
		if !decrypt {
			return nil, &hintError{fmt.Errorf("key %s is a KEY_AGREEMENT key: it encrypts to a recipient", keyName(ref, m)),
				fmt.Sprintf("give the recipient's public key: -k %s,recipient=PEER.pub.pem (or recipient= another KMS key)", ref)}
		}
		return awskms.NewECDHDiscovery(conn.api, m.Arn)
	}
	var pub *ecdh.PublicKey
	if isKMSRef(peer) {
		out, err := conn.api.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: peer})
		if err != nil {
			return nil, kmsHint(err, peer)
		}
		if pub, err = keyring.ParseECDHPublicKey(out.PublicKey); err != nil {
			return nil, fmt.Errorf("the public key of KMS key %s: %w", peer, err)
		}
	} else {
		data, err := os.ReadFile(peer)
		if err != nil {
			return nil, fmt.Errorf("reading the recipient's public key: %w", err)
		}
		if pub, err = keyring.ParseECDHPublicKey(data); err != nil {
			return nil, fmt.Errorf("recipient %q: %w", peer, err)
		}
	}
	return awskms.NewECDH(conn.api, m.Arn, pub)
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

// discoveryKeyring decrypts with whichever keystore key a message names.
func (c *cli) discoveryKeyring(ctx context.Context) (keyring.Keyring, error) {
	conn, err := c.openKMS(ctx, needExisting)
	if err != nil {
		return nil, err
	}
	return awskms.NewDiscovery(conn.api, nil)
}

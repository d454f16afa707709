package main

// Advice for errors a user can fix: these functions turn errors of the
// library, the keyrings, the KMS and the keystore's file system into a
// *hintError, whose hint report prints under the error.

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// encryptHint adds advice to an encrypt error.
func encryptHint(err error) error {
	var pe *envelope.PolicyError
	var ke *kms.Error
	if errors.As(err, &ke) {
		return kmsHint(err, hintKey(ke))
	}
	switch {
	case errors.As(err, &pe) && pe.Suite.Committing:
		return &hintError{err, "committing suites (0x0478, 0x0578) need --commitment-policy require-encrypt-require-decrypt or require-encrypt-allow-decrypt"}
	case errors.As(err, &pe):
		return &hintError{err, "to write a non-committing suite for an old reader, add --commitment-policy forbid-encrypt-allow-decrypt"}
	case errors.Is(err, envelope.ErrReservedContextKey):
		return &hintError{err, "rename the context key; the aws-crypto- prefix belongs to the message format"}
	case errors.Is(err, envelope.ErrTooManyEncryptedDataKeys):
		return &hintError{err, "give fewer -k or raise --max-encrypted-data-keys"}
	case errors.Is(err, envelope.ErrTooLarge):
		return &hintError{err, "raise --max-frame-size (or --max-header-size), and give readers the same flag: by default they refuse such messages"}
	}
	return err
}

// decryptHint adds advice to a decrypt error and, when the message itself
// is at fault, the input's name.
func decryptHint(err error, name string) error {
	if h := decryptAdvice(err); h != "" {
		return &hintError{err, h}
	}
	if errors.Is(err, envelope.ErrTampered) || errors.Is(err, envelope.ErrTruncated) || errors.Is(err, envelope.ErrMalformed) {
		return fmt.Errorf("decrypting %s: %w", name, err)
	}
	return err
}

// decryptAdvice returns advice on how to fix a decrypt error, or "".
func decryptAdvice(err error) string {
	var pe *envelope.PolicyError
	var ue *keyring.UnwrapError
	var ke *kms.Error
	if errors.As(err, &ke) {
		switch ke.Code {
		case kms.CodeDisabled:
			return fmt.Sprintf("enable the key with \"envelope keys enable %s\"", hintKey(ke))
		case kms.CodeInvalidState:
			return fmt.Sprintf("if the key is pending deletion, restore it with \"envelope keys cancel-deletion %s\"", hintKey(ke))
		}
	}
	switch {
	case errors.As(err, &pe):
		return "to read messages written without key commitment, add --commitment-policy require-encrypt-allow-decrypt"
	case errors.As(err, &ue) && ecdhOnly(ue.Keys):
		return "the message is wrapped for ECDH public keys, which name no key: pass the recipient's private key (-k ecdh:private=PEM) or its KMS KEY_AGREEMENT key (-k KEY); \"envelope inspect\" shows the keys' fingerprints"
	case errors.As(err, &ue) || errors.Is(err, envelope.ErrNoDataKey):
		return "pass one of the wrapping keys above with -k; \"envelope inspect\" lists them"
	case errors.Is(err, envelope.ErrContextMismatch):
		return "\"envelope inspect\" shows the message's encryption context"
	case errors.Is(err, envelope.ErrSignedMessage):
		return "drop --unsigned-only to accept signed messages (their last frame is released only after the signature verifies)"
	case errors.Is(err, envelope.ErrTooManyEncryptedDataKeys):
		return "raise --max-encrypted-data-keys if the message is trusted"
	case errors.Is(err, envelope.ErrTooLarge):
		return "raise --max-header-size or --max-frame-size if the message is trusted (a frame is held in memory until it authenticates)"
	}
	return ""
}

// ecdhOnly reports whether every encrypted data key is an ECDH one (raw or
// KMS), which names public keys rather than a key to pass.
func ecdhOnly(edks []keyring.EncryptedDataKey) bool {
	for _, k := range edks {
		if k.ProviderID != keyring.ECDHProviderID && k.ProviderID != awskms.ECDHProviderID {
			return false
		}
	}
	return len(edks) > 0
}

// rewrapHint explains rewrap failures in rewrap's own terms.
func rewrapHint(err error, name string) error {
	switch {
	case errors.Is(err, awskms.ErrSignedSuite):
		return &hintError{fmt.Errorf("rewrapping %s: %w", name, err), "a signed message cannot move to a KMS RSA key; decrypt it and encrypt it again (the RSA key then picks suite 0x0478)"}
	case errors.Is(err, envelope.ErrNoDataKey):
		return &hintError{fmt.Errorf("rewrapping %s: %w", name, err), "give a key that can unwrap it with --from (-k names the new keys)"}
	case errors.Is(err, envelope.ErrTampered), errors.Is(err, envelope.ErrTruncated), errors.Is(err, envelope.ErrMalformed):
		return fmt.Errorf("rewrapping %s: %w", name, err)
	}
	return decryptHint(err, name)
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
		if ke != nil && strings.Contains(ke.Message, "pending import") {
			return &hintError{err, fmt.Sprintf("import the key's material with \"envelope keys import %s --material FILE\"", ref)}
		}
	}
	return err
}

// keystoreHint adds advice to a failure to open the keystore at loc with
// opts.
func keystoreHint(err error, loc storeLoc, opts keystore.Options) error {
	var se *keystore.RootSourceError
	var ue *keystore.RootKMSError
	var ke *kms.Error
	switch {
	case errors.Is(err, keystore.ErrNoKeystore):
		return &hintError{err, "create a key with \"envelope keys create\", or encrypt once without -k; give --store (or set ENVELOPE_STORE or ENVELOPE_HOME) to use a keystore elsewhere"}
	case errors.Is(err, kms.ErrWrongRootKey) && opts.RootKeyFile != "":
		return &hintError{err, "the root key file given (--root-key-file or ENVELOPE_ROOT_KEY_FILE) is not the one the keystore was created with"}
	case errors.Is(err, kms.ErrWrongRootKey) && opts.RootKMS != nil:
		return &hintError{err, "the upstream KMS unsealed a root key that is not this keystore's: the sealed root key in the store was replaced, or the store holds another keystore"}
	case errors.Is(err, kms.ErrWrongRootKey):
		return &hintError{err, "check ENVELOPE_PASSPHRASE, or that root.key in the keystore directory is the one it was created with"}
	case errors.Is(err, keystore.ErrPassphraseRequired):
		return err
	case errors.As(err, &se):
		return &hintError{err, rootSourceAdvice(se.Created, loc)}
	case errors.As(err, &ue) && errors.As(err, &ke):
		return &hintError{err, "the upstream KMS refused: check the credentials envelope calls it with (the AWS configuration: AWS_ACCESS_KEY_ID …), their permission for kms:Encrypt and kms:Decrypt on --root-key-id, and that this key is enabled"}
	case errors.As(err, &ue):
		return &hintError{err, "check that the upstream KMS (--root-kms or ENVELOPE_ROOT_KMS) is up and reachable from here"}
	case errors.Is(err, keystore.ErrNoRootKeyFile):
		return &hintError{err, "make one with \"envelope keygen root -o FILE\", and keep it as safe as the keys themselves: it opens them all"}
	case errors.Is(err, keystore.ErrNoRootSource):
		return &hintError{err, "give --root-key-file FILE, or --root-kms with --root-key-id, or set ENVELOPE_PASSPHRASE"}
	}
	if h := keystoreFSHint(err, loc.dir, true); h != nil {
		return h
	}
	return fmt.Errorf("opening the keystore: %w", err)
}

// rootSourceAdvice says how to give the root key source a keystore was
// created with.
func rootSourceAdvice(created keystore.RootSource, loc storeLoc) string {
	switch created {
	case keystore.SourceRootFile:
		return fmt.Sprintf("leave out --root-kms and unset ENVELOPE_PASSPHRASE: the keystore's root key is %s", filepath.Join(loc.dir, keystore.RootKeyName))
	case keystore.SourceKeyFile:
		return "give its root key file with --root-key-file FILE (or ENVELOPE_ROOT_KEY_FILE), and no other root key source"
	case keystore.SourcePassphrase:
		return "set ENVELOPE_PASSPHRASE to its passphrase, and give no other root key source"
	case keystore.SourceKMS:
		return "give the upstream KMS that sealed its root key: --root-kms URL (or aws) and --root-key-id KEY (or ENVELOPE_ROOT_KMS and ENVELOPE_ROOT_KEY_ID)"
	}
	return "this envelope does not know that root key source: use the envelope that made the keystore"
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

// hintKey returns the key a KMS error is about, for a hint, or "KEY".
func hintKey(ke *kms.Error) string {
	if ke.KeyARN == "" {
		return "KEY"
	}
	return ke.KeyARN
}

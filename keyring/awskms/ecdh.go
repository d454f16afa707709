package awskms

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/internal/ecdhwire"
	"github.com/envelopekms/envelope/kms"
)

// ECDHProviderID is the provider id of the encrypted data keys of the KMS
// ECDH keyring. They have the raw ECDH keyring's form ("raw-ecdh"), and
// either keyring reads both.
const ECDHProviderID = ecdhwire.KMSProviderID

// ECDHClient is the part of the KMS API the ECDH keyring uses.
type ECDHClient interface {
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error)
	DeriveSharedSecret(ctx context.Context, in *kms.DeriveSharedSecretInput) (*kms.DeriveSharedSecretOutput, error)
}

// ECDH is the ESDK's AWS KMS ECDH keyring: the shared secret of a KMS key
// agreement key (ECC_NIST_P256, P384 or P521 of usage KEY_AGREEMENT) and a
// peer's public key comes from KMS DeriveSharedSecret; the data key is
// wrapped under a key derived from it, bound to both public keys and to the
// encryption context, exactly as the raw ECDH keyring does
// ([keyring.RawECDH]). The KMS key's private half never leaves the KMS.
//
// It has two schemas:
//
//   - [NewECDH] (KmsPrivateKeyToStaticPublicKey): the KMS key is the
//     sender; it encrypts to the recipient's public key, and decrypts the
//     messages between the two, either way round.
//   - [NewECDHDiscovery] (KmsPublicKeyDiscovery): the KMS key is the
//     recipient; it decrypts whatever was wrapped for its public key, by
//     any sender (a raw ECDH keyring, ephemeral or static, or another KMS
//     key). It cannot encrypt.
type ECDH struct {
	client    ECDHClient
	keyARN    string
	recipient *ecdh.PublicKey // nil for discovery
	tokens    []string

	curve ecdhwire.Curve // the recipient's (static); fixed at creation
	peer  []byte         // the recipient's public key, compressed (static)

	mu        sync.Mutex
	selfCurve ecdhwire.Curve // the KMS key's curve, once fetched
	self      []byte         // the KMS key's public key, compressed, once fetched
}

var _ keyring.Keyring = (*ECDH)(nil)

// NewECDH returns a KMS ECDH keyring (KmsPrivateKeyToStaticPublicKey) for
// the KMS key agreement key with ARN keyARN as the sender, and the
// recipient's public key (on the same curve; checked on first use, when
// the KMS key's public key is fetched with GetPublicKey and cached).
func NewECDH(client ECDHClient, keyARN string, recipient *ecdh.PublicKey) (*ECDH, error) {
	if recipient == nil {
		return nil, errors.New("awskms: the KMS ECDH keyring needs the recipient's public key (or use NewECDHDiscovery to decrypt only)")
	}
	return newECDH(client, keyARN, recipient)
}

// NewECDHDiscovery returns a KMS ECDH keyring (KmsPublicKeyDiscovery) that
// decrypts, with the KMS key agreement key with ARN keyARN, whatever was
// wrapped for that key's public key.
func NewECDHDiscovery(client ECDHClient, keyARN string) (*ECDH, error) {
	return newECDH(client, keyARN, nil)
}

func newECDH(client ECDHClient, keyARN string, recipient *ecdh.PublicKey) (*ECDH, error) {
	if client == nil {
		return nil, errors.New("awskms: nil KMS client")
	}
	a, err := parseARN(keyARN)
	if err != nil {
		return nil, fmt.Errorf("awskms: %v", err)
	}
	if a.ResourceType != "key" {
		// DeriveSharedSecret answers with the key ARN, which the keyring
		// checks against the one it was given, as the ESDK does.
		return nil, fmt.Errorf("awskms: the ECDH keyring needs a key ARN, not the alias %q", keyARN)
	}
	k := &ECDH{client: client, keyARN: keyARN, recipient: recipient}
	if recipient != nil {
		c, ok := ecdhwire.CurveOf(recipient.Curve())
		if !ok {
			return nil, errors.New("awskms: the recipient's public key is an X25519 key; ECDH keyrings use P-256, P-384 or P-521")
		}
		k.curve, k.peer = c, ecdhwire.Compress(recipient)
	}
	return k, nil
}

// WithGrantTokens sets grant tokens passed on every KMS call.
func (k *ECDH) WithGrantTokens(tokens ...string) *ECDH {
	k.tokens = tokens
	return k
}

// String names the KMS key and, for the static schema, the recipient.
func (k *ECDH) String() string {
	if k.recipient == nil {
		return fmt.Sprintf("KMS ECDH key %q (discovery)", k.keyARN)
	}
	return fmt.Sprintf("KMS ECDH key %q with %s %s", k.keyARN, k.curve, ecdhwire.Fingerprint(k.peer))
}

// publicKey fetches the KMS key's public key on first use, checks that it
// is a key agreement key on a curve the keyring allows (the recipient's,
// for the static schema), and caches it. A failure is tried again next
// time.
func (k *ECDH) publicKey(ctx context.Context) (ecdhwire.Curve, []byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.self != nil {
		return k.selfCurve, k.self, nil
	}
	out, err := k.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: k.keyARN, GrantTokens: k.tokens})
	if err != nil {
		return 0, nil, fmt.Errorf("awskms: KMS GetPublicKey of %s: %w", k.keyARN, err)
	}
	if out.KeyUsage != kms.UsageKeyAgreement {
		return 0, nil, fmt.Errorf("awskms: KMS key %s has usage %s; the ECDH keyring needs a KEY_AGREEMENT key", k.keyARN, out.KeyUsage)
	}
	var curve ecdhwire.Curve
	for _, c := range ecdhwire.Curves {
		if out.KeySpec == c.KeySpec() {
			curve = c
		}
	}
	if curve == 0 {
		return 0, nil, fmt.Errorf("awskms: KMS key %s has spec %s; the ECDH keyring needs ECC_NIST_P256, ECC_NIST_P384 or ECC_NIST_P521", k.keyARN, out.KeySpec)
	}
	if k.recipient != nil && curve != k.curve {
		return 0, nil, fmt.Errorf("awskms: KMS key %s is on %s and the recipient's public key on %s; they must share a curve", k.keyARN, curve, k.curve)
	}
	pub, err := parseECPublicKey(out.PublicKey, curve)
	if err != nil {
		return 0, nil, fmt.Errorf("awskms: KMS GetPublicKey of %s: %v", k.keyARN, err)
	}
	k.selfCurve, k.self = curve, ecdhwire.Compress(pub)
	return curve, k.self, nil
}

// parseECPublicKey parses a DER SPKI public key of curve c.
func parseECPublicKey(der []byte, c ecdhwire.Curve) (*ecdh.PublicKey, error) {
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("the public key is not a DER SubjectPublicKeyInfo")
	}
	ek, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the public key is a %T, not an EC key", key)
	}
	pub, err := ek.ECDH()
	if err != nil || pub.Curve() != c.ECDH() {
		return nil, fmt.Errorf("the public key is not a %s key", c)
	}
	return pub, nil
}

// deriveSecret calls DeriveSharedSecret with the KMS key and peer and
// checks the answer as the ESDK does.
func (k *ECDH) deriveSecret(ctx context.Context, c ecdhwire.Curve, peer *ecdh.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(peer)
	if err != nil {
		return nil, err
	}
	out, err := k.client.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{
		KeyId: k.keyARN, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: spki, GrantTokens: k.tokens,
	})
	if err != nil {
		return nil, fmt.Errorf("KMS DeriveSharedSecret with %s: %w", k.keyARN, err)
	}
	if subtle.ConstantTimeCompare([]byte(out.KeyId), []byte(k.keyARN)) != 1 || out.KeyAgreementAlgorithm != kms.AlgECDH {
		clear(out.SharedSecret)
		return nil, fmt.Errorf("KMS DeriveSharedSecret answered for key %q with algorithm %q, not %q with ECDH", out.KeyId, out.KeyAgreementAlgorithm, k.keyARN)
	}
	if len(out.SharedSecret) != c.SecretLen() {
		clear(out.SharedSecret)
		return nil, fmt.Errorf("KMS DeriveSharedSecret with %s returned a %d-byte secret; a %s secret is %d bytes", k.keyARN, len(out.SharedSecret), c, c.SecretLen())
	}
	return out.SharedSecret, nil
}

// OnEncrypt implements [keyring.Keyring].
func (k *ECDH) OnEncrypt(ctx context.Context, m *keyring.EncryptionMaterials) error {
	if k.recipient == nil {
		return fmt.Errorf("awskms: %s cannot encrypt; give the recipient's public key", k)
	}
	c, self, err := k.publicKey(ctx)
	if err != nil {
		return err
	}
	z, err := k.deriveSecret(ctx, c, k.recipient)
	if err != nil {
		return fmt.Errorf("awskms: %w", err)
	}
	defer clear(z)
	info := ecdhwire.ProviderInfo{Curve: c, Sender: self, Recipient: k.peer}
	dk := m.DataKey
	if dk == nil {
		dk = make([]byte, m.Suite.KeyLength)
		rand.Read(dk)
	}
	ct, err := ecdhwire.Wrap(z, info, m.Context, dk)
	if err != nil {
		if m.DataKey == nil {
			clear(dk)
		}
		return fmt.Errorf("awskms: %s: %v", k, err)
	}
	m.DataKey = dk
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, keyring.EncryptedDataKey{
		ProviderID: ECDHProviderID, ProviderInfo: info.Marshal(), Ciphertext: ct,
	})
	return nil
}

// OnDecrypt implements [keyring.Keyring]: it tries the "aws-kms-ecdh" and
// "raw-ecdh" keys whose public keys are the keyring's (static: the KMS
// key's and the recipient's, either way round; discovery: the KMS key's as
// the recipient), within a [keyring.UnwrapBudget].
func (k *ECDH) OnDecrypt(ctx context.Context, m *keyring.DecryptionMaterials, edks []keyring.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	ue := &keyring.UnwrapError{Keys: edks, Tried: []string{k.String()}}
	var budget keyring.UnwrapBudget
	for _, edk := range edks {
		if !ecdhwire.IsECDH(edk.ProviderID) {
			continue
		}
		p, err := ecdhwire.ParseProviderInfo(edk.ProviderInfo)
		if err != nil {
			continue
		}
		// The KMS key's public key is needed to tell its keys; a failure
		// to get it fails every attempt alike.
		c, self, err := k.publicKey(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ue.Errs = append(ue.Errs, err)
			return ue
		}
		if p.Curve != c {
			continue
		}
		var peer *ecdh.PublicKey
		if k.recipient == nil {
			if !bytes.Equal(p.Recipient, self) {
				continue
			}
		} else {
			if !(bytes.Equal(p.Sender, self) && bytes.Equal(p.Recipient, k.peer) ||
				bytes.Equal(p.Sender, k.peer) && bytes.Equal(p.Recipient, self)) {
				continue
			}
			peer = k.recipient
		}
		if !budget.Allow(k.keyARN) {
			ue.Skipped++
			continue
		}
		err = k.unwrap(ctx, m, edk, p, peer)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		budget.Failed(k.keyARN)
		ue.Errs = append(ue.Errs, err)
	}
	return ue
}

// unwrap unwraps one encrypted data key, agreeing the KMS key with peer
// (nil: the message's sender).
func (k *ECDH) unwrap(ctx context.Context, m *keyring.DecryptionMaterials, edk keyring.EncryptedDataKey, p ecdhwire.ProviderInfo, peer *ecdh.PublicKey) error {
	if peer == nil {
		var err error
		if peer, err = ecdhwire.Decompress(p.Curve, p.Sender); err != nil {
			return fmt.Errorf("%s: the message's sender public key is invalid: %v", k, err)
		}
	}
	z, err := k.deriveSecret(ctx, p.Curve, peer)
	if err != nil {
		return err
	}
	defer clear(z)
	dk, err := ecdhwire.Unwrap(z, p, m.Context, edk.Ciphertext, m.Suite.KeyLength)
	if err != nil {
		return fmt.Errorf("%s: %v", k, err)
	}
	m.DataKey = dk
	return nil
}

package awskms

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/kms"
)

// ErrSignedSuite is wrapped by the error of the RSA keyring asked to protect
// a signed suite.
var ErrSignedSuite = errors.New("a KMS RSA key cannot protect a signed message")

// RSAProviderID is the provider id of KMS RSA encrypted data keys.
const RSAProviderID = "aws-kms-rsa"

// RSAClient is the part of the KMS API the RSA keyring uses.
type RSAClient interface {
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput) (*kms.DecryptOutput, error)
}

// digestLen is the length of the encryption context digest (SHA-384)
// prepended to the data key before RSA encryption.
const digestLen = sha512.Size384

// RSA is the ESDK's AWS KMS RSA keyring: anyone with the KMS key's public
// key can wrap data keys offline, and only the KMS can unwrap them. The
// encryption context is bound by a SHA-384 digest wrapped with the data key.
// It uses RSAES_OAEP_SHA_256, and refuses signed suites (whoever has the
// public key could re-wrap under another context, so a signature would
// prove nothing).
type RSA struct {
	client RSAClient
	keyARN string

	mu  sync.Mutex
	pub *rsa.PublicKey
}

var _ keyring.Keyring = (*RSA)(nil)

// NewRSA returns a KMS RSA keyring for the RSA KMS key with the given key
// ARN (not an alias, as the ESDK requires). The public key is fetched with
// GetPublicKey on first use and cached.
func NewRSA(client RSAClient, keyARN string) (*RSA, error) {
	if client == nil {
		return nil, errors.New("awskms: nil KMS client")
	}
	a, err := parseARN(keyARN)
	if err != nil {
		return nil, fmt.Errorf("awskms: %v", err)
	}
	if a.ResourceType != "key" {
		return nil, fmt.Errorf("awskms: the RSA keyring needs a key ARN, not the alias %q", keyARN)
	}
	return &RSA{client: client, keyARN: keyARN}, nil
}

// String names the key.
func (k *RSA) String() string { return fmt.Sprintf("KMS RSA key %q", k.keyARN) }

// publicKey returns the key's public key, fetching it on first use. Only a
// successful fetch is kept: a failure (a cancelled context, a KMS error) is
// tried again next time.
func (k *RSA) publicKey(ctx context.Context) (*rsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pub != nil {
		return k.pub, nil
	}
	out, err := k.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: k.keyARN})
	if err != nil {
		return nil, fmt.Errorf("awskms: KMS GetPublicKey of %s: %w", k.keyARN, err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("awskms: KMS GetPublicKey of %s: %v", k.keyARN, err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok || rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("awskms: KMS key %s is not an RSA key of 2048 bits or more", k.keyARN)
	}
	k.pub = rk
	return rk, nil
}

func contextDigest(ec map[string]string) ([]byte, error) {
	b, err := format.MarshalContext(ec)
	if err != nil {
		return nil, err
	}
	d := sha512.Sum384(b)
	return d[:], nil
}

// OnEncrypt implements [keyring.Keyring].
func (k *RSA) OnEncrypt(ctx context.Context, m *keyring.EncryptionMaterials) error {
	if m.Suite.Signed() {
		return fmt.Errorf("%w: the KMS RSA key %s cannot protect suite %s; use an unsigned suite such as 0x0478 (AES_256_GCM_HKDF_SHA512_COMMIT_KEY)", ErrSignedSuite, k.keyARN, m.Suite.ID)
	}
	pub, err := k.publicKey(ctx)
	if err != nil {
		return err
	}
	if m.DataKey == nil {
		m.DataKey = make([]byte, m.Suite.KeyLength)
		rand.Read(m.DataKey)
	}
	digest, err := contextDigest(m.Context)
	if err != nil {
		return err
	}
	pt := append(digest, m.DataKey...)
	defer clear(pt)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, pt, nil)
	if err != nil {
		return fmt.Errorf("awskms: wrapping the data key with %s: %v", k.keyARN, err)
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, keyring.EncryptedDataKey{
		ProviderID: RSAProviderID, ProviderInfo: []byte(k.keyARN), Ciphertext: ct,
	})
	return nil
}

// OnDecrypt implements [keyring.Keyring].
func (k *RSA) OnDecrypt(ctx context.Context, m *keyring.DecryptionMaterials, edks []keyring.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	want, err := contextDigest(m.Context)
	if err != nil {
		return err
	}
	ue := &keyring.UnwrapError{Keys: edks, Tried: []string{k.String()}}
	var budget keyring.UnwrapBudget
	for _, edk := range edks {
		if edk.ProviderID != RSAProviderID || string(edk.ProviderInfo) != k.keyARN {
			continue
		}
		if !budget.Allow(k.keyARN) {
			ue.Skipped++
			continue
		}
		err := unwrapRSA(ctx, k.client, m, edk, k.keyARN, want)
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

// decrypter is the one KMS call unwrapping needs.
type decrypter interface {
	Decrypt(ctx context.Context, in *kms.DecryptInput) (*kms.DecryptOutput, error)
}

// unwrapRSA unwraps one aws-kms-rsa EDK through KMS Decrypt with keyARN
// and checks the answer and the context digest as the ESDK does.
func unwrapRSA(ctx context.Context, c decrypter, m *keyring.DecryptionMaterials, edk keyring.EncryptedDataKey, keyARN string, wantDigest []byte) error {
	out, err := c.Decrypt(ctx, &kms.DecryptInput{
		KeyId: keyARN, CiphertextBlob: edk.Ciphertext, EncryptionAlgorithm: kms.AlgRSAOAEPSHA256,
	})
	if err != nil {
		return fmt.Errorf("KMS Decrypt with %s: %w", keyARN, err)
	}
	pt := out.Plaintext
	defer clear(pt)
	if out.KeyId != keyARN {
		return fmt.Errorf("KMS Decrypt answered for key %q, not %q", out.KeyId, keyARN)
	}
	if len(pt) != digestLen+m.Suite.KeyLength {
		return fmt.Errorf("KMS RSA key %s unwrapped %d bytes, want %d", keyARN, len(pt), digestLen+m.Suite.KeyLength)
	}
	if subtle.ConstantTimeCompare(pt[:digestLen], wantDigest) != 1 {
		return fmt.Errorf("KMS RSA key %s: the encryption context differs from the one the data key was wrapped with", keyARN)
	}
	m.DataKey = append([]byte(nil), pt[digestLen:]...)
	return nil
}

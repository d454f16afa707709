// Package awskms provides the AWS Encryption SDK's KMS keyrings over any
// implementation of the KMS operations: envelope's embedded KMS, an
// envelope server, or AWS KMS itself.
//
//   - [Keyring] (provider "aws-kms"): a symmetric KMS key generates the data
//     key (GenerateDataKey) and further keys wrap it (Encrypt); decryption
//     calls Decrypt with the message's encryption context.
//   - [Discovery]: decrypts with whichever KMS key a message names (symmetric
//     or RSA), within an optional account/partition filter.
//   - [RSA] (provider "aws-kms-rsa"): wraps offline with an RSA KMS key's
//     public key (fetched once) and unwraps through KMS Decrypt.
//   - [ECDH] (provider "aws-kms-ecdh"): wraps under a key derived from the
//     shared secret of a KMS key agreement key and a peer's public key
//     (KMS DeriveSharedSecret); messages between it and the raw ECDH
//     keyring ([keyring.RawECDH]) go both ways.
//
// The wire form is the ESDK's, so messages interoperate with the official
// SDKs' KMS keyrings.
package awskms

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/kms"
)

// ProviderID is the provider id of symmetric KMS encrypted data keys.
const ProviderID = "aws-kms"

// Client is the part of the KMS API the symmetric keyrings use. kms.API
// implementations satisfy it.
type Client interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error)
	Encrypt(ctx context.Context, in *kms.EncryptInput) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput) (*kms.DecryptOutput, error)
}

// Keyring is the ESDK's AWS KMS keyring for symmetric keys.
type Keyring struct {
	client      Client
	generator   string
	keys        []string
	grantTokens []string
}

var _ keyring.Keyring = (*Keyring)(nil)

// New returns a keyring whose generator key makes each data key and whose
// other keys each wrap it too. Key identifiers may be key ids, key ARNs,
// alias names or alias ARNs for encryption; decryption matches the key ARNs
// recorded in messages, so give key ARNs to decrypt. generator may be empty
// when the keyring only adds wraps (inside a multi-keyring).
func New(client Client, generator string, keys ...string) (*Keyring, error) {
	if client == nil {
		return nil, errors.New("awskms: nil KMS client")
	}
	if generator == "" && len(keys) == 0 {
		return nil, errors.New("awskms: no KMS key given")
	}
	ids := keys
	if generator != "" {
		ids = append([]string{generator}, keys...)
	}
	for _, k := range ids {
		if err := checkIdentifier(k); err != nil {
			return nil, err
		}
	}
	return &Keyring{client: client, generator: generator, keys: keys}, nil
}

// checkIdentifier accepts what the ESDK calls a valid AWS KMS identifier:
// a key or alias ARN, an alias name or a key id.
func checkIdentifier(k string) error {
	switch {
	case k == "":
		return errors.New("awskms: empty key identifier")
	case len(k) > 2048:
		return errors.New("awskms: key identifier longer than 2048 characters")
	case strings.HasPrefix(k, "arn:"):
		if _, err := parseARN(k); err != nil {
			return fmt.Errorf("awskms: %v", err)
		}
	case strings.HasPrefix(k, "alias/") && len(k) == len("alias/"):
		return errors.New("awskms: alias with no name")
	}
	return nil
}

// WithGrantTokens sets grant tokens passed on every KMS call.
func (k *Keyring) WithGrantTokens(tokens ...string) *Keyring {
	k.grantTokens = tokens
	return k
}

// String names the keyring's keys.
func (k *Keyring) String() string {
	ids := k.keys
	if k.generator != "" {
		ids = append([]string{k.generator}, ids...)
	}
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	if len(q) == 1 {
		return "KMS key " + q[0]
	}
	return "KMS keys " + strings.Join(q, ", ")
}

// OnEncrypt implements [keyring.Keyring].
func (k *Keyring) OnEncrypt(ctx context.Context, m *keyring.EncryptionMaterials) error {
	keys := k.keys
	if m.DataKey == nil {
		if k.generator == "" {
			return errors.New("awskms: no generator key to make the data key")
		}
		n := int32(m.Suite.KeyLength)
		out, err := k.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
			KeyId: k.generator, NumberOfBytes: &n, EncryptionContext: m.Context, GrantTokens: k.grantTokens,
		})
		if err != nil {
			return fmt.Errorf("awskms: KMS GenerateDataKey with %s: %w", k.generator, err)
		}
		if a, err := parseARN(out.KeyId); err != nil || a.ResourceType != "key" {
			clear(out.Plaintext)
			return fmt.Errorf("awskms: KMS GenerateDataKey answered with key id %q, not a key ARN", out.KeyId)
		}
		if len(out.Plaintext) != m.Suite.KeyLength {
			clear(out.Plaintext)
			return fmt.Errorf("awskms: KMS GenerateDataKey returned a %d-byte data key, want %d", len(out.Plaintext), m.Suite.KeyLength)
		}
		m.DataKey = out.Plaintext
		m.EncryptedDataKeys = append(m.EncryptedDataKeys, keyring.EncryptedDataKey{
			ProviderID: ProviderID, ProviderInfo: []byte(out.KeyId), Ciphertext: out.CiphertextBlob,
		})
	} else if k.generator != "" {
		keys = append([]string{k.generator}, keys...)
	}
	for _, id := range keys {
		out, err := k.client.Encrypt(ctx, &kms.EncryptInput{
			KeyId: id, Plaintext: m.DataKey, EncryptionContext: m.Context, GrantTokens: k.grantTokens,
		})
		if err != nil {
			return fmt.Errorf("awskms: KMS Encrypt with %s: %w", id, err)
		}
		if a, err := parseARN(out.KeyId); err != nil || a.ResourceType != "key" {
			return fmt.Errorf("awskms: KMS Encrypt answered with key id %q, not a key ARN", out.KeyId)
		}
		m.EncryptedDataKeys = append(m.EncryptedDataKeys, keyring.EncryptedDataKey{
			ProviderID: ProviderID, ProviderInfo: []byte(out.KeyId), Ciphertext: out.CiphertextBlob,
		})
	}
	return nil
}

// OnDecrypt implements [keyring.Keyring]: it tries the message's aws-kms
// keys whose ARN is one of the keyring's keys, in order.
func (k *Keyring) OnDecrypt(ctx context.Context, m *keyring.DecryptionMaterials, edks []keyring.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	ids := k.keys
	if k.generator != "" {
		ids = append([]string{k.generator}, ids...)
	}
	ue := &keyring.UnwrapError{Keys: edks, Tried: []string{k.String()}}
	var budget keyring.UnwrapBudget
	for _, edk := range edks {
		if edk.ProviderID != ProviderID {
			continue
		}
		info := string(edk.ProviderInfo)
		if !slices.Contains(ids, info) {
			continue
		}
		if a, err := parseARN(info); err != nil || a.ResourceType != "key" {
			ue.Errs = append(ue.Errs, fmt.Errorf("wrapped key names %q, not a KMS key ARN", edk.ProviderInfo))
			continue
		}
		if !budget.Allow(info) {
			ue.Skipped++
			continue
		}
		err := decryptEDK(ctx, k.client, m, edk, info, k.grantTokens)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		budget.Failed(info)
		ue.Errs = append(ue.Errs, err)
	}
	return ue
}

// decryptEDK unwraps one EDK through KMS Decrypt with keyID and checks the
// answer as the ESDK does.
func decryptEDK(ctx context.Context, c Client, m *keyring.DecryptionMaterials, edk keyring.EncryptedDataKey, keyID string, tokens []string) error {
	out, err := c.Decrypt(ctx, &kms.DecryptInput{
		KeyId: keyID, CiphertextBlob: edk.Ciphertext, EncryptionContext: m.Context, GrantTokens: tokens,
	})
	if err != nil {
		return fmt.Errorf("KMS Decrypt with %s: %w", keyID, err)
	}
	if subtle.ConstantTimeCompare([]byte(out.KeyId), []byte(keyID)) != 1 {
		clear(out.Plaintext)
		return fmt.Errorf("KMS Decrypt answered for key %q, not %q", out.KeyId, keyID)
	}
	if len(out.Plaintext) != m.Suite.KeyLength {
		clear(out.Plaintext)
		return fmt.Errorf("KMS Decrypt with %s returned a %d-byte data key, want %d", keyID, len(out.Plaintext), m.Suite.KeyLength)
	}
	m.DataKey = out.Plaintext
	return nil
}

// DiscoveryFilter limits a [Discovery] keyring to keys of one partition and
// some accounts.
type DiscoveryFilter struct {
	// Partition is the one partition ("aws", say) whose keys are tried.
	Partition string
	// Accounts are the accounts whose keys are tried, at least one.
	Accounts []string
}

// Discovery is the ESDK's AWS KMS discovery keyring: it decrypts with the
// KMS key each wrapped data key names. It cannot encrypt. Beyond the ESDK's,
// it also unwraps "aws-kms-rsa" keys, through KMS Decrypt with the RSA key
// each names.
type Discovery struct {
	client      Client
	filter      *DiscoveryFilter
	grantTokens []string
}

var _ keyring.Keyring = (*Discovery)(nil)

// NewDiscovery returns a discovery keyring; filter may be nil.
func NewDiscovery(client Client, filter *DiscoveryFilter) (*Discovery, error) {
	if client == nil {
		return nil, errors.New("awskms: nil KMS client")
	}
	if filter != nil && (filter.Partition == "" || len(filter.Accounts) == 0) {
		return nil, errors.New("awskms: a discovery filter needs a partition and at least one account")
	}
	return &Discovery{client: client, filter: filter}, nil
}

// String describes the keyring.
func (d *Discovery) String() string {
	if d.filter == nil {
		return "KMS discovery (any key)"
	}
	return fmt.Sprintf("KMS discovery (partition %s, accounts %q)", d.filter.Partition, d.filter.Accounts)
}

// OnEncrypt implements [keyring.Keyring]; a discovery keyring cannot
// encrypt.
func (d *Discovery) OnEncrypt(context.Context, *keyring.EncryptionMaterials) error {
	return errors.New("awskms: a discovery keyring cannot encrypt; name a KMS key")
}

// OnDecrypt implements [keyring.Keyring].
func (d *Discovery) OnDecrypt(ctx context.Context, m *keyring.DecryptionMaterials, edks []keyring.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	ue := &keyring.UnwrapError{Keys: edks, Tried: []string{d.String()}}
	var digest []byte
	var budget keyring.UnwrapBudget
	for _, edk := range edks {
		if edk.ProviderID != ProviderID && edk.ProviderID != RSAProviderID {
			continue
		}
		arn, err := parseARN(string(edk.ProviderInfo))
		if err != nil || arn.ResourceType != "key" {
			// Counted as failures of one (invalid) key, so that a forged
			// message cannot pile up errors.
			if budget.Allow("") {
				budget.Failed("")
				ue.Errs = append(ue.Errs, fmt.Errorf("wrapped key names %q, not a KMS key ARN", clip(edk.ProviderInfo)))
			} else {
				ue.Skipped++
			}
			continue
		}
		if d.filter != nil && (arn.Partition != d.filter.Partition || !slices.Contains(d.filter.Accounts, arn.Account)) {
			continue
		}
		if !budget.Allow(arn.String()) {
			ue.Skipped++
			continue
		}
		if edk.ProviderID == RSAProviderID {
			if digest == nil {
				if digest, err = contextDigest(m.Context); err != nil {
					return err
				}
			}
			err = unwrapRSA(ctx, d.client, m, edk, arn.String(), digest)
		} else {
			err = decryptEDK(ctx, d.client, m, edk, arn.String(), d.grantTokens)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		budget.Failed(arn.String())
		ue.Errs = append(ue.Errs, err)
	}
	return ue
}

// clip cuts a name from a message to 100 bytes for an error (a message
// may hold names of 64 KiB).
func clip(b []byte) string {
	if len(b) <= 100 {
		return string(b)
	}
	return fmt.Sprintf("%s…(%d bytes)", strings.ToValidUTF8(string(b[:100]), ""), len(b))
}

package awskms_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/suite"
)

const commitKey = suite.AES256GCMHKDFSHA512CommitKey // 0x0478, the one suite the RSA keyring takes

func mustNewRSA(t testing.TB, c awskms.RSAClient, arn string) *awskms.RSA {
	t.Helper()
	kr, err := awskms.NewRSA(c, arn)
	if err != nil {
		t.Fatalf("NewRSA(%q) err = %v, want nil", arn, err)
	}
	return kr
}

func TestNewRSARefuses(t *testing.T) {
	svc := newKMS(t)
	const id = "1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, tt := range []struct {
		name   string
		client awskms.RSAClient
		arn    string
		want   string
	}{
		{"nil client", nil, "arn:aws:kms:us-east-1:111122223333:key/" + id, "nil KMS client"},
		{"alias ARN", svc, "arn:aws:kms:us-east-1:111122223333:alias/rsa", "not the alias"},
		{"alias name", svc, "alias/rsa", "not an ARN"},
		{"bare key id", svc, id, "not an ARN"},
		{"empty", svc, "", "not an ARN"},
		{"ARN without key id", svc, "arn:aws:kms:us-east-1:111122223333:key/", "not a KMS key or alias ARN"},
		{"ARN of another service", svc, "arn:aws:iam:us-east-1:111122223333:key/" + id, "not a KMS ARN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := awskms.NewRSA(tt.client, tt.arn)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRSA(%q) = %v, %v; want an error containing %q", tt.arn, kr, err, tt.want)
			}
		})
	}
}

func TestRSAMessageRoundTrip(t *testing.T) {
	svc, rsaARN, _ := sharedRSA(t)
	plaintext := []byte("wrapped offline, unwrapped by KMS")
	ec := map[string]string{"tenant": "acme", "purpose": "rsa round trip"}
	msg, err := envelope.EncryptBytes(t.Context(), plaintext, mustNewRSA(t, svc, rsaARN),
		envelope.WithSuite(commitKey), envelope.WithContext(ec))
	if err != nil {
		t.Fatalf("EncryptBytes err = %v, want nil", err)
	}
	h, err := envelope.ReadHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("ReadHeader err = %v", err)
	}
	if len(h.EncryptedDataKeys) != 1 || h.EncryptedDataKeys[0].ProviderID != "aws-kms-rsa" || string(h.EncryptedDataKeys[0].ProviderInfo) != rsaARN {
		t.Errorf("header EDKs = %v, want one aws-kms-rsa key with info %q", h.EncryptedDataKeys, rsaARN)
	}
	if n := len(h.EncryptedDataKeys[0].Ciphertext); n != 256 {
		t.Errorf("EDK ciphertext is %d bytes, want 256 (RSA-2048)", n)
	}

	// A fresh keyring decrypts (the first one's cached public key plays no
	// part), and so does the discovery keyring, which also unwraps
	// aws-kms-rsa keys.
	for name, kr := range map[string]keyring.Keyring{
		"RSA":       mustNewRSA(t, svc, rsaARN),
		"discovery": mustDiscovery(t, svc, &awskms.DiscoveryFilter{Partition: "aws", Accounts: []string{kms.DefaultAccountID}}),
	} {
		got, _, err := envelope.DecryptBytes(t.Context(), msg, kr, envelope.WithContext(ec))
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Errorf("DecryptBytes with the %s keyring = %q, %v; want %q", name, got, err, plaintext)
		}
	}

	// A discovery keyring filtering out the account skips it.
	spy := newSpy(svc)
	_, _, err = envelope.DecryptBytes(t.Context(), msg, mustDiscovery(t, spy, &awskms.DiscoveryFilter{Partition: "aws", Accounts: []string{"444455556666"}}))
	if !errors.Is(err, keyring.ErrNoDataKey) || spy.Total() != 0 {
		t.Errorf("DecryptBytes with a discovery keyring of another account err = %v after %d KMS calls; want ErrNoDataKey after none", err, spy.Total())
	}
}

func TestRSAFetchesPublicKeyOnce(t *testing.T) {
	svc, rsaARN, _ := sharedRSA(t)
	spy := newSpy(svc)
	kr := mustNewRSA(t, spy, rsaARN)
	if spy.Total() != 0 {
		t.Errorf("NewRSA made %d KMS calls, want none until first use", spy.Total())
	}
	var ms []*keyring.EncryptionMaterials
	for range 5 {
		ms = append(ms, wrap(t, kr, commitKey, nil))
	}
	// Concurrent first uses of a new keyring fetch it once too.
	spy2 := newSpy(svc)
	kr2 := mustNewRSA(t, spy2, rsaARN)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = kr2.OnEncrypt(t.Context(), encryptMaterials(t, commitKey, map[string]string{"i": "x"}))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent OnEncrypt %d err = %v", i, err)
		}
	}
	if n := spy2.Calls("GetPublicKey"); n != 1 {
		t.Errorf("8 concurrent encryptions made %d GetPublicKey calls, want 1", n)
	}

	for _, m := range ms {
		dm := decryptMaterials(t, commitKey, nil)
		if err := kr.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys); err != nil || !bytes.Equal(dm.DataKey, m.DataKey) {
			t.Errorf("OnDecrypt err = %v, want the data key", err)
		}
	}
	if n := spy.Calls("GetPublicKey"); n != 1 {
		t.Errorf("5 encryptions and decryptions made %d GetPublicKey calls, want 1", n)
	}
	if n := spy.Calls("Decrypt"); n != 5 {
		t.Errorf("5 decryptions made %d Decrypt calls, want 5", n)
	}
}

func TestRSARefusesSignedSuites(t *testing.T) {
	svc, rsaARN, _ := sharedRSA(t)
	spy := newSpy(svc)
	kr := mustNewRSA(t, spy, rsaARN)
	for _, s := range suite.All() {
		if !s.Signed() {
			continue
		}
		m := encryptMaterials(t, s.ID, nil)
		err := kr.OnEncrypt(t.Context(), m)
		if err == nil || !strings.Contains(err.Error(), "0x0478") || !strings.Contains(err.Error(), s.ID.String()) {
			t.Errorf("OnEncrypt(suite %v) err = %v, want a refusal naming %v and 0x0478", s.ID, err, s.ID)
		}
		if m.DataKey != nil || len(m.EncryptedDataKeys) != 0 {
			t.Errorf("OnEncrypt(suite %v) failed but changed the materials", s.ID)
		}
	}
	if spy.Total() != 0 {
		t.Errorf("refusing signed suites made %d KMS calls, want none", spy.Total())
	}
	// The default suite, 0x0578, is signed.
	if _, err := envelope.EncryptBytes(t.Context(), []byte("x"), kr); err == nil || !strings.Contains(err.Error(), "0x0478") {
		t.Errorf("EncryptBytes with the default suite err = %v, want a refusal naming 0x0478", err)
	}
}

func TestRSAContextBound(t *testing.T) {
	svc, rsaARN, _ := sharedRSA(t)
	kr := mustNewRSA(t, svc, rsaARN)
	ec := map[string]string{"purpose": "test", "tenant": "acme"}
	m := wrap(t, kr, commitKey, ec)

	for _, other := range []map[string]string{
		{"purpose": "other", "tenant": "acme"},
		{"purpose": "test"},
		{"purpose": "test", "tenant": "acme", "extra": ""},
		{},
	} {
		dm := decryptMaterials(t, commitKey, other)
		ue := unwrapErr(t, kr.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys))
		if dm.DataKey != nil {
			t.Errorf("context %v: OnDecrypt set a data key", other)
		}
		if len(ue.Errs) != 1 || !strings.Contains(ue.Errs[0].Error(), "encryption context differs") {
			t.Errorf("context %v: collected errors %v, want one about the encryption context", other, ue.Errs)
		}
	}
	// Key order in the map does not matter: the serialization is canonical.
	dm := decryptMaterials(t, commitKey, map[string]string{"tenant": "acme", "purpose": "test"})
	if err := kr.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys); err != nil || !bytes.Equal(dm.DataKey, m.DataKey) {
		t.Errorf("OnDecrypt with the same context err = %v, want the data key", err)
	}
}

func TestRSASkipsOtherKeys(t *testing.T) {
	svc, rsaARN, symARN := sharedRSA(t)
	m := wrap(t, mustNewRSA(t, svc, rsaARN), commitKey, nil)
	ct := m.EncryptedDataKeys[0].Ciphertext
	a, err := awskms.ParseARN(rsaARN)
	if err != nil {
		t.Fatal(err)
	}
	otherAccount := "arn:aws:kms:us-east-1:444455556666:key/" + a.ResourceID
	edks := []keyring.EncryptedDataKey{
		{ProviderID: "aws-kms-rsa", ProviderInfo: []byte(symARN), Ciphertext: ct},
		{ProviderID: "aws-kms-rsa", ProviderInfo: []byte(otherAccount), Ciphertext: ct},
		{ProviderID: "aws-kms-rsa", ProviderInfo: []byte(a.ResourceID), Ciphertext: ct},
		{ProviderID: "aws-kms", ProviderInfo: []byte(rsaARN), Ciphertext: ct},
		{ProviderID: "raw", ProviderInfo: []byte(rsaARN), Ciphertext: ct},
	}
	spy := newSpy(svc)
	kr := mustNewRSA(t, spy, rsaARN)
	dm := decryptMaterials(t, commitKey, nil)
	ue := unwrapErr(t, kr.OnDecrypt(t.Context(), dm, edks))
	if spy.Total() != 0 || len(ue.Errs) != 0 || dm.DataKey != nil {
		t.Errorf("EDKs of other keys: %d KMS calls, errors %v; want none", spy.Total(), ue.Errs)
	}
	// Ours, after them, is found with one Decrypt call.
	if err := kr.OnDecrypt(t.Context(), dm, append(edks, m.EncryptedDataKeys[0])); err != nil || !bytes.Equal(dm.DataKey, m.DataKey) {
		t.Errorf("OnDecrypt(others, then ours) err = %v, want the data key", err)
	}
	if got := spy.DecryptKeyIDs(); !slices.Equal(got, []string{rsaARN}) {
		t.Errorf("Decrypt KeyIds = %q, want [%q]", got, rsaARN)
	}
	if in := spy.decryptIn[0]; in.EncryptionAlgorithm != kms.AlgRSAOAEPSHA256 || len(in.EncryptionContext) != 0 {
		t.Errorf("Decrypt input algorithm %q context %v, want RSAES_OAEP_SHA_256 and no context", in.EncryptionAlgorithm, in.EncryptionContext)
	}
}

func TestRSAInMultiKeyring(t *testing.T) {
	svc, rsaARN, symARN := sharedRSA(t)
	rsaKR := mustNewRSA(t, svc, rsaARN)
	symKR := mustNew(t, svc, symARN)
	plaintext := []byte("symmetric and RSA")
	ec := map[string]string{"multi": "yes"}

	for name, tt := range map[string]struct {
		kr        keyring.Keyring
		providers []string
	}{
		"symmetric generator": {keyring.NewMulti(symKR, rsaKR), []string{"aws-kms", "aws-kms-rsa"}},
		"RSA generator":       {keyring.NewMulti(rsaKR, symKR), []string{"aws-kms-rsa", "aws-kms"}},
	} {
		t.Run(name, func(t *testing.T) {
			msg, err := envelope.EncryptBytes(t.Context(), plaintext, tt.kr, envelope.WithSuite(commitKey), envelope.WithContext(ec))
			if err != nil {
				t.Fatalf("EncryptBytes err = %v, want nil", err)
			}
			h, err := envelope.ReadHeader(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			var providers []string
			for _, k := range h.EncryptedDataKeys {
				providers = append(providers, k.ProviderID)
			}
			if !slices.Equal(providers, tt.providers) {
				t.Errorf("EDK providers = %q, want %q", providers, tt.providers)
			}
			for dname, dkr := range map[string]keyring.Keyring{
				"RSA alone":       mustNewRSA(t, svc, rsaARN),
				"symmetric alone": mustNew(t, svc, symARN),
				"multi":           keyring.NewMulti(nil, mustNewRSA(t, svc, rsaARN), mustNew(t, svc, symARN)),
			} {
				got, _, err := envelope.DecryptBytes(t.Context(), msg, dkr)
				if err != nil || !bytes.Equal(got, plaintext) {
					t.Errorf("DecryptBytes with %s = %q, %v; want %q", dname, got, err, plaintext)
				}
			}
		})
	}
}

// TestRSAWireFormat checks the EDK against the spec without the keyring's
// help: KMS Decrypt with RSAES_OAEP_SHA_256 must give SHA-384 of the
// serialized context (48 bytes), then the data key.
func TestRSAWireFormat(t *testing.T) {
	svc, rsaARN, _ := sharedRSA(t)
	kr := mustNewRSA(t, svc, rsaARN)
	for _, tt := range []struct {
		ec         map[string]string
		serialized []byte
	}{
		{
			map[string]string{"b": "2", "a": "1"},
			// count 2, then "a"="1", "b"="2", sorted, each u16-length-prefixed
			[]byte{0, 2, 0, 1, 'a', 0, 1, '1', 0, 1, 'b', 0, 1, '2'},
		},
		// An empty context serializes to no bytes at all.
		{map[string]string{}, nil},
	} {
		m := wrap(t, kr, commitKey, tt.ec)
		edk := m.EncryptedDataKeys[0]
		out, err := svc.Decrypt(t.Context(), &kms.DecryptInput{
			KeyId: rsaARN, CiphertextBlob: edk.Ciphertext, EncryptionAlgorithm: kms.AlgRSAOAEPSHA256,
		})
		if err != nil {
			t.Fatalf("context %v: KMS Decrypt err = %v, want nil", tt.ec, err)
		}
		digest := sha512.Sum384(tt.serialized)
		want := append(digest[:], m.DataKey...)
		if len(out.Plaintext) != 48+32 || !bytes.Equal(out.Plaintext, want) {
			t.Errorf("context %v: unwrapped %x, want SHA-384(%x) ‖ data key = %x", tt.ec, out.Plaintext, tt.serialized, want)
		}
		// The padding is OAEP with SHA-256, not SHA-1.
		if _, err := svc.Decrypt(t.Context(), &kms.DecryptInput{
			KeyId: rsaARN, CiphertextBlob: edk.Ciphertext, EncryptionAlgorithm: kms.AlgRSAOAEPSHA1,
		}); err == nil {
			t.Errorf("context %v: the EDK also decrypts with RSAES_OAEP_SHA_1", tt.ec)
		}
	}
}

func TestRSARejectsBadKMSAnswers(t *testing.T) {
	svc, rsaARN, symARN := sharedRSA(t)
	m := wrap(t, mustNewRSA(t, svc, rsaARN), commitKey, nil)
	for _, tt := range []struct {
		name string
		edit func(*kms.DecryptOutput)
		want string
	}{
		{"other key", func(o *kms.DecryptOutput) { o.KeyId = symARN }, "answered for key"},
		{"key id not ARN", func(o *kms.DecryptOutput) {
			o.KeyId = strings.TrimPrefix(o.KeyId, "arn:aws:kms:us-east-1:111122223333:key/")
		}, "answered for key"},
		{"short", func(o *kms.DecryptOutput) { o.Plaintext = o.Plaintext[:48+16] }, "unwrapped 64 bytes, want 80"},
		{"digest only", func(o *kms.DecryptOutput) { o.Plaintext = o.Plaintext[:48] }, "unwrapped 48 bytes"},
		{"long", func(o *kms.DecryptOutput) { o.Plaintext = append(o.Plaintext, 0) }, "unwrapped 81 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spy := newSpy(svc)
			spy.editDecrypt = func(_ int, o *kms.DecryptOutput) { tt.edit(o) }
			dm := decryptMaterials(t, commitKey, nil)
			ue := unwrapErr(t, mustNewRSA(t, spy, rsaARN).OnDecrypt(t.Context(), dm, m.EncryptedDataKeys))
			if dm.DataKey != nil || len(ue.Errs) != 1 || !strings.Contains(ue.Errs[0].Error(), tt.want) {
				t.Errorf("collected errors %v, data key set %v; want one error containing %q", ue.Errs, dm.DataKey != nil, tt.want)
			}
			if !allZero(spy.decryptOut[0].Plaintext) {
				t.Errorf("the refused answer's plaintext was not cleared")
			}
		})
	}
}

func TestRSAKeyringOverSymmetricKey(t *testing.T) {
	svc, _, symARN := sharedRSA(t)
	m := encryptMaterials(t, commitKey, nil)
	err := mustNewRSA(t, svc, symARN).OnEncrypt(t.Context(), m)
	if err == nil || !strings.Contains(err.Error(), symARN) || !errors.Is(err, kms.ErrUnsupported) {
		t.Errorf("OnEncrypt with a symmetric key err = %v, want UnsupportedOperationException naming %s", err, symARN)
	}
	if m.DataKey != nil || len(m.EncryptedDataKeys) != 0 {
		t.Errorf("OnEncrypt failed but changed the materials")
	}
}

func TestRSARefusesUnusablePublicKey(t *testing.T) {
	svc, rsaARN, _ := sharedRSA(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, err := x509.MarshalPKIXPublicKey(&small.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		der  []byte
		want string
	}{
		{"RSA-1024", smallDER, "2048 bits or more"},
		{"ECDSA", ecDER, "2048 bits or more"},
		{"not DER", []byte("not a public key"), "GetPublicKey"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spy := newSpy(svc)
			spy.editGetPub = func(o *kms.GetPublicKeyOutput) { o.PublicKey = tt.der }
			m := encryptMaterials(t, commitKey, nil)
			err := mustNewRSA(t, spy, rsaARN).OnEncrypt(t.Context(), m)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), rsaARN) {
				t.Errorf("OnEncrypt with a %s public key err = %v, want an error containing %q and the key ARN", tt.name, err, tt.want)
			}
			if m.DataKey != nil || len(m.EncryptedDataKeys) != 0 {
				t.Errorf("OnEncrypt failed but changed the materials")
			}
		})
	}
}

func TestRSARefusesInvalidContext(t *testing.T) {
	svc, rsaARN, _ := sharedRSA(t)
	kr := mustNewRSA(t, svc, rsaARN)
	bad := map[string]string{"key": "\xff"}
	if err := kr.OnEncrypt(t.Context(), encryptMaterials(t, commitKey, bad)); err == nil {
		t.Errorf("OnEncrypt with a context that is not UTF-8 err = nil, want an error")
	}
	m := wrap(t, kr, commitKey, nil)
	if err := kr.OnDecrypt(t.Context(), decryptMaterials(t, commitKey, bad), m.EncryptedDataKeys); err == nil {
		t.Errorf("OnDecrypt with a context that is not UTF-8 err = nil, want an error")
	}
	if err := mustDiscovery(t, svc, nil).OnDecrypt(t.Context(), decryptMaterials(t, commitKey, bad), m.EncryptedDataKeys); err == nil {
		t.Errorf("discovery OnDecrypt of an aws-kms-rsa EDK with a context that is not UTF-8 err = nil, want an error")
	}

	// With a data key already present, OnDecrypt leaves it and calls nothing.
	spy := newSpy(svc)
	dm := decryptMaterials(t, commitKey, nil)
	dm.DataKey = bytes.Repeat([]byte{1}, 32)
	_ = mustNewRSA(t, spy, rsaARN).OnDecrypt(t.Context(), dm, m.EncryptedDataKeys)
	if !bytes.Equal(dm.DataKey, bytes.Repeat([]byte{1}, 32)) || spy.Total() != 0 {
		t.Errorf("OnDecrypt with a data key present changed it or called KMS (%d calls)", spy.Total())
	}
}

// TestRSARetriesPublicKeyAfterFailure: a GetPublicKey failure on first use
// (a KMS error, a cancelled context) should not break the keyring for good.
func TestRSARetriesPublicKeyAfterFailure(t *testing.T) {
	svc, rsaARN, _ := sharedRSA(t)

	t.Run("KMS error", func(t *testing.T) {
		spy := newSpy(svc)
		spy.failGetPub = func(n int) error {
			if n == 0 {
				return &kms.Error{Code: kms.CodeInternal, Message: "transient failure"}
			}
			return nil
		}
		kr := mustNewRSA(t, spy, rsaARN)
		if err := kr.OnEncrypt(t.Context(), encryptMaterials(t, commitKey, nil)); err == nil {
			t.Fatalf("OnEncrypt with GetPublicKey failing err = nil, want the failure")
		}
		if err := kr.OnEncrypt(t.Context(), encryptMaterials(t, commitKey, nil)); err != nil {
			t.Errorf("OnEncrypt after GetPublicKey recovered err = %v, want nil (%d GetPublicKey calls)", err, spy.Calls("GetPublicKey"))
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		kr := mustNewRSA(t, svc, rsaARN)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := kr.OnEncrypt(ctx, encryptMaterials(t, commitKey, nil)); err == nil {
			t.Fatalf("OnEncrypt with a cancelled context err = nil, want an error")
		}
		if err := kr.OnEncrypt(t.Context(), encryptMaterials(t, commitKey, nil)); err != nil {
			t.Errorf("OnEncrypt with a live context after a cancelled one err = %v, want nil", err)
		}
	})
}

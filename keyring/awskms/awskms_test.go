package awskms_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/suite"
)

func mustNew(t testing.TB, c awskms.Client, generator string, keys ...string) *awskms.Keyring {
	t.Helper()
	kr, err := awskms.New(c, generator, keys...)
	if err != nil {
		t.Fatalf("awskms.New(%q, %q) err = %v, want nil", generator, keys, err)
	}
	return kr
}

func TestNewRefuses(t *testing.T) {
	svc := newKMS(t)
	long := strings.Repeat("a", 2049)
	tests := []struct {
		name      string
		client    awskms.Client
		generator string
		keys      []string
		want      string
	}{
		{"nil client", nil, "alias/x", nil, "nil KMS client"},
		{"no key", svc, "", nil, "no KMS key"},
		{"long generator", svc, long, nil, "longer than 2048"},
		{"long key", svc, "alias/x", []string{long}, "longer than 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := awskms.New(tt.client, tt.generator, tt.keys...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("awskms.New() = %v, %v; want an error containing %q", kr, err, tt.want)
			}
		})
	}
}

func TestKeyringGeneratorOnly(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	for _, id := range []suite.ID{suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, suite.AES256GCMHKDFSHA512CommitKey, suite.AES192GCMHKDFSHA384ECDSAP384, suite.AES128GCM} {
		t.Run(id.String(), func(t *testing.T) {
			spy := newSpy(svc)
			kr := mustNew(t, spy, key.Arn)
			ec := map[string]string{"purpose": "generator only"}
			m := wrap(t, kr, id, ec)

			if got, want := len(m.DataKey), m.Suite.KeyLength; got != want {
				t.Errorf("data key is %d bytes, want %d", got, want)
			}
			if len(m.EncryptedDataKeys) != 1 {
				t.Fatalf("OnEncrypt made %d EDKs, want 1", len(m.EncryptedDataKeys))
			}
			edk := m.EncryptedDataKeys[0]
			if edk.ProviderID != "aws-kms" || string(edk.ProviderInfo) != key.Arn {
				t.Errorf("EDK = %s, want provider aws-kms with info %q", edk, key.Arn)
			}
			if spy.Calls("GenerateDataKey") != 1 || spy.Calls("Encrypt") != 0 {
				t.Errorf("KMS calls = %v, want one GenerateDataKey", spy.calls)
			}
			in := spy.generateIn[0]
			if in.KeyId != key.Arn || in.NumberOfBytes == nil || int(*in.NumberOfBytes) != m.Suite.KeyLength || in.KeySpec != "" {
				t.Errorf("GenerateDataKey input = %+v, want KeyId %q and NumberOfBytes %d", in, key.Arn, m.Suite.KeyLength)
			}
			if !maps.Equal(in.EncryptionContext, ec) {
				t.Errorf("GenerateDataKey context = %v, want %v", in.EncryptionContext, ec)
			}

			dm := decryptMaterials(t, id, ec)
			if err := kr.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys); err != nil {
				t.Fatalf("OnDecrypt err = %v, want nil", err)
			}
			if !bytes.Equal(dm.DataKey, m.DataKey) {
				t.Errorf("OnDecrypt data key differs from the one OnEncrypt made")
			}
			if got := spy.decryptIn[0]; got.KeyId != key.Arn || !maps.Equal(got.EncryptionContext, ec) || !bytes.Equal(got.CiphertextBlob, edk.Ciphertext) {
				t.Errorf("Decrypt input = KeyId %q context %v, want KeyId %q context %v and the EDK ciphertext", got.KeyId, got.EncryptionContext, key.Arn, ec)
			}
		})
	}
}

// threeKeys makes three keys and names them as a user might: the generator
// by alias name, the second by bare key id, the third by alias ARN.
func threeKeys(t *testing.T, svc *kms.Service) (arns, names []string) {
	t.Helper()
	k1, k2, k3 := newKey(t, svc, ""), newKey(t, svc, ""), newKey(t, svc, "")
	newAlias(t, svc, "alias/generator", k1.KeyId)
	newAlias(t, svc, "alias/third", k3.KeyId)
	arns = []string{k1.Arn, k2.Arn, k3.Arn}
	names = []string{"alias/generator", k2.KeyId, svc.AliasARN("alias/third")}
	return arns, names
}

func TestKeyringGeneratorAndKeys(t *testing.T) {
	svc := newKMS(t)
	arns, names := threeKeys(t, svc)
	spy := newSpy(svc)
	kr := mustNew(t, spy, names[0], names[1:]...)
	ec := map[string]string{"tenant": "acme", "purpose": "three keys"}
	m := wrap(t, kr, suite.AES256GCMHKDFSHA512CommitKey, ec)

	for _, k := range m.EncryptedDataKeys {
		if k.ProviderID != awskms.ProviderID {
			t.Errorf("EDK provider id = %q, want %q", k.ProviderID, awskms.ProviderID)
		}
	}
	// Provider info is the key ARN KMS answered with, whatever name the
	// keyring was given.
	if got := providerInfos(m.EncryptedDataKeys); !slices.Equal(got, arns) {
		t.Errorf("EDK provider infos = %q, want the key ARNs %q", got, arns)
	}
	if spy.Calls("GenerateDataKey") != 1 || spy.Calls("Encrypt") != 2 {
		t.Errorf("KMS calls = %v, want 1 GenerateDataKey and 2 Encrypt", spy.calls)
	}
	for i, in := range spy.encryptIn {
		if in.KeyId != names[i+1] || !bytes.Equal(in.Plaintext, m.DataKey) || !maps.Equal(in.EncryptionContext, ec) {
			t.Errorf("Encrypt call %d = KeyId %q context %v, want KeyId %q, the data key and context %v", i, in.KeyId, in.EncryptionContext, names[i+1], ec)
		}
	}

	// A keyring with any one of the key ARNs decrypts, calling KMS only for
	// the EDK of its key.
	for i, arn := range arns {
		spy := newSpy(svc)
		kr := mustNew(t, spy, arn)
		dm := decryptMaterials(t, m.Suite.ID, ec)
		if err := kr.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys); err != nil {
			t.Fatalf("OnDecrypt with key %d (%s) err = %v, want nil", i, arn, err)
		}
		if !bytes.Equal(dm.DataKey, m.DataKey) {
			t.Errorf("OnDecrypt with key %d: data key differs", i)
		}
		if got := spy.DecryptKeyIDs(); !slices.Equal(got, []string{arn}) {
			t.Errorf("OnDecrypt with key %d: Decrypt KeyIds = %q, want [%q]", i, got, arn)
		}
	}

	// A non-generator key in the key list also decrypts.
	kr2 := mustNew(t, svc, "", arns[2])
	dm := decryptMaterials(t, m.Suite.ID, ec)
	if err := kr2.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys); err != nil || !bytes.Equal(dm.DataKey, m.DataKey) {
		t.Errorf("OnDecrypt with New(\"\", %q) err = %v, want the data key", arns[2], err)
	}
}

func TestKeyringNoGeneratorWrapsExistingKey(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	spy := newSpy(svc)
	kr := mustNew(t, spy, "", key.Arn)

	m := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
	if err := kr.OnEncrypt(t.Context(), m); err == nil || !strings.Contains(err.Error(), "no generator") {
		t.Errorf("OnEncrypt without a data key or generator err = %v, want one about the missing generator", err)
	}
	if spy.Total() != 0 || m.DataKey != nil || len(m.EncryptedDataKeys) != 0 {
		t.Errorf("after the failure: %d KMS calls, data key %v, %d EDKs; want none", spy.Total(), m.DataKey != nil, len(m.EncryptedDataKeys))
	}

	m.DataKey = bytes.Repeat([]byte{7}, 32)
	if err := kr.OnEncrypt(t.Context(), m); err != nil {
		t.Fatalf("OnEncrypt with a data key err = %v, want nil", err)
	}
	if spy.Calls("Encrypt") != 1 || spy.Calls("GenerateDataKey") != 0 || len(m.EncryptedDataKeys) != 1 {
		t.Errorf("KMS calls = %v, %d EDKs; want one Encrypt and one EDK", spy.calls, len(m.EncryptedDataKeys))
	}
}

func TestKeyringDecryptNoMatchingKey(t *testing.T) {
	svc := newKMS(t)
	arns, names := threeKeys(t, svc)
	m := wrap(t, mustNew(t, svc, names[0], names[1:]...), suite.AES256GCMHKDFSHA512CommitKey, nil)
	other := newKey(t, svc, "")

	for _, ids := range [][]string{
		{other.Arn},
		{"arn:aws:kms:us-east-1:444455556666:key/" + other.KeyId},
		// Decryption matches the ARNs in the message, so the names that
		// worked for encryption do not match.
		names,
		{strings.ToUpper(arns[0])},
	} {
		spy := newSpy(svc)
		kr := mustNew(t, spy, "", ids...)
		dm := decryptMaterials(t, m.Suite.ID, nil)
		ue := unwrapErr(t, kr.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys))
		if dm.DataKey != nil {
			t.Errorf("keys %q: OnDecrypt set a data key", ids)
		}
		if spy.Total() != 0 {
			t.Errorf("keys %q: %d KMS calls, want none for keys that match no EDK", ids, spy.Total())
		}
		if len(ue.Keys) != 3 || len(ue.Errs) != 0 {
			t.Errorf("keys %q: UnwrapError lists %d keys and %d errors, want 3 and 0", ids, len(ue.Keys), len(ue.Errs))
		}
		for _, arn := range arns {
			if !strings.Contains(ue.Error(), arn) {
				t.Errorf("keys %q: error %q does not name the message's key %s", ids, ue, arn)
			}
		}
	}
}

func TestKeyringSkipsOtherProviders(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	kr := mustNew(t, svc, key.Arn)
	m := wrap(t, kr, suite.AES256GCMHKDFSHA512CommitKey, nil)
	real := m.EncryptedDataKeys[0]
	edks := []keyring.EncryptedDataKey{
		{ProviderID: "aws-kms-rsa", ProviderInfo: real.ProviderInfo, Ciphertext: real.Ciphertext},
		{ProviderID: "raw", ProviderInfo: real.ProviderInfo, Ciphertext: real.Ciphertext},
		{ProviderID: "AWS-KMS", ProviderInfo: real.ProviderInfo, Ciphertext: real.Ciphertext},
	}
	spy := newSpy(svc)
	kr = mustNew(t, spy, key.Arn)
	unwrapErr(t, kr.OnDecrypt(t.Context(), decryptMaterials(t, m.Suite.ID, nil), edks))
	if spy.Total() != 0 {
		t.Errorf("%d KMS calls for EDKs of other providers, want none", spy.Total())
	}
	// The real EDK after them is found.
	dm := decryptMaterials(t, m.Suite.ID, nil)
	if err := kr.OnDecrypt(t.Context(), dm, append(edks, real)); err != nil || !bytes.Equal(dm.DataKey, m.DataKey) {
		t.Errorf("OnDecrypt(other providers, then ours) err = %v, want the data key", err)
	}
}

func TestKeyringOnDecryptKeepsExistingDataKey(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	m := wrap(t, mustNew(t, svc, key.Arn), suite.AES256GCMHKDFSHA512CommitKey, nil)
	spy := newSpy(svc)
	dm := decryptMaterials(t, m.Suite.ID, nil)
	have := bytes.Repeat([]byte{1}, 32)
	dm.DataKey = have
	// The spec has OnDecrypt fail here; this package's keyrings leave the
	// materials alone instead (see keyring.Keyring). Either way KMS is not
	// called and the key stays.
	for _, kr := range []keyring.Keyring{mustNew(t, spy, key.Arn), mustDiscovery(t, spy, nil)} {
		_ = kr.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys)
		if !bytes.Equal(dm.DataKey, have) || spy.Total() != 0 {
			t.Errorf("%T.OnDecrypt with a data key present: key changed %v, %d KMS calls; want unchanged and none", kr, !bytes.Equal(dm.DataKey, have), spy.Total())
		}
	}
}

func TestKeyringContextBound(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	kr := mustNew(t, svc, key.Arn)
	ec := map[string]string{"purpose": "test", "tenant": "acme"}
	m := wrap(t, kr, suite.AES256GCMHKDFSHA512CommitKey, ec)

	for _, other := range []map[string]string{
		{"purpose": "other", "tenant": "acme"},
		{"purpose": "test"},
		{"purpose": "test", "tenant": "acme", "extra": "x"},
		{},
	} {
		dm := decryptMaterials(t, m.Suite.ID, other)
		err := kr.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys)
		ue := unwrapErr(t, err)
		if dm.DataKey != nil {
			t.Errorf("context %v: OnDecrypt set a data key", other)
		}
		if len(ue.Errs) != 1 || !errors.Is(err, kms.ErrInvalidCiphertext) {
			t.Errorf("context %v: err = %v, want the KMS InvalidCiphertextException collected", other, err)
		}
	}
}

func TestKeyringRejectsNonARNKeyID(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	newAlias(t, svc, "alias/k", key.KeyId)
	// An alias ARN is an ARN, but no key ARN (the ESDK wants one): OnDecrypt
	// never unwraps an EDK that names one (TestKeyringRefusesAliasProviderInfo).
	for _, answer := range []string{key.KeyId, "alias/k", "", "arn:aws:kms:us-east-1:111122223333:key/", svc.AliasARN("alias/k")} {
		t.Run("GenerateDataKey/"+answer, func(t *testing.T) {
			spy := newSpy(svc)
			spy.editGenerate = func(out *kms.GenerateDataKeyOutput) { out.KeyId = answer }
			m := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
			err := mustNew(t, spy, key.Arn).OnEncrypt(t.Context(), m)
			if err == nil || !strings.Contains(err.Error(), "not a key ARN") || !strings.Contains(err.Error(), "GenerateDataKey") {
				t.Fatalf("OnEncrypt with GenerateDataKey answering KeyId %q err = %v, want an error about the key ARN", answer, err)
			}
			if m.DataKey != nil || len(m.EncryptedDataKeys) != 0 {
				t.Errorf("OnEncrypt failed but changed the materials")
			}
		})
		t.Run("Encrypt/"+answer, func(t *testing.T) {
			spy := newSpy(svc)
			spy.editEncrypt = func(out *kms.EncryptOutput) { out.KeyId = answer }
			m := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
			err := mustNew(t, spy, key.Arn, key.Arn).OnEncrypt(t.Context(), m)
			if err == nil || !strings.Contains(err.Error(), "not a key ARN") || !strings.Contains(err.Error(), "Encrypt") {
				t.Fatalf("OnEncrypt with Encrypt answering KeyId %q err = %v, want an error about the key ARN", answer, err)
			}
		})
	}
}

func TestKeyringRejectsWrongDataKeyLength(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	spy := newSpy(svc)
	spy.editGenerate = func(out *kms.GenerateDataKeyOutput) { out.Plaintext = out.Plaintext[:16] }
	m := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
	if err := mustNew(t, spy, key.Arn).OnEncrypt(t.Context(), m); err == nil || !strings.Contains(err.Error(), "16-byte") {
		t.Errorf("OnEncrypt with a 16-byte generated key err = %v, want an error naming the length", err)
	}
	if m.DataKey != nil || len(m.EncryptedDataKeys) != 0 {
		t.Errorf("OnEncrypt failed but changed the materials")
	}
}

// A GenerateDataKey answer that is refused (a key id that is no key ARN, a
// data key of the wrong length) must not leave its plaintext data key in
// memory: OnEncrypt clears it, as OnDecrypt clears a refused Decrypt
// answer.
func TestKeyringClearsRefusedGeneratedKey(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	for _, tc := range []struct {
		name string
		edit func(out *kms.GenerateDataKeyOutput)
	}{
		{"key id", func(out *kms.GenerateDataKeyOutput) { out.KeyId = key.KeyId }},
		{"length", func(out *kms.GenerateDataKeyOutput) { out.Plaintext = out.Plaintext[:16] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var answer *kms.GenerateDataKeyOutput
			spy := newSpy(svc)
			spy.editGenerate = func(out *kms.GenerateDataKeyOutput) { tc.edit(out); answer = out }
			m := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
			if err := mustNew(t, spy, key.Arn).OnEncrypt(t.Context(), m); err == nil {
				t.Fatalf("OnEncrypt err = nil, want the answer refused")
			}
			if answer == nil || len(answer.Plaintext) == 0 {
				t.Fatalf("GenerateDataKey was not called")
			}
			if !allZero(answer.Plaintext) {
				t.Errorf("the refused answer's plaintext data key was not cleared")
			}
		})
	}
}

func TestKeyringRejectsDecryptAnswerForOtherKey(t *testing.T) {
	svc := newKMS(t)
	k1, k2 := newKey(t, svc, ""), newKey(t, svc, "")
	m := wrap(t, mustNew(t, svc, k1.Arn, k2.Arn), suite.AES256GCMHKDFSHA512CommitKey, nil)

	// KMS answers the first Decrypt for another key: that EDK is rejected
	// and its plaintext cleared, and the next EDK is tried.
	spy := newSpy(svc)
	spy.editDecrypt = func(n int, out *kms.DecryptOutput) {
		if n == 0 {
			out.KeyId = k2.Arn
		}
	}
	dm := decryptMaterials(t, m.Suite.ID, nil)
	if err := mustNew(t, spy, k1.Arn, k2.Arn).OnDecrypt(t.Context(), dm, m.EncryptedDataKeys); err != nil {
		t.Fatalf("OnDecrypt err = %v, want the second EDK to unwrap", err)
	}
	if !bytes.Equal(dm.DataKey, m.DataKey) {
		t.Errorf("data key differs")
	}
	if got := spy.DecryptKeyIDs(); !slices.Equal(got, []string{k1.Arn, k2.Arn}) {
		t.Errorf("Decrypt KeyIds = %q, want %q", got, []string{k1.Arn, k2.Arn})
	}
	if !allZero(spy.decryptOut[0].Plaintext) {
		t.Errorf("the rejected answer's plaintext was not cleared")
	}

	// With only that key, nothing unwraps.
	spy = newSpy(svc)
	spy.editDecrypt = func(_ int, out *kms.DecryptOutput) { out.KeyId = k2.Arn }
	dm = decryptMaterials(t, m.Suite.ID, nil)
	ue := unwrapErr(t, mustNew(t, spy, k1.Arn).OnDecrypt(t.Context(), dm, m.EncryptedDataKeys))
	if dm.DataKey != nil || len(ue.Errs) != 1 || !strings.Contains(ue.Errs[0].Error(), k2.Arn) {
		t.Errorf("OnDecrypt err = %v, want one collected error naming %s", ue, k2.Arn)
	}
}

func TestKeyringRejectsDecryptWrongLength(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	m := wrap(t, mustNew(t, svc, key.Arn), suite.AES256GCMHKDFSHA512CommitKey, nil)
	for _, edit := range []struct {
		name string
		fn   func([]byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:31] }},
		{"long", func(b []byte) []byte { return append(b, 0) }},
		{"empty", func(b []byte) []byte { return b[:0] }},
	} {
		spy := newSpy(svc)
		spy.editDecrypt = func(_ int, out *kms.DecryptOutput) { out.Plaintext = edit.fn(out.Plaintext) }
		dm := decryptMaterials(t, m.Suite.ID, nil)
		ue := unwrapErr(t, mustNew(t, spy, key.Arn).OnDecrypt(t.Context(), dm, m.EncryptedDataKeys))
		if dm.DataKey != nil || len(ue.Errs) != 1 || !strings.Contains(ue.Errs[0].Error(), "want 32") {
			t.Errorf("%s plaintext: OnDecrypt err = %v, data key set %v; want a collected length error", edit.name, ue, dm.DataKey != nil)
		}
	}
}

func TestKeyringDisabledKey(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	kr := mustNew(t, svc, key.Arn)
	m := wrap(t, kr, suite.AES256GCMHKDFSHA512CommitKey, nil)
	if _, err := svc.DisableKey(t.Context(), &kms.DisableKeyInput{KeyId: key.KeyId}); err != nil {
		t.Fatalf("DisableKey err = %v", err)
	}

	err := kr.OnEncrypt(t.Context(), encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil))
	if err == nil || !strings.Contains(err.Error(), "DisabledException") || !errors.Is(err, kms.ErrDisabled) {
		t.Errorf("OnEncrypt with a disabled key err = %v, want a DisabledException", err)
	}
	// As a wrapping (non-generator) key too.
	m2 := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
	m2.DataKey = bytes.Repeat([]byte{3}, 32)
	if err := mustNew(t, svc, "", key.Arn).OnEncrypt(t.Context(), m2); err == nil || !strings.Contains(err.Error(), "DisabledException") {
		t.Errorf("OnEncrypt(Encrypt) with a disabled key err = %v, want a DisabledException", err)
	}

	dm := decryptMaterials(t, m.Suite.ID, nil)
	err = kr.OnDecrypt(t.Context(), dm, m.EncryptedDataKeys)
	unwrapErr(t, err)
	if !strings.Contains(err.Error(), "DisabledException") || !errors.Is(err, kms.ErrDisabled) {
		t.Errorf("OnDecrypt with a disabled key err = %v, want the DisabledException collected", err)
	}
}

func TestKeyringGrantTokens(t *testing.T) {
	svc := newKMS(t)
	k1, k2 := newKey(t, svc, ""), newKey(t, svc, "")
	spy := newSpy(svc)
	var tokens []string // real tokens: the KMS checks that they name grants
	for _, k := range []string{k1.KeyId, k2.KeyId} {
		g, err := svc.CreateGrant(t.Context(), &kms.CreateGrantInput{KeyId: k, GranteePrincipal: "arn:aws:iam::111122223333:role/app",
			Operations: []string{"Encrypt", "Decrypt", "GenerateDataKey"}})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, g.GrantToken)
	}
	kr := mustNew(t, spy, k1.Arn, k2.Arn).WithGrantTokens(tokens...)
	m := wrap(t, kr, suite.AES256GCMHKDFSHA512CommitKey, nil)
	if err := kr.OnDecrypt(t.Context(), decryptMaterials(t, m.Suite.ID, nil), m.EncryptedDataKeys); err != nil {
		t.Fatalf("OnDecrypt err = %v", err)
	}
	if got := spy.generateIn[0].GrantTokens; !slices.Equal(got, tokens) {
		t.Errorf("GenerateDataKey grant tokens = %q, want %q", got, tokens)
	}
	if got := spy.encryptIn[0].GrantTokens; !slices.Equal(got, tokens) {
		t.Errorf("Encrypt grant tokens = %q, want %q", got, tokens)
	}
	if got := spy.decryptIn[0].GrantTokens; !slices.Equal(got, tokens) {
		t.Errorf("Decrypt grant tokens = %q, want %q", got, tokens)
	}
}

func TestKeyringString(t *testing.T) {
	kr := mustNew(t, newKMS(t), "alias/gen", "alias/other")
	if s := kr.String(); !strings.Contains(s, "alias/gen") || !strings.Contains(s, "alias/other") {
		t.Errorf("String() = %q, want it to name both keys", s)
	}
}

func TestKeyringMessageRoundTrip(t *testing.T) {
	svc := newKMS(t)
	arns, names := threeKeys(t, svc)
	enc := mustNew(t, svc, names[0], names[1:]...)
	plaintext := []byte("a message under three KMS keys")
	for _, tt := range []struct {
		name  string
		suite suite.ID // 0: the default
		ec    map[string]string
	}{
		{"default suite", 0, nil},
		{"default suite with context", 0, map[string]string{"tenant": "acme", "ünïcode": "𝄞"}},
		{"0x0478", suite.AES256GCMHKDFSHA512CommitKey, nil},
		{"0x0478 with context", suite.AES256GCMHKDFSHA512CommitKey, map[string]string{"tenant": "acme"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []envelope.Option
			if tt.suite != 0 {
				opts = append(opts, envelope.WithSuite(tt.suite))
			}
			if tt.ec != nil {
				opts = append(opts, envelope.WithContext(tt.ec))
			}
			msg, err := envelope.EncryptBytes(t.Context(), plaintext, enc, opts...)
			if err != nil {
				t.Fatalf("EncryptBytes err = %v, want nil", err)
			}
			want := tt.suite
			if want == 0 {
				want = suite.AES256GCMHKDFSHA512CommitKeyECDSAP384
			}
			// Each key alone decrypts.
			for _, arn := range arns {
				got, h, err := envelope.DecryptBytes(t.Context(), msg, mustNew(t, svc, arn), opts...)
				if err != nil {
					t.Fatalf("DecryptBytes with %s err = %v, want nil", arn, err)
				}
				if !bytes.Equal(got, plaintext) {
					t.Errorf("DecryptBytes with %s = %q, want %q", arn, got, plaintext)
				}
				if h.Suite.ID != want {
					t.Errorf("message suite = %v, want %v", h.Suite.ID, want)
				}
				if infos := providerInfos(h.EncryptedDataKeys); !slices.Equal(infos, arns) {
					t.Errorf("header EDK infos = %q, want %q", infos, arns)
				}
				for k, v := range tt.ec {
					if h.Context[k] != v {
						t.Errorf("header context[%q] = %q, want %q", k, h.Context[k], v)
					}
				}
				if _, signed := h.Context["aws-crypto-public-key"]; signed != h.Suite.Signed() {
					t.Errorf("header has aws-crypto-public-key = %v for suite %v", signed, h.Suite.ID)
				}
			}
			// A key outside the message does not.
			other := newKey(t, svc, "")
			_, _, err = envelope.DecryptBytes(t.Context(), msg, mustNew(t, svc, other.Arn))
			if !errors.Is(err, envelope.ErrNoDataKey) {
				t.Errorf("DecryptBytes with another key err = %v, want ErrNoDataKey", err)
			}
		})
	}
}

func TestKeyringStreamingMultiFrame(t *testing.T) {
	svc := newKMS(t)
	k1, k2 := newKey(t, svc, ""), newKey(t, svc, "")
	const frame = 4096
	plaintext := make([]byte, 25*frame+17)
	rand.Read(plaintext)
	ec := map[string]string{"stream": "yes"}

	var msg bytes.Buffer
	w, err := envelope.Encrypt(t.Context(), &msg, mustNew(t, svc, k1.Arn, k2.Arn),
		envelope.WithSuite(suite.AES256GCMHKDFSHA512CommitKey), envelope.WithContext(ec), envelope.WithFrameSize(frame))
	if err != nil {
		t.Fatalf("Encrypt err = %v, want nil", err)
	}
	// Odd-sized writes, so frames straddle them.
	for rest := plaintext; len(rest) > 0; {
		n := min(len(rest), 1000)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatalf("Write err = %v", err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	if msg.Len() < len(plaintext)+26*28 {
		t.Errorf("message is %d bytes, too short for %d frames", msg.Len(), 26)
	}

	r, err := envelope.Decrypt(t.Context(), bytes.NewReader(msg.Bytes()), mustNew(t, svc, k2.Arn), envelope.WithContext(ec))
	if err != nil {
		t.Fatalf("Decrypt err = %v, want nil", err)
	}
	if h := r.Header(); !h.Framed || h.FrameLength != frame || len(h.EncryptedDataKeys) != 2 {
		t.Errorf("header framed=%v frame length %d, %d EDKs; want framed, %d, 2", h.Framed, h.FrameLength, len(h.EncryptedDataKeys), frame)
	}
	var got bytes.Buffer
	if _, err := io.CopyBuffer(&got, struct{ io.Reader }{r}, make([]byte, 777)); err != nil {
		t.Fatalf("reading the plaintext err = %v, want nil", err)
	}
	if !bytes.Equal(got.Bytes(), plaintext) {
		t.Errorf("streamed plaintext differs (%d bytes, want %d)", got.Len(), len(plaintext))
	}
}

// The ESDK requires each configured key identifier to be non-empty and a
// valid AWS KMS identifier (framework/aws-kms/aws-kms-keyring.md,
// Initialization); New only checks the length.
func TestNewRefusesInvalidIdentifiers(t *testing.T) {
	svc := newKMS(t)
	for _, keys := range [][]string{
		{"alias/ok", ""},
		{"arn:aws:kms::111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"arn:aws:kms:us-east-1:111122223333:key/"},
	} {
		if kr, err := awskms.New(svc, keys[0], keys[1:]...); err == nil {
			t.Errorf("awskms.New(%q) = %v, nil; want an error", keys, kr)
		}
	}
}

// The ESDK's OnDecrypt requires the provider info of a matching aws-kms EDK
// to be a key ARN, failing otherwise, before any KMS call; a keyring
// configured with an alias ARN must not send the message's alias to KMS.
func TestKeyringRefusesAliasProviderInfo(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	newAlias(t, svc, "alias/k", key.KeyId)
	aliasARN := svc.AliasARN("alias/k")
	m := wrap(t, mustNew(t, svc, aliasARN), suite.AES256GCMHKDFSHA512CommitKey, nil)
	edks := []keyring.EncryptedDataKey{{ProviderID: "aws-kms", ProviderInfo: []byte(aliasARN), Ciphertext: m.EncryptedDataKeys[0].Ciphertext}}
	spy := newSpy(svc)
	err := mustNew(t, spy, aliasARN).OnDecrypt(t.Context(), decryptMaterials(t, m.Suite.ID, nil), edks)
	if err == nil || spy.Total() != 0 {
		t.Errorf("OnDecrypt of an EDK naming alias ARN %s: err = %v after %d KMS calls; want an error and no call", aliasARN, err, spy.Total())
	}
}

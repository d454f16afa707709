package awskms_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/suite"
)

func mustDiscovery(t testing.TB, c awskms.Client, f *awskms.DiscoveryFilter) *awskms.Discovery {
	t.Helper()
	d, err := awskms.NewDiscovery(c, f)
	if err != nil {
		t.Fatalf("NewDiscovery(%+v) err = %v, want nil", f, err)
	}
	return d
}

func TestNewDiscoveryRefuses(t *testing.T) {
	svc := newKMS(t)
	for _, tt := range []struct {
		name   string
		client awskms.Client
		filter *awskms.DiscoveryFilter
	}{
		{"nil client", nil, nil},
		{"filter without partition", svc, &awskms.DiscoveryFilter{Accounts: []string{kms.DefaultAccountID}}},
		{"filter without accounts", svc, &awskms.DiscoveryFilter{Partition: "aws"}},
		{"filter with empty accounts", svc, &awskms.DiscoveryFilter{Partition: "aws", Accounts: []string{}}},
	} {
		if d, err := awskms.NewDiscovery(tt.client, tt.filter); err == nil {
			t.Errorf("%s: NewDiscovery = %v, nil; want an error", tt.name, d)
		}
	}
}

func TestDiscoveryCannotEncrypt(t *testing.T) {
	svc := newKMS(t)
	spy := newSpy(svc)
	d := mustDiscovery(t, spy, nil)
	m := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
	err := d.OnEncrypt(t.Context(), m)
	if err == nil || !strings.Contains(err.Error(), "discovery keyring cannot encrypt") {
		t.Errorf("OnEncrypt err = %v, want one saying a discovery keyring cannot encrypt", err)
	}
	if m.DataKey != nil || len(m.EncryptedDataKeys) != 0 || spy.Total() != 0 {
		t.Errorf("OnEncrypt changed the materials or called KMS")
	}
	if _, err := envelope.EncryptBytes(t.Context(), []byte("x"), d); err == nil || !strings.Contains(err.Error(), "cannot encrypt") {
		t.Errorf("EncryptBytes with a discovery keyring err = %v, want one saying it cannot encrypt", err)
	}
}

func TestDiscoveryDecryptsAnyKey(t *testing.T) {
	svc := newKMS(t)
	arns, names := threeKeys(t, svc)
	plaintext := []byte("found by discovery")
	ec := map[string]string{"who": "discovery"}

	// A message under all three keys, and one under each key alone.
	msgs := map[string][]byte{}
	all, err := envelope.EncryptBytes(t.Context(), plaintext, mustNew(t, svc, names[0], names[1:]...), envelope.WithContext(ec))
	if err != nil {
		t.Fatalf("EncryptBytes err = %v", err)
	}
	msgs["all keys"] = all
	for i, name := range names {
		msg, err := envelope.EncryptBytes(t.Context(), plaintext, mustNew(t, svc, name),
			envelope.WithContext(ec), envelope.WithSuite(suite.AES256GCMHKDFSHA512CommitKey))
		if err != nil {
			t.Fatalf("EncryptBytes with %s err = %v", name, err)
		}
		msgs[arns[i]] = msg
	}

	for _, f := range []*awskms.DiscoveryFilter{
		nil,
		{Partition: "aws", Accounts: []string{kms.DefaultAccountID}},
		{Partition: "aws", Accounts: []string{"444455556666", kms.DefaultAccountID}},
	} {
		for name, msg := range msgs {
			spy := newSpy(svc)
			got, _, err := envelope.DecryptBytes(t.Context(), msg, mustDiscovery(t, spy, f))
			if err != nil || !bytes.Equal(got, plaintext) {
				t.Errorf("filter %+v, message %s: DecryptBytes = %q, %v; want %q", f, name, got, err, plaintext)
			}
			if n := spy.Calls("Decrypt"); n != 1 {
				t.Errorf("filter %+v, message %s: %d Decrypt calls, want 1 (the first EDK)", f, name, n)
			}
		}
	}
}

func TestDiscoveryContextBound(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	m := wrap(t, mustNew(t, svc, key.Arn), suite.AES256GCMHKDFSHA512CommitKey, map[string]string{"a": "1"})
	dm := decryptMaterials(t, m.Suite.ID, map[string]string{"a": "2"})
	err := mustDiscovery(t, svc, nil).OnDecrypt(t.Context(), dm, m.EncryptedDataKeys)
	unwrapErr(t, err)
	if dm.DataKey != nil || !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Errorf("OnDecrypt with another context err = %v, want InvalidCiphertextException collected", err)
	}
}

func TestDiscoveryFilterSkipsWithoutCallingKMS(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	m := wrap(t, mustNew(t, svc, key.Arn), suite.AES256GCMHKDFSHA512CommitKey, nil)
	for _, f := range []*awskms.DiscoveryFilter{
		{Partition: "aws", Accounts: []string{"444455556666"}},
		{Partition: "aws-cn", Accounts: []string{kms.DefaultAccountID}},
		{Partition: "aws-us-gov", Accounts: []string{kms.DefaultAccountID, "444455556666"}},
		{Partition: "AWS", Accounts: []string{kms.DefaultAccountID}},
	} {
		spy := newSpy(svc)
		dm := decryptMaterials(t, m.Suite.ID, nil)
		ue := unwrapErr(t, mustDiscovery(t, spy, f).OnDecrypt(t.Context(), dm, m.EncryptedDataKeys))
		if spy.Total() != 0 {
			t.Errorf("filter %+v: %d KMS calls, want none", f, spy.Total())
		}
		if dm.DataKey != nil || len(ue.Errs) != 0 {
			t.Errorf("filter %+v: data key set %v, errors %v; want neither", f, dm.DataKey != nil, ue.Errs)
		}
		if !strings.Contains(ue.Error(), f.Partition) {
			t.Errorf("filter %+v: error %q does not describe the filter", f, ue)
		}
	}
}

func TestDiscoveryRefusesBadProviderInfo(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	newAlias(t, svc, "alias/k", key.KeyId)
	m := wrap(t, mustNew(t, svc, key.Arn), suite.AES256GCMHKDFSHA512CommitKey, nil)
	ct := m.EncryptedDataKeys[0].Ciphertext

	for _, info := range []string{
		key.KeyId,
		"alias/k",
		svc.AliasARN("alias/k"),
		"arn:aws:kms:us-east-1:111122223333:key/",
		"arn:aws:kms::111122223333:key/" + key.KeyId,
		"arn:aws:s3:us-east-1:111122223333:key/" + key.KeyId,
		"",
	} {
		for _, f := range []*awskms.DiscoveryFilter{nil, {Partition: "aws", Accounts: []string{kms.DefaultAccountID}}} {
			spy := newSpy(svc)
			dm := decryptMaterials(t, m.Suite.ID, nil)
			edks := []keyring.EncryptedDataKey{{ProviderID: "aws-kms", ProviderInfo: []byte(info), Ciphertext: ct}}
			ue := unwrapErr(t, mustDiscovery(t, spy, f).OnDecrypt(t.Context(), dm, edks))
			if spy.Total() != 0 {
				t.Errorf("provider info %q, filter %+v: %d KMS calls, want none", info, f, spy.Total())
			}
			if len(ue.Errs) != 1 || !strings.Contains(ue.Errs[0].Error(), "not a KMS key ARN") {
				t.Errorf("provider info %q, filter %+v: collected errors %v, want one saying it is not a key ARN", info, f, ue.Errs)
			}
		}
	}
}

func TestDiscoverySkipsOtherProviders(t *testing.T) {
	svc := newKMS(t)
	key := newKey(t, svc, "")
	m := wrap(t, mustNew(t, svc, key.Arn), suite.AES256GCMHKDFSHA512CommitKey, nil)
	real := m.EncryptedDataKeys[0]
	edks := []keyring.EncryptedDataKey{
		{ProviderID: "AWS-KMS", ProviderInfo: real.ProviderInfo, Ciphertext: real.Ciphertext},
		{ProviderID: "my-raw-keys", ProviderInfo: []byte("not an ARN"), Ciphertext: real.Ciphertext},
	}
	spy := newSpy(svc)
	ue := unwrapErr(t, mustDiscovery(t, spy, nil).OnDecrypt(t.Context(), decryptMaterials(t, m.Suite.ID, nil), edks))
	if spy.Total() != 0 || len(ue.Errs) != 0 {
		t.Errorf("EDKs of other providers: %d KMS calls, errors %v; want none", spy.Total(), ue.Errs)
	}

	// An aws-kms-rsa EDK (which discovery also unwraps) that names a
	// symmetric key fails in KMS; the error is collected and the aws-kms
	// EDK after it still unwraps.
	rsaEDK := keyring.EncryptedDataKey{ProviderID: awskms.RSAProviderID, ProviderInfo: real.ProviderInfo, Ciphertext: real.Ciphertext}
	spy = newSpy(svc)
	dm := decryptMaterials(t, m.Suite.ID, nil)
	err := mustDiscovery(t, spy, nil).OnDecrypt(t.Context(), dm, []keyring.EncryptedDataKey{rsaEDK})
	if unwrapErr(t, err); dm.DataKey != nil || spy.Calls("Decrypt") != 1 {
		t.Errorf("aws-kms-rsa EDK of a symmetric key: data key set %v after %d Decrypt calls; want unset after 1", dm.DataKey != nil, spy.Calls("Decrypt"))
	}
	dm = decryptMaterials(t, m.Suite.ID, nil)
	if err := mustDiscovery(t, svc, nil).OnDecrypt(t.Context(), dm, []keyring.EncryptedDataKey{rsaEDK, real}); err != nil || !bytes.Equal(dm.DataKey, m.DataKey) {
		t.Errorf("OnDecrypt(bad aws-kms-rsa EDK, good aws-kms EDK) err = %v, want the data key", err)
	}
}

func TestDiscoveryTriesNextEDKAfterFailure(t *testing.T) {
	svc := newKMS(t)
	k1, k2 := newKey(t, svc, ""), newKey(t, svc, "")
	m := wrap(t, mustNew(t, svc, k1.Arn, k2.Arn), suite.AES256GCMHKDFSHA512CommitKey, nil)
	if _, err := svc.DisableKey(t.Context(), &kms.DisableKeyInput{KeyId: k1.KeyId}); err != nil {
		t.Fatal(err)
	}
	spy := newSpy(svc)
	dm := decryptMaterials(t, m.Suite.ID, nil)
	if err := mustDiscovery(t, spy, nil).OnDecrypt(t.Context(), dm, m.EncryptedDataKeys); err != nil {
		t.Fatalf("OnDecrypt err = %v, want the second key to unwrap", err)
	}
	if !bytes.Equal(dm.DataKey, m.DataKey) || spy.Calls("Decrypt") != 2 {
		t.Errorf("data key equal %v after %d Decrypt calls; want equal after 2", bytes.Equal(dm.DataKey, m.DataKey), spy.Calls("Decrypt"))
	}

	// An answer for another key, or of the wrong length, is refused too.
	for name, edit := range map[string]func(int, *kms.DecryptOutput){
		"other key":    func(_ int, out *kms.DecryptOutput) { out.KeyId = k1.Arn },
		"wrong length": func(_ int, out *kms.DecryptOutput) { out.Plaintext = out.Plaintext[:8] },
	} {
		spy := newSpy(svc)
		spy.editDecrypt = edit
		dm := decryptMaterials(t, m.Suite.ID, nil)
		ue := unwrapErr(t, mustDiscovery(t, spy, nil).OnDecrypt(t.Context(), dm, m.EncryptedDataKeys[1:]))
		if dm.DataKey != nil || len(ue.Errs) != 1 {
			t.Errorf("%s: data key set %v, errors %v; want none set and one error", name, dm.DataKey != nil, ue.Errs)
		}
	}
}

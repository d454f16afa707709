package keyring_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

func mustRawAES(t testing.TB, namespace, name string, key []byte) *keyring.RawAES {
	t.Helper()
	kr, err := keyring.NewRawAES(namespace, name, key)
	if err != nil {
		t.Fatalf("NewRawAES(%q, %q, %d bytes) err = %v, want nil", namespace, name, len(key), err)
	}
	return kr
}

// encryptAES runs kr as the generator of fresh encryption materials.
func encryptAES(t testing.TB, kr keyring.Keyring, s *suite.Suite, ec map[string]string) *keyring.EncryptionMaterials {
	t.Helper()
	m := &keyring.EncryptionMaterials{Suite: s, Context: ec}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt err = %v, want nil", err)
	}
	return m
}

func TestNewRawAESKeySizes(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 23, 24, 25, 31, 32, 33, 48, 64} {
		kr, err := keyring.NewRawAES("ns", "k", make([]byte, n))
		switch n {
		case 16, 24, 32:
			if err != nil || kr == nil {
				t.Errorf("NewRawAES with a %d-byte key = %v, %v; want a keyring, nil", n, kr, err)
			}
		default:
			if err == nil {
				t.Errorf("NewRawAES with a %d-byte key err = nil, want an error", n)
			} else if !strings.Contains(err.Error(), "16, 24 or 32") {
				t.Errorf("NewRawAES with a %d-byte key err = %q, want it to name the valid sizes", n, err)
			}
		}
	}
	if _, err := keyring.NewRawAES("ns", "k", nil); err == nil {
		t.Error("NewRawAES with a nil key err = nil, want an error")
	}
}

func TestNewRawAESNames(t *testing.T) {
	key := randomBytes(32)
	tests := []struct {
		namespace, name string
		ok              bool
		errHas          string
	}{
		{"ns", "k", true, ""},
		{"aws", "k", true, ""},
		{"aws-km", "k", true, ""},
		{"my-aws-kms", "k", true, ""},
		{"ns", "aws-kms", true, ""}, // only the namespace is reserved
		{"", "k", false, "non-empty"},
		{"ns", "", false, "non-empty"},
		{"", "", false, "non-empty"},
		{"aws-kms", "k", false, "reserved"},
		{"aws-kms-rsa", "k", false, "reserved"},
		{"aws-kms-hierarchy", "k", false, "reserved"},
		{strings.Repeat("n", 1<<16), "k", false, "too long"},
		{"ns", strings.Repeat("k", 1<<16-20), false, "too long"},
		{"ns", strings.Repeat("k", 1<<16-21), true, ""},
	}
	for _, tt := range tests {
		label := tt.namespace + "/" + tt.name
		if len(label) > 40 {
			label = label[:40]
		}
		t.Run(label, func(t *testing.T) {
			kr, err := keyring.NewRawAES(tt.namespace, tt.name, key)
			if tt.ok {
				if err != nil {
					t.Fatalf("NewRawAES(%q, %q) err = %v, want nil", tt.namespace, tt.name, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewRawAES(%q, %q) = %v, want an error", tt.namespace, tt.name, kr)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("NewRawAES(%q, %q) err = %q, want it to contain %q", tt.namespace, tt.name, err, tt.errHas)
			}
		})
	}
}

func TestRawAESString(t *testing.T) {
	key := randomBytes(32)
	kr := mustRawAES(t, "myapp", "key1", key)
	want := `raw AES key namespace="myapp" name="key1"`
	if got := kr.String(); got != want {
		t.Errorf("RawAES.String() = %q, want %q", got, want)
	}
}

// TestRawAESWireFormat checks the encrypted data key byte by byte and opens it
// with crypto/cipher directly, with the AAD built by hand.
func TestRawAESWireFormat(t *testing.T) {
	for _, keyLen := range []int{16, 24, 32} {
		for _, id := range []suite.ID{suite.AES128GCM, suite.AES192GCMHKDFSHA384ECDSAP384, suite.AES256GCMHKDFSHA512CommitKey} {
			s := mustSuite(t, id)
			t.Run(fmt.Sprintf("%s/key%d", s.ID, keyLen), func(t *testing.T) {
				key := randomBytes(keyLen)
				kr := mustRawAES(t, "my-namespace", "my-key", key)
				ec := map[string]string{"b": "2", "a": "1"}
				m := encryptAES(t, kr, s, ec)

				if len(m.DataKey) != s.KeyLength {
					t.Fatalf("OnEncrypt made a %d-byte data key, want %d", len(m.DataKey), s.KeyLength)
				}
				if bytes.Equal(m.DataKey, make([]byte, s.KeyLength)) {
					t.Fatalf("OnEncrypt made an all-zero data key")
				}
				if len(m.EncryptedDataKeys) != 1 {
					t.Fatalf("OnEncrypt added %d EDKs, want 1", len(m.EncryptedDataKeys))
				}
				edk := m.EncryptedDataKeys[0]
				if edk.ProviderID != "my-namespace" {
					t.Errorf("ProviderID = %q, want %q", edk.ProviderID, "my-namespace")
				}
				info := edk.ProviderInfo
				if len(info) != len("my-key")+4+4+12 {
					t.Fatalf("ProviderInfo = %x (%d bytes), want %d bytes", info, len(info), len("my-key")+20)
				}
				if string(info[:6]) != "my-key" {
					t.Errorf("ProviderInfo name = %q, want %q", info[:6], "my-key")
				}
				if !bytes.Equal(info[6:14], []byte{0, 0, 0, 0x80, 0, 0, 0, 0x0c}) {
					t.Errorf("ProviderInfo tag/IV lengths = %x, want 000000800000000c", info[6:14])
				}
				iv := info[14:]
				if len(edk.Ciphertext) != s.KeyLength+16 {
					t.Errorf("len(Ciphertext) = %d, want %d (data key + tag)", len(edk.Ciphertext), s.KeyLength+16)
				}

				// AAD: count 2, then "a"="1", "b"="2", each with u16 lengths.
				aad := []byte{0, 2, 0, 1, 'a', 0, 1, '1', 0, 1, 'b', 0, 1, '2'}
				block, err := aes.NewCipher(key)
				if err != nil {
					t.Fatal(err)
				}
				gcm, err := cipher.NewGCM(block)
				if err != nil {
					t.Fatal(err)
				}
				dk, err := gcm.Open(nil, iv, edk.Ciphertext, aad)
				if err != nil {
					t.Fatalf("AES-GCM Open of the EDK with the hand-built AAD err = %v, want nil", err)
				}
				if !bytes.Equal(dk, m.DataKey) {
					t.Errorf("unwrapped %x, want the data key %x", dk, m.DataKey)
				}
			})
		}
	}
}

func TestRawAESWireEmptyContext(t *testing.T) {
	key := randomBytes(32)
	kr := mustRawAES(t, "ns", "k", key)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	for _, ec := range []map[string]string{nil, {}} {
		m := encryptAES(t, kr, s, ec)
		edk := m.EncryptedDataKeys[0]
		block, _ := aes.NewCipher(key)
		gcm, _ := cipher.NewGCM(block)
		iv := edk.ProviderInfo[len(edk.ProviderInfo)-12:]
		// An empty context is zero bytes of AAD.
		if _, err := gcm.Open(nil, iv, edk.Ciphertext, nil); err != nil {
			t.Errorf("AES-GCM Open with empty AAD (context %v) err = %v, want nil", ec, err)
		}
	}
}

func TestRawAESFreshIVs(t *testing.T) {
	kr := mustRawAES(t, "ns", "k", randomBytes(32))
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := &keyring.EncryptionMaterials{Suite: s, DataKey: randomBytes(32)}
	for range 2 {
		if err := kr.OnEncrypt(context.Background(), m); err != nil {
			t.Fatalf("OnEncrypt err = %v, want nil", err)
		}
	}
	a, b := m.EncryptedDataKeys[0], m.EncryptedDataKeys[1]
	if bytes.Equal(a.ProviderInfo, b.ProviderInfo) || bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Errorf("two wraps of the same data key share IV or ciphertext: %x / %x", a.ProviderInfo, b.ProviderInfo)
	}
}

func TestRawAESWrapsExistingDataKey(t *testing.T) {
	kr := mustRawAES(t, "ns", "k", randomBytes(32))
	s := mustSuite(t, suite.AES128GCMHKDFSHA256)
	dataKey := randomBytes(16)
	prior := keyring.EncryptedDataKey{ProviderID: "other", ProviderInfo: []byte("x"), Ciphertext: []byte("y")}
	m := &keyring.EncryptionMaterials{Suite: s, DataKey: bytes.Clone(dataKey), EncryptedDataKeys: []keyring.EncryptedDataKey{prior}}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt err = %v, want nil", err)
	}
	if !bytes.Equal(m.DataKey, dataKey) {
		t.Fatalf("OnEncrypt replaced the data key %x with %x", dataKey, m.DataKey)
	}
	if len(m.EncryptedDataKeys) != 2 || m.EncryptedDataKeys[0].ProviderID != "other" {
		t.Fatalf("EncryptedDataKeys = %v, want the prior EDK then one new", m.EncryptedDataKeys)
	}
	dm := &keyring.DecryptionMaterials{Suite: s}
	if err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err != nil {
		t.Fatalf("OnDecrypt err = %v, want nil", err)
	}
	if !bytes.Equal(dm.DataKey, dataKey) {
		t.Errorf("OnDecrypt data key = %x, want the caller's %x", dm.DataKey, dataKey)
	}
}

func TestRawAESRoundTrip(t *testing.T) {
	for _, s := range suite.All() {
		t.Run(s.ID.String(), func(t *testing.T) {
			key := randomBytes(32)
			enc := mustRawAES(t, "ns", "k", key)
			dec := mustRawAES(t, "ns", "k", bytes.Clone(key))
			ec := map[string]string{"purpose": "test", "é": "🔐"}
			m := encryptAES(t, enc, s, ec)

			// Other keys come first: the keyring skips them.
			edks := []keyring.EncryptedDataKey{
				{ProviderID: "aws-kms", ProviderInfo: []byte("arn:aws:kms:eu-west-1:111122223333:key/x"), Ciphertext: randomBytes(100)},
				{ProviderID: "other-ns", ProviderInfo: rawAESInfo("k", randomBytes(12)), Ciphertext: randomBytes(48)},
				{ProviderID: "ns", ProviderInfo: []byte("k"), Ciphertext: randomBytes(256)}, // RSA-style info
				m.EncryptedDataKeys[0],
			}
			dm := &keyring.DecryptionMaterials{Suite: s, Context: map[string]string{"é": "🔐", "purpose": "test"}}
			if err := dec.OnDecrypt(context.Background(), dm, edks); err != nil {
				t.Fatalf("OnDecrypt err = %v, want nil", err)
			}
			if !bytes.Equal(dm.DataKey, m.DataKey) {
				t.Errorf("OnDecrypt data key = %x, want %x", dm.DataKey, m.DataKey)
			}
		})
	}
}

func TestRawAESContextIsBound(t *testing.T) {
	key := randomBytes(32)
	kr := mustRawAES(t, "ns", "k", key)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := encryptAES(t, kr, s, map[string]string{"tenant": "a"})
	for _, ec := range []map[string]string{
		nil,
		{"tenant": "b"},
		{"tenant": "a", "extra": "x"},
		{"Tenant": "a"},
	} {
		dm := &keyring.DecryptionMaterials{Suite: s, Context: ec}
		err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
		if err == nil {
			t.Errorf("OnDecrypt with context %v err = nil, want an error (wrapped with {tenant: a})", ec)
			continue
		}
		var ue *keyring.UnwrapError
		if !errors.As(err, &ue) {
			t.Errorf("OnDecrypt with context %v err = %T %v, want *UnwrapError", ec, err, err)
		}
		if !errors.Is(err, keyring.ErrNoDataKey) {
			t.Errorf("OnDecrypt with context %v err = %v, want it to wrap ErrNoDataKey", ec, err)
		}
		if dm.DataKey != nil {
			t.Errorf("OnDecrypt with context %v set DataKey = %x after failing", ec, dm.DataKey)
		}
	}
}

func TestRawAESSkipsOtherKeys(t *testing.T) {
	key := randomBytes(32)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := encryptAES(t, mustRawAES(t, "ns", "k", key), s, nil)
	for _, tt := range []struct{ namespace, name string }{
		{"ns", "k2"},
		{"ns2", "k"},
		{"NS", "k"},
		{"ns", "K"},
	} {
		t.Run(tt.namespace+"/"+tt.name, func(t *testing.T) {
			// Same key bytes, different identity: the EDK is not this keyring's.
			kr := mustRawAES(t, tt.namespace, tt.name, key)
			dm := &keyring.DecryptionMaterials{Suite: s}
			err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
			var ue *keyring.UnwrapError
			if !errors.As(err, &ue) {
				t.Fatalf("OnDecrypt err = %v, want *UnwrapError", err)
			}
			if len(ue.Errs) != 0 {
				t.Errorf("UnwrapError.Errs = %v, want none (the key was skipped, not tried)", ue.Errs)
			}
			if len(ue.Tried) != 1 || ue.Tried[0] != kr.String() {
				t.Errorf("UnwrapError.Tried = %q, want [%q]", ue.Tried, kr.String())
			}
			if len(ue.Keys) != 1 || ue.Keys[0].ProviderID != "ns" {
				t.Errorf("UnwrapError.Keys = %v, want the message's one EDK", ue.Keys)
			}
			if dm.DataKey != nil {
				t.Errorf("DataKey = %x, want nil", dm.DataKey)
			}
		})
	}
}

func TestRawAESWrongKeySameName(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := encryptAES(t, mustRawAES(t, "ns", "k", randomBytes(32)), s, nil)
	wrong := mustRawAES(t, "ns", "k", randomBytes(32))
	dm := &keyring.DecryptionMaterials{Suite: s}
	err := wrong.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
	var ue *keyring.UnwrapError
	if !errors.As(err, &ue) {
		t.Fatalf("OnDecrypt with the wrong key err = %v, want *UnwrapError", err)
	}
	if !errors.Is(err, keyring.ErrNoDataKey) {
		t.Errorf("OnDecrypt with the wrong key err = %v, want it to wrap ErrNoDataKey", err)
	}
	if len(ue.Errs) != 1 {
		t.Fatalf("UnwrapError.Errs = %v, want one failed attempt", ue.Errs)
	}
	if msg := err.Error(); !strings.Contains(msg, "does not open") || !strings.Contains(msg, `name="k"`) {
		t.Errorf("OnDecrypt with the wrong key err = %q, want it to name the key and say it does not open", msg)
	}
}

func TestRawAESWrongDataKeyLength(t *testing.T) {
	kr := mustRawAES(t, "ns", "k", randomBytes(32))
	// A 16-byte data key wrapped for a 32-byte suite.
	m := encryptAES(t, kr, mustSuite(t, suite.AES128GCM), nil)
	dm := &keyring.DecryptionMaterials{Suite: mustSuite(t, suite.AES256GCM)}
	err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
	if !errors.Is(err, keyring.ErrNoDataKey) {
		t.Fatalf("OnDecrypt of a 16-byte key for suite 0x0078 err = %v, want ErrNoDataKey", err)
	}
	if !strings.Contains(err.Error(), "16-byte") {
		t.Errorf("OnDecrypt err = %q, want it to give the unwrapped length", err)
	}
	if dm.DataKey != nil {
		t.Errorf("DataKey = %x, want nil", dm.DataKey)
	}
}

func TestRawAESMalformedEDKs(t *testing.T) {
	key := randomBytes(32)
	kr := mustRawAES(t, "ns", "k", key)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	good := encryptAES(t, kr, s, nil).EncryptedDataKeys[0]
	badTag := bytes.Clone(good.ProviderInfo)
	binary.BigEndian.PutUint32(badTag[1:], 96)
	for name, edk := range map[string]keyring.EncryptedDataKey{
		"empty info":       {ProviderID: "ns"},
		"short info":       {ProviderID: "ns", ProviderInfo: good.ProviderInfo[:10], Ciphertext: good.Ciphertext},
		"96-bit tag":       {ProviderID: "ns", ProviderInfo: badTag, Ciphertext: good.Ciphertext},
		"empty ciphertext": {ProviderID: "ns", ProviderInfo: good.ProviderInfo},
		"short ciphertext": {ProviderID: "ns", ProviderInfo: good.ProviderInfo, Ciphertext: good.Ciphertext[:15]},
		"flipped bit":      {ProviderID: "ns", ProviderInfo: good.ProviderInfo, Ciphertext: append([]byte{good.Ciphertext[0] ^ 1}, good.Ciphertext[1:]...)},
	} {
		t.Run(name, func(t *testing.T) {
			dm := &keyring.DecryptionMaterials{Suite: s}
			err := kr.OnDecrypt(context.Background(), dm, []keyring.EncryptedDataKey{edk})
			if !errors.Is(err, keyring.ErrNoDataKey) {
				t.Errorf("OnDecrypt(%x, %x) err = %v, want ErrNoDataKey", edk.ProviderInfo, edk.Ciphertext, err)
			}
			if dm.DataKey != nil {
				t.Errorf("DataKey = %x, want nil", dm.DataKey)
			}
		})
	}
	// The good one still opens after all that.
	dm := &keyring.DecryptionMaterials{Suite: s}
	if err := kr.OnDecrypt(context.Background(), dm, []keyring.EncryptedDataKey{good}); err != nil {
		t.Errorf("OnDecrypt(good) err = %v, want nil", err)
	}
}

func TestRawAESDecryptNoOpWithDataKey(t *testing.T) {
	kr := mustRawAES(t, "ns", "k", randomBytes(32))
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	have := randomBytes(32)
	dm := &keyring.DecryptionMaterials{Suite: s, DataKey: bytes.Clone(have)}
	// The EDK list is junk that would otherwise fail.
	junk := []keyring.EncryptedDataKey{{ProviderID: "ns", ProviderInfo: rawAESInfo("k", randomBytes(12)), Ciphertext: randomBytes(48)}}
	if err := kr.OnDecrypt(context.Background(), dm, junk); err != nil {
		t.Fatalf("OnDecrypt with a data key present err = %v, want nil", err)
	}
	if !bytes.Equal(dm.DataKey, have) {
		t.Errorf("OnDecrypt changed the data key to %x, want %x", dm.DataKey, have)
	}
	if err := kr.OnDecrypt(context.Background(), dm, nil); err != nil {
		t.Errorf("OnDecrypt with a data key present and no EDKs err = %v, want nil", err)
	}
}

func TestRawAESNoEDKs(t *testing.T) {
	kr := mustRawAES(t, "ns", "k", randomBytes(32))
	dm := &keyring.DecryptionMaterials{Suite: mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)}
	err := kr.OnDecrypt(context.Background(), dm, nil)
	var ue *keyring.UnwrapError
	if !errors.As(err, &ue) || len(ue.Keys) != 0 {
		t.Errorf("OnDecrypt(no EDKs) err = %v, want an *UnwrapError with no keys", err)
	}
}

func TestRawAESCopiesKey(t *testing.T) {
	key := randomBytes(32)
	orig := bytes.Clone(key)
	kr := mustRawAES(t, "ns", "k", key)
	clear(key) // the caller zeroes its buffer, as the JS SDK does
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := encryptAES(t, kr, s, map[string]string{"a": "b"})

	// The original key bytes open what kr wrapped after the caller's clear...
	dec := mustRawAES(t, "ns", "k", orig)
	dm := &keyring.DecryptionMaterials{Suite: s, Context: map[string]string{"a": "b"}}
	if err := dec.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err != nil {
		t.Fatalf("OnDecrypt with the original key err = %v, want nil (NewRawAES must copy its key)", err)
	}
	// ...and the zeroed buffer does not.
	zero := mustRawAES(t, "ns", "k", key)
	dm = &keyring.DecryptionMaterials{Suite: s, Context: map[string]string{"a": "b"}}
	if err := zero.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err == nil {
		t.Error("OnDecrypt with the zeroed key err = nil, want an error")
	}
}

func TestRawAESInvalidContext(t *testing.T) {
	kr := mustRawAES(t, "ns", "k", randomBytes(32))
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	bad := map[string]string{"k": "\xff"}
	m := &keyring.EncryptionMaterials{Suite: s, Context: bad}
	if err := kr.OnEncrypt(context.Background(), m); err == nil {
		t.Error("OnEncrypt with a non-UTF-8 context err = nil, want an error")
	}
	if len(m.EncryptedDataKeys) != 0 {
		t.Errorf("OnEncrypt failed but added %d EDKs", len(m.EncryptedDataKeys))
	}
	dm := &keyring.DecryptionMaterials{Suite: s, Context: bad}
	if err := kr.OnDecrypt(context.Background(), dm, nil); err == nil {
		t.Error("OnDecrypt with a non-UTF-8 context err = nil, want an error")
	}
}

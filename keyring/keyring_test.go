package keyring_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

func mustSuite(t testing.TB, id suite.ID) *suite.Suite {
	t.Helper()
	s, ok := suite.ByID(id)
	if !ok {
		t.Fatalf("ByID(%s) ok = false", id)
	}
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// RSA key generation is slow (about half a second for 2048 bits), so the
// tests share two keys, generated once and in parallel.
var (
	rsaOnce sync.Once
	rsaKeys [2]*rsa.PrivateKey
	rsaErrs [2]error
)

// rsaKeys2048 returns two distinct 2048-bit RSA keys shared by all tests.
func rsaKeys2048(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	rsaOnce.Do(func() {
		var wg sync.WaitGroup
		for i := range rsaKeys {
			wg.Go(func() { rsaKeys[i], rsaErrs[i] = rsa.GenerateKey(rand.Reader, 2048) })
		}
		wg.Wait()
	})
	for _, err := range rsaErrs {
		if err != nil {
			t.Fatalf("rsa.GenerateKey(2048) err = %v, want nil", err)
		}
	}
	return rsaKeys[0], rsaKeys[1]
}

// rawAESInfo builds a raw AES provider info by hand: name ‖ 128 ‖ 12 ‖ IV.
func rawAESInfo(name string, iv []byte) []byte {
	b := []byte(name)
	b = binary.BigEndian.AppendUint32(b, 128)
	b = binary.BigEndian.AppendUint32(b, 12)
	return append(b, iv...)
}

func TestEncryptedDataKeyString(t *testing.T) {
	iv := randomBytes(12)
	otherTag := append(append([]byte("k"), 0, 0, 0, 96, 0, 0, 0, 12), iv...)
	tests := []struct {
		name string
		edk  keyring.EncryptedDataKey
		want string
	}{
		{
			"raw AES",
			keyring.EncryptedDataKey{ProviderID: "myapp", ProviderInfo: rawAESInfo("key1", iv), Ciphertext: randomBytes(48)},
			`raw AES key namespace="myapp" name="key1"`,
		},
		{
			"raw AES empty name",
			keyring.EncryptedDataKey{ProviderID: "myapp", ProviderInfo: rawAESInfo("", iv)},
			`raw AES key namespace="myapp" name=""`,
		},
		{
			"raw RSA",
			keyring.EncryptedDataKey{ProviderID: "myapp", ProviderInfo: []byte("rsa-key"), Ciphertext: randomBytes(256)},
			`raw key namespace="myapp" name="rsa-key"`,
		},
		{
			"raw RSA name with quote",
			keyring.EncryptedDataKey{ProviderID: "ns", ProviderInfo: []byte(`a"b`)},
			`raw key namespace="ns" name="a\"b"`,
		},
		{
			// The length of a raw AES info, but a 96-bit tag: not raw AES.
			"AES-like info with other tag length",
			keyring.EncryptedDataKey{ProviderID: "ns", ProviderInfo: otherTag},
			fmt.Sprintf(`raw key namespace="ns" name=%q`, otherTag),
		},
		{
			"aws-kms",
			keyring.EncryptedDataKey{ProviderID: "aws-kms", ProviderInfo: []byte("arn:aws:kms:eu-west-1:111122223333:key/1234abcd"), Ciphertext: randomBytes(184)},
			`aws-kms key "arn:aws:kms:eu-west-1:111122223333:key/1234abcd"`,
		},
		{
			"aws-kms-rsa",
			keyring.EncryptedDataKey{ProviderID: "aws-kms-rsa", ProviderInfo: []byte("arn:aws:kms:us-east-1:111122223333:key/rsa"), Ciphertext: randomBytes(256)},
			`aws-kms-rsa key "arn:aws:kms:us-east-1:111122223333:key/rsa"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.edk.String()
			if got != tt.want {
				t.Errorf("EncryptedDataKey.String() = %s, want %s", got, tt.want)
			}
			// The wrapped key never shows.
			if len(tt.edk.Ciphertext) > 0 && strings.Contains(got, string(tt.edk.Ciphertext)) {
				t.Errorf("EncryptedDataKey.String() = %q contains the ciphertext", got)
			}
		})
	}
}

func TestUnwrapErrorError(t *testing.T) {
	inner := errors.New(`raw AES key namespace="ns" name="k1": the data key wrapped under this name does not open with this key`)
	e := &keyring.UnwrapError{
		Keys: []keyring.EncryptedDataKey{
			{ProviderID: "ns", ProviderInfo: rawAESInfo("k1", randomBytes(12))},
			{ProviderID: "ns", ProviderInfo: []byte("rsa1")},
			{ProviderID: "aws-kms", ProviderInfo: []byte("arn:aws:kms:eu-west-1:111122223333:key/k")},
		},
		Tried: []string{`raw AES key namespace="ns" name="k1"`, `raw AES key namespace="other" name="k2"`},
		Errs:  []error{inner},
	}
	want := `no key could unwrap the data key; the message's data key is wrapped by: ` +
		`raw AES key namespace="ns" name="k1", raw key namespace="ns" name="rsa1", aws-kms key "arn:aws:kms:eu-west-1:111122223333:key/k"; ` +
		`tried: raw AES key namespace="ns" name="k1", raw AES key namespace="other" name="k2"; ` + inner.Error()
	if got := e.Error(); got != want {
		t.Errorf("UnwrapError.Error() =\n%s\nwant\n%s", got, want)
	}
	if !errors.Is(e, keyring.ErrNoDataKey) {
		t.Errorf("errors.Is(%v, ErrNoDataKey) = false, want true", e)
	}
	if !errors.Is(e, inner) {
		t.Errorf("errors.Is(UnwrapError, inner) = false, want true (Unwrap returns the attempts' errors)")
	}

	empty := &keyring.UnwrapError{}
	if got, want := empty.Error(), "no key could unwrap the data key; the message's data key is wrapped by: ; tried: no keyring"; got != want {
		t.Errorf("UnwrapError{}.Error() = %q, want %q", got, want)
	}
	if !errors.Is(empty, keyring.ErrNoDataKey) {
		t.Errorf("errors.Is(UnwrapError{}, ErrNoDataKey) = false, want true")
	}
}

// TestEncryptedDataKeyStringUntrusted: provider ids and infos come from the
// message, which an attacker may have written; String (and so UnwrapError,
// which the CLI prints) must not pass control bytes through to a terminal.
func TestEncryptedDataKeyStringUntrusted(t *testing.T) {
	for _, edk := range []keyring.EncryptedDataKey{
		{ProviderID: "ns\x1b[2J", ProviderInfo: []byte("k")},
		{ProviderID: "ns", ProviderInfo: []byte("k\x1b[2J\r")},
		{ProviderID: "ns", ProviderInfo: rawAESInfo("k\x1b[2J", randomBytes(12))},
	} {
		if got := edk.String(); strings.ContainsAny(got, "\x1b\r") {
			t.Errorf("EncryptedDataKey{%q, %q}.String() = %q, want control bytes escaped", edk.ProviderID, edk.ProviderInfo, got)
		}
	}
	t.Run("aws-kms", func(t *testing.T) {
		for _, id := range []string{"aws-kms", "aws-kms-rsa"} {
			edk := keyring.EncryptedDataKey{ProviderID: id, ProviderInfo: []byte("arn:aws:kms:x\x1b[2J\r\xff")}
			if got := edk.String(); strings.ContainsAny(got, "\x1b\r") || !utf8.ValidString(got) {
				t.Errorf("EncryptedDataKey{%q, %q}.String() = %q, want control bytes and invalid UTF-8 escaped", edk.ProviderID, edk.ProviderInfo, got)
			}
		}
	})
}

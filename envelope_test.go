package envelope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

func aesKeyring(t testing.TB, n int) *keyring.RawAES {
	t.Helper()
	key := make([]byte, n)
	rand.Read(key)
	kr, err := keyring.NewRawAES("test", fmt.Sprintf("aes%d", n*8), key)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestRoundTripAllSuites(t *testing.T) {
	ctx := context.Background()
	kr := aesKeyring(t, 32)
	for _, s := range suite.All() {
		policy := suite.RequireEncryptRequireDecrypt
		if !s.Committing {
			policy = suite.ForbidEncryptAllowDecrypt
		}
		for _, frame := range []int{1, 7, 4096} {
			for _, size := range []int{0, 1, frame - 1, frame, frame + 1, 3*frame + 2} {
				name := fmt.Sprintf("%s/frame%d/size%d", s.ID, frame, size)
				t.Run(name, func(t *testing.T) {
					pt := make([]byte, size)
					rand.Read(pt)
					ec := map[string]string{"purpose": "test", "ключ": "значение", "🔐": "🔑"}
					msg, err := envelope.EncryptBytes(ctx, pt, kr, envelope.WithSuite(s.ID), envelope.WithFrameSize(frame),
						envelope.WithCommitmentPolicy(policy), envelope.WithContext(ec))
					if err != nil {
						t.Fatalf("EncryptBytes: %v", err)
					}
					got, h, err := envelope.DecryptBytes(ctx, msg, kr, envelope.WithCommitmentPolicy(suite.RequireEncryptAllowDecrypt),
						envelope.WithContext(map[string]string{"purpose": "test"}))
					if err != nil {
						t.Fatalf("DecryptBytes: %v", err)
					}
					if !bytes.Equal(got, pt) {
						t.Fatalf("plaintext mismatch")
					}
					if h.Suite != s || h.FrameLength != frame || h.Context["🔐"] != "🔑" {
						t.Fatalf("header = %+v", h)
					}
				})
			}
		}
	}
}

func TestRSAPaddings(t *testing.T) {
	ctx := context.Background()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []keyring.Padding{keyring.PKCS1, keyring.OAEPSHA1, keyring.OAEPSHA256, keyring.OAEPSHA384, keyring.OAEPSHA512} {
		t.Run(p.String(), func(t *testing.T) {
			enc, err := keyring.NewRawRSA("test", "rsa", p, &priv.PublicKey, nil)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := keyring.NewRawRSA("test", "rsa", p, nil, priv)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := envelope.EncryptBytes(ctx, []byte("hello"), enc)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := envelope.DecryptBytes(ctx, msg, dec)
			if err != nil || string(got) != "hello" {
				t.Fatalf("DecryptBytes = %q, %v", got, err)
			}
			if _, _, err := envelope.DecryptBytes(ctx, msg, enc); !errors.Is(err, envelope.ErrNoDataKey) {
				t.Fatalf("decrypt with public key only: err = %v, want ErrNoDataKey", err)
			}
		})
	}
}

func TestStreamingLarge(t *testing.T) {
	ctx := context.Background()
	kr := aesKeyring(t, 32)
	var buf bytes.Buffer
	w, err := envelope.Encrypt(ctx, &buf, kr)
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, 5<<20+17)
	rand.Read(pt)
	for p := pt; len(p) > 0; {
		n := min(len(p), 10007)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := envelope.Decrypt(ctx, &buf, kr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("ReadAll: %v, equal=%v", err, bytes.Equal(got, pt))
	}
}

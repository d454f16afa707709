package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/suite"
)

// readAll reads r to the end, returning what was released before the error.
func readAll(r io.Reader) ([]byte, error) {
	var out bytes.Buffer
	_, err := io.Copy(&out, r)
	return out.Bytes(), err
}

// decryptStream decrypts msg through the streaming API and returns every
// byte released before the first error.
func decryptStream(msg []byte, opts ...envelope.Option) ([]byte, error) {
	kr := fixedKeyring()
	r, err := envelope.Decrypt(context.Background(), bytes.NewReader(msg), kr, opts...)
	if err != nil {
		return nil, err
	}
	return readAll(r)
}

// TestTampering flips every bit position's byte and cuts the message at every
// length, for small signed and unsigned messages of both header versions:
// each must fail, and no plaintext may be released. The messages fit in one
// frame, so any released byte would be unauthenticated.
func TestTampering(t *testing.T) {
	ctx := context.Background()
	pt := []byte("attack at dawn; bring the keys")
	for _, id := range []suite.ID{suite.AES256GCMHKDFSHA512CommitKey, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384,
		suite.AES256GCMHKDFSHA256, suite.AES256GCMHKDFSHA384ECDSAP384} {
		t.Run(id.String(), func(t *testing.T) {
			policy := envelope.WithCommitmentPolicy(suite.RequireEncryptAllowDecrypt)
			encPolicy := policy
			if s, _ := suite.ByID(id); !s.Committing {
				encPolicy = envelope.WithCommitmentPolicy(suite.ForbidEncryptAllowDecrypt)
			}
			msg, err := envelope.EncryptBytes(ctx, pt, fixedKeyring(), envelope.WithSuite(id), encPolicy,
				envelope.WithContext(map[string]string{"purpose": "tamper"}))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := decryptStream(msg, policy); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("untouched message: %q, %v", got, err)
			}
			for i := range msg {
				for _, mask := range []byte{0x01, 0x80} {
					b := bytes.Clone(msg)
					b[i] ^= mask
					got, err := decryptStream(b, policy)
					if err == nil {
						t.Fatalf("byte %d ^ %#x: decrypted without error", i, mask)
					}
					if len(got) != 0 {
						t.Fatalf("byte %d ^ %#x: released %d bytes before failing: %v", i, mask, len(got), err)
					}
				}
			}
			for n := range len(msg) {
				got, err := decryptStream(msg[:n], policy)
				if err == nil || len(got) != 0 {
					t.Fatalf("truncated to %d of %d: released %d bytes, err = %v", n, len(msg), len(got), err)
				}
				if n > 0 && !errors.Is(err, envelope.ErrTruncated) {
					t.Fatalf("truncated to %d of %d: err = %v, want ErrTruncated", n, len(msg), err)
				}
			}
			got, err := decryptStream(append(bytes.Clone(msg), 0), policy)
			if !errors.Is(err, envelope.ErrMalformed) || len(got) != 0 {
				t.Fatalf("trailing byte: released %d bytes, err = %v, want ErrMalformed", len(got), err)
			}
		})
	}
}

// TestTamperedLaterFrame checks that, in a multi-frame message, a tampered
// frame stops the stream at that frame: what was released is exactly the
// frames before it.
func TestTamperedLaterFrame(t *testing.T) {
	ctx := context.Background()
	pt := bytes.Repeat([]byte("0123456789"), 10) // 100 bytes, frames of 16
	msg, err := envelope.EncryptBytes(ctx, pt, fixedKeyring(), envelope.WithFrameSize(16),
		envelope.WithSuite(suite.AES256GCMHKDFSHA512CommitKey))
	if err != nil {
		t.Fatal(err)
	}
	frameBytes := 4 + 12 + 16 + 16
	bodyStart := len(msg) - (6*frameBytes + 4 + 4 + 12 + 4 + 4 + 16)
	// Flip the last ciphertext byte of the third frame.
	b := bytes.Clone(msg)
	b[bodyStart+3*frameBytes-17] ^= 1
	got, err := decryptStream(b)
	if !errors.Is(err, envelope.ErrTampered) {
		t.Fatalf("err = %v, want ErrTampered", err)
	}
	if !bytes.Equal(got, pt[:32]) {
		t.Fatalf("released %q, want the first two frames %q", got, pt[:32])
	}
}

package envelope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

func namedAES(t testing.TB, name string) keyring.Keyring {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	kr, err := keyring.NewRawAES("rewrap", name, key)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestRewrap(t *testing.T) {
	ctx := context.Background()
	for _, id := range []suite.ID{suite.AES256GCMHKDFSHA512CommitKey, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384,
		suite.AES256GCMHKDFSHA256, suite.AES256GCMHKDFSHA384ECDSAP384} {
		t.Run(id.String(), func(t *testing.T) {
			s, _ := suite.ByID(id)
			encPolicy := envelope.WithCommitmentPolicy(suite.RequireEncryptRequireDecrypt)
			if !s.Committing {
				encPolicy = envelope.WithCommitmentPolicy(suite.ForbidEncryptAllowDecrypt)
			}
			policy := envelope.WithCommitmentPolicy(suite.RequireEncryptAllowDecrypt)
			oldKR, newKR, otherKR := namedAES(t, "old"), namedAES(t, "new"), namedAES(t, "other")
			pt := make([]byte, 10000)
			rand.Read(pt)
			ec := map[string]string{"purpose": "rewrap"}
			msg, err := envelope.EncryptBytes(ctx, pt, oldKR, envelope.WithSuite(id), encPolicy,
				envelope.WithFrameSize(1000), envelope.WithContext(ec))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			h, err := envelope.Rewrap(ctx, &out, bytes.NewReader(msg), oldKR, keyring.NewMulti(newKR, otherKR), policy,
				envelope.WithContext(ec))
			if err != nil {
				t.Fatalf("Rewrap: %v", err)
			}
			if len(h.EncryptedDataKeys) != 2 {
				t.Fatalf("rewrapped header has %d wrapped keys, want 2", len(h.EncryptedDataKeys))
			}
			re := out.Bytes()
			for _, kr := range []keyring.Keyring{newKR, otherKR} {
				got, gh, err := envelope.DecryptBytes(ctx, re, kr, policy, envelope.WithContext(ec))
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("decrypting the rewrapped message: %v", err)
				}
				if !bytes.Equal(gh.MessageID, h.MessageID) || gh.Context["purpose"] != "rewrap" {
					t.Fatalf("rewrapped header = %+v", gh)
				}
			}
			if _, _, err := envelope.DecryptBytes(ctx, re, oldKR, policy); !errors.Is(err, envelope.ErrNoDataKey) {
				t.Fatalf("old key on the rewrapped message: err = %v, want ErrNoDataKey", err)
			}
			// The body is copied byte for byte: unsigned messages end the same.
			if !s.Signed() {
				body := 10*(4+12+1000+16) + 4 + 4 + 12 + 4 + 16
				if !bytes.Equal(msg[len(msg)-body:], re[len(re)-body:]) {
					t.Fatal("the body of an unsigned message changed")
				}
			}
		})
	}
}

func TestRewrapRefusals(t *testing.T) {
	ctx := context.Background()
	oldKR, newKR := namedAES(t, "old"), namedAES(t, "new")
	signed, err := envelope.EncryptBytes(ctx, bytes.Repeat([]byte("x"), 5000), oldKR, envelope.WithFrameSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	rewrap := func(msg []byte, from keyring.Keyring, opts ...envelope.Option) error {
		_, err := envelope.Rewrap(ctx, io.Discard, bytes.NewReader(msg), from, newKR, opts...)
		return err
	}
	// A changed body byte in a signed message: the old signature does not verify.
	b := bytes.Clone(signed)
	b[len(b)-200] ^= 1
	if err := rewrap(b, oldKR); !errors.Is(err, envelope.ErrTampered) {
		t.Errorf("tampered signed body: err = %v, want ErrTampered", err)
	}
	// A changed header byte: the header tag does not verify.
	b = bytes.Clone(signed)
	b[40] ^= 1
	if err := rewrap(b, oldKR); err == nil {
		t.Error("tampered header: rewrap succeeded")
	}
	if err := rewrap(signed[:len(signed)-10], oldKR); !errors.Is(err, envelope.ErrTruncated) {
		t.Errorf("truncated: err = %v, want ErrTruncated", err)
	}
	if err := rewrap(append(bytes.Clone(signed), 0), oldKR); !errors.Is(err, envelope.ErrMalformed) {
		t.Errorf("trailing data: err = %v, want ErrMalformed", err)
	}
	if err := rewrap(signed, newKR); !errors.Is(err, envelope.ErrNoDataKey) {
		t.Errorf("wrong unwrapping key: err = %v, want ErrNoDataKey", err)
	}
	if err := rewrap(signed, oldKR, envelope.WithContext(map[string]string{"a": "b"})); !errors.Is(err, envelope.ErrContextMismatch) {
		t.Errorf("required context: err = %v, want ErrContextMismatch", err)
	}
	v1, err := envelope.EncryptBytes(ctx, []byte("x"), oldKR, envelope.WithSuite(suite.AES256GCMHKDFSHA256),
		envelope.WithCommitmentPolicy(suite.ForbidEncryptAllowDecrypt))
	if err != nil {
		t.Fatal(err)
	}
	var pe *envelope.PolicyError
	if err := rewrap(v1, oldKR); !errors.As(err, &pe) {
		t.Errorf("non-committing message under the default policy: err = %v, want PolicyError", err)
	}
}

// BenchmarkRewrap compares rewrapping a large unsigned message (header work
// and a copy of the body) with decrypting and encrypting it again.
func BenchmarkRewrap(b *testing.B) {
	ctx := context.Background()
	const size = 64 << 20
	pt := make([]byte, size)
	rand.Read(pt)
	oldKR, newKR := namedAES(b, "old"), namedAES(b, "new")
	opts := []envelope.Option{envelope.WithSuite(suite.AES256GCMHKDFSHA512CommitKey), envelope.WithFrameSize(1 << 20)}
	msg, err := envelope.EncryptBytes(ctx, pt, oldKR, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("op=rewrap", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := envelope.Rewrap(ctx, io.Discard, bytes.NewReader(msg), oldKR, newKR); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=reencrypt", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			r, err := envelope.Decrypt(ctx, bytes.NewReader(msg), oldKR)
			if err != nil {
				b.Fatal(err)
			}
			w, err := envelope.Encrypt(ctx, io.Discard, newKR, opts...)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(w, r); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRewrapFile rewraps unsigned messages read from files, whose bodies
// are copied without being read (into a file: in the kernel), and checks
// that the results decrypt; that a file with a byte more, or cut short,
// fails as it does from a stream; and that a message starting inside the
// file (after other bytes already read) is found where it starts.
func TestRewrapFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	oldKR, newKR, longerKR := namedAES(t, "old"), namedAES(t, "new"), namedAES(t, "newer")
	write := func(name string, b []byte) *os.File {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	for _, size := range []int{0, 1, 4095, 4096, 4097, 300000} {
		pt := make([]byte, size)
		rand.Read(pt)
		msg, err := envelope.EncryptBytes(ctx, pt, oldKR, envelope.WithSuite(suite.AES256GCMHKDFSHA512CommitKey), envelope.WithFrameSize(4096))
		if err != nil {
			t.Fatal(err)
		}
		// To a key whose wrapped data key has the same length (the body
		// lands at the same offset within a page: copy_file_range) and to
		// one with a longer name (it does not: copied through a buffer).
		for _, to := range []keyring.Keyring{newKR, longerKR} {
			out, err := os.Create(filepath.Join(dir, "out"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := envelope.Rewrap(ctx, out, write("in", msg), oldKR, to); err != nil {
				t.Fatalf("%d bytes: Rewrap: %v", size, err)
			}
			out.Close()
			re, err := os.ReadFile(out.Name())
			if err != nil {
				t.Fatal(err)
			}
			if got, _, err := envelope.DecryptBytes(ctx, re, to); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%d bytes: decrypting the rewrapped file: %v", size, err)
			}
			if len(re)-len(msg) > 64 || !bytes.Equal(re[len(re)-size:], msg[len(msg)-size:]) {
				t.Fatalf("%d bytes: the body was not copied unchanged", size)
			}
		}
		var sink bytes.Buffer
		if _, err := envelope.Rewrap(ctx, &sink, write("long", append(bytes.Clone(msg), 0)), oldKR, newKR); !errors.Is(err, envelope.ErrMalformed) {
			t.Fatalf("%d bytes, a byte after the message: err = %v, want ErrMalformed", size, err)
		}
		if _, err := envelope.Rewrap(ctx, &sink, write("short", msg[:len(msg)-1]), oldKR, newKR); !errors.Is(err, envelope.ErrTruncated) {
			t.Fatalf("%d bytes, cut by one byte: err = %v, want ErrTruncated", size, err)
		}
		if size == 300000 {
			// A middle frame's sequence number changed: from a stream the copy
			// checks it and fails; from a file the body is not read, and the
			// rewrapped message fails where the original would, when decrypted.
			b := bytes.Clone(msg)
			const slot = 4 + 12 + 4096 + 16
			headerLen := len(b) - (size/4096*slot + size%4096 + 40)
			b[headerLen+9*slot+3] ^= 1 // frame 10's sequence number: not the first, last or final frame
			if _, err := envelope.Rewrap(ctx, &sink, bytes.NewReader(b), oldKR, newKR); !errors.Is(err, envelope.ErrTampered) {
				t.Fatalf("changed middle frame, from a stream: err = %v, want ErrTampered", err)
			}
			sink.Reset()
			if _, err := envelope.Rewrap(ctx, &sink, write("middle", b), oldKR, newKR); err != nil {
				t.Fatalf("changed middle frame, from a file: %v (the body should be copied unread)", err)
			}
			if _, _, err := envelope.DecryptBytes(ctx, sink.Bytes(), newKR); !errors.Is(err, envelope.ErrTampered) {
				t.Fatalf("changed middle frame: decrypting the rewrapped message: err = %v, want ErrTampered", err)
			}
		}
		f := write("offset", append([]byte("prefix"), msg...))
		if _, err := f.Seek(6, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		sink.Reset()
		if _, err := envelope.Rewrap(ctx, &sink, f, oldKR, newKR); err != nil {
			t.Fatalf("%d bytes, message at offset 6: %v", size, err)
		}
		if got, _, err := envelope.DecryptBytes(ctx, sink.Bytes(), newKR); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes, message at offset 6: decrypting the result: %v", size, err)
		}
	}
}

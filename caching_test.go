package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
)

func TestCachingStreams(t *testing.T) {
	ctx := context.Background()
	kr, _ := keyring.NewRawAES("ns", "k", bytes.Repeat([]byte{1}, 32))
	cmm, err := materials.NewCaching(materials.NewDefault(kr), materials.CachingOptions{MaxAge: time.Hour, MaxBytesEncrypted: 100})
	if err != nil {
		t.Fatal(err)
	}
	stream := func(pt string, useWrite bool) ([]byte, error, error) {
		var buf bytes.Buffer
		w, err := envelope.Encrypt(ctx, &buf, nil, envelope.WithMaterialsManager(cmm), envelope.WithFrameSize(16))
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		if useWrite {
			_, werr = w.Write([]byte(pt))
		} else {
			_, werr = io.Copy(w, strings.NewReader(pt))
		}
		cerr := w.Close()
		return buf.Bytes(), werr, cerr
	}
	m1, werr, cerr := stream(strings.Repeat("a", 30), false)
	if werr != nil || cerr != nil {
		t.Fatalf("stream 1: %v %v", werr, cerr)
	}
	m2, werr, cerr := stream(strings.Repeat("b", 70), true) // exactly the rest
	if werr != nil || cerr != nil {
		t.Fatalf("stream 2: %v %v", werr, cerr)
	}
	h1, _ := envelope.ReadHeader(bytes.NewReader(m1))
	h2, _ := envelope.ReadHeader(bytes.NewReader(m2))
	if !bytes.Equal(h1.EncryptedDataKeys[0].Ciphertext, h2.EncryptedDataKeys[0].Ciphertext) {
		t.Error("streams did not share the cached data key")
	}
	// key spent (100 of 100): next stream gets a fresh key with no limit
	m3, werr, cerr := stream(strings.Repeat("c", 60), false)
	if werr != nil || cerr != nil {
		t.Fatalf("stream 3: %v %v", werr, cerr)
	}
	// reuses m3's key with 40 left: 50 bytes must fail, both ways
	for _, useWrite := range []bool{false, true} {
		m4, werr, cerr := stream(strings.Repeat("d", 50), useWrite)
		if !errors.Is(werr, envelope.ErrPlaintextLimit) || !errors.Is(cerr, envelope.ErrPlaintextLimit) {
			t.Errorf("over-limit stream (Write %v): write err %v, close err %v", useWrite, werr, cerr)
		}
		if _, _, err := envelope.DecryptBytes(ctx, m4, kr); err == nil {
			t.Error("an over-limit message decrypts")
		}
		m3, werr, cerr = stream(strings.Repeat("e", 10), false) // fresh key again each time
		if werr != nil || cerr != nil {
			t.Fatalf("stream after overrun: %v %v", werr, cerr)
		}
	}
	for _, m := range [][]byte{m1, m2, m3} {
		if _, _, err := envelope.DecryptBytes(ctx, m, kr); err != nil {
			t.Errorf("DecryptBytes: %v", err)
		}
	}
	// declared length enforced
	var buf bytes.Buffer
	w, _ := envelope.Encrypt(ctx, &buf, kr, envelope.WithPlaintextLength(3))
	if _, err := w.Write([]byte("abcd")); !errors.Is(err, envelope.ErrPlaintextLimit) {
		t.Errorf("Write past declared length: %v", err)
	}
}

// BenchmarkCaching encrypts 1 KiB messages (suite 0x0478) through a KMS
// keyring over the embedded KMS, with and without the caching materials
// manager: the cache saves the KMS call per message.
func BenchmarkCaching(b *testing.B) {
	ctx := context.Background()
	ks, err := keystore.Open(ctx, b.TempDir(), keystore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ks.Close()
	ck, err := ks.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	kr, err := awskms.New(ks, ck.KeyMetadata.Arn)
	if err != nil {
		b.Fatal(err)
	}
	pt := bytes.Repeat([]byte("x"), 1024)
	opts := []envelope.Option{envelope.WithSuite(suite.AES256GCMHKDFSHA512CommitKey)}
	b.Run("cache=off", func(b *testing.B) {
		for b.Loop() {
			if _, err := envelope.EncryptBytes(ctx, pt, kr, opts...); err != nil {
				b.Fatal(err)
			}
		}
	})
	cmm, err := materials.NewCaching(materials.NewDefault(kr), materials.CachingOptions{MaxAge: time.Minute, MaxMessagesEncrypted: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cache=on", func(b *testing.B) {
		for b.Loop() {
			if _, err := envelope.EncryptBytes(ctx, pt, nil, append(opts, envelope.WithMaterialsManager(cmm))...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

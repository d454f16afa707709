package envelope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

// Forged messages: headers and bodies made to cost a reader as much as
// possible. Each is sealed under a real data key wrapped by fixedKeyring,
// so that its header authenticates and decryption goes as far as it can.

// forge seals h (suite 0x0478, empty context) with a fresh data key wrapped
// by fixedKeyring, placed after the EDKs h already has, and returns the
// serialized header.
func forge(t testing.TB, h *format.Header) []byte {
	t.Helper()
	s, _ := suite.ByID(suite.AES256GCMHKDFSHA512CommitKey)
	m := &keyring.EncryptionMaterials{Suite: s, Context: map[string]string{}}
	if err := fixedKeyring().OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	h.Suite = s
	h.MessageID = format.NewMessageID(s)
	h.Context = map[string]string{}
	for _, k := range m.EncryptedDataKeys {
		h.EDKs = append(h.EDKs, format.EDK(k))
	}
	aead, commit, err := format.DeriveKey(s, m.DataKey, h.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	h.CommitKey = commit
	if err := h.Seal(aead); err != nil {
		t.Fatal(err)
	}
	return h.Bytes()
}

// zeros is an endless source of zero bytes that holds no memory.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// allocated returns the bytes allocated while f runs: an upper bound on
// the heap f needed at its peak.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// decryptAll decrypts src to the end with kr, discarding the plaintext,
// and returns how many bytes were released and the error.
func decryptAll(src io.Reader, kr keyring.Keyring, opts ...envelope.Option) (int64, error) {
	r, err := envelope.Decrypt(context.Background(), src, kr, opts...)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return io.Copy(io.Discard, r)
}

// rsaTestKeyring returns a raw RSA keyring (2048 bits) with its private key.
func rsaTestKeyring(t testing.TB) *keyring.RawRSA {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.NewRawRSA("forged", "rsa", keyring.OAEPSHA256, nil, priv)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// rsaEDKs returns n forged EDKs naming the keyring of rsaTestKeyring.
func rsaEDKs(n int) []format.EDK {
	edks := make([]format.EDK, n)
	for i := range edks {
		ct := make([]byte, 256)
		rand.Read(ct)
		edks[i] = format.EDK{ProviderID: "forged", ProviderInfo: []byte("rsa"), Ciphertext: ct}
	}
	return edks
}

// TestForgedManyEDKs: a message whose header names an RSA key in many
// wrapped keys. By default it is refused before any key is tried; with the
// limit lifted, the RSA keyring gives up after a few failed unwraps and the
// error stays short.
func TestForgedManyEDKs(t *testing.T) {
	kr := rsaTestKeyring(t)
	t.Run("default limit", func(t *testing.T) {
		msg := forge(t, &format.Header{EDKs: rsaEDKs(200), Framed: true, FrameLength: 4096})
		_, err := decryptAll(bytes.NewReader(msg), keyring.NewMulti(nil, kr, fixedKeyring()))
		if !errors.Is(err, envelope.ErrTooManyEncryptedDataKeys) {
			t.Fatalf("200 EDKs with the default limit: err = %v, want ErrTooManyEncryptedDataKeys", err)
		}
	})
	t.Run("no limit", func(t *testing.T) {
		msg := forge(t, &format.Header{EDKs: rsaEDKs(200), Framed: true, FrameLength: 4096})
		_, err := decryptAll(bytes.NewReader(msg), kr, envelope.WithMaxEncryptedDataKeys(1<<16-1))
		var ue *keyring.UnwrapError
		if !errors.As(err, &ue) {
			t.Fatalf("err = %v, want an *UnwrapError", err)
		}
		if len(ue.Errs) > 3 {
			t.Errorf("the RSA keyring made %d failed unwraps, want at most 3", len(ue.Errs))
		}
		if n := len(err.Error()); n > 2048 {
			t.Errorf("the error is %d bytes long, want at most 2048: %.300s…", n, err)
		}
	})
}

// TestForgedHugeHeader: a header of 200 EDKs with 64 KiB fields (38 MiB).
// It must be refused without reading it whole, with a short error.
func TestForgedHugeHeader(t *testing.T) {
	edks := make([]format.EDK, 200)
	for i := range edks {
		big := bytes.Repeat([]byte{'x'}, 1<<16-1)
		edks[i] = format.EDK{ProviderID: string(big), ProviderInfo: big, Ciphertext: big}
	}
	msg := forge(t, &format.Header{EDKs: edks, Framed: true, FrameLength: 4096})
	if len(msg) < 30<<20 {
		t.Fatalf("forged header is %d bytes, want more than 30 MiB", len(msg))
	}
	for _, tc := range []struct {
		name string
		opts []envelope.Option
	}{
		{"default limits", nil},
		{"no EDK limit", []envelope.Option{envelope.WithMaxEncryptedDataKeys(1<<16 - 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = decryptAll(bytes.NewReader(msg), fixedKeyring(), tc.opts...) })
			if err == nil {
				t.Fatal("the forged header was accepted")
			}
			// Up to the 1 MiB limit is read: the fields, their copy in
			// the growing raw buffer, the read buffer (more under -race).
			t.Logf("allocated %.1f MiB", float64(n)/(1<<20))
			if n > 8<<20 {
				t.Errorf("reading the forged header allocated %d bytes, want at most 8 MiB", n)
			}
			if l := len(err.Error()); l > 2048 {
				t.Errorf("the error is %d bytes long, want at most 2048: %.300s…", l, err)
			}
		})
	}
}

// TestForgedHugeFrame: an authentic header declaring 256 MiB frames, then
// a frame of that size. Decrypting must not hold it in memory by default.
func TestForgedHugeFrame(t *testing.T) {
	const frame = 256 << 20
	hdr := forge(t, &format.Header{Framed: true, FrameLength: frame})
	var pre [4 + suite.IVLength]byte
	binary.BigEndian.PutUint32(pre[:], 1)
	binary.BigEndian.PutUint32(pre[4+8:], 1)
	src := io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(pre[:]), io.LimitReader(zeros{}, frame+suite.TagLength))
	var err error
	n := allocated(func() { _, err = decryptAll(src, fixedKeyring()) })
	if err == nil {
		t.Fatal("the forged frame decrypted")
	}
	if n > memoryBound {
		t.Errorf("decrypting one forged %d-byte frame allocated %d bytes, want at most %d", frame, n, memoryBound)
	}
}

// TestForgedHugeNonFramed: an authentic non-framed header, then a body
// declaring 256 MiB. Decrypting must not hold it in memory by default.
func TestForgedHugeNonFramed(t *testing.T) {
	const size = 256 << 20
	hdr := forge(t, &format.Header{Framed: false})
	var pre [suite.IVLength + 8]byte
	pre[suite.IVLength-1] = 1
	binary.BigEndian.PutUint64(pre[suite.IVLength:], size)
	src := io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(pre[:]), io.LimitReader(zeros{}, size+suite.TagLength))
	var err error
	n := allocated(func() {
		_, err = decryptAll(src, fixedKeyring(), envelope.WithCommitmentPolicy(suite.RequireEncryptAllowDecrypt))
	})
	if err == nil {
		t.Fatal("the forged non-framed body decrypted")
	}
	if n > memoryBound {
		t.Errorf("decrypting a forged %d-byte non-framed body allocated %d bytes, want at most %d", size, n, memoryBound)
	}
}

// memoryBound is the most the decryptions of these tests may allocate in
// all with the default limits. What a decryption holds at once is less:
// the job pool keeps about 24 MiB in flight for frames at the 4 MiB limit
// (three jobs, each with a frame's ciphertext and plaintext), and a job's
// buffer grows to its size in steps (1, 2, then 4 MiB), which adds
// garbage the first time each job is filled.
const memoryBound = 48 << 20

// TestSignedExactMultipleWithholdsLastFrame: a signed message whose
// plaintext is an exact multiple of the frame length ends with an empty
// final frame. Whatever is cut or altered after the last frame that
// carries data, that frame must not be released.
func TestSignedExactMultipleWithholdsLastFrame(t *testing.T) {
	const frame = 4096
	ctx := context.Background()
	// 64 frames fill one pipeline job exactly (256 KiB): cover the last data
	// frame at the end of the first job, of a later one, and inside one.
	for _, frames := range []int{1, 2, 9, 64, 128, 130} {
		pt := make([]byte, frames*frame)
		rand.Read(pt)
		msg, err := envelope.EncryptBytes(ctx, pt, fixedKeyring(), envelope.WithFrameSize(frame),
			envelope.WithSuite(suite.AES256GCMHKDFSHA512CommitKeyECDSAP384))
		if err != nil {
			t.Fatal(err)
		}
		sigLen := int(binary.BigEndian.Uint16(msg[len(msg)-sigFooterLen(msg):]))
		footer := 2 + sigLen
		const emptyFinal = 4 + 4 + suite.IVLength + 4 + suite.TagLength
		for _, cut := range []struct {
			name string
			msg  []byte
		}{
			{"footer cut", msg[:len(msg)-footer]},
			{"signature half cut", msg[:len(msg)-sigLen/2]},
			{"signature length only", msg[:len(msg)-sigLen]},
			{"signature altered", func() []byte { b := bytes.Clone(msg); b[len(b)-5] ^= 1; return b }()},
			{"final frame and footer cut", msg[:len(msg)-footer-emptyFinal]},
			{"final frame half cut", msg[:len(msg)-footer-emptyFinal/2]},
		} {
			got, err := decryptStream(cut.msg)
			if err == nil {
				t.Errorf("%d frames, %s: decrypted", frames, cut.name)
				continue
			}
			if len(got) > len(pt)-frame {
				t.Errorf("%d frames, %s: %d of %d plaintext bytes released before the error %v; the last frame must be withheld", frames, cut.name, len(got), len(pt), err)
			}
			if !bytes.Equal(got, pt[:len(got)]) {
				t.Errorf("%d frames, %s: released bytes differ from the plaintext", frames, cut.name)
			}
		}
		if got, err := decryptStream(msg); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%d frames, whole message: %d bytes, %v", frames, len(got), err)
		}
	}
}

// sigFooterLen returns the length of a signed message's footer, found by
// trying each DER length a P-384 signature can have (the footer is the
// signature length, two bytes, then the signature).
func sigFooterLen(msg []byte) int {
	for n := 110; n >= 8; n-- {
		if len(msg) >= n+2 && int(binary.BigEndian.Uint16(msg[len(msg)-n-2:])) == n {
			return n + 2
		}
	}
	panic("no signature footer found")
}

// TestDecryptMemoryBound: decrypting valid messages streamed from a file,
// with frames at the default limit (4 MiB) and at the default size (64
// KiB), signed and not, allocates less than memoryBound in all: the
// pipeline's jobs are reused, whatever the message's length.
func TestDecryptMemoryBound(t *testing.T) {
	const size = 40 << 20
	for _, tc := range []struct {
		suite suite.ID
		frame int
	}{
		{suite.AES256GCMHKDFSHA512CommitKey, envelope.DefaultMaxFrameSize},
		{suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, envelope.DefaultMaxFrameSize},
		{suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, envelope.DefaultFrameSize},
	} {
		t.Run(fmt.Sprintf("%s/frame=%d", tc.suite, tc.frame), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "msg")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w, err := envelope.Encrypt(context.Background(), f, fixedKeyring(), envelope.WithSuite(tc.suite), envelope.WithFrameSize(tc.frame))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, io.LimitReader(zeros{}, size)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var n int64
			alloc := allocated(func() { n, err = decryptAll(f, fixedKeyring()) })
			if err != nil || n != size {
				t.Fatalf("decrypted %d bytes, %v; want %d, nil", n, err, size)
			}
			t.Logf("decrypting %d MiB allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
			if alloc > memoryBound {
				t.Errorf("decrypting %d bytes allocated %d bytes, want at most %d", size, alloc, memoryBound)
			}
		})
	}
}

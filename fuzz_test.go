package envelope_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

// FuzzDecrypt feeds mutated messages through the whole decryption pipeline
// (header, key unwrap, commitment, frames, signature) with every golden key.
// It must never panic, and a message that decrypts must be one of the
// seeds: no mutation of a valid message may still decrypt.
func FuzzDecrypt(f *testing.F) {
	vectors := loadGolden(f)
	var specs []string
	seen := map[string]bool{}
	valid := map[[32]byte]bool{}
	for _, v := range vectors {
		for _, s := range v.Keys {
			if !seen[s] {
				seen[s] = true
				specs = append(specs, s)
			}
		}
		msg, err := os.ReadFile(filepath.Join("testdata", "golden", v.Message))
		if err != nil {
			f.Fatal(err)
		}
		valid[sha256.Sum256(msg)] = true
		f.Add(msg)
	}
	if len(valid) < 20 {
		f.Fatalf("found %d golden seed messages, want at least 20", len(valid))
	}
	kr := goldenKeyring(f, specs)
	pinned, err := os.ReadFile("testdata/pinned/0x0578-aes256.esdk")
	if err != nil {
		f.Fatal(err)
	}
	valid[sha256.Sum256(pinned)] = true
	f.Add(pinned)
	kr = keyring.NewMulti(nil, kr, fixedKeyring())
	// The official Go ESDK's raw ECDH messages, with a key that reads each.
	for _, v := range loadECDHGolden(f) {
		msg, err := os.ReadFile(filepath.Join(ecdhGoldenDir, v.Message))
		if err != nil {
			f.Fatal(err)
		}
		valid[sha256.Sum256(msg)] = true
		f.Add(msg)
		kr = keyring.NewMulti(nil, kr, ecdhGoldenKeyring(f, v.Keys[0]))
	}
	hostile := hostileMessages(f)
	for _, h := range hostile {
		if _, err := decryptAll(bytes.NewReader(h.msg), kr, fuzzOptions...); !errors.Is(err, h.want) {
			f.Fatalf("hostile seed %q: err = %v, want %v", h.name, err, h.want)
		}
		f.Add(h.msg)
	}
	if len(hostile) < 6 {
		f.Fatalf("found %d hostile seed messages, want 6", len(hostile))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := envelope.Decrypt(context.Background(), bytes.NewReader(msg), kr, fuzzOptions...)
		if err != nil {
			return
		}
		if _, err := readAll(r); err != nil {
			return
		}
		if !valid[sha256.Sum256(msg)] {
			t.Fatalf("a message that is not one of the seeds decrypted (%d bytes)", len(msg))
		}
	})
}

// fuzzOptions are FuzzDecrypt's: limits small enough that hostile seeds of
// a reasonable size exceed them, large enough for the golden vectors and
// the pinned message (64 KiB frames).
var fuzzOptions = []envelope.Option{
	envelope.WithCommitmentPolicy(suite.RequireEncryptAllowDecrypt),
	envelope.WithMaxEncryptedDataKeys(8),
	envelope.WithMaxHeaderSize(16 << 10),
	envelope.WithMaxFrameSize(64 << 10),
}

// hostileSeed is a forged message and the error it must meet.
type hostileSeed struct {
	name string
	msg  []byte
	want error
}

// hostileMessages returns forged messages aimed at each limit (too many
// keys, a huge header, a huge frame, a huge non-framed body) and a signed
// message cut after its last data frame; their headers authenticate.
func hostileMessages(t testing.TB) []hostileSeed {
	var seeds []hostileSeed
	// More keys than allowed, naming an RSA key, then the real one.
	seeds = append(seeds, hostileSeed{"12 keys", forge(t, &format.Header{EDKs: rsaEDKs(11), Framed: true, FrameLength: 4096}), envelope.ErrTooManyEncryptedDataKeys})
	// 65535 keys declared, three present.
	many := forge(t, &format.Header{EDKs: rsaEDKs(2), Framed: true, FrameLength: 4096})
	off := 1 + 2 + 32 + 2 // version, suite, message ID, empty context
	binary.BigEndian.PutUint16(many[off:], 1<<16-1)
	seeds = append(seeds, hostileSeed{"65535 keys declared", many, envelope.ErrTooManyEncryptedDataKeys})
	// A header past the 16 KiB limit: a key with 20 KB fields (a real
	// header of 64 KiB fields is as easily refused, but slows the fuzzer).
	big := bytes.Repeat([]byte{'x'}, 20000)
	seeds = append(seeds, hostileSeed{"huge header", forge(t, &format.Header{
		EDKs: []format.EDK{{ProviderID: string(big), ProviderInfo: big, Ciphertext: big}}, Framed: true, FrameLength: 4096}), envelope.ErrTooLarge})
	// Frames of 1 MiB, and the start of one.
	frame := forge(t, &format.Header{Framed: true, FrameLength: 1 << 20})
	frame = append(frame, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
	seeds = append(seeds, hostileSeed{"huge frame", append(frame, make([]byte, 4096)...), envelope.ErrTooLarge})
	// A non-framed body declaring 1 MiB.
	nf := forge(t, &format.Header{})
	nf = append(nf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
	nf = binary.BigEndian.AppendUint64(nf, 1<<20)
	seeds = append(seeds, hostileSeed{"huge non-framed body", append(nf, make([]byte, 4096)...), envelope.ErrTooLarge})
	// A signed message of exactly two frames, its signature cut off.
	signed, err := envelope.EncryptBytes(context.Background(), make([]byte, 2*512), fixedKeyring(), envelope.WithFrameSize(512))
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, hostileSeed{"signed exact multiple, footer cut", signed[:len(signed)-sigFooterLen(signed)], envelope.ErrTruncated})
	return seeds
}

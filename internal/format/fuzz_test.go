package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/envelopekms/envelope/suite"
)

// seedMessages returns the committed messages: the JavaScript ESDK's golden
// vectors and our pinned message. It fails the test if they are missing, so
// that a fuzz target never runs unseeded by accident.
func seedMessages(t testing.TB) [][]byte {
	t.Helper()
	var paths []string
	for _, pattern := range []string{"../../testdata/golden/*.esdk", "../../testdata/pinned/*.esdk"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) < 20 {
		t.Fatalf("found %d seed messages under testdata, want at least 20", len(paths))
	}
	var msgs [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	return msgs
}

// hostileHeaders returns headers made to cost a parser as much as they
// can: far more encrypted data keys than allowed (declared, and present),
// fields of 64 KiB, a context of 64 KiB, frames of 4 GiB, a non-framed body.
// Their tags are random: the parser does not check them.
func hostileHeaders(t testing.TB) [][]byte {
	t.Helper()
	s, _ := suite.ByID(suite.AES256GCMHKDFSHA512CommitKey)
	edk := EDK{ProviderID: "forged", ProviderInfo: []byte("rsa"), Ciphertext: make([]byte, 256)}
	big := bytes.Repeat([]byte{'x'}, 1<<16-1)
	mk := func(h Header) []byte {
		h.Suite = s
		h.MessageID = make([]byte, messageIDLenV2)
		h.CommitKey = make([]byte, commitKeyLen)
		if h.Framed && h.FrameLength == 0 {
			h.FrameLength = 4096
		}
		ctx, err := MarshalContext(h.Context)
		if err != nil {
			t.Fatal(err)
		}
		h.AAD = ctx
		raw, err := h.marshalBody()
		if err != nil {
			t.Fatal(err)
		}
		return append(raw, make([]byte, suite.TagLength)...)
	}
	var seeds [][]byte
	// 12 keys present, more than the limit.
	seeds = append(seeds, mk(Header{EDKs: slices.Repeat([]EDK{edk}, 12), Framed: true}))
	// 65535 keys declared, two present: cut after them.
	many := mk(Header{EDKs: slices.Repeat([]EDK{edk}, 2), Framed: true})
	off := 1 + 2 + messageIDLenV2 + 2
	binary.BigEndian.PutUint16(many[off:], 1<<16-1)
	seeds = append(seeds, many[:off+2+2*(6+len("forged")+len("rsa")+256)])
	// A key with every field 64 KiB long.
	seeds = append(seeds, mk(Header{EDKs: []EDK{{ProviderID: string(big), ProviderInfo: big, Ciphertext: big}}, Framed: true}))
	// A context of nearly 64 KiB.
	seeds = append(seeds, mk(Header{Context: map[string]string{"k": string(big[:1<<16-10])}, EDKs: []EDK{edk}, Framed: true}))
	// Frames of 4 GiB − 1, and a non-framed body.
	seeds = append(seeds, mk(Header{EDKs: []EDK{edk}, Framed: true, FrameLength: MaxFrameLength}))
	seeds = append(seeds, mk(Header{EDKs: []EDK{edk}}))
	return seeds
}

// fuzzLimits are the limits FuzzReadHeader parses with: small, so that
// hostile seeds of a reasonable size exceed them.
var fuzzLimits = Limits{MaxEDKs: 8, MaxHeaderSize: 16 << 10}

// FuzzReadHeader checks that the header parser never panics, that what it
// accepts re-serializes to exactly the bytes it read and stays within its
// limits, and that what it refuses for a limit really exceeds it.
func FuzzReadHeader(f *testing.F) {
	for _, m := range seedMessages(f) {
		f.Add(m)
	}
	for _, m := range hostileHeaders(f) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHeader(bytes.NewReader(b), fuzzLimits)
		var tm *TooManyEDKsError
		if errors.Is(err, ErrTooLarge) || errors.As(err, &tm) {
			h, err := ReadHeader(bytes.NewReader(b), Limits{})
			if err == nil && len(h.EDKs) <= fuzzLimits.MaxEDKs && len(h.Bytes()) <= fuzzLimits.MaxHeaderSize {
				t.Fatalf("refused for a limit (%v), but the header is within it", err)
			}
			return
		}
		if err != nil {
			return
		}
		if len(h.EDKs) > fuzzLimits.MaxEDKs || len(h.Bytes()) > fuzzLimits.MaxHeaderSize {
			t.Fatalf("accepted a header of %d bytes with %d keys, beyond the limits", len(h.Bytes()), len(h.EDKs))
		}
		raw, err := h.marshalBody()
		if err != nil {
			t.Fatalf("accepted header does not re-serialize: %v", err)
		}
		if !bytes.Equal(raw, h.Raw) {
			t.Fatalf("header re-serializes to %x, read %x", raw, h.Raw)
		}
		if !bytes.HasPrefix(b, h.Bytes()) {
			t.Fatal("Bytes() is not a prefix of the input")
		}
	})
}

// TestHostileSeeds checks that the hostile seeds of FuzzReadHeader are
// there and are refused for the limits they were made to exceed.
func TestHostileSeeds(t *testing.T) {
	seeds := hostileHeaders(t)
	if len(seeds) != 6 {
		t.Fatalf("%d hostile seeds, want 6", len(seeds))
	}
	for i, b := range seeds[:4] {
		_, err := ReadHeader(bytes.NewReader(b), fuzzLimits)
		var tm *TooManyEDKsError
		if !errors.Is(err, ErrTooLarge) && !errors.As(err, &tm) {
			t.Errorf("hostile seed %d: err = %v, want a limit refused", i, err)
		}
	}
	for i, b := range seeds[4:] {
		h, err := ReadHeader(bytes.NewReader(b), fuzzLimits)
		if err != nil {
			t.Fatalf("hostile seed %d: %v", i+4, err)
		}
		if err := CheckFrameLength(h, 1<<20); h.Framed && !errors.Is(err, ErrTooLarge) {
			t.Errorf("hostile seed %d: CheckFrameLength err = %v, want ErrTooLarge", i+4, err)
		}
	}
}

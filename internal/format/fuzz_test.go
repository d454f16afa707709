package format

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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

// FuzzReadHeader checks that the header parser never panics, and that what
// it accepts re-serializes to exactly the bytes it read.
func FuzzReadHeader(f *testing.F) {
	for _, m := range seedMessages(f) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHeader(bytes.NewReader(b), Limits{})
		if err != nil {
			return
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

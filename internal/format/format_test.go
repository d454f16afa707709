package format

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/suite"
)

func mustSuite(t testing.TB, id suite.ID) *suite.Suite {
	t.Helper()
	s, ok := suite.ByID(id)
	if !ok {
		t.Fatalf("no suite %s", id)
	}
	return s
}

func TestContextSerialization(t *testing.T) {
	ec := map[string]string{"b": "2", "a": "1", "A": "0", "_": "x", "é": "y", "🔐": "z"}
	b, err := MarshalContext(ec)
	if err != nil {
		t.Fatal(err)
	}
	// Count, then pairs sorted by UTF-8 bytes: "A" < "_" < "a" < "b" < "é" < "🔐".
	want := []byte{0, 6}
	for _, kv := range [][2]string{{"A", "0"}, {"_", "x"}, {"a", "1"}, {"b", "2"}, {"é", "y"}, {"🔐", "z"}} {
		want = appendField16(want, []byte(kv[0]))
		want = appendField16(want, []byte(kv[1]))
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("MarshalContext = %x, want %x", b, want)
	}
	got, err := UnmarshalContext(b)
	if err != nil || len(got) != len(ec) {
		t.Fatalf("UnmarshalContext = %v, %v", got, err)
	}
	if b, _ := MarshalContext(nil); len(b) != 0 {
		t.Fatalf("empty context serializes to %x, want nothing", b)
	}
}

func TestContextRejects(t *testing.T) {
	pair := appendField16(appendField16([]byte{0, 1}, []byte("k")), []byte("v"))
	dup := append([]byte{0, 2}, pair[2:]...)
	dup = append(dup, pair[2:]...)
	for name, b := range map[string][]byte{
		"zero count":    {0, 0},
		"short":         {0},
		"overrun":       {0, 1, 0, 9, 'k'},
		"trailing":      append(bytes.Clone(pair), 0),
		"duplicate":     dup,
		"invalid utf-8": appendField16(appendField16([]byte{0, 1}, []byte{0xff}), []byte("v")),
	} {
		if _, err := UnmarshalContext(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: UnmarshalContext(%x) err = %v, want ErrMalformed", name, b, err)
		}
	}
	if _, err := MarshalContext(map[string]string{"k": strings.Repeat("x", 1<<16)}); err == nil {
		t.Error("MarshalContext accepted a 65536-byte value")
	}
	if _, err := MarshalContext(map[string]string{"k": "\xff"}); err == nil {
		t.Error("MarshalContext accepted invalid UTF-8")
	}
}

// buildMessage writes a message by hand, so the reader can be tested on forms
// our Writer never produces: non-framed bodies and final frames that hold a
// whole frame.
func buildMessage(t *testing.T, s *suite.Suite, pt []byte, frameLen int, framed, fullFinal bool) (*Header, []byte, []byte) {
	t.Helper()
	dataKey := make([]byte, s.KeyLength)
	rand.Read(dataKey)
	h := &Header{Suite: s, MessageID: NewMessageID(s), Context: map[string]string{"k": "v"},
		EDKs: []EDK{{ProviderID: "p", ProviderInfo: []byte("i"), Ciphertext: []byte("c")}}, Framed: framed}
	if framed {
		h.FrameLength = uint32(frameLen)
	}
	aead, commit, err := DeriveKey(s, dataKey, h.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	h.CommitKey = commit
	if err := h.Seal(aead); err != nil {
		t.Fatal(err)
	}
	msg := h.Bytes()
	var aad, iv []byte
	if !framed {
		iv = frameIV(iv, 1)
		msg = append(msg, iv...)
		msg = binary.BigEndian.AppendUint64(msg, uint64(len(pt)))
		aad = bodyAAD(aad, h.MessageID, labelSingleBlock, 1, uint64(len(pt)))
		msg = aead.Seal(msg, iv, pt, aad)
		return h, dataKey, msg
	}
	seq := uint32(0)
	rest := pt
	for {
		seq++
		last := len(rest) < frameLen || (fullFinal && len(rest) == frameLen)
		if !last {
			msg = binary.BigEndian.AppendUint32(msg, seq)
			iv = frameIV(iv, seq)
			msg = append(msg, iv...)
			aad = bodyAAD(aad, h.MessageID, labelFrame, seq, uint64(frameLen))
			msg = aead.Seal(msg, iv, rest[:frameLen], aad)
			rest = rest[frameLen:]
			continue
		}
		msg = binary.BigEndian.AppendUint32(msg, finalFrameMarker)
		msg = binary.BigEndian.AppendUint32(msg, seq)
		iv = frameIV(iv, seq)
		msg = append(msg, iv...)
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(rest)))
		aad = bodyAAD(aad, h.MessageID, labelFinalFrame, seq, uint64(len(rest)))
		msg = aead.Seal(msg, iv, rest, aad)
		return h, dataKey, msg
	}
}

func decryptWith(msg, dataKey []byte) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(msg))
	h, err := ReadHeader(br, Limits{})
	if err != nil {
		return nil, err
	}
	aead, commit, err := DeriveKey(h.Suite, dataKey, h.MessageID)
	if err != nil {
		return nil, err
	}
	if err := h.Verify(aead, commit); err != nil {
		return nil, err
	}
	rest, _ := br.Peek(br.Buffered())
	rest = bytes.Clone(rest)
	br.Discard(len(rest))
	r, err := NewReader(rest, br, h, aead, nil, 0, 0)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestReadOtherForms(t *testing.T) {
	for _, id := range []suite.ID{suite.AES128GCM, suite.AES256GCMHKDFSHA256, suite.AES256GCMHKDFSHA512CommitKey} {
		s := mustSuite(t, id)
		for _, size := range []int{0, 1, 100, 300} {
			pt := make([]byte, size)
			rand.Read(pt)
			for _, form := range []struct {
				name              string
				framed, fullFinal bool
			}{{"non-framed", false, false}, {"full-final-frame", true, true}, {"empty-final-frame", true, false}} {
				_, key, msg := buildMessage(t, s, pt, 100, form.framed, form.fullFinal)
				got, err := decryptWith(msg, key)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("%s %s size %d: err = %v, equal = %v", id, form.name, size, err, bytes.Equal(got, pt))
				}
			}
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, s := range suite.All() {
		h, _, msg := buildMessage(t, s, []byte("x"), 10, true, false)
		got, err := ReadHeader(bytes.NewReader(msg), Limits{})
		if err != nil {
			t.Fatalf("%s: ReadHeader: %v", s.ID, err)
		}
		if !bytes.Equal(got.Bytes(), h.Bytes()) || got.FrameLength != 10 || got.Context["k"] != "v" {
			t.Fatalf("%s: header did not round-trip", s.ID)
		}
	}
}

func TestMaxEDKsCheckedBeforeReadingKeys(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	h, _, msg := buildMessage(t, s, nil, 10, true, false)
	// Cut the message right after the EDK count: the limit must fire
	// without reading any key.
	cut := 1 + 2 + 32 + 2 + len(h.AAD) + 2
	msg = msg[:cut]
	binary.BigEndian.PutUint16(msg[cut-2:], 3)
	var tm *TooManyEDKsError
	if _, err := ReadHeader(bytes.NewReader(msg), Limits{MaxEDKs: 2}); !errors.As(err, &tm) || tm.Count != 3 {
		t.Fatalf("ReadHeader err = %v, want TooManyEDKsError", err)
	}
}

func TestTruncationAndTampering(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	_, key, msg := buildMessage(t, s, bytes.Repeat([]byte("a"), 25), 10, true, false)
	for i := range len(msg) {
		if _, err := decryptWith(msg[:i], key); !errors.Is(err, ErrTruncated) {
			t.Fatalf("truncated at %d/%d: err = %v, want ErrTruncated", i, len(msg), err)
		}
	}
	for i := range len(msg) {
		b := bytes.Clone(msg)
		b[i] ^= 0x01
		if got, err := decryptWith(b, key); err == nil {
			t.Fatalf("byte %d flipped: decrypted %q", i, got)
		}
	}
}

// TestBodyFits checks the constant-cost check that a file holds exactly one
// unsigned body: it accepts every well-formed body (framed with full and
// empty final frames, non-framed) and refuses every cut, every extra byte,
// and a changed final-frame header.
func TestBodyFits(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	for _, size := range []int{0, 1, 99, 100, 101, 300, 1000} {
		for _, form := range []struct {
			name              string
			framed, fullFinal bool
		}{{"non-framed", false, false}, {"full-final-frame", true, true}, {"empty-final-frame", true, false}} {
			pt := make([]byte, size)
			rand.Read(pt)
			h, _, msg := buildMessage(t, s, pt, 100, form.framed, form.fullFinal)
			start := int64(len(h.Bytes()))
			r := bytes.NewReader(msg)
			body := int64(len(msg)) - start
			if !BodyFits(r, start, body, h) {
				t.Fatalf("%s, %d bytes: a well-formed body does not fit", form.name, size)
			}
			for cut := int64(1); cut <= body; cut++ {
				if BodyFits(bytes.NewReader(msg[:len(msg)-int(cut)]), start, body-cut, h) {
					t.Fatalf("%s, %d bytes: fits with its last %d bytes cut", form.name, size, cut)
				}
			}
			long := append(bytes.Clone(msg), 0)
			if BodyFits(bytes.NewReader(long), start, body+1, h) {
				t.Fatalf("%s, %d bytes: fits with a byte more", form.name, size)
			}
			if form.framed {
				// Every byte of the final frame's header.
				slot := int64(frameSlot(100))
				finalAt := int(start + (body-40)/slot*slot)
				if binary.BigEndian.Uint32(msg[finalAt:]) != finalFrameMarker {
					t.Fatalf("%s, %d bytes: no final frame at %d", form.name, size, finalAt)
				}
				for i := finalAt; i < finalAt+24; i++ {
					b := bytes.Clone(msg)
					b[i] ^= 1
					if BodyFits(bytes.NewReader(b), start, body, h) {
						t.Fatalf("%s, %d bytes: fits with byte %d of the final frame's header changed", form.name, size, i-finalAt)
					}
				}
			}
		}
	}
}

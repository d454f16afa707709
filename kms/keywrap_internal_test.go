package kms

import (
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyWrapPadRFC5649 checks the two examples of RFC 5649 section 6.
func TestKeyWrapPadRFC5649(t *testing.T) {
	kek := unhex(t, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for _, c := range []struct{ key, wrapped string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		got, err := keyWrapPad(kek, unhex(t, c.key))
		if err != nil || hex.EncodeToString(got) != c.wrapped {
			t.Errorf("keyWrapPad(%s) = %x, %v, want %s", c.key, got, err, c.wrapped)
		}
		back, err := keyUnwrapPad(kek, unhex(t, c.wrapped))
		if err != nil || hex.EncodeToString(back) != c.key {
			t.Errorf("keyUnwrapPad(%s) = %x, %v, want %s", c.wrapped, back, err, c.key)
		}
	}
}

// TestKeyWrapPadOpenSSL holds the key wrap to OpenSSL's (id-aes*-wrap-pad,
// the command AWS documents for RSA_AES_KEY_WRAP) for every key size and
// every plaintext length from 1 to 80 bytes, both ways: the mode is
// deterministic, so both must write the same bytes.
func TestKeyWrapPadOpenSSL(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{16, 24, 32} {
		kek := make([]byte, size)
		rand.Read(kek)
		var lens []int
		for n := 1; n <= 80; n++ {
			lens = append(lens, n)
		}
		lens = append(lens, 1218, 2400) // a PKCS #8 RSA-2048 and RSA-4096 key's sizes
		for _, n := range lens {
			pt := make([]byte, n)
			rand.Read(pt)
			in := filepath.Join(dir, "in")
			if err := os.WriteFile(in, pt, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), "openssl", "enc", fmt.Sprintf("-id-aes%d-wrap-pad", 8*size),
				"-K", hex.EncodeToString(kek), "-iv", "A65959A6", "-in", in)
			want, err := cmd.Output()
			if err != nil {
				t.Fatalf("openssl enc -id-aes%d-wrap-pad: %v (Debian: apt-get install openssl)", 8*size, err)
			}
			got, err := keyWrapPad(kek, pt)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("AES-%d, %d bytes: keyWrapPad = %x, %v; openssl = %x", 8*size, n, got, err, want)
			}
			back, err := keyUnwrapPad(kek, want)
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("AES-%d, %d bytes: keyUnwrapPad(openssl's) = %x, %v", 8*size, n, back, err)
			}
		}
	}
}

// rawWrap is RFC 3394's W (or the single-block case) over a chosen first
// semiblock and data, with no padding rule: it makes the ciphertexts of
// malformed plaintexts that keyUnwrapPad must refuse.
func rawWrap(t *testing.T, kek, aiv, data []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(kek)
	if err != nil {
		t.Fatal(err)
	}
	out := append(append([]byte{}, aiv...), data...)
	n := len(data) / 8
	if n == 1 {
		block.Encrypt(out, out)
		return out
	}
	var b [16]byte
	for j := range 6 {
		for i := 1; i <= n; i++ {
			copy(b[:8], out[:8])
			copy(b[8:], out[8*i:])
			block.Encrypt(b[:], b[:])
			binary.BigEndian.PutUint64(out[:8], binary.BigEndian.Uint64(b[:8])^uint64(n*j+i))
			copy(out[8*i:8*i+8], b[8:])
		}
	}
	return out
}

// TestKeyUnwrapPadRefuses checks every check of RFC 5649 section 4.2: a
// wrong AIV, a length indicator out of range (too short, too long, 0,
// with the top bit set), non-zero padding, a changed ciphertext, the wrong
// key, and lengths that are no ciphertext at all.
func TestKeyUnwrapPadRefuses(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	aiv := func(prefix uint32, mli uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, prefix)
		return binary.BigEndian.AppendUint32(b, mli)
	}
	data := func(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n) }
	padded := append(data(13, 7), 0, 0, 1) // 13 bytes and non-zero padding
	for name, ct := range map[string][]byte{
		"wrong AIV":              rawWrap(t, kek, aiv(0xA65959A7, 16), data(16, 1)),
		"RFC 3394 IV":            rawWrap(t, kek, data(8, 0xA6), data(16, 1)),
		"MLI too long":           rawWrap(t, kek, aiv(0xA65959A6, 17), data(16, 1)),
		"MLI too short":          rawWrap(t, kek, aiv(0xA65959A6, 8), data(16, 1)),
		"MLI zero":               rawWrap(t, kek, aiv(0xA65959A6, 0), data(8, 0)),
		"MLI top bit":            rawWrap(t, kek, aiv(0xA65959A6, 0x80000010), data(16, 1)),
		"non-zero padding":       rawWrap(t, kek, aiv(0xA65959A6, 13), padded),
		"one block, bad padding": rawWrap(t, kek, aiv(0xA65959A6, 3), append(data(3, 9), 0, 0, 0, 0, 1)),
		"empty":                  {},
		"8 bytes":                data(8, 0),
		"not semiblocks":         data(25, 0),
	} {
		if pt, err := keyUnwrapPad(kek, ct); err != errKeyUnwrap || pt != nil {
			t.Errorf("%s: keyUnwrapPad = %x, %v, want errKeyUnwrap", name, pt, err)
		}
	}
	// The well-formed ones of the same shapes do unwrap: the refusals
	// above are for the malformation alone.
	if pt, err := keyUnwrapPad(kek, rawWrap(t, kek, aiv(0xA65959A6, 13), append(data(13, 7), 0, 0, 0))); err != nil || !bytes.Equal(pt, data(13, 7)) {
		t.Errorf("well-formed 13 bytes: %x, %v", pt, err)
	}
	good, _ := keyWrapPad(kek, data(40, 3))
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		if _, err := keyUnwrapPad(kek, bad); err != errKeyUnwrap {
			t.Fatalf("byte %d changed: err = %v", i, err)
		}
	}
	other := make([]byte, 32)
	rand.Read(other)
	if _, err := keyUnwrapPad(other, good); err != errKeyUnwrap {
		t.Errorf("another key: err = %v", err)
	}
	if _, err := keyWrapPad(kek, nil); err == nil {
		t.Error("keyWrapPad of nothing succeeded")
	}
	if _, err := keyWrapPad(make([]byte, 20), data(8, 1)); err == nil {
		t.Error("keyWrapPad with a 20-byte key succeeded")
	}
}

// FuzzKeyUnwrapPad: any input unwraps or fails without panicking, and
// what unwraps is what wrapping gives back byte for byte (no other
// ciphertext of the same plaintext is accepted: KWP is deterministic).
func FuzzKeyUnwrapPad(f *testing.F) {
	kek := unhex(f, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	f.Add(unhex(f, "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"))
	f.Add(unhex(f, "afbeb0f07dfbf5419200f2ccb50bb24f"))
	f.Add(make([]byte, 24))
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := keyUnwrapPad(kek, ct)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		again, err := keyWrapPad(kek, pt)
		if err != nil || !bytes.Equal(again, ct) {
			t.Fatalf("unwrapped %x from %x, which wraps to %x", pt, ct, again)
		}
	})
}

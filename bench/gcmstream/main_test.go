package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17, 4 * ChunkSize} {
		pt := make([]byte, n)
		rand.Read(pt)
		var ct bytes.Buffer
		if err := Encrypt(&ct, bytes.NewReader(pt), key); err != nil {
			t.Fatalf("%d: encrypt: %v", n, err)
		}
		chunks := max(1, (n+ChunkSize-1)/ChunkSize) // a full last chunk is final itself
		if want := saltSize + n + chunks*tagSize; ct.Len() != want {
			t.Errorf("%d: ciphertext is %d bytes, want %d", n, ct.Len(), want)
		}
		var got bytes.Buffer
		if err := Decrypt(&got, bytes.NewReader(ct.Bytes()), key); err != nil {
			t.Fatalf("%d: decrypt: %v", n, err)
		}
		if !bytes.Equal(got.Bytes(), pt) {
			t.Fatalf("%d: round trip differs", n)
		}
	}
}

func TestTamper(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	pt := make([]byte, 2*ChunkSize+5)
	var ct bytes.Buffer
	if err := Encrypt(&ct, bytes.NewReader(pt), key); err != nil {
		t.Fatal(err)
	}
	c := ct.Bytes()
	full := saltSize + ChunkSize + tagSize
	cases := map[string][]byte{
		"bit flip":             flip(c, saltSize+10),
		"salt flip":            flip(c, 0),
		"truncated at a chunk": c[:full],
		"truncated mid-chunk":  c[:full+100],
		"extended":             append(append([]byte{}, c...), 0),
		"empty":                nil,
	}
	for name, m := range cases {
		if err := Decrypt(new(bytes.Buffer), bytes.NewReader(m), key); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: got %v, want ErrAuth", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 1
	return c
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	pt := make([]byte, ChunkSize*2+3)
	rand.Read(pt)
	kf, in, enc, dec := filepath.Join(dir, "k"), filepath.Join(dir, "in"), filepath.Join(dir, "enc"), filepath.Join(dir, "dec")
	os.WriteFile(kf, key, 0o600)
	os.WriteFile(in, pt, 0o600)
	if err := run("encrypt", kf, in, enc); err != nil {
		t.Fatal(err)
	}
	if err := run("decrypt", kf, enc, dec); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dec)
	if !bytes.Equal(got, pt) {
		t.Fatal("file round trip differs")
	}
	os.WriteFile(enc, flip(mustRead(t, enc), 50), 0o600)
	if err := run("decrypt", kf, enc, dec); err == nil {
		t.Fatal("decrypt of a tampered file succeeded")
	}
	if _, err := os.Stat(dec); !os.IsNotExist(err) {
		t.Fatal("a failed decrypt left its output file")
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

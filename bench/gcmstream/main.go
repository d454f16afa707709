// Command gcmstream is the benchmark's reference streamer: the simplest sound
// way to stream AES-256-GCM in Go, on one goroutine, with no framing format
// beyond what is needed to be safe. envelope's throughput is compared with it.
//
// Usage:
//
//	gcmstream encrypt|decrypt -key FILE [-in FILE] [-out FILE]
//
// FILE under -key holds 32 raw bytes. Input is -in (default standard input),
// output -out (default standard output).
//
// Format: a 32-byte random salt, then the body in chunks of 64 KiB of
// plaintext, each sealed with AES-256-GCM (16-byte tag) under
// HKDF-SHA256(key, salt) and the nonce counter(8 bytes, big-endian) ||
// 3 zero bytes || final flag (1 on the last chunk, which may be empty and is
// shorter than 64 KiB). The final flag stops truncation, the counter
// reordering, and the salt keeps nonces from repeating across messages under
// one key (the STREAM construction).
//
// One goroutine reads a chunk, seals or opens it in place and writes it: no
// pipelining, no worker pool. This is the floor an implementation of a framed
// AEAD format on one core should reach.
package main

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// ChunkSize is the plaintext bytes per chunk.
const ChunkSize = 64 << 10

const (
	saltSize = 32
	tagSize  = 16
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "encrypt" && os.Args[1] != "decrypt") {
		fmt.Fprintln(os.Stderr, "usage: gcmstream encrypt|decrypt -key FILE [-in FILE] [-out FILE]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet("gcmstream "+mode, flag.ExitOnError)
	keyFile := fs.String("key", "", "`FILE` holding the 32-byte key (raw)")
	in := fs.String("in", "", "input `FILE` (default standard input)")
	out := fs.String("out", "", "output `FILE` (default standard output)")
	fs.Parse(os.Args[2:])
	if err := run(mode, *keyFile, *in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gcmstream:", err)
		os.Exit(1)
	}
}

func run(mode, keyFile, in, out string) error {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	src, dst := os.Stdin, os.Stdout
	if in != "" && in != "-" {
		if src, err = os.Open(in); err != nil {
			return err
		}
		defer src.Close()
	}
	if out != "" && out != "-" {
		if dst, err = os.Create(out); err != nil {
			return err
		}
	}
	if mode == "encrypt" {
		err = Encrypt(dst, src, key)
	} else {
		err = Decrypt(dst, src, key)
	}
	if err != nil {
		if dst != os.Stdout {
			dst.Close()
			os.Remove(out)
		}
		return err
	}
	if dst != os.Stdout {
		return dst.Close()
	}
	return nil
}

func newAEAD(key, salt []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("key: want 32 bytes, got %d", len(key))
	}
	k, err := hkdf.Key(sha256.New, key, salt, "gcmstream v1", 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func nonce(n []byte, counter uint64, final bool) {
	binary.BigEndian.PutUint64(n, counter)
	n[8], n[9], n[10], n[11] = 0, 0, 0, 0
	if final {
		n[11] = 1
	}
}

// Encrypt streams src to dst, sealed under key (32 bytes).
func Encrypt(dst io.Writer, src io.Reader, key []byte) error {
	salt := make([]byte, saltSize)
	rand.Read(salt)
	aead, err := newAEAD(key, salt)
	if err != nil {
		return err
	}
	if _, err := dst.Write(salt); err != nil {
		return err
	}
	// buf holds one chunk of plaintext plus room for its tag, and one byte
	// of lookahead so the last chunk is known before it is sealed.
	buf := make([]byte, ChunkSize+tagSize)
	var n12 [12]byte
	var peek [1]byte
	havePeek := false
	for counter := uint64(0); ; counter++ {
		off := 0
		if havePeek {
			buf[0] = peek[0]
			off = 1
		}
		m, err := io.ReadFull(src, buf[off:ChunkSize])
		m += off
		final := false
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			final = true
		case err != nil:
			return err
		default:
			// A full chunk: is there more?
			k, err := io.ReadFull(src, peek[:])
			switch {
			case k == 1:
				havePeek = true
			case err == io.EOF:
				final = true
			default:
				return err
			}
		}
		nonce(n12[:], counter, final)
		ct := aead.Seal(buf[:0], n12[:], buf[:m], nil)
		if _, err := dst.Write(ct); err != nil {
			return err
		}
		if final {
			return nil
		}
	}
}

// ErrAuth is returned when a chunk fails to authenticate or the stream is
// truncated or extended.
var ErrAuth = errors.New("message authentication failed")

// Decrypt streams src, written by Encrypt under key, to dst. Plaintext is
// released chunk by chunk after each chunk authenticates.
func Decrypt(dst io.Writer, src io.Reader, key []byte) error {
	br := bufio.NewReaderSize(src, 2*(ChunkSize+tagSize))
	salt := make([]byte, saltSize)
	if _, err := io.ReadFull(br, salt); err != nil {
		return ErrAuth
	}
	aead, err := newAEAD(key, salt)
	if err != nil {
		return err
	}
	buf := make([]byte, ChunkSize+tagSize)
	var n12 [12]byte
	for counter := uint64(0); ; counter++ {
		m, err := io.ReadFull(br, buf)
		final := false
		switch {
		case err == io.ErrUnexpectedEOF || err == io.EOF:
			final = true
		case err != nil:
			return err
		default:
			// A full-size chunk is final only if nothing follows.
			if _, err := br.Peek(1); err == io.EOF {
				final = true
			} else if err != nil {
				return err
			}
		}
		if m < tagSize {
			return ErrAuth
		}
		nonce(n12[:], counter, final)
		pt, err := aead.Open(buf[:0], n12[:], buf[:m], nil)
		if err != nil {
			return ErrAuth
		}
		if _, err := dst.Write(pt); err != nil {
			return err
		}
		if final {
			return nil
		}
	}
}

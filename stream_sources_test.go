package envelope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/suite"
)

// chunkedReader returns at most n bytes per Read, as a pipe or a socket
// does.
type chunkedReader struct {
	r io.Reader
	n int
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

// TestDecryptSources decrypts messages of several jobs (the body is read
// straight into job buffers, a job's worth of frames per read) through
// sources that deliver their bytes in every manner, with frame sizes below,
// at and above the job size, for signed and unsigned suites; and checks
// that data after the message, or a message cut inside a job, fails with
// everything released being a prefix of the plaintext and the final frame
// withheld.
func TestDecryptSources(t *testing.T) {
	ctx := context.Background()
	pt := make([]byte, 1<<20+12345)
	rand.Read(pt)
	sources := map[string]func([]byte) io.Reader{
		"bytes":   func(b []byte) io.Reader { return bytes.NewReader(b) },
		"onebyte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"half":    func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"chunks":  func(b []byte) io.Reader { return &chunkedReader{struct{ io.Reader }{bytes.NewReader(b)}, 65536 - 7} },
		"pipe": func(b []byte) io.Reader {
			pr, pw := io.Pipe()
			go func() {
				for len(b) > 0 {
					n := min(len(b), 4093)
					pw.Write(b[:n])
					b = b[n:]
				}
				pw.Close()
			}()
			return pr
		},
	}
	for _, id := range []suite.ID{suite.AES256GCMHKDFSHA512CommitKey, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384} {
		for _, frame := range []int{1000, 65536, 100000, 300000} {
			msg, err := envelope.EncryptBytes(ctx, pt, fixedKeyring(), envelope.WithSuite(id), envelope.WithFrameSize(frame))
			if err != nil {
				t.Fatal(err)
			}
			for name, src := range sources {
				if name == "onebyte" && frame != 65536 {
					continue // a byte at a time is slow; one frame size is enough
				}
				t.Run(fmt.Sprintf("%s/frame=%d/%s", id, frame, name), func(t *testing.T) {
					r, err := envelope.Decrypt(ctx, src(msg), fixedKeyring())
					if err != nil {
						t.Fatal(err)
					}
					got, err := readAll(r)
					if err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("decrypted %d of %d bytes (equal: %v), err = %v", len(got), len(pt), bytes.Equal(got, pt), err)
					}
					for _, extra := range []int{1, 300 << 10} {
						r, err := envelope.Decrypt(ctx, src(append(bytes.Clone(msg), make([]byte, extra)...)), fixedKeyring())
						if err != nil {
							t.Fatal(err)
						}
						got, err := readAll(r)
						if !errors.Is(err, envelope.ErrMalformed) {
							t.Fatalf("%d bytes after the message: err = %v, want ErrMalformed", extra, err)
						}
						if len(got) >= len(pt) || !bytes.Equal(got, pt[:len(got)]) {
							t.Fatalf("%d bytes after the message: released %d bytes, want a proper prefix of the plaintext", extra, len(got))
						}
					}
					cut := len(msg) - len(msg)/3
					r, err = envelope.Decrypt(ctx, src(msg[:cut]), fixedKeyring())
					if err != nil {
						t.Fatal(err)
					}
					got, err = readAll(r)
					if !errors.Is(err, envelope.ErrTruncated) || len(got) >= len(pt) || !bytes.Equal(got, pt[:len(got)]) {
						t.Fatalf("cut at %d of %d: released %d bytes, err = %v; want a proper prefix and ErrTruncated", cut, len(msg), len(got), err)
					}
				})
			}
		}
	}
}

package envelope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/suite"
)

// benchSize is the plaintext streamed per benchmark iteration.
const benchSize = 16 << 20

// Benchmarks are named for benchstat: suite and frame size as sub-benchmark
// keys, throughput from SetBytes.
var benchCases = []struct {
	suite suite.ID
	frame int
}{
	{suite.AES256GCMHKDFSHA512CommitKey, 4096},
	{suite.AES256GCMHKDFSHA512CommitKey, 65536},
	{suite.AES256GCMHKDFSHA512CommitKey, 1 << 20},
	{suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, 4096},
	{suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, 65536},
	{suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, 1 << 20},
}

func benchName(id suite.ID, frame int) string {
	return fmt.Sprintf("suite=%s/frame=%d", id, frame)
}

func BenchmarkEncrypt(b *testing.B) {
	pt := make([]byte, benchSize)
	rand.Read(pt)
	for _, c := range benchCases {
		b.Run(benchName(c.suite, c.frame), func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				w, err := envelope.Encrypt(context.Background(), io.Discard, fixedKeyring(),
					envelope.WithSuite(c.suite), envelope.WithFrameSize(c.frame))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(pt); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	pt := make([]byte, benchSize)
	rand.Read(pt)
	buf := make([]byte, 256<<10)
	for _, c := range benchCases {
		msg, err := envelope.EncryptBytes(context.Background(), pt, fixedKeyring(),
			envelope.WithSuite(c.suite), envelope.WithFrameSize(c.frame))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(benchName(c.suite, c.frame), func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				r, err := envelope.Decrypt(context.Background(), bytes.NewReader(msg), fixedKeyring())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package envelope_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelopekms/envelope"
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
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := envelope.Decrypt(context.Background(), bytes.NewReader(msg), kr,
			envelope.WithCommitmentPolicy(suite.RequireEncryptAllowDecrypt), envelope.WithMaxEncryptedDataKeys(8))
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

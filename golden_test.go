package envelope_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

// goldenVector is one entry of testdata/golden/manifest.json: a message
// written by the official JavaScript ESDK (interop/js/gen-golden.js).
type goldenVector struct {
	Name             string            `json:"name"`
	Message          string            `json:"message"`
	Plaintext        string            `json:"plaintext"`
	Suite            string            `json:"suite"`
	Keys             []string          `json:"keys"`
	Context          map[string]string `json:"context"`
	FrameLength      int               `json:"frameLength"`
	CommitmentPolicy string            `json:"commitmentPolicy"`
}

func loadGolden(t testing.TB) []goldenVector {
	t.Helper()
	data, err := os.ReadFile("testdata/golden/manifest.json")
	if err != nil {
		t.Fatalf("golden vectors missing: %v", err)
	}
	var vs []goldenVector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(vs) == 0 {
		t.Fatal("manifest.json lists no vectors")
	}
	return vs
}

// goldenKeyring builds the keyring of a vector; key paths are relative to
// testdata/golden.
func goldenKeyring(t testing.TB, specs []string) keyring.Keyring {
	t.Helper()
	var krs []keyring.Keyring
	for _, s := range specs {
		s = strings.Replace(s, "file=", "file="+filepath.Join("testdata", "golden")+string(filepath.Separator), 1)
		kr, err := keyring.FromSpec(s, true)
		if err != nil {
			t.Fatalf("key %q: %v", s, err)
		}
		krs = append(krs, kr)
	}
	return keyring.NewMulti(nil, krs...)
}

// TestGoldenVectors decrypts every message the JavaScript ESDK wrote, with
// the keys it used, and checks plaintext, suite, frame length and context.
func TestGoldenVectors(t *testing.T) {
	suitesSeen := map[suite.ID]bool{}
	for _, v := range loadGolden(t) {
		t.Run(v.Name, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join("testdata", "golden", v.Message))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", "golden", v.Plaintext))
			if err != nil {
				t.Fatal(err)
			}
			s, err := suite.Parse(v.Suite)
			if err != nil {
				t.Fatal(err)
			}
			suitesSeen[s.ID] = true
			got, h, err := envelope.DecryptBytes(context.Background(), msg, goldenKeyring(t, v.Keys),
				envelope.WithCommitmentPolicy(suite.RequireEncryptAllowDecrypt), envelope.WithContext(v.Context))
			if err != nil {
				t.Fatalf("DecryptBytes: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("plaintext differs: got %d bytes, want %d", len(got), len(want))
			}
			if h.Suite != s || h.FrameLength != v.FrameLength {
				t.Fatalf("header suite %s frame %d, want %s frame %d", h.Suite.ID, h.FrameLength, s.ID, v.FrameLength)
			}
			for k, val := range v.Context {
				if h.Context[k] != val {
					t.Fatalf("context[%q] = %q, want %q", k, h.Context[k], val)
				}
			}
			// The default policy must refuse non-committing suites.
			if !s.Committing {
				if _, _, err := envelope.DecryptBytes(context.Background(), msg, goldenKeyring(t, v.Keys)); err == nil {
					t.Fatal("default commitment policy read a non-committing message")
				}
			}
		})
	}
	for _, s := range suite.All() {
		if !suitesSeen[s.ID] {
			t.Errorf("no golden vector for suite %s", s.ID)
		}
	}
}

var update = flag.Bool("update", false, "rewrite testdata/pinned with a fresh message of our own")

// TestPinnedMessage decrypts a message envelope wrote once and committed,
// so that any change to what we write or read shows up here.
func TestPinnedMessage(t *testing.T) {
	const dir = "testdata/pinned"
	pt := bytes.Repeat([]byte("envelope pinned message\n"), 700) // 16800 bytes: 4 frames of 4096 + 1 final
	ec := map[string]string{"purpose": "pinned", "ünïcode": "🔐"}
	kr := fixedKeyring()
	if *update {
		msg, err := envelope.EncryptBytes(context.Background(), pt, kr, envelope.WithFrameSize(4096), envelope.WithContext(ec))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "0x0578-aes256.esdk"), msg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := os.ReadFile(filepath.Join(dir, "0x0578-aes256.esdk"))
	if err != nil {
		t.Fatalf("pinned message missing (go test -run TestPinnedMessage -update writes it): %v", err)
	}
	got, h, err := envelope.DecryptBytes(context.Background(), msg, kr, envelope.WithContext(ec))
	if err != nil {
		t.Fatalf("DecryptBytes: %v", err)
	}
	if !bytes.Equal(got, pt) || h.Suite.ID != suite.AES256GCMHKDFSHA512CommitKeyECDSAP384 || h.FrameLength != 4096 {
		t.Fatalf("pinned message decrypted to %d bytes, suite %s, frame %d", len(got), h.Suite.ID, h.FrameLength)
	}
}

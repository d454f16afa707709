package envelope_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

// ecdhGoldenDir holds messages that the official AWS Encryption SDK for Go
// wrote with its raw ECDH keyrings (interop/esdkgo).
var ecdhGoldenDir = filepath.Join("testdata", "golden", "ecdh")

// ecdhVector is one entry of testdata/golden/ecdh/manifest.json. Each of
// Keys decrypts the message alone; none of WrongKeys does.
type ecdhVector struct {
	Name             string            `json:"name"`
	Message          string            `json:"message"`
	Plaintext        string            `json:"plaintext"`
	Suite            string            `json:"suite"`
	Keys             []string          `json:"keys"`
	WrongKeys        []string          `json:"wrongKeys"`
	Context          map[string]string `json:"context"`
	FrameLength      int               `json:"frameLength"`
	CommitmentPolicy string            `json:"commitmentPolicy"`
}

func loadECDHGolden(t testing.TB) []ecdhVector {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ecdhGoldenDir, "manifest.json"))
	if err != nil {
		t.Fatalf("ECDH golden vectors missing: %v", err)
	}
	var vs []ecdhVector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 10 {
		t.Fatalf("manifest lists %d ECDH vectors, want at least 10", len(vs))
	}
	return vs
}

// ecdhGoldenKeyring builds the keyring of a key spec whose paths are
// relative to testdata/golden/ecdh.
func ecdhGoldenKeyring(t testing.TB, spec string) keyring.Keyring {
	t.Helper()
	for _, f := range []string{"private=", "recipient="} {
		spec = strings.Replace(spec, f, f+ecdhGoldenDir+string(filepath.Separator), 1)
	}
	kr, err := keyring.FromSpec(spec, true)
	if err != nil {
		t.Fatalf("key %q: %v", spec, err)
	}
	return kr
}

// TestGoldenECDH decrypts every message of the official Go ESDK's raw ECDH
// keyrings (static and ephemeral senders, on P-256, P-384 and P-521) with
// each key that should read it (the recipient's static and discovery
// keyrings, the sender's static one), and refuses it with the keys that
// should not (another key pair, the sender's key alone, another peer).
func TestGoldenECDH(t *testing.T) {
	for _, v := range loadECDHGolden(t) {
		t.Run(v.Name, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join(ecdhGoldenDir, v.Message))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(ecdhGoldenDir, v.Plaintext))
			if err != nil {
				t.Fatal(err)
			}
			policy, err := suite.ParseCommitmentPolicy(v.CommitmentPolicy)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range v.Keys {
				got, h, err := envelope.DecryptBytes(context.Background(), msg, ecdhGoldenKeyring(t, k),
					envelope.WithCommitmentPolicy(policy), envelope.WithContext(v.Context))
				if err != nil {
					t.Fatalf("DecryptBytes with %q: %v", k, err)
				}
				if !bytes.Equal(got, want) || h.Suite.ID.String() != v.Suite {
					t.Fatalf("with %q: %d bytes of suite %s, want %d of %s", k, len(got), h.Suite.ID, len(want), v.Suite)
				}
			}
			for _, k := range v.WrongKeys {
				got, _, err := envelope.DecryptBytes(context.Background(), msg, ecdhGoldenKeyring(t, k), envelope.WithCommitmentPolicy(policy))
				if !errors.Is(err, envelope.ErrNoDataKey) || got != nil {
					t.Errorf("DecryptBytes with %q = %d bytes, %v; want ErrNoDataKey", k, len(got), err)
				}
			}
		})
	}
}

// TestGoldenECDHTampered: flipping any byte of the official message's
// encrypted data key (provider info or ciphertext: the ephemeral public key
// among them) makes it refused, with no plaintext.
func TestGoldenECDHTampered(t *testing.T) {
	msg, err := os.ReadFile(filepath.Join(ecdhGoldenDir, "ephemeral-p256.esdk"))
	if err != nil {
		t.Fatal(err)
	}
	kr := ecdhGoldenKeyring(t, "ecdh:private=keys/bob-p256.pem")
	h, err := envelope.ReadHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	edk := h.EncryptedDataKeys[0]
	start := bytes.Index(msg, edk.ProviderInfo)
	end := bytes.Index(msg, edk.Ciphertext) + len(edk.Ciphertext)
	if start < 0 || end < start {
		t.Fatal("encrypted data key not found in the message")
	}
	for i := start; i < end; i++ {
		bad := bytes.Clone(msg)
		bad[i] ^= 0x01
		got, _, err := envelope.DecryptBytes(context.Background(), bad, kr)
		if err == nil || got != nil {
			t.Fatalf("byte %d flipped: decrypted %d bytes, err %v", i, len(got), err)
		}
	}
}

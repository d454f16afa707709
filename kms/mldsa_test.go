package kms_test

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/mldsa"
	mldsax509 "filippo.io/mldsa/x509"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/envelopekms/envelope/kms"
)

// ML-DSA is checked against an independent implementation,
// github.com/cloudflare/circl (a test-only dependency), and against the
// FIPS 204 ACVP vectors circl ships (sign/mldsa/testdata), run through
// envelope's own key handling: a key made from a vector's seed is put into
// the KMS, and GetPublicKey must return the vector's public key.
//
// The sigGen and sigVer vectors of that set use ML-DSA's internal
// interface (an expanded private key, a message without the pure-mode
// prefix), which no public API signs or verifies; the signature checks are
// the cross-implementation ones below.

// circlDir returns the directory of the circl module this module requires,
// in the module cache (go test downloaded it to build the test).
func circlDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cloudflare/circl").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("locating the circl module: %v", err)
	}
	return dir
}

func readGzipJSON(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(z).Decode(v); err != nil {
		t.Fatal(err)
	}
}

var mldsaSpecs = map[string]struct {
	spec   string
	params mldsa.Parameters
}{
	"ML-DSA-44": {kms.SpecMLDSA44, mldsa.MLDSA44()},
	"ML-DSA-65": {kms.SpecMLDSA65, mldsa.MLDSA65()},
	"ML-DSA-87": {kms.SpecMLDSA87, mldsa.MLDSA87()},
}

// TestMLDSAKeyGenVectors runs the FIPS 204 ACVP keyGen vectors (75 seeds)
// through the KMS.
func TestMLDSAKeyGenVectors(t *testing.T) {
	dir := filepath.Join(circlDir(t), "sign", "mldsa", "testdata", "ML-DSA-keyGen-FIPS204")
	var prompt struct {
		TestGroups []struct {
			ParameterSet string `json:"parameterSet"`
			Tests        []struct {
				TcID int    `json:"tcId"`
				Seed string `json:"seed"`
			} `json:"tests"`
		} `json:"testGroups"`
	}
	var results struct {
		TestGroups []struct {
			Tests []struct {
				TcID int    `json:"tcId"`
				PK   string `json:"pk"`
			} `json:"tests"`
		} `json:"testGroups"`
	}
	readGzipJSON(t, filepath.Join(dir, "prompt.json.gz"), &prompt)
	readGzipJSON(t, filepath.Join(dir, "expectedResults.json.gz"), &results)
	want := map[int]string{}
	for _, g := range results.TestGroups {
		for _, tc := range g.Tests {
			want[tc.TcID] = tc.PK
		}
	}
	e := newEnv(t)
	n := 0
	for _, g := range prompt.TestGroups {
		p, ok := mldsaSpecs[g.ParameterSet]
		if !ok {
			t.Fatalf("unknown parameter set %q", g.ParameterSet)
		}
		for _, tc := range g.Tests {
			seed, err := hex.DecodeString(tc.Seed)
			if err != nil {
				t.Fatal(err)
			}
			sk, err := mldsa.NewPrivateKey(p.params, seed)
			if err != nil {
				t.Fatal(err)
			}
			der, err := mldsax509.MarshalPKCS8PrivateKey(sk)
			if err != nil {
				t.Fatal(err)
			}
			id, err := kms.KeyWithMaterialForTest(e.svc, p.spec, kms.UsageSignVerify, der)
			if err != nil {
				t.Fatalf("tc %d: %v", tc.TcID, err)
			}
			pk, err := e.svc.GetPublicKey(t.Context(), &kms.GetPublicKeyInput{KeyId: id})
			if err != nil {
				t.Fatal(err)
			}
			pub, err := mldsax509.ParsePKIXPublicKey(pk.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.ToUpper(hex.EncodeToString(pub.(*mldsa.PublicKey).Bytes())); got != want[tc.TcID] {
				t.Errorf("%s tc %d: public key %.32s…, want %.32s…", g.ParameterSet, tc.TcID, got, want[tc.TcID])
			}
			n++
		}
	}
	if n != 75 {
		t.Errorf("ran %d keyGen vectors, want 75", n)
	}
}

// circlVerifier verifies with circl the ML-DSA signature sig of msg by the
// raw public key pub; circlSign signs msg with circl's key of the same seed.
type circlScheme struct {
	verify func(pub, msg, sig []byte) bool
	sign   func(seed, msg []byte) []byte
}

var circl = map[string]circlScheme{
	kms.SpecMLDSA44: {
		verify: func(pub, msg, sig []byte) bool {
			var pk mldsa44.PublicKey
			return pk.UnmarshalBinary(pub) == nil && mldsa44.Verify(&pk, msg, nil, sig)
		},
		sign: func(seed, msg []byte) []byte {
			_, sk := mldsa44.NewKeyFromSeed((*[32]byte)(seed))
			sig := make([]byte, mldsa44.SignatureSize)
			if mldsa44.SignTo(sk, msg, nil, true, sig) != nil {
				return nil
			}
			return sig
		},
	},
	kms.SpecMLDSA65: {
		verify: func(pub, msg, sig []byte) bool {
			var pk mldsa65.PublicKey
			return pk.UnmarshalBinary(pub) == nil && mldsa65.Verify(&pk, msg, nil, sig)
		},
		sign: func(seed, msg []byte) []byte {
			_, sk := mldsa65.NewKeyFromSeed((*[32]byte)(seed))
			sig := make([]byte, mldsa65.SignatureSize)
			if mldsa65.SignTo(sk, msg, nil, true, sig) != nil {
				return nil
			}
			return sig
		},
	},
	kms.SpecMLDSA87: {
		verify: func(pub, msg, sig []byte) bool {
			var pk mldsa87.PublicKey
			return pk.UnmarshalBinary(pub) == nil && mldsa87.Verify(&pk, msg, nil, sig)
		},
		sign: func(seed, msg []byte) []byte {
			_, sk := mldsa87.NewKeyFromSeed((*[32]byte)(seed))
			sig := make([]byte, mldsa87.SignatureSize)
			if mldsa87.SignTo(sk, msg, nil, true, sig) != nil {
				return nil
			}
			return sig
		},
	},
}

// TestMLDSAAgainstCircl: what the KMS signs (RAW and EXTERNAL_MU) verifies
// with circl; what circl signs (hedged) with the same key verifies through
// Verify with RAW; both agree on the public key of a seed.
func TestMLDSAAgainstCircl(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for _, p := range mldsaSpecs {
		t.Run(p.spec, func(t *testing.T) {
			seed := make([]byte, 32)
			rand.Read(seed)
			sk, err := mldsa.NewPrivateKey(p.params, seed)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := mldsax509.MarshalPKCS8PrivateKey(sk)
			id, err := kms.KeyWithMaterialForTest(e.svc, p.spec, kms.UsageSignVerify, der)
			if err != nil {
				t.Fatal(err)
			}
			pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
			if err != nil {
				t.Fatal(err)
			}
			key, _ := mldsax509.ParsePKIXPublicKey(pk.PublicKey)
			raw := key.(*mldsa.PublicKey).Bytes()
			c := circl[p.spec]
			msg := bytes.Repeat([]byte{0x5a}, 5000)
			for _, mt := range []string{kms.MessageTypeRaw, kms.MessageTypeExternalMu} {
				m := msg[:4096]
				in := messageAs(t, kms.AlgMLDSASHAKE256, mt, pk.PublicKey, m)
				out, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: id, Message: in, MessageType: mt, SigningAlgorithm: kms.AlgMLDSASHAKE256})
				if err != nil {
					t.Fatal(err)
				}
				if !c.verify(raw, m, out.Signature) {
					t.Errorf("%s: circl does not verify the KMS's signature", mt)
				}
			}
			theirs := c.sign(seed, msg[:100])
			if _, err := e.svc.Verify(ctx, &kms.VerifyInput{KeyId: id, Message: msg[:100], Signature: theirs, SigningAlgorithm: kms.AlgMLDSASHAKE256}); err != nil {
				t.Errorf("Verify of circl's signature: %v", err)
			}
		})
	}
}

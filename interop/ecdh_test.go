//go:build interop

package interop

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The ECDH keyrings' peer is the official AWS Encryption SDK for Go and its
// Material Providers Library (interop/esdkgo, a module of its own): the
// JavaScript ESDK has no ECDH keyrings.

var (
	esdkGoOnce sync.Once
	esdkGoBin  string
	esdkGoErr  error
)

// esdkGo builds interop/esdkgo once and returns the binary.
func esdkGo(t *testing.T) string {
	t.Helper()
	esdkGoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "esdkgo-")
		if err != nil {
			esdkGoErr = err
			return
		}
		esdkGoBin = filepath.Join(dir, "esdkgo")
		build := exec.Command("go", "build", "-o", esdkGoBin, ".")
		build.Dir = filepath.Join(repoRoot, "interop", "esdkgo")
		if out, err := build.CombinedOutput(); err != nil {
			esdkGoErr = err
			esdkGoBin = string(out)
		}
	})
	if esdkGoErr != nil {
		t.Fatalf("building interop/esdkgo (the official Go ESDK): %v\n%s", esdkGoErr, esdkGoBin)
	}
	return esdkGoBin
}

// ecdhPeerKeyring is the JSON of an esdkgo keyring.
func ecdhPeerKeyring(t *testing.T, typ, curve string, fields ...string) string {
	t.Helper()
	m := map[string]string{"type": typ, "curve": curve}
	for i := 0; i+1 < len(fields); i += 2 {
		m[fields[i]] = fields[i+1]
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type ecdhParty struct{ priv, pub string }

// ecdhParties makes alice's and bob's key pairs on a curve with envelope
// keygen ecdh.
func ecdhParties(t *testing.T, dir, curve string) (alice, bob ecdhParty) {
	t.Helper()
	for _, p := range []*ecdhParty{&alice, &bob} {
		name := "alice"
		if p == &bob {
			name = "bob"
		}
		p.priv = filepath.Join(dir, name+"-"+curve+".pem")
		p.pub = filepath.Join(dir, name+"-"+curve+".pub.pem")
		if _, stderr, err := runCmd(t, "", envelope, "keygen", "ecdh", "--curve", curve, "-o", p.priv, "--public-out", p.pub); err != nil {
			t.Fatalf("keygen ecdh: %v\n%s", err, stderr)
		}
	}
	return alice, bob
}

var ecdhCurveSpecs = map[string]string{"P-256": "ECC_NIST_P256", "P-384": "ECC_NIST_P384", "P-521": "ECC_NIST_P521"}

// TestECDHGoESDKToEnvelope: messages of the official Go ESDK's raw ECDH
// keyrings (static and ephemeral, each curve, signed and unsigned suites)
// decrypt with envelope's ecdh: forms, and not with the wrong key.
func TestECDHGoESDKToEnvelope(t *testing.T) {
	bin := esdkGo(t)
	dir := t.TempDir()
	in, sum := writePlaintext(t, filepath.Join(dir, "plain"), "ecdh-go-to-envelope", 70000)
	for curve, spec := range ecdhCurveSpecs {
		alice, bob := ecdhParties(t, dir, curve)
		for _, suite := range []string{"0x0578", "0x0478"} {
			for _, w := range []struct{ name, keyring string }{
				{"static", ecdhPeerKeyring(t, "raw-static", spec, "private", alice.priv, "recipient", bob.pub)},
				{"ephemeral", ecdhPeerKeyring(t, "raw-ephemeral", spec, "recipient", bob.pub)},
			} {
				t.Run(curve+"-"+suite+"-"+w.name, func(t *testing.T) {
					msg := filepath.Join(t.TempDir(), "msg")
					if _, stderr, err := runCmd(t, "", bin, "encrypt", "-keyring", w.keyring, "-suite", suite, "-frame", "4096", "-context", "purpose=interop", in, msg); err != nil {
						t.Fatalf("esdkgo encrypt: %v\n%s", err, stderr)
					}
					readers := []string{"ecdh:private=" + bob.priv}
					if w.name == "static" {
						readers = append(readers, "ecdh:private="+bob.priv+",recipient="+alice.pub, "ecdh:private="+alice.priv+",recipient="+bob.pub)
					}
					for _, k := range readers {
						out := filepath.Join(t.TempDir(), "out")
						if _, stderr, err := runCmd(t, "", envelope, "decrypt", "-k", k, "-c", "purpose=interop", "-o", out, msg); err != nil {
							t.Fatalf("envelope decrypt -k %s: %v\n%s", k, err, stderr)
						}
						comparePlaintext(t, in, sum, out)
					}
					if _, _, err := runCmd(t, "", envelope, "decrypt", "-k", "ecdh:private="+alice.priv, "-o", filepath.Join(t.TempDir(), "no"), msg); err == nil {
						t.Fatal("the sender's key alone (discovery) decrypted a message sent to bob")
					}
				})
			}
		}
	}
}

// TestECDHEnvelopeToGoESDK: envelope's ecdh: messages (static and
// ephemeral, each curve) decrypt with the official Go ESDK's discovery and
// static keyrings.
func TestECDHEnvelopeToGoESDK(t *testing.T) {
	bin := esdkGo(t)
	dir := t.TempDir()
	in, sum := writePlaintext(t, filepath.Join(dir, "plain"), "ecdh-envelope-to-go", 70000)
	for curve, spec := range ecdhCurveSpecs {
		alice, bob := ecdhParties(t, dir, curve)
		for _, w := range []struct{ name, key string }{
			{"static", "ecdh:private=" + alice.priv + ",recipient=" + bob.pub},
			{"ephemeral", "ecdh:recipient=" + bob.pub},
		} {
			t.Run(curve+"-"+w.name, func(t *testing.T) {
				msg := filepath.Join(t.TempDir(), "msg")
				if _, stderr, err := runCmd(t, "", envelope, "encrypt", "-k", w.key, "-c", "purpose=interop", "--frame-size", "4096", "-o", msg, in); err != nil {
					t.Fatalf("envelope encrypt: %v\n%s", err, stderr)
				}
				readers := []string{ecdhPeerKeyring(t, "raw-discovery", spec, "private", bob.priv)}
				if w.name == "static" {
					readers = append(readers,
						ecdhPeerKeyring(t, "raw-static", spec, "private", bob.priv, "recipient", alice.pub),
						ecdhPeerKeyring(t, "raw-static", spec, "private", alice.priv, "recipient", bob.pub))
				}
				for _, kr := range readers {
					out := filepath.Join(t.TempDir(), "out")
					if _, stderr, err := runCmd(t, "", bin, "decrypt", "-keyring", kr, "-context", "purpose=interop", msg, out); err != nil {
						t.Fatalf("esdkgo decrypt with %s: %v\n%s", kr, err, stderr)
					}
					comparePlaintext(t, in, sum, out)
				}
				wrong := ecdhPeerKeyring(t, "raw-discovery", spec, "private", alice.priv)
				if _, _, err := runCmd(t, "", bin, "decrypt", "-keyring", wrong, msg, filepath.Join(t.TempDir(), "no")); err == nil {
					t.Fatal("the Go ESDK decrypted with the sender's key alone")
				}
			})
		}
	}
}

// TestECDHKMSGoESDK: the official Go ESDK's KMS ECDH keyring against
// envelope serve (GetPublicKey and DeriveSharedSecret over the AWS API),
// and envelope's KMS ECDH keyring, each reading the other's messages.
func TestECDHKMSGoESDK(t *testing.T) {
	bin := esdkGo(t)
	s := startServer(t)
	dir := t.TempDir()
	in, sum := writePlaintext(t, filepath.Join(dir, "plain"), "ecdh-kms", 5000)
	env := func(home string) []string {
		return append(s.env(home), "ENVELOPE_KMS="+s.url, "ESDKGO_KMS_ENDPOINT="+s.url)
	}
	runEnv := func(t *testing.T, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env(t.TempDir())
		var e bytes.Buffer
		cmd.Stderr = &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, e.String())
		}
	}
	createKey := func(t *testing.T, spec, alias string) string {
		t.Helper()
		cmd := exec.Command(envelope, "keys", "create", "--spec", spec, "--usage", "KEY_AGREEMENT", "--alias", alias, "--json")
		cmd.Env = env(t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("keys create: %v", err)
		}
		var m struct{ KeyMetadata struct{ Arn string } }
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		return m.KeyMetadata.Arn
	}
	for curve, spec := range ecdhCurveSpecs {
		t.Run(curve, func(t *testing.T) {
			_, raw := ecdhParties(t, t.TempDir(), curve)
			a, b := "alias/ia-"+curve, "alias/ib-"+curve
			aARN, bARN := createKey(t, spec, a), createKey(t, spec, b)
			bPub := filepath.Join(t.TempDir(), "b.pub")
			runEnv(t, envelope, "keys", "public-key", b, "-o", bPub)
			read := func(t *testing.T, msg string, decrypt func(out string)) {
				t.Helper()
				out := filepath.Join(t.TempDir(), "out")
				decrypt(out)
				comparePlaintext(t, in, sum, out)
			}
			// The Go ESDK's KMS keyring (alice's KMS key) to a raw
			// recipient and to bob's KMS key; envelope reads both.
			toRaw := filepath.Join(t.TempDir(), "go-kms-to-raw")
			runEnv(t, bin, "encrypt", "-keyring", ecdhPeerKeyring(t, "kms-static", spec, "key", aARN, "recipient", raw.pub), in, toRaw)
			read(t, toRaw, func(out string) { runEnv(t, envelope, "decrypt", "-k", "ecdh:private="+raw.priv, "-o", out, toRaw) })
			toKMS := filepath.Join(t.TempDir(), "go-kms-to-kms")
			runEnv(t, bin, "encrypt", "-keyring", ecdhPeerKeyring(t, "kms-static", spec, "key", aARN, "recipient", bPub), in, toKMS)
			read(t, toKMS, func(out string) { runEnv(t, envelope, "decrypt", "-k", b, "-o", out, toKMS) })
			// envelope's KMS keyring and an ephemeral envelope sender; the
			// Go ESDK's KMS discovery keyring (bob) and raw keyring read.
			envToKMS := filepath.Join(t.TempDir(), "env-kms-to-kms")
			runEnv(t, envelope, "encrypt", "-k", a+",recipient="+b, "-o", envToKMS, in)
			read(t, envToKMS, func(out string) {
				runEnv(t, bin, "decrypt", "-keyring", ecdhPeerKeyring(t, "kms-discovery", spec, "key", bARN), envToKMS, out)
			})
			envEph := filepath.Join(t.TempDir(), "env-eph-to-kms")
			runEnv(t, envelope, "encrypt", "-k", "ecdh:recipient="+bPub, "-o", envEph, in)
			read(t, envEph, func(out string) {
				runEnv(t, bin, "decrypt", "-keyring", ecdhPeerKeyring(t, "kms-discovery", spec, "key", bARN), envEph, out)
			})
			envToRaw := filepath.Join(t.TempDir(), "env-kms-to-raw")
			runEnv(t, envelope, "encrypt", "-k", a+",recipient="+raw.pub, "-o", envToRaw, in)
			read(t, envToRaw, func(out string) {
				runEnv(t, bin, "decrypt", "-keyring", ecdhPeerKeyring(t, "raw-discovery", spec, "private", raw.priv), envToRaw, out)
			})
		})
	}
}

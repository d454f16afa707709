package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func init() { keystoreProcessTests["ServeECDH"] = testServeECDH }

// testServeECDH: the KMS ECDH keyring through "envelope serve" (the AWS
// KMS API, SigV4, GetPublicKey and DeriveSharedSecret over the wire), on
// every curve: KMS key to KMS key, a raw sender to a KMS key, and a KMS key
// to a raw recipient, each read back; and a refusal for the wrong key.
func testServeECDH(t *testing.T, bin string) {
	p := startServe(t, bin, serveOpts{})
	env := remoteEnviron(t, p, serveRootID, serveRootSecret)
	work := t.TempDir()
	in := filepath.Join(work, "plain")
	plain := bytes.Repeat([]byte("ECDH through the server\n"), 500)
	if err := os.WriteFile(in, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) result {
		t.Helper()
		r := runEnvelope(t, bin, env, args...)
		if r.code != 0 {
			t.Fatalf("envelope %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r
	}
	decryptsTo := func(key, msg string) {
		t.Helper()
		r := run("decrypt", "-k", key, msg)
		if r.stdout != string(plain) {
			t.Fatalf("decrypt -k %s %s: %d bytes, want the plaintext", key, filepath.Base(msg), len(r.stdout))
		}
	}
	for _, c := range []struct{ spec, curve string }{{"ECC_NIST_P256", "P-256"}, {"ECC_NIST_P384", "P-384"}, {"ECC_NIST_P521", "P-521"}} {
		t.Run(c.spec, func(t *testing.T) {
			a, b := "alias/a-"+c.curve, "alias/b-"+c.curve
			run("keys", "create", "--spec", c.spec, "--usage", "KEY_AGREEMENT", "--alias", a)
			run("keys", "create", "--spec", c.spec, "--usage", "KEY_AGREEMENT", "--alias", b)
			bPub := filepath.Join(work, c.curve+"-b.pub")
			run("keys", "public-key", b, "-o", bPub)
			raw, rawPub := filepath.Join(work, c.curve+"-raw.pem"), filepath.Join(work, c.curve+"-raw.pub")
			run("keygen", "ecdh", "--curve", c.curve, "-o", raw, "--public-out", rawPub)

			k2k := filepath.Join(work, c.curve+"-k2k.esdk")
			run("encrypt", "-k", a+",recipient="+b, "-o", k2k, in)
			decryptsTo(b, k2k)
			decryptsTo(a+",recipient="+b, k2k)

			eph := filepath.Join(work, c.curve+"-eph.esdk")
			run("encrypt", "-k", "ecdh:recipient="+bPub, "-o", eph, in)
			decryptsTo(b, eph)

			k2raw := filepath.Join(work, c.curve+"-k2raw.esdk")
			run("encrypt", "-k", a+",recipient="+rawPub, "--suite", "0x0478", "-o", k2raw, in)
			decryptsTo("ecdh:private="+raw, k2raw)

			if r := runEnvelope(t, bin, env, "decrypt", "-k", a, k2k); r.code != 1 || !strings.Contains(r.stderr, "no key could unwrap the data key") || r.stdout != "" {
				t.Errorf("decrypt with the sender's key alone (discovery): %v", r)
			}
		})
	}
}

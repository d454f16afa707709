//go:build interop

package interop

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Messages with a required encryption context: pairs authenticated by the
// header tag and the keyrings but not stored in the message. The
// JavaScript ESDK 5.0.2 cannot write or read them (it has no required
// encryption context manager and takes no context on decrypt), so the peer
// here is interop/js/required-ec.js, written from the ESDK specification
// with node's crypto alone.

// requiredCtx is the context of these tests; requiredKeys are only
// authenticated.
var (
	requiredCtx  = map[string]string{"purpose": "interop", "tenant": "acme", "région": "Zürich 🔐"}
	requiredKeys = []string{"région", "tenant"}
)

// requiredEC returns the path of interop/js/required-ec.js.
func requiredEC() string { return filepath.Join(repoRoot, "interop", "js", "required-ec.js") }

// specKeys are the keys of these tests: raw AES-256, and raw RSA-2048 with
// OAEP-SHA256 (the one RSA padding required-ec.js implements).
func specKeys() []keys { return []keys{aesKey(256), rsaKey(2048, "oaep-sha256")} }

func contextArgs(flag string, ec map[string]string) []string {
	var args []string
	for _, k := range slices.Sorted(maps.Keys(ec)) {
		args = append(args, flag, k+"="+ec[k])
	}
	return args
}

// TestRequiredContextSpecToEnvelope: messages written from the
// specification with required pairs decrypt with envelope given the whole
// context, and not without the required pairs.
func TestRequiredContextSpecToEnvelope(t *testing.T) {
	for _, s := range []string{"0x0178", "0x0478", "0x0578"} {
		for _, k := range specKeys() {
			t.Run(s+"-"+k.name, func(t *testing.T) {
				t.Parallel()
				acquire(t)
				dir := t.TempDir()
				plain, sum := writePlaintext(t, filepath.Join(dir, "plain"), "required-"+s+k.name, 3*4096+77)
				msg := filepath.Join(dir, "msg.esdk")
				args := []string{requiredEC(), "seal", "--key", k.enc[0], "--suite", s, "--frame-size", "4096", "--in", plain, "--out", msg}
				args = append(args, contextArgs("--context", requiredCtx)...)
				for _, r := range requiredKeys {
					args = append(args, "--required", r)
				}
				if _, stderr, err := runCmd(t, "", nodeBin, args...); err != nil {
					t.Fatalf("required-ec.js seal: %v\n%s", err, stderr)
				}
				policy := requireRequire
				if s == "0x0178" {
					policy = forbidAllow
				}
				out := filepath.Join(dir, "out")
				dec := append([]string{"decrypt", "--commitment-policy", policy}, keyArgs(k.dec)...)
				ok := append(append(slices.Clone(dec), contextArgs("-c", requiredCtx)...), "-o", out, msg)
				if _, stderr, err := runCmd(t, "", envelope, ok...); err != nil {
					t.Fatalf("envelope %s: %v\n%s", strings.Join(ok, " "), err, stderr)
				}
				comparePlaintext(t, plain, sum, out)
				stored := maps.Clone(requiredCtx)
				for _, r := range requiredKeys {
					delete(stored, r)
				}
				bad := append(append(slices.Clone(dec), contextArgs("-c", stored)...), "-o", filepath.Join(dir, "bad"), msg)
				if _, _, err := runCmd(t, "", envelope, bad...); err == nil {
					t.Fatal("envelope decrypted the message without its required pairs")
				}
			})
		}
	}
}

// specSummary is what required-ec.js open prints.
type specSummary struct {
	Suite         string            `json:"suite"`
	StoredContext map[string]string `json:"storedContext"`
	RequiredKeys  []string          `json:"requiredKeys"`
}

// TestRequiredContextEnvelopeToSpec: envelope encrypt --required-context
// writes what the specification's decrypt reads with the reproduced
// context: the required pairs are not stored, and authenticated.
func TestRequiredContextEnvelopeToSpec(t *testing.T) {
	for _, s := range []string{"0x0178", "0x0478", "0x0578"} {
		for _, k := range specKeys() {
			t.Run(s+"-"+k.name, func(t *testing.T) {
				t.Parallel()
				acquire(t)
				dir := t.TempDir()
				plain, sum := writePlaintext(t, filepath.Join(dir, "plain"), "required-env-"+s+k.name, 2*4096)
				msg := filepath.Join(dir, "msg.esdk")
				policy := requireRequire
				if s == "0x0178" {
					policy = forbidAllow
				}
				args := append([]string{"encrypt", "--suite", s, "--frame-size", "4096", "--commitment-policy", policy}, keyArgs(k.enc)...)
				args = append(args, contextArgs("-c", requiredCtx)...)
				for _, r := range requiredKeys {
					args = append(args, "--required-context", r)
				}
				args = append(args, "-o", msg, plain)
				if _, stderr, err := runCmd(t, "", envelope, args...); err != nil {
					t.Fatalf("envelope %s: %v\n%s", strings.Join(args, " "), err, stderr)
				}
				out := filepath.Join(dir, "out")
				open := append([]string{requiredEC(), "open", "--key", k.dec[0], "--in", msg, "--out", out}, contextArgs("--context", requiredCtx)...)
				stdout, stderr, err := runCmd(t, "", nodeBin, open...)
				if err != nil {
					t.Fatalf("required-ec.js open: %v\n%s", err, stderr)
				}
				comparePlaintext(t, plain, sum, out)
				var info specSummary
				if err := json.Unmarshal(bytes.TrimSpace(stdout), &info); err != nil {
					t.Fatalf("required-ec.js printed %q: %v", stdout, err)
				}
				if info.Suite != s || !slices.Equal(info.RequiredKeys, requiredKeys) {
					t.Errorf("required-ec.js read suite %s, required keys %q; want %s, %q", info.Suite, info.RequiredKeys, s, requiredKeys)
				}
				for _, r := range requiredKeys {
					if _, ok := info.StoredContext[r]; ok {
						t.Errorf("the message stores the required key %q", r)
					}
				}
				// Without the required pairs the specification's decrypt
				// fails too.
				stored := maps.Clone(requiredCtx)
				delete(stored, "tenant")
				bad := append([]string{requiredEC(), "open", "--key", k.dec[0], "--in", msg, "--out", filepath.Join(dir, "bad")}, contextArgs("--context", stored)...)
				if _, _, err := runCmd(t, "", nodeBin, bad...); err == nil {
					t.Error("required-ec.js decrypted the message without the tenant pair")
				}
			})
		}
	}
}

// TestRequiredContextJSESDK documents the JavaScript ESDK's gap: it reads
// envelope's messages, but not those with a required encryption context,
// whose pairs it has no way to be given.
func TestRequiredContextJSESDK(t *testing.T) {
	dir := t.TempDir()
	plain, _ := writePlaintext(t, filepath.Join(dir, "plain"), "required-js", 1000)
	msg := filepath.Join(dir, "msg.esdk")
	k := aesKey(256)
	args := append([]string{"encrypt", "--suite", "0x0478"}, keyArgs(k.enc)...)
	args = append(args, contextArgs("-c", requiredCtx)...)
	args = append(args, "--required-context", "tenant", "-o", msg, plain)
	if _, stderr, err := runCmd(t, "", envelope, args...); err != nil {
		t.Fatalf("envelope %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	js := append([]string{esdkJS, "decrypt", "--utf8-sorting", "--in", msg, "--out", filepath.Join(dir, "out")}, jsArgs("--key", k.dec)...)
	if _, _, err := runCmd(t, "", nodeBin, js...); err == nil {
		t.Error("the JS ESDK decrypted a message with a required encryption context; update this test and README: it now has the feature")
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("the JS ESDK left an output file")
	}
}

// TestGoldenRequiredVectors decrypts the required-context vectors of
// testdata/golden with the envelope CLI, given the whole context.
func TestGoldenRequiredVectors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(goldenDir, "manifest-required-ec.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []goldenEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("manifest-required-ec.json lists no vectors")
	}
	for _, e := range entries {
		t.Run(e.Name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"decrypt", "--commitment-policy", e.CommitmentPolicy}, keyArgs(e.Keys)...)
			args = append(args, contextArgs("-c", e.Context)...)
			args = append(args, "-o", out, e.Message)
			if _, stderr, err := runCmd(t, goldenDir, envelope, args...); err != nil {
				t.Fatalf("envelope %s: %v\n%s", strings.Join(args, " "), err, stderr)
			}
			want, err := os.ReadFile(filepath.Join(goldenDir, e.Plaintext))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, want) {
				t.Errorf("decrypted %s: %d bytes, %v; want the %d bytes of %s", e.Message, len(got), err, len(want), e.Plaintext)
			}
		})
	}
}

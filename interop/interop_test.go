//go:build interop

package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The commitment policies, in the spelling both CLIs take.
const (
	requireRequire = "require-encrypt-require-decrypt"
	requireAllow   = "require-encrypt-allow-decrypt"
	forbidAllow    = "forbid-encrypt-allow-decrypt"
)

// securityRevert lets Node 20 decrypt RSA PKCS#1 v1.5 (see interop/js/esdk.js).
const securityRevert = "--security-revert=CVE-2023-46809"

// publicKeyName is the context key under which signed suites store their
// verification key.
const publicKeyName = "aws-crypto-public-key"

// largeSize is the size of the big plaintext sent each way (≥ 10 MiB).
const largeSize = 12<<20 + 12345

// Set up once by TestMain.
var (
	repoRoot   string // the module root
	envelope   string // the freshly built envelope binary
	nodeBin    string // node
	esdkJS     string // interop/js/esdk.js
	goldenDir  string // testdata/golden
	keyDir     string // keys generated for this run
	sem        = make(chan struct{}, 2)
	rsaBits    = []int{2048, 3072, 4096}
	paddings   = []string{"pkcs1", "oaep-sha1", "oaep-sha256", "oaep-sha384", "oaep-sha512"}
	allSuites  = []string{"0x0014", "0x0046", "0x0078", "0x0114", "0x0146", "0x0178", "0x0214", "0x0346", "0x0378", "0x0478", "0x0578"}
	signedByID = map[string]bool{"0x0214": true, "0x0346": true, "0x0378": true, "0x0578": true}
)

// TestMain builds the envelope CLI (or takes the one named by
// $ENVELOPE_INTEROP_BIN), finds node and the SDK, and generates the keys.
// Anything missing fails the run: these tests are never skipped.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "envelope-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := setup(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "interop: setup failed:", err)
		return 1
	}
	return m.Run()
}

func setup(tmp string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	repoRoot = filepath.Dir(wd) // go test runs in interop/
	esdkJS = filepath.Join(repoRoot, "interop", "js", "esdk.js")
	goldenDir = filepath.Join(repoRoot, "testdata", "golden")

	nodeBin, err = exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("node not found in PATH: install Node.js 20 or later")
	}
	sdk := filepath.Join(repoRoot, "interop", "js", "node_modules", "@aws-crypto", "client-node", "package.json")
	if _, err := os.Stat(sdk); err != nil {
		return fmt.Errorf("the AWS Encryption SDK for JavaScript is not installed (%v): run `npm ci --prefix interop/js` from the repository root", err)
	}

	if bin := os.Getenv("ENVELOPE_INTEROP_BIN"); bin != "" {
		// A prebuilt CLI (a release build, say) instead of a fresh one.
		if envelope, err = filepath.Abs(bin); err != nil {
			return err
		}
	} else {
		envelope = filepath.Join(tmp, "envelope")
		build := exec.Command("go", "build", "-o", envelope, "github.com/envelopekms/envelope/cmd/envelope")
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/envelope: %v\n%s", err, out)
		}
	}

	keyDir = filepath.Join(tmp, "keys")
	return writeKeys(keyDir)
}

// writeKeys writes aes{128,192,256}.key (raw bytes) and, for each RSA size,
// rsaN.pem (private: PKCS #1 for 3072 bits, PKCS #8 otherwise) and
// rsaN.pub.pem (SPKI).
func writeKeys(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, bits := range []int{128, 192, 256} {
		key := make([]byte, bits/8)
		rand.Read(key)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("aes%d.key", bits)), key, 0o600); err != nil {
			return err
		}
	}
	for _, bits := range rsaBits {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return err
		}
		var priv *pem.Block
		if bits == 3072 {
			priv = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		} else {
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				return err
			}
			priv = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
		}
		pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("rsa%d.pem", bits)), pem.EncodeToMemory(priv), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("rsa%d.pub.pem", bits)), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// keys is a keyring on both sides: the specs that encrypt and the specs that
// decrypt (RSA encrypts with the public key and decrypts with the private).
type keys struct {
	name     string
	enc, dec []string
}

func aesKey(bits int) keys {
	spec := fmt.Sprintf("aes:file=%s,namespace=interop,name=aes%d", filepath.Join(keyDir, fmt.Sprintf("aes%d.key", bits)), bits)
	return keys{name: fmt.Sprintf("aes%d", bits), enc: []string{spec}, dec: []string{spec}}
}

func rsaKey(bits int, padding string) keys {
	spec := func(file string) string {
		return fmt.Sprintf("rsa:file=%s,namespace=interop,name=rsa%d-%s,padding=%s", filepath.Join(keyDir, file), bits, padding, padding)
	}
	return keys{
		name: fmt.Sprintf("rsa%d-%s", bits, padding),
		enc:  []string{spec(fmt.Sprintf("rsa%d.pub.pem", bits))},
		dec:  []string{spec(fmt.Sprintf("rsa%d.pem", bits))},
	}
}

// multiKey encrypts with every key in ks (the first is the generator) and
// decrypts with the one at index dec only.
func multiKey(dec int, ks ...keys) keys {
	m := keys{name: "multi"}
	for _, k := range ks {
		m.enc = append(m.enc, k.enc...)
	}
	m.dec = ks[dec].dec
	m.name = fmt.Sprintf("multi-decrypt-with-%s", ks[dec].name)
	return m
}

// needsRevert reports whether node must run with securityRevert to decrypt.
func (k keys) needsRevert() bool {
	return slices.ContainsFunc(k.dec, func(s string) bool { return strings.HasSuffix(s, ",padding=pkcs1") })
}

// encCtx is an encryption context with the JS keyring setting it needs.
type encCtx struct {
	name  string
	pairs [][2]string
	// utf8Sorting makes the JS raw AES keyring sort the context by UTF-8
	// bytes; without it the SDK uses a locale comparison, which agrees with
	// byte order only for simple lower-case keys.
	utf8Sorting bool
}

var (
	ctxEmpty = encCtx{name: "ctx-empty"}
	ctxASCII = encCtx{name: "ctx-ascii", utf8Sorting: true, pairs: [][2]string{
		{"purpose", "interop"}, {"Tenant_ID", "acme-01"}, {"key.with.dots", "a value with spaces"}, {"ALPHA", "upper"}, {"_under", "score"},
	}}
	ctxLower = encCtx{name: "ctx-lowercase-locale-sort", pairs: [][2]string{
		{"alpha", "one"}, {"bravo", "two"}, {"charlie", "three"},
	}}
	// '🔐' (U+1F510) is 4 bytes in UTF-8 and sorts after 'ｚ' (U+FF5A) by
	// bytes but before it by UTF-16 code units.
	ctxNonASCII = encCtx{name: "ctx-nonascii", utf8Sorting: true, pairs: [][2]string{
		{"clé", "valeur é"}, {"東京", "日本"}, {"ｚ", "fullwidth z"}, {"🔐", "locked 🔑"}, {"plain", "ascii"}, {"emoji_🔐_key", "𝄞 music"},
	}}
)

// tcase is one message sent from one CLI to the other.
type tcase struct {
	name  string
	suite string // "" for the writer's default (0x0578)
	keys  keys
	frame int // 0 for the writer's default
	size  int
	ctx   encCtx
}

// signed reports whether the message carries a signature.
func (c tcase) signed() bool { return c.suite == "" || signedByID[c.suite] }

// writePolicy is the commitment policy the writer needs for the suite.
func (c tcase) writePolicy() string {
	if c.suite == "" || c.suite == "0x0478" || c.suite == "0x0578" {
		return requireRequire
	}
	return forbidAllow
}

// readPolicy is the commitment policy the reader uses: the default for
// committing suites; for the others one of the two that allow them.
func (c tcase) readPolicy() string {
	switch {
	case c.writePolicy() == requireRequire:
		return requireRequire
	case c.suite < "0x0100":
		return forbidAllow
	default:
		return requireAllow
	}
}

// cases returns the matrix run in each direction.
func cases() []tcase {
	var cs []tcase
	aes256 := aesKey(256)
	for _, s := range allSuites {
		cs = append(cs, tcase{name: "suite-" + s, suite: s, keys: aes256, frame: 4096, size: 10000, ctx: ctxASCII})
	}
	for _, bits := range []int{128, 192, 256} {
		k := aesKey(bits)
		cs = append(cs, tcase{name: "key-" + k.name, keys: k, size: 5000, ctx: ctxASCII})
	}
	for _, bits := range rsaBits {
		for _, p := range paddings {
			k := rsaKey(bits, p)
			cs = append(cs, tcase{name: "key-" + k.name, keys: k, size: 5000, ctx: ctxASCII})
		}
	}
	// RSA under a non-committing suite too.
	cs = append(cs, tcase{name: "key-rsa2048-pkcs1-suite-0x0178", suite: "0x0178", keys: rsaKey(2048, "pkcs1"), size: 5000, ctx: ctxASCII})
	multi := []keys{aesKey(128), rsaKey(2048, "oaep-sha256")}
	for i := range multi {
		k := multiKey(i, multi...)
		cs = append(cs, tcase{name: "key-" + k.name, keys: k, size: 5000, ctx: ctxASCII})
	}
	for _, c := range []encCtx{ctxEmpty, ctxASCII, ctxLower, ctxNonASCII} {
		cs = append(cs, tcase{name: c.name, keys: aes256, size: 100, ctx: c})
		cs = append(cs, tcase{name: c.name + "-suite-0x0478", suite: "0x0478", keys: aes256, size: 100, ctx: c})
	}
	cs = append(cs, tcase{name: ctxNonASCII.name + "-suite-0x0178", suite: "0x0178", keys: aes256, size: 100, ctx: ctxNonASCII})
	cs = append(cs, tcase{name: ctxNonASCII.name + "-multi", keys: multiKey(0, aesKey(192), rsaKey(3072, "oaep-sha384")), size: 100, ctx: ctxNonASCII})
	for _, f := range []int{1, 4096, 65536, 1 << 20} {
		sizes := []int{0, 1, f - 1, f, f + 1}
		if f == 1 {
			sizes = []int{0, 1, 2}
		}
		for _, n := range sizes {
			cs = append(cs, tcase{name: fmt.Sprintf("frame%d-size%d", f, n), keys: aes256, frame: f, size: n, ctx: ctxASCII})
		}
	}
	cs = append(cs, tcase{name: fmt.Sprintf("frame4096-size%d-suite-0x0178", 3*4096), suite: "0x0178", keys: aes256, frame: 4096, size: 3 * 4096, ctx: ctxASCII})
	for _, f := range []int{65536, 1 << 20} {
		cs = append(cs, tcase{name: fmt.Sprintf("large-frame%d-size%d", f, largeSize), keys: aes256, frame: f, size: largeSize, ctx: ctxASCII})
	}
	return cs
}

// TestJSToEnvelope: the JS SDK encrypts, envelope decrypts.
func TestJSToEnvelope(t *testing.T) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			acquire(t)
			dir := t.TempDir()
			plain, sum := writePlaintext(t, filepath.Join(dir, "plain"), c.name, c.size)
			msg := filepath.Join(dir, "msg.esdk")
			jsEncrypt(t, c, plain, msg)
			out := filepath.Join(dir, "out")
			envDecrypt(t, c, msg, out)
			comparePlaintext(t, plain, sum, out)
		})
	}
}

// TestEnvelopeToJS: envelope encrypts, the JS SDK decrypts.
func TestEnvelopeToJS(t *testing.T) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			acquire(t)
			dir := t.TempDir()
			plain, sum := writePlaintext(t, filepath.Join(dir, "plain"), c.name, c.size)
			msg := filepath.Join(dir, "msg.esdk")
			envEncrypt(t, c, plain, msg)
			out := filepath.Join(dir, "out")
			info := jsDecrypt(t, c, msg, out)
			comparePlaintext(t, plain, sum, out)
			checkInfo(t, c, info)
		})
	}
}

// TestEnvelopeRejects checks that envelope refuses JS messages it must not
// read, and leaves no output file behind when it does.
func TestEnvelopeRejects(t *testing.T) {
	aes256 := aesKey(256)
	tests := []struct {
		name string
		msg  tcase    // what JS writes
		args []string // how envelope reads it
	}{
		{
			name: "v1-suite-under-default-policy",
			msg:  tcase{suite: "0x0178", keys: aes256, size: 100, ctx: ctxASCII},
			args: append(keyArgs(aes256.dec), ctxArgs(ctxASCII)...),
		},
		{
			name: "wrong-key",
			msg:  tcase{keys: aes256, size: 100, ctx: ctxASCII},
			args: append(keyArgs(aesKey(128).dec), ctxArgs(ctxASCII)...),
		},
		{
			name: "wrong-context-value",
			msg:  tcase{keys: aes256, size: 100, ctx: ctxASCII},
			args: append(keyArgs(aes256.dec), "-c", "purpose=something-else"),
		},
		{
			name: "missing-context-key",
			msg:  tcase{keys: aes256, size: 100, ctx: ctxASCII},
			args: append(keyArgs(aes256.dec), "-c", "absent=value"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			acquire(t)
			dir := t.TempDir()
			tt.msg.name = tt.name
			plain, _ := writePlaintext(t, filepath.Join(dir, "plain"), tt.name, tt.msg.size)
			msg := filepath.Join(dir, "msg.esdk")
			jsEncrypt(t, tt.msg, plain, msg)
			out := filepath.Join(dir, "out")
			args := append([]string{"decrypt"}, tt.args...)
			args = append(args, "-o", out, msg)
			stdout, stderr, err := runCmd(t, "", envelope, args...)
			switch {
			case err == nil:
				t.Fatalf("envelope %s succeeded, want an error\nstdout: %s\nstderr: %s", strings.Join(args, " "), stdout, stderr)
			case len(bytes.TrimSpace(stderr)) == 0:
				t.Errorf("envelope %s failed (%v) with nothing on stderr", strings.Join(args, " "), err)
			default:
				t.Logf("envelope failed as expected: %s", bytes.TrimSpace(stderr))
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output file %s exists after a failed decrypt (stat err = %v)", out, err)
			}
		})
	}
}

// goldenEntry is one vector of testdata/golden/manifest.json.
type goldenEntry struct {
	Name             string            `json:"name"`
	Message          string            `json:"message"`
	Plaintext        string            `json:"plaintext"`
	Suite            string            `json:"suite"`
	Keys             []string          `json:"keys"`
	Context          map[string]string `json:"context"`
	FrameLength      int               `json:"frameLength"`
	CommitmentPolicy string            `json:"commitmentPolicy"`
	UTF8Sorting      bool              `json:"utf8Sorting"`
}

// TestGoldenVectors decrypts every message in testdata/golden with the
// envelope CLI (key paths in the manifest are relative to that folder).
func TestGoldenVectors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(goldenDir, "manifest.json"))
	if err != nil {
		t.Fatalf("reading the golden manifest: %v", err)
	}
	var entries []goldenEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatalf("parsing the golden manifest: %v", err)
	}
	if len(entries) == 0 {
		t.Fatal("the golden manifest lists no vectors")
	}
	for _, e := range entries {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			acquire(t)
			out := filepath.Join(t.TempDir(), "out")
			args := []string{"decrypt", "--commitment-policy", e.CommitmentPolicy}
			args = append(args, keyArgs(e.Keys)...)
			for _, k := range slices.Sorted(maps.Keys(e.Context)) {
				args = append(args, "-c", k+"="+e.Context[k])
			}
			args = append(args, "-o", out, e.Message)
			if _, stderr, err := runCmd(t, goldenDir, envelope, args...); err != nil {
				t.Fatalf("envelope %s: %v\n%s", strings.Join(args, " "), err, stderr)
			}
			want, err := os.ReadFile(filepath.Join(goldenDir, e.Plaintext))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decrypted %s: got %d bytes, want the %d bytes of %s", e.Message, len(got), len(want), e.Plaintext)
			}
		})
	}
}

// acquire holds one of two slots until the test ends: the tests run on
// 2-core machines and each case is CPU-bound.
func acquire(t *testing.T) {
	t.Helper()
	sem <- struct{}{}
	t.Cleanup(func() { <-sem })
}

func keyArgs(specs []string) []string {
	var args []string
	for _, s := range specs {
		args = append(args, "-k", s)
	}
	return args
}

func ctxArgs(c encCtx) []string {
	var args []string
	for _, p := range c.pairs {
		args = append(args, "-c", p[0]+"="+p[1])
	}
	return args
}

func jsArgs(flag string, vals []string) []string {
	var args []string
	for _, v := range vals {
		args = append(args, flag, v)
	}
	return args
}

func jsCtxArgs(c encCtx) []string {
	var args []string
	for _, p := range c.pairs {
		args = append(args, "--context", p[0]+"="+p[1])
	}
	if c.utf8Sorting {
		args = append(args, "--utf8-sorting")
	}
	return args
}

// jsEncrypt runs esdk.js encrypt.
func jsEncrypt(t *testing.T, c tcase, in, out string) {
	t.Helper()
	args := []string{esdkJS, "encrypt", "--commitment-policy", c.writePolicy()}
	args = append(args, jsArgs("--key", c.keys.enc)...)
	args = append(args, jsCtxArgs(c.ctx)...)
	if c.suite != "" {
		args = append(args, "--suite", c.suite)
	}
	if c.frame != 0 {
		args = append(args, "--frame-size", fmt.Sprint(c.frame))
	}
	args = append(args, "--in", in, "--out", out)
	if _, stderr, err := runCmd(t, "", nodeBin, args...); err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
}

// jsInfo is the JSON line that esdk.js decrypt prints.
type jsInfo struct {
	Suite       string            `json:"suite"`
	Context     map[string]string `json:"context"`
	FrameLength int               `json:"frameLength"`
}

// jsDecrypt runs esdk.js decrypt, requiring every pair of the case's context.
func jsDecrypt(t *testing.T, c tcase, in, out string) jsInfo {
	t.Helper()
	var args []string
	if c.keys.needsRevert() {
		args = append(args, securityRevert)
	}
	args = append(args, esdkJS, "decrypt", "--commitment-policy", c.readPolicy())
	args = append(args, jsArgs("--key", c.keys.dec)...)
	args = append(args, jsCtxArgs(c.ctx)...)
	args = append(args, "--in", in, "--out", out)
	stdout, stderr, err := runCmd(t, "", nodeBin, args...)
	if err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	// Under --security-revert node prints a warning line to stdout first.
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	var info jsInfo
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &info); err != nil {
		t.Fatalf("esdk.js decrypt printed %q: %v", stdout, err)
	}
	return info
}

// envEncrypt runs envelope encrypt.
func envEncrypt(t *testing.T, c tcase, in, out string) {
	t.Helper()
	args := []string{"encrypt"}
	if p := c.writePolicy(); p != requireRequire {
		args = append(args, "--commitment-policy", p)
	}
	args = append(args, keyArgs(c.keys.enc)...)
	args = append(args, ctxArgs(c.ctx)...)
	if c.suite != "" {
		args = append(args, "--suite", c.suite)
	}
	if c.frame != 0 {
		args = append(args, "--frame-size", fmt.Sprint(c.frame))
	}
	args = append(args, "-o", out, in)
	if _, stderr, err := runCmd(t, "", envelope, args...); err != nil {
		t.Fatalf("envelope %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
}

// envDecrypt runs envelope decrypt, requiring every pair of the case's context.
func envDecrypt(t *testing.T, c tcase, in, out string) {
	t.Helper()
	args := []string{"decrypt"}
	if p := c.readPolicy(); p != requireRequire {
		args = append(args, "--commitment-policy", p)
	}
	args = append(args, keyArgs(c.keys.dec)...)
	args = append(args, ctxArgs(c.ctx)...)
	args = append(args, "-o", out, in)
	if _, stderr, err := runCmd(t, "", envelope, args...); err != nil {
		t.Fatalf("envelope %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
}

// checkInfo checks what the SDK read from envelope's header.
func checkInfo(t *testing.T, c tcase, info jsInfo) {
	t.Helper()
	wantSuite := c.suite
	if wantSuite == "" {
		wantSuite = "0x0578"
	}
	if info.Suite != wantSuite {
		t.Errorf("SDK read suite %s, want %s", info.Suite, wantSuite)
	}
	if c.frame != 0 && info.FrameLength != c.frame {
		t.Errorf("SDK read frame length %d, want %d", info.FrameLength, c.frame)
	}
	want := map[string]string{}
	for _, p := range c.ctx.pairs {
		want[p[0]] = p[1]
	}
	got := map[string]string{}
	for k, v := range info.Context {
		got[k] = v
	}
	pub, hasPub := got[publicKeyName]
	delete(got, publicKeyName)
	if hasPub != c.signed() {
		t.Errorf("context has %s = %v (%q), want %v for suite %s", publicKeyName, hasPub, pub, c.signed(), wantSuite)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) { // fmt sorts map keys
		t.Errorf("SDK read context %v, want %v", got, want)
	}
}

// writePlaintext writes size deterministic pseudo-random bytes (seeded by
// the case name) to path and returns the path and their SHA-256.
func writePlaintext(t *testing.T, path, seed string, size int) (string, []byte) {
	t.Helper()
	var s [32]byte
	copy(s[:], sha256Sum([]byte(seed)))
	rng := mrand.NewChaCha8(s)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rng, int64(size)); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, h.Sum(nil)
}

// comparePlaintext compares got with the original: byte for byte up to
// 2 MiB, by SHA-256 beyond.
func comparePlaintext(t *testing.T, orig string, sum []byte, got string) {
	t.Helper()
	st, err := os.Stat(got)
	if err != nil {
		t.Fatalf("decrypted output: %v", err)
	}
	if st.Size() > 2<<20 {
		h, err := hashFile(got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h, sum) {
			t.Errorf("decrypted %d bytes with SHA-256 %x, want %x", st.Size(), h, sum)
		}
		return
	}
	want, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		i := 0
		for i < len(have) && i < len(want) && have[i] == want[i] {
			i++
		}
		t.Errorf("decrypted %d bytes, want %d; first difference at offset %d", len(have), len(want), i)
	}
}

func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// runCmd runs name with args in dir ("" for the current directory), with no
// standard input and a time limit, and returns its output.
func runCmd(t *testing.T, dir, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
	}
	return o.Bytes(), e.Bytes(), err
}

// TestEnvelopeRewrapToJS: envelope encrypts under one key, rewraps the
// message to another (new header tag, a fresh signature for signed suites, a
// fresh header IV for version 1), and the JS SDK decrypts the result.
func TestEnvelopeRewrapToJS(t *testing.T) {
	for _, s := range []string{"0x0478", "0x0578", "0x0178", "0x0378"} {
		c := tcase{name: "rewrap-" + s, suite: s, keys: aesKey(256), frame: 4096, size: 3*4096 + 100, ctx: ctxASCII}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			acquire(t)
			dir := t.TempDir()
			plain, sum := writePlaintext(t, filepath.Join(dir, "plain"), c.name, c.size)
			msg := filepath.Join(dir, "msg.esdk")
			envEncrypt(t, tcase{name: c.name, suite: s, keys: aesKey(128), frame: c.frame, size: c.size, ctx: c.ctx}, plain, msg)
			args := []string{"rewrap", "--commitment-policy", requireAllow}
			args = append(args, jsArgs("--from", aesKey(128).dec)...)
			args = append(args, keyArgs(c.keys.enc)...)
			args = append(args, "-o", msg, msg)
			if _, stderr, err := runCmd(t, "", envelope, args...); err != nil {
				t.Fatalf("envelope %s: %v\n%s", strings.Join(args, " "), err, stderr)
			}
			out := filepath.Join(dir, "out")
			info := jsDecrypt(t, c, msg, out)
			comparePlaintext(t, plain, sum, out)
			checkInfo(t, c, info)
		})
	}
}

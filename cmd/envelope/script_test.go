package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary stand in for the envelope command: scripts
// run "envelope ..." as a separate process whose main is the real one.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"envelope":        main,
		"status":          statusMain,
		"envelope-nofile": nofileMain,
		"envelope-attack": attackMain,
	})
}

// statusMain is "status N envelope ARGS...": it runs envelope ARGS, passing
// its output through, and succeeds only if envelope exits with status N.
// Scripts use it where the status matters (2 for usage errors, 1 for
// others), which "! envelope" alone cannot tell apart.
func statusMain() {
	if len(os.Args) < 3 || os.Args[2] != "envelope" {
		fmt.Fprintln(os.Stderr, "usage: status N envelope ARGS...")
		os.Exit(255)
	}
	want, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "status: bad exit status %q\n", os.Args[1])
		os.Exit(255)
	}
	defer func() {
		// A panic exits 2 too; never let it pass for a usage error.
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "status: envelope panicked: %v\n", r)
			os.Exit(255)
		}
	}()
	if got := run(os.Args[3:]); got != want {
		fmt.Fprintf(os.Stderr, "status: envelope exited with status %d, want %d\n", got, want)
		os.Exit(255)
	}
	os.Exit(0)
}

// TestScript runs the end-to-end scripts in testdata/script.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                "testdata/script",
		RequireUniqueNames: true,
		Condition:          scriptCondition,
		Setup:              scriptSetup,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"genfile":  cmdGenfile,
			"perm":     cmdPerm,
			"filesize": cmdFilesize,
			"cmpsha":   cmdCmpsha,
			"truncate": cmdTruncate,
			"flipbyte": cmdFlipbyte,
			"concat":   cmdConcat,
			"rsakey":   cmdRSAKey,
			"eckey":    cmdECKey,
			"notemp":   cmdNotemp,
			"jsonget":  cmdJSONGet,
			"sametail": cmdSametail,
			"hardlink": cmdHardlink,
		},
	})
}

// scriptSetup gives every script its own keystore ($WORK/envhome, created
// on first use) and stops a -race build of envelope from sleeping a second
// at every exit (the race runtime's default atexit_sleep_ms), which would
// make each command take a second. Races are still reported.
func scriptSetup(env *testscript.Env) error {
	env.Setenv("ENVELOPE_HOME", filepath.Join(env.WorkDir, "envhome"))
	env.Setenv("XDG_DATA_HOME", filepath.Join(env.WorkDir, "xdg"))
	// ENVELOPE_PASSPHRASE stays unset (testscript starts from an empty
	// environment): set, even to "", it makes a passphrase keystore.
	env.Setenv("ENVELOPE_KMS", "")
	if gorace := os.Getenv("GORACE"); !strings.Contains(gorace, "atexit_sleep_ms") {
		env.Setenv("GORACE", strings.TrimSpace(gorace+" atexit_sleep_ms=0"))
	}
	return nil
}

// scriptCondition adds [root]: true when running as root, for whom file
// permissions do not stop a read.
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "root":
		return os.Geteuid() == 0, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// parseCount parses a byte count with an optional K or M suffix (KiB, MiB).
func parseCount(ts *testscript.TestScript, s string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		ts.Fatalf("bad byte count %q", s)
	}
	return n * mult
}

// genfile NAME SIZE writes SIZE random bytes (suffixes K and M) to NAME.
func cmdGenfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: genfile NAME SIZE")
	}
	b := make([]byte, parseCount(ts, args[1]))
	rand.Read(b)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
}

// perm FILE MODE checks a file's permission bits (octal, such as 0600).
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := st.Mode().Perm()
	if (got == os.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %#o; want %s%#o", args[0], got, not(neg), want)
	}
}

// not returns "not " for a negated check.
func not(neg bool) string {
	if neg {
		return "not "
	}
	return ""
}

// filesize FILE SIZE checks a file's size in bytes (suffixes K and M).
func cmdFilesize(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filesize FILE SIZE")
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want := parseCount(ts, args[1])
	if (st.Size() == want) == neg {
		ts.Fatalf("%s is %d bytes; want %s%d", args[0], st.Size(), not(neg), want)
	}
}

// cmpsha A B compares two (possibly large, binary) files by SHA-256.
func cmdCmpsha(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: cmpsha A B")
	}
	sum := func(name string) [32]byte {
		b, err := os.ReadFile(ts.MkAbs(name))
		ts.Check(err)
		return sha256.Sum256(b)
	}
	a, b := sum(args[0]), sum(args[1])
	if (a == b) == neg {
		if neg {
			ts.Fatalf("%s and %s are identical", args[0], args[1])
		}
		ts.Fatalf("%s (sha256 %x) and %s (sha256 %x) differ", args[0], a[:8], args[1], b[:8])
	}
}

// offset resolves a byte offset in a file of size n: negative counts from
// the end.
func offset(ts *testscript.TestScript, s string, n int64) int64 {
	off := parseCount(ts, s)
	if off < 0 {
		off += n
	}
	if off < 0 || off > n {
		ts.Fatalf("offset %s is outside a %d-byte file", s, n)
	}
	return off
}

// truncate FILE SIZE cuts FILE to SIZE bytes; a negative SIZE removes that
// many bytes from the end.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: truncate FILE SIZE")
	}
	name := ts.MkAbs(args[0])
	st, err := os.Stat(name)
	ts.Check(err)
	ts.Check(os.Truncate(name, offset(ts, args[1], st.Size())))
}

// flipbyte FILE OFFSET flips the low bit of the byte at OFFSET; a negative
// OFFSET counts from the end (-1 is the last byte).
func cmdFlipbyte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	name := ts.MkAbs(args[0])
	b, err := os.ReadFile(name)
	ts.Check(err)
	off := offset(ts, args[1], int64(len(b)))
	if off == int64(len(b)) {
		ts.Fatalf("offset %s is past the end of %s", args[1], args[0])
	}
	b[off] ^= 1
	ts.Check(os.WriteFile(name, b, 0o644))
}

// concat OUT IN... writes the concatenation of the IN files to OUT.
func cmdConcat(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: concat OUT IN...")
	}
	var buf bytes.Buffer
	for _, in := range args[1:] {
		buf.WriteString(ts.ReadFile(in))
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), buf.Bytes(), 0o644))
}

// rsakey [-bits N] PREFIX generates an RSA key (2048 bits unless -bits) and
// writes it in every PEM form the CLI reads: PREFIX.pk8.pem (PKCS #8
// private), PREFIX.pk1.pem (PKCS #1 private), PREFIX.spki.pem (SPKI public)
// and PREFIX.pk1pub.pem (PKCS #1 public); and as other ESDKs' examples
// write them, PREFIX.sdkpub.pem (SPKI labelled "RSA PUBLIC KEY") and
// PREFIX.sdkpriv.pem (PKCS #8 labelled "RSA PRIVATE KEY").
func cmdRSAKey(ts *testscript.TestScript, neg bool, args []string) {
	bits := 2048
	if len(args) == 3 && args[0] == "-bits" {
		var err error
		bits, err = strconv.Atoi(args[1])
		ts.Check(err)
		args = args[2:]
	}
	if neg || len(args) != 1 {
		ts.Fatalf("usage: rsakey [-bits N] PREFIX")
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	ts.Check(err)
	pk8, err := x509.MarshalPKCS8PrivateKey(priv)
	ts.Check(err)
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	ts.Check(err)
	forms := []struct {
		suffix, typ string
		der         []byte
	}{
		{".pk8.pem", "PRIVATE KEY", pk8},
		{".pk1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(priv)},
		{".spki.pem", "PUBLIC KEY", spki},
		{".pk1pub.pem", "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&priv.PublicKey)},
		// As the other ESDKs' examples write them: the DER does not
		// match the label.
		{".sdkpub.pem", "RSA PUBLIC KEY", spki},
		{".sdkpriv.pem", "RSA PRIVATE KEY", pk8},
	}
	for _, f := range forms {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		ts.Check(os.WriteFile(ts.MkAbs(args[0]+f.suffix), data, 0o600))
	}
}

// eckey NAME writes an ECDSA P-256 private key as PKCS #8 PEM: a PEM key
// that is not an RSA key.
func cmdECKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: eckey NAME")
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	ts.Check(err)
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o600))
}

// notemp [DIR] checks that no temporary output file (".NAME.envelope-*")
// is left in DIR (default: the current directory).
func cmdNotemp(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: notemp [DIR]")
	}
	dir := "."
	if len(args) == 1 {
		dir = args[0]
	}
	left, err := filepath.Glob(filepath.Join(ts.MkAbs(dir), ".*.envelope-*"))
	ts.Check(err)
	if len(left) > 0 {
		ts.Fatalf("temporary output files left behind: %q", left)
	}
}

// jsonget [-base64] FILE PATH [VAR|=VALUE] finds the value at PATH (object
// keys and array indexes joined by dots, such as
// encryptedDataKeys.0.providerId) in the JSON document FILE ("stdout" or
// "stderr" for the last command's output). The value is a string as it is
// (base64-decoded with -base64), any other value as JSON. With VAR it sets
// $VAR to the value; with =VALUE it checks the value is VALUE (negated: is
// not); with neither it checks the value exists (negated: does not).
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	decode := len(args) > 0 && args[0] == "-base64"
	if decode {
		args = args[1:]
	}
	var setVar, want string
	compare := false
	switch {
	case len(args) == 3 && strings.HasPrefix(args[2], "="):
		want, compare = args[2][1:], true
	case len(args) == 3 && !neg:
		setVar = args[2]
	case len(args) != 2:
		ts.Fatalf("usage: jsonget [-base64] FILE PATH [VAR|=VALUE]")
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile(args[0])), &v); err != nil {
		ts.Fatalf("%s is not JSON: %v", args[0], err)
	}
	for _, step := range strings.Split(args[1], ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[step]
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(x) {
				v = nil
			} else {
				v = x[i]
			}
		default:
			v = nil
		}
		if v == nil {
			break
		}
	}
	if v == nil {
		if neg && !compare {
			return
		}
		ts.Fatalf("%s has no %s", args[0], args[1])
	}
	if neg && !compare {
		ts.Fatalf("%s has %s", args[0], args[1])
	}
	var got string
	switch x := v.(type) {
	case string:
		got = x
		if decode {
			b, err := base64.StdEncoding.DecodeString(x)
			if err != nil {
				ts.Fatalf("%s in %s is not base64: %v", args[1], args[0], err)
			}
			got = string(b)
		}
	default:
		if decode {
			ts.Fatalf("%s in %s is not a string", args[1], args[0])
		}
		b, err := json.Marshal(x)
		ts.Check(err)
		got = string(b)
	}
	switch {
	case compare && (got == want) == neg:
		ts.Fatalf("%s in %s is %q; want %s%q", args[1], args[0], got, not(neg), want)
	case setVar != "":
		ts.Setenv(setVar, got)
	}
}

// sametail A B N checks that the last N bytes (suffixes K and M) of files A
// and B are equal, and both files at least that long.
func cmdSametail(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: sametail A B N")
	}
	n := parseCount(ts, args[2])
	tail := func(name string) []byte {
		b, err := os.ReadFile(ts.MkAbs(name))
		ts.Check(err)
		if int64(len(b)) < n {
			ts.Fatalf("%s is %d bytes, shorter than %d", name, len(b), n)
		}
		return b[int64(len(b))-n:]
	}
	if bytes.Equal(tail(args[0]), tail(args[1])) == neg {
		ts.Fatalf("the last %d bytes of %s and %s are %sequal", n, args[0], args[1], not(!neg))
	}
}

// hardlink OLD NEW makes NEW a hard link to OLD: the same file under
// another name.
func cmdHardlink(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: hardlink OLD NEW")
	}
	ts.Check(os.Link(ts.MkAbs(args[0]), ts.MkAbs(args[1])))
}

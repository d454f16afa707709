package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// needMountNS fails the test unless it can mount file systems in a private
// mount namespace: it needs root and unshare(1) from util-linux.
func needMountNS(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts a read-only bind mount and a small tmpfs in a private mount namespace: it needs root (euid %d) and unshare(1)", os.Geteuid())
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("this test mounts file systems in a private mount namespace: it needs unshare(1) from util-linux: %v", err)
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// mountNSCommand returns the command that runs script with sh in a private
// mount namespace (nothing it mounts is seen outside).
func mountNSCommand(script string) *exec.Cmd {
	return exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-ec", script)
}

// fsStep is one envelope command run on the crippled keystore.
type fsStep struct {
	name  string
	args  []string
	write bool // a change: it must fail, saying why in plain words
	check func(t *testing.T, stdout string)
}

func init() { keystoreProcessTests["FullOrReadOnlyDisk"] = testKeystoreOnFullOrReadOnlyDisk }

// testKeystoreOnFullOrReadOnlyDisk is issue 9 item 9: with the keystore on
// a read-only file system, or on a full one, the commands that only read
// (decrypt, inspect, keys list/describe/public-key, encrypt with an
// existing key, serve for crypto on existing keys) work, and the ones that
// change the keystore fail saying so in plain words.
func testKeystoreOnFullOrReadOnlyDisk(t *testing.T, bin string) {
	needMountNS(t)
	work := t.TempDir()
	home := filepath.Join(work, "envhome")
	env := serveEnviron(home, true)
	plain := filepath.Join(work, "plain")
	if err := os.WriteFile(plain, []byte("a secret kept on a crippled disk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"encrypt", "-o", plain + ".esdk", plain}, // the keystore and alias/default
		{"keys", "create", "--alias", "alias/app"},
		{"keys", "create", "--spec", "RSA_2048", "--alias", "alias/rsa"},
		{"encrypt", "-k", "alias/app", "-o", plain + ".app.esdk", plain},
	} {
		if r := runEnvelope(t, bin, env, args...); r.code != 0 {
			t.Fatalf("setting up: %v", r)
		}
	}
	// A first serve makes what serve keeps beside the keystore.
	p := startServeCmd(t, func(addr string) *exec.Cmd { return exec.Command(bin, "serve", "--addr", addr) }, env, home)
	if code := p.stop(); code != 0 {
		t.Fatalf("setting up: serve exited with status %d:\n%s", code, p.stderr.String())
	}
	wantPlain := func(t *testing.T, stdout string) {
		if stdout != "a secret kept on a crippled disk\n" {
			t.Errorf("stdout = %q, want the plaintext", stdout)
		}
	}
	steps := []fsStep{
		{name: "decrypt", args: []string{"decrypt", plain + ".esdk"}, check: wantPlain},
		{name: "decrypt-k", args: []string{"decrypt", "-k", "alias/app", plain + ".app.esdk"}, check: wantPlain},
		{name: "inspect", args: []string{"inspect", plain + ".esdk"}, check: func(t *testing.T, stdout string) {
			if !strings.Contains(stdout, `"providerId": "aws-kms"`) {
				t.Errorf("stdout = %q, want the header", stdout)
			}
		}},
		{name: "keys-list", args: []string{"keys", "list"}, check: func(t *testing.T, stdout string) {
			for _, a := range []string{"alias/default", "alias/app", "alias/rsa"} {
				if !strings.Contains(stdout, a) {
					t.Errorf("stdout = %q, want %s listed", stdout, a)
				}
			}
		}},
		{name: "keys-describe", args: []string{"keys", "describe", "alias/app"}, check: func(t *testing.T, stdout string) {
			if !strings.Contains(stdout, "Enabled") {
				t.Errorf("stdout = %q, want the key described", stdout)
			}
		}},
		{name: "public-key", args: []string{"keys", "public-key", "alias/rsa"}, check: func(t *testing.T, stdout string) {
			if !strings.HasPrefix(stdout, "-----BEGIN PUBLIC KEY-----") {
				t.Errorf("stdout = %q, want a PEM public key", stdout)
			}
		}},
		{name: "encrypt-k", args: []string{"encrypt", "-k", "alias/app", "-o", "OUT/app2.esdk", plain}},
		{name: "encrypt-default", args: []string{"encrypt", "-o", "OUT/default2.esdk", plain}},
		{name: "keys-create", args: []string{"keys", "create"}, write: true},
		{name: "keys-disable", args: []string{"keys", "disable", "alias/app"}, write: true},
	}

	t.Run("ReadOnly", func(t *testing.T) {
		out := t.TempDir()
		mount := fmt.Sprintf("mount --bind %[1]s %[1]s && mount -o remount,bind,ro %[1]s", shellQuote(home))
		runFSSteps(t, bin, env, mount, out, steps, "the keystore is on a read-only file system")
		testServeOnCrippledKeystore(t, bin, env, home, mount, out)
	})
	t.Run("Full", func(t *testing.T) {
		out := t.TempDir()
		full := filepath.Join(t.TempDir(), "envhome")
		if err := os.Mkdir(full, 0o700); err != nil {
			t.Fatal(err)
		}
		fenv := serveEnviron(full, true)
		mount := fmt.Sprintf("mount -t tmpfs -o size=2m,mode=0700 tmpfs %[1]s && cp -a %[2]s/. %[1]s/ && { dd if=/dev/zero of=%[1]s/filler bs=4k 2>/dev/null || true; }",
			shellQuote(full), shellQuote(home))
		runFSSteps(t, bin, fenv, mount, out, steps, "the keystore's disk is full")
		testServeOnCrippledKeystore(t, bin, fenv, full, mount, out)
	})
}

// runFSSteps runs the steps, after mount, in one private mount namespace,
// and checks each one's outcome. OUT in arguments is the directory out.
func runFSSteps(t *testing.T, bin string, env []string, mount, out string, steps []fsStep, problem string) {
	t.Helper()
	var script strings.Builder
	script.WriteString(mount + "\nset +e\n")
	for _, s := range steps {
		var args []string
		for _, a := range s.args {
			args = append(args, shellQuote(strings.Replace(a, "OUT/", out+"/", 1)))
		}
		name := shellQuote(filepath.Join(out, s.name))
		fmt.Fprintf(&script, "%s %s >%s.out 2>%s.err; echo $? >%s.code\n", shellQuote(bin), strings.Join(args, " "), name, name, name)
	}
	cmd := mountNSCommand(script.String())
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in a private mount namespace: %v\n%s", err, b)
	}
	for _, s := range steps {
		read := func(ext string) string {
			b, err := os.ReadFile(filepath.Join(out, s.name+ext))
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			return string(b)
		}
		code, err := strconv.Atoi(strings.TrimSpace(read(".code")))
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr := read(".out"), read(".err")
		what := "envelope " + strings.Join(s.args, " ")
		if s.write {
			t.Logf("%s: exit status %d\n%s", what, code, stderr)
			if code != 1 || !strings.Contains(stderr, "envelope: "+problem) || !strings.Contains(stderr, "\nhint: ") {
				t.Errorf("%s: exit status %d, stderr %q; want 1 and %q with a hint", what, code, stderr, problem)
			}
			continue
		}
		if code != 0 {
			t.Errorf("%s: exit status %d, want 0; stderr:\n%s", what, code, stderr)
			continue
		}
		// Reading says once that changes would fail; nothing else.
		note := "envelope: " + problem + "; reading it only (changes will fail)\n"
		if stderr != note && !(s.name == "inspect" && stderr == "") {
			t.Errorf("%s: stderr %q, want %q", what, stderr, note)
		}
		if s.check != nil {
			s.check(t, stdout)
		}
	}
	for _, name := range []string{"app2.esdk", "default2.esdk"} {
		r := runEnvelope(t, bin, serveEnviron(filepath.Join(filepath.Dir(out), "unused"), false), "inspect", filepath.Join(out, name))
		if r.code != 0 {
			t.Errorf("the message encrypted on the crippled keystore: %v", r)
		}
	}
}

// startServeCmd starts the "envelope serve" command(addr) returns (which
// may run it behind unshare and sh, which exec it) on a free port, and
// waits until it is ready.
func startServeCmd(t *testing.T, command func(addr string) *exec.Cmd, env []string, home string) *serveProc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := command(addr)
	p := &serveProc{t: t, home: home, addr: addr, url: "http://" + addr, stderr: &lockedBuffer{}, exited: make(chan struct{}), cmd: cmd}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting envelope serve: %v", err)
	}
	go func() {
		cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	if err := p.waitReady(30 * time.Second); err != nil {
		p.kill()
		t.Fatalf("envelope serve: %v; output:\n%s", err, p.stderr.String())
	}
	return p
}

// testServeOnCrippledKeystore runs "envelope serve" on the keystore in home
// after mount, in a private mount namespace, with its audit log in out: it
// serves cryptographic operations on the existing keys, and refuses to
// create one with KMSInternalException.
func testServeOnCrippledKeystore(t *testing.T, bin string, env []string, home, mount, out string) {
	t.Helper()
	p := startServeCmd(t, func(addr string) *exec.Cmd {
		return mountNSCommand(mount + " && exec " + shellQuote(bin) + " serve --addr " + addr + " --audit-log " + shellQuote(filepath.Join(out, "audit.log")))
	}, env, home)
	c := p.client(serveRoot)
	ctx := context.Background()
	gen, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/app"), KeySpec: types.DataKeySpecAes256})
	if err != nil {
		t.Fatalf("serve: GenerateDataKey(alias/app) err = %v, want nil; server output:\n%s", err, p.stderr.String())
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob})
	if err != nil || !bytes.Equal(dec.Plaintext, gen.Plaintext) {
		t.Errorf("serve: Decrypt() = %v, want the data key", err)
	}
	if _, err := c.CreateKey(ctx, &kms.CreateKeyInput{}); err == nil {
		t.Error("serve: CreateKey() on a keystore that cannot be written err = nil")
	} else {
		wantErrorCode(t, "serve: CreateKey()", err, "KMSInternalException")
	}
	resp, err := http.Get(p.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := p.stop(); code != 0 {
		t.Errorf("serve exited with status %d, want 0; output:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "reading it only") {
		t.Errorf("serve did not warn that the keystore is read-only; output:\n%s", p.stderr.String())
	}
}

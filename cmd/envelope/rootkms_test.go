package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

func init() { keystoreProcessTests["RootKMS"] = testRootKMS }

// rootKMSEnviron is the environment of an envelope process whose keystore
// in home has its root key sealed by the envelope server up, signing as
// its root principal.
func rootKMSEnviron(t *testing.T, home string, up *serveProc, keyID string) []string {
	none := filepath.Join(t.TempDir(), "none")
	return append(serveEnviron(home, false),
		"ENVELOPE_ROOT_KMS="+up.url, "ENVELOPE_ROOT_KEY_ID="+keyID,
		"AWS_ACCESS_KEY_ID="+serveRootID, "AWS_SECRET_ACCESS_KEY="+serveRootSecret, "AWS_REGION="+serveRegion,
		"AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none, "AWS_EC2_METADATA_DISABLED=true")
}

// wantFailure checks that r failed with exit status 1 and exactly the
// error line matching msg and the hint line starting with hint.
func wantFailure(t *testing.T, r result, msg, hint string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != 1 || len(lines) != 2 || !strings.HasPrefix(lines[0], "envelope: ") || !strings.Contains(lines[0], msg) || !strings.HasPrefix(lines[1], "hint: "+hint) {
		t.Fatalf("%v: want exit status 1, the error %q and the hint %q", r, msg, hint)
	}
}

// testRootKMS: a keystore whose root key another envelope server (a real
// process, signed requests) seals, used by the CLI and by a server of its
// own; the errors when the upstream is not given, refuses, or is down.
func testRootKMS(t *testing.T, bin string) {
	up := startServe(t, bin, serveOpts{})
	ctx := context.Background()
	upc := up.client(serveRoot)
	created, err := upc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("seals root keys")})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(created.KeyMetadata.Arn)
	other, err := upc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "sealed")
	env := rootKMSEnviron(t, home, up, keyARN)
	work := t.TempDir()
	plain := filepath.Join(work, "plain")
	if err := os.WriteFile(plain, []byte("sealed by the upstream"), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := plain + ".esdk"
	if r := runEnvelope(t, bin, env, "encrypt", "-o", msg, plain); r.code != 0 || !strings.Contains(r.stderr, "created a new keystore in "+home) {
		t.Fatalf("%v", r)
	}
	if _, err := os.Stat(filepath.Join(home, "root.key")); !os.IsNotExist(err) {
		t.Errorf("a keystore sealed by an upstream KMS has a root.key (%v)", err)
	}
	decrypt := func(env []string) result { return runEnvelope(t, bin, env, "decrypt", msg) }
	if r := decrypt(env); r.code != 0 || r.stdout != "sealed by the upstream" {
		t.Fatalf("%v", r)
	}

	t.Run("OwnServer", func(t *testing.T) {
		// A server of the sealed keystore unseals its root key at start.
		p := startServe(t, bin, serveOpts{args: []string{"--store", home, "--audit-log", filepath.Join(t.TempDir(), "audit.log")},
			env: env[len(serveEnviron(home, false)):]})
		aliases, err := p.client(serveRoot).ListAliases(ctx, &kms.ListAliasesInput{})
		if err != nil || len(aliases.Aliases) != 1 || aws.ToString(aliases.Aliases[0].AliasName) != "alias/default" {
			t.Fatalf("ListAliases on the sealed keystore's server = %+v, %v; want alias/default", aliases, err)
		}
		if !strings.Contains(p.stderr.String(), "rootKey=kms") {
			t.Errorf("the server's log does not say where its root key comes from:\n%s", p.stderr.String())
		}
	})
	t.Run("NotGiven", func(t *testing.T) {
		wantFailure(t, decrypt(serveEnviron(home, false)),
			"keystore: "+home+": its root key comes from an upstream KMS (key "+keyARN+"), and none was given",
			"give the upstream KMS that sealed its root key: --root-kms URL (or aws) and --root-key-id KEY")
	})
	t.Run("AnotherKey", func(t *testing.T) {
		wantFailure(t, decrypt(rootKMSEnviron(t, home, up, aws.ToString(other.KeyMetadata.Arn))),
			"keystore: "+home+": the upstream KMS "+up.url+" could not unseal the root key: IncorrectKeyException: ",
			"the upstream KMS refused: check the credentials")
	})
	t.Run("UpstreamRefuses", func(t *testing.T) {
		if _, err := upc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyARN)}); err != nil {
			t.Fatal(err)
		}
		wantFailure(t, decrypt(env), "could not unseal the root key: DisabledException: ", "the upstream KMS refused: check the credentials")
		if _, err := upc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyARN)}); err != nil {
			t.Fatal(err)
		}
		wrong := append(env, "AWS_SECRET_ACCESS_KEY=not-the-secret")
		wantFailure(t, decrypt(wrong), "could not unseal the root key: InvalidSignatureException: ", "the upstream KMS refused")
		if r := decrypt(env); r.code != 0 {
			t.Fatalf("%v", r)
		}
	})
	t.Run("UpstreamDown", func(t *testing.T) {
		if code := up.stop(); code != 0 {
			t.Fatalf("the upstream exited with status %d", code)
		}
		wantFailure(t, decrypt(env), "keystore: "+home+": the upstream KMS "+up.url+" could not unseal the root key: awsclient: Decrypt on "+up.url+": ",
			"check that the upstream KMS (--root-kms or ENVELOPE_ROOT_KMS) is up and reachable from here")
		// A server of the keystore does not start.
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, bin, "serve", "--addr", "127.0.0.1:0", "--store", home, "--audit-log", filepath.Join(t.TempDir(), "audit.log"))
		cmd.Env = append(env, "ENVELOPE_ROOT_ACCESS_KEY_ID="+serveRootID, "ENVELOPE_ROOT_SECRET_ACCESS_KEY="+serveRootSecret)
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "could not unseal the root key") {
			t.Fatalf("envelope serve with its upstream KMS down: %v, output:\n%s", err, out)
		}
	})
}

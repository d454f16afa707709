//go:build interop

package interop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kmsServer is a running `envelope serve` process.
type kmsServer struct {
	url, home    string
	akid, secret string
	cmd          *exec.Cmd
	stderr       *strings.Builder
}

// startServer starts `envelope serve` on a free loopback port with its own
// keystore and root credentials, waits for /healthz, and stops it (SIGTERM)
// when the test ends.
func startServer(t *testing.T) *kmsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &kmsServer{url: "http://" + addr, home: t.TempDir(), akid: "EVKINTEROPROOT000001", secret: "interop-root-secret-0123456789abcdefghij", stderr: &strings.Builder{}}
	s.cmd = exec.Command(envelope, "serve", "--addr", addr)
	s.cmd.Env = append(os.Environ(), "ENVELOPE_HOME="+s.home, "ENVELOPE_ROOT_ACCESS_KEY_ID="+s.akid, "ENVELOPE_ROOT_SECRET_ACCESS_KEY="+s.secret)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- s.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("envelope serve exited with %v\n%s", err, s.stderr)
			}
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			t.Errorf("envelope serve did not stop on SIGTERM\n%s", s.stderr)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("envelope serve not ready: %v\n%s", err, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// env is the environment of a client of the server: its credentials, the
// region, and nothing from the user's own AWS configuration (no config
// files, no instance metadata lookups, no pager).
func (s *kmsServer) env(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "ENVELOPE_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+home,
		"AWS_ACCESS_KEY_ID="+s.akid,
		"AWS_SECRET_ACCESS_KEY="+s.secret,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(home, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "aws-credentials"),
		"AWS_PAGER=",
		"ENVELOPE_HOME="+filepath.Join(home, "no-keystore"),
		"KMS_ENDPOINT="+s.url,
	)
}

// run runs a peer command against the server and returns its stdout.
func (s *kmsServer) run(t *testing.T, wantErr bool, name string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	home := t.TempDir()
	cmd.Env = s.env(home)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if wantErr != (err != nil) {
		t.Fatalf("%s %s: err = %v, want error %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, wantErr, o.String(), e.String())
	}
	return o.String(), e.String()
}

// awsJSON runs an aws CLI command with --endpoint-url and decodes its JSON.
func (s *kmsServer) awsJSON(t *testing.T, aws string, args ...string) map[string]any {
	t.Helper()
	out, _ := s.run(t, false, aws, append([]string{"--endpoint-url", s.url, "--output", "json"}, args...)...)
	var m map[string]any
	if strings.TrimSpace(out) == "" {
		return m
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("aws %s: not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
	return m
}

// awsFails runs an aws CLI command that must fail with the AWS error name.
func (s *kmsServer) awsFails(t *testing.T, aws, code string, args ...string) {
	t.Helper()
	_, stderr := s.run(t, true, aws, append([]string{"--endpoint-url", s.url, "--output", "json"}, args...)...)
	if !strings.Contains(stderr, "("+code+")") {
		t.Fatalf("aws %s: stderr %q does not name %s", strings.Join(args, " "), stderr, code)
	}
}

func str(t *testing.T, m map[string]any, path ...string) string {
	t.Helper()
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: no %q in %v", path, p, v)
		}
		v = mm[p]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v = %v, want a string", path, v)
	}
	return s
}

// TestSeedProgramBoto3 runs the seed program (interop/python/seed.py) with
// Debian's python3-boto3 and python3-pycryptodome against the server.
func TestSeedProgramBoto3(t *testing.T) {
	s := startServer(t)
	s.run(t, false, envelope, "keys", "create", "--kms", s.url, "--alias", "alias/seed")
	out, _ := s.run(t, false, "/usr/bin/python3", filepath.Join(repoRoot, "interop", "python", "seed.py"))
	if !strings.Contains(out, "round trip ok") {
		t.Fatalf("seed program printed %q", out)
	}
}

// TestAWSCLIv1 drives the pip aws-cli (v1, on PATH) through the key
// lifecycle and the cryptographic operations.
func TestAWSCLIv1(t *testing.T) {
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("aws (aws-cli v1) not on PATH: pip install awscli")
	}
	s := startServer(t)
	k := s.awsJSON(t, aws, "kms", "create-key", "--description", "interop key")
	keyID := str(t, k, "KeyMetadata", "KeyId")
	arn := str(t, k, "KeyMetadata", "Arn")
	if str(t, k, "KeyMetadata", "KeyState") != "Enabled" || !strings.HasPrefix(arn, "arn:aws:kms:us-east-1:") {
		t.Fatalf("create-key = %v", k)
	}
	s.awsJSON(t, aws, "kms", "create-alias", "--alias-name", "alias/cli", "--target-key-id", keyID)
	s.awsFails(t, aws, "AlreadyExistsException", "kms", "create-alias", "--alias-name", "alias/cli", "--target-key-id", keyID)
	al := s.awsJSON(t, aws, "kms", "list-aliases")
	if !strings.Contains(fmt.Sprint(al["Aliases"]), "alias/cli") {
		t.Fatalf("list-aliases = %v", al)
	}
	d := s.awsJSON(t, aws, "kms", "describe-key", "--key-id", "alias/cli")
	if str(t, d, "KeyMetadata", "KeyId") != keyID {
		t.Fatalf("describe-key = %v", d)
	}
	s.awsFails(t, aws, "NotFoundException", "kms", "describe-key", "--key-id", "alias/nope")

	g := s.awsJSON(t, aws, "kms", "generate-data-key", "--key-id", "alias/cli", "--key-spec", "AES_256", "--encryption-context", "app=cli")
	pt, _ := base64.StdEncoding.DecodeString(str(t, g, "Plaintext"))
	if len(pt) != 32 || str(t, g, "KeyId") != arn {
		t.Fatalf("generate-data-key = %v", g)
	}
	dir := t.TempDir()
	blob := filepath.Join(dir, "blob")
	raw, _ := base64.StdEncoding.DecodeString(str(t, g, "CiphertextBlob"))
	if err := os.WriteFile(blob, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	dec := s.awsJSON(t, aws, "kms", "decrypt", "--ciphertext-blob", "fileb://"+blob, "--encryption-context", "app=cli")
	if str(t, dec, "Plaintext") != str(t, g, "Plaintext") || str(t, dec, "KeyId") != arn {
		t.Fatalf("decrypt = %v", dec)
	}
	s.awsFails(t, aws, "InvalidCiphertextException", "kms", "decrypt", "--ciphertext-blob", "fileb://"+blob, "--encryption-context", "app=other")

	ptFile := filepath.Join(dir, "pt")
	os.WriteFile(ptFile, []byte("secret text"), 0o600)
	e := s.awsJSON(t, aws, "kms", "encrypt", "--key-id", keyID, "--plaintext", "fileb://"+ptFile)
	eblob := filepath.Join(dir, "eblob")
	raw, _ = base64.StdEncoding.DecodeString(str(t, e, "CiphertextBlob"))
	os.WriteFile(eblob, raw, 0o600)

	k2 := s.awsJSON(t, aws, "kms", "create-key")
	arn2 := str(t, k2, "KeyMetadata", "Arn")
	re := s.awsJSON(t, aws, "kms", "re-encrypt", "--ciphertext-blob", "fileb://"+eblob, "--destination-key-id", arn2)
	if str(t, re, "KeyId") != arn2 || str(t, re, "SourceKeyId") != arn {
		t.Fatalf("re-encrypt = %v", re)
	}
	rblob := filepath.Join(dir, "rblob")
	raw, _ = base64.StdEncoding.DecodeString(str(t, re, "CiphertextBlob"))
	os.WriteFile(rblob, raw, 0o600)
	rd := s.awsJSON(t, aws, "kms", "decrypt", "--ciphertext-blob", "fileb://"+rblob)
	if got, _ := base64.StdEncoding.DecodeString(str(t, rd, "Plaintext")); string(got) != "secret text" {
		t.Fatalf("decrypt after re-encrypt = %q", got)
	}

	lk := s.awsJSON(t, aws, "kms", "list-keys")
	if !strings.Contains(fmt.Sprint(lk["Keys"]), keyID) || !strings.Contains(fmt.Sprint(lk["Keys"]), arn2) {
		t.Fatalf("list-keys = %v", lk)
	}
	s.awsJSON(t, aws, "kms", "enable-key-rotation", "--key-id", keyID)
	rs := s.awsJSON(t, aws, "kms", "get-key-rotation-status", "--key-id", keyID)
	if rs["KeyRotationEnabled"] != true {
		t.Fatalf("get-key-rotation-status = %v", rs)
	}
	s.awsJSON(t, aws, "kms", "rotate-key-on-demand", "--key-id", keyID)
	// The old ciphertext still decrypts after the rotation.
	s.awsJSON(t, aws, "kms", "decrypt", "--ciphertext-blob", "fileb://"+eblob)

	s.awsJSON(t, aws, "kms", "disable-key", "--key-id", keyID)
	s.awsFails(t, aws, "DisabledException", "kms", "decrypt", "--ciphertext-blob", "fileb://"+eblob)
	sd := s.awsJSON(t, aws, "kms", "schedule-key-deletion", "--key-id", keyID, "--pending-window-in-days", "7")
	if str(t, sd, "KeyState") != "PendingDeletion" {
		t.Fatalf("schedule-key-deletion = %v", sd)
	}
	s.awsFails(t, aws, "KMSInvalidStateException", "kms", "decrypt", "--ciphertext-blob", "fileb://"+eblob)
	s.awsJSON(t, aws, "kms", "cancel-key-deletion", "--key-id", keyID)
	d = s.awsJSON(t, aws, "kms", "describe-key", "--key-id", keyID)
	if str(t, d, "KeyMetadata", "KeyState") != "Disabled" {
		t.Fatalf("after cancel-key-deletion: %v", d)
	}
}

// TestAWSCLIv2 uses Debian's awscli 2.9 (/usr/bin/aws), which signs and
// serializes differently from v1, for generate-data-key and decrypt.
func TestAWSCLIv2(t *testing.T) {
	const aws = "/usr/bin/aws"
	if _, err := os.Stat(aws); err != nil {
		t.Fatal("/usr/bin/aws (Debian awscli 2) missing: apt-get install awscli")
	}
	s := startServer(t)
	s.run(t, false, envelope, "keys", "create", "--kms", s.url, "--alias", "alias/v2")
	g := s.awsJSON(t, aws, "kms", "generate-data-key", "--key-id", "alias/v2", "--number-of-bytes", "32", "--encryption-context", "app=v2")
	dir := t.TempDir()
	blob := filepath.Join(dir, "blob")
	raw, _ := base64.StdEncoding.DecodeString(str(t, g, "CiphertextBlob"))
	os.WriteFile(blob, raw, 0o600)
	d := s.awsJSON(t, aws, "kms", "decrypt", "--ciphertext-blob", "fileb://"+blob, "--encryption-context", "app=v2")
	if str(t, d, "Plaintext") != str(t, g, "Plaintext") {
		t.Fatalf("decrypt = %v, generate-data-key = %v", d, g)
	}
	s.awsFails(t, aws, "InvalidCiphertextException", "kms", "decrypt", "--ciphertext-blob", "fileb://"+blob)
}

// TestKMSKeyringJS: the JS SDK's KmsKeyringNode, its @aws-sdk/client-kms
// pointed at the server, and envelope's KMS keyring read each other's
// messages.
func TestKMSKeyringJS(t *testing.T) {
	s := startServer(t)
	out, _ := s.run(t, false, envelope, "keys", "create", "--kms", s.url, "--alias", "alias/js", "--json")
	var ck struct{ KeyMetadata struct{ Arn string } }
	if err := json.Unmarshal([]byte(out), &ck); err != nil || ck.KeyMetadata.Arn == "" {
		t.Fatalf("keys create --json: %v\n%s", err, out)
	}
	arn := ck.KeyMetadata.Arn
	dir := t.TempDir()
	plain, sum := writePlaintext(t, filepath.Join(dir, "plain"), "kms-js", 3*65536+7)

	// JS encrypts through KMS; envelope decrypts through the server.
	jsMsg := filepath.Join(dir, "js.esdk")
	s.run(t, false, nodeBin, esdkJS, "encrypt", "--key", "kms:"+arn, "--kms-endpoint", s.url, "--context", "app=js", "--in", plain, "--out", jsMsg)
	out1 := filepath.Join(dir, "out1")
	s.run(t, false, envelope, "decrypt", "--kms", s.url, "-c", "app=js", "-o", out1, jsMsg)
	comparePlaintext(t, plain, sum, out1)

	// envelope encrypts through the server; JS decrypts through KMS.
	envMsg := filepath.Join(dir, "env.esdk")
	s.run(t, false, envelope, "encrypt", "--kms", s.url, "-k", arn, "-c", "app=env", "-o", envMsg, plain)
	out2 := filepath.Join(dir, "out2")
	s.run(t, false, nodeBin, esdkJS, "decrypt", "--key", "kms:"+arn, "--kms-endpoint", s.url, "--context", "app=env", "--in", envMsg, "--out", out2)
	comparePlaintext(t, plain, sum, out2)
}

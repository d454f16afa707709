package main

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestReadmeQuickstart runs the README's quickstart command as a new user
// would (with a fresh ENVELOPE_HOME) and checks that it prints the README
// back: the quickstart must stay true.
func TestReadmeQuickstart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Quickstart")
	if !ok {
		t.Fatal("README has no Quickstart section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("README's Quickstart has no sh block")
	}
	cmdline, _, _ := strings.Cut(rest, "\n```")
	if strings.Count(cmdline, "\n") != 0 || !strings.Contains(cmdline, "envelope encrypt") || !strings.Contains(cmdline, "envelope decrypt") {
		t.Fatalf("the quickstart should be one command line that encrypts and decrypts, got %q", cmdline)
	}
	cmd := exec.Command("bash", "-c", cmdline)
	cmd.Dir = "../.."
	home := t.TempDir()
	cmd.Env = append(filterEnv(os.Environ(), "ENVELOPE_HOME", "ENVELOPE_PASSPHRASE", "ENVELOPE_STORE", "ENVELOPE_ROOT_KEY_FILE", "ENVELOPE_ROOT_KMS", "ENVELOPE_ROOT_KEY_ID", "XDG_DATA_HOME"), "ENVELOPE_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("quickstart %q failed: %v\n%s", cmdline, err, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), readme) {
		t.Fatalf("quickstart printed %d bytes, want the README's %d", stdout.Len(), len(readme))
	}
	if !strings.Contains(stderr.String(), "created the default key alias/default") {
		t.Fatalf("the first run did not say it created the default key; stderr:\n%s", stderr.String())
	}
	if _, err := os.Stat(home + "/keystore.db"); err != nil {
		t.Fatalf("no keystore in ENVELOPE_HOME: %v", err)
	}
}

// filterEnv drops the named variables from env.
func filterEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}

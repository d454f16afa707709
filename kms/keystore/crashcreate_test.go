package keystore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
)

// createDirEnv selects the creation child (see TestMain) and names its
// keystore.
const createDirEnv = "ENVELOPE_TEST_CREATE_DIR"

// createChild opens (creating it if need be) the keystore named by
// $ENVELOPE_TEST_CREATE_DIR with alias/default, as "envelope encrypt" does
// on first use, and prints "blob BLOB" (base64) for a blob it encrypted
// under that key, then "done".
func createChild() {
	ctx := context.Background()
	ks, err := keystore.Open(ctx, os.Getenv(createDirEnv), keystore.Options{DefaultAlias: "alias/default"})
	if err != nil {
		fmt.Printf("error open %v\n", err)
		os.Exit(2)
	}
	out, err := ks.Encrypt(ctx, &kms.EncryptInput{KeyId: "alias/default", Plaintext: []byte("created")})
	if err != nil {
		fmt.Printf("error encrypt %v\n", err)
		os.Exit(3)
	}
	os.Stdout.WriteString("blob " + base64.StdEncoding.EncodeToString(out.CiphertextBlob) + "\ndone\n")
	ks.Close()
}

// TestCrashDuringCreation kills a process at random moments while it
// creates a keystore, beside another process opening the same new
// keystore. The survivor must succeed, and afterwards the keystore must
// open, hold one default key, and decrypt every blob either process
// reported.
func TestCrashDuringCreation(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped in -short mode")
	}
	const rounds = 20
	start := func(dir string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		// GORACE: a -race child would otherwise sleep a second at exit,
		// and the kills would all land after its work.
		cmd.Env = append(os.Environ(), createDirEnv+"="+dir, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}
	// How long a creating child lives, to spread the kills over it: the
	// median of children timed before and between the kills, so that it
	// follows the machine's load.
	var lives []time.Duration
	timed := func() {
		began := time.Now()
		cmd, out := start(filepath.Join(t.TempDir(), "envelope"))
		if err := cmd.Wait(); err != nil {
			t.Fatalf("creation child: %v\n%s", err, out)
		}
		lives = append(lives, time.Since(began))
	}
	timed()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	killedBeforeDone := 0
	for round := range rounds {
		if round%5 == 0 {
			timed()
		}
		life := slices.Sorted(slices.Values(lives))[len(lives)/2]
		dir := filepath.Join(t.TempDir(), "envelope")
		victim, vout := start(dir)
		survivor, sout := start(dir)
		time.Sleep(time.Duration(r.Int64N(int64(life)))) // the kill point
		victim.Process.Signal(syscall.SIGKILL)
		victim.Wait()
		if err := survivor.Wait(); err != nil {
			t.Fatalf("round %d: the surviving process failed: %v\n%s", round, err, sout)
		}
		if !strings.Contains(vout.String(), "done") {
			killedBeforeDone++
		}
		ks, err := keystore.Open(t.Context(), dir, keystore.Options{MustExist: true})
		if err != nil {
			t.Fatalf("round %d: after the kill, Open() err = %v", round, err)
		}
		keys, err := ks.ListKeys(t.Context(), &kms.ListKeysInput{})
		if err != nil || len(keys.Keys) != 1 {
			t.Fatalf("round %d: ListKeys() = %v, %v; want the one default key", round, keys, err)
		}
		for _, line := range strings.Split(vout.String()+sout.String(), "\n") {
			b64, ok := strings.CutPrefix(line, "blob ")
			if !ok {
				continue
			}
			blob, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := ks.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: blob})
			if err != nil || string(dec.Plaintext) != "created" {
				t.Fatalf("round %d: a reported blob does not decrypt: %v", round, err)
			}
		}
		closeKS(t, ks)
	}
	t.Logf("%d of %d victims killed before they were done; a child lives %v (median of %d)", killedBeforeDone, rounds, slices.Sorted(slices.Values(lives))[len(lives)/2], len(lives))
	if killedBeforeDone < rounds/4 {
		t.Errorf("only %d of %d kills landed before the victim was done: the test tested too little", killedBeforeDone, rounds)
	}
}

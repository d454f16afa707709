package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
)

// firstUseRoundsEnv sets how many rounds TestKeystoreFirstUse runs (see
// firstUseRounds).
const firstUseRoundsEnv = "ENVELOPE_TEST_FIRST_USE_ROUNDS"

// firstUseRounds is how many fresh keystores TestKeystoreFirstUse races 8
// processes on: $ENVELOPE_TEST_FIRST_USE_ROUNDS if set, else 50 (about 3 s
// on 2 CPUs), 10 in -short mode.
func firstUseRounds(t *testing.T) int {
	if s := os.Getenv(firstUseRoundsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of rounds", firstUseRoundsEnv, s)
		}
		return n
	}
	if testing.Short() {
		return 10
	}
	return 50
}

// result is how one envelope process ended.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("envelope %s: exit status %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runEnvelope runs bin with args in env and returns how it ended.
func runEnvelope(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running envelope %s: %v", strings.Join(args, " "), err)
	}
	return result{args: args, code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// keystoreProcessTests are the subtests of TestKeystoreProcesses, by name:
// tests of the keystore through the built envelope command, which they
// share. Files add theirs.
var keystoreProcessTests = map[string]func(t *testing.T, bin string){
	// Issue 9 item 2: several processes using a keystore for the first
	// time at once, and processes killed while they create a key with an
	// alias.
	"FirstUse/ConcurrentEncrypts":    testConcurrentFirstEncrypts,
	"FirstUse/ConcurrentPassphrase":  testConcurrentFirstPassphrase,
	"FirstUse/KeysCreateAliasKilled": testKeysCreateAliasKilled,
	"RemoteKeyWithAlias":             testRemoteKeyWithAlias,
}

// TestKeystoreProcesses runs keystoreProcessTests with one build of the
// envelope command.
func TestKeystoreProcesses(t *testing.T) {
	bin := buildEnvelope(t)
	for _, name := range slices.Sorted(maps.Keys(keystoreProcessTests)) {
		t.Run(name, func(t *testing.T) { keystoreProcessTests[name](t, bin) })
	}
}

// testConcurrentFirstEncrypts starts 8 "envelope encrypt" processes
// together on a keystore that does not exist yet, round after round. Every
// one must succeed, every message must decrypt afterwards, the keystore
// must hold exactly one key, named by alias/default, and exactly one
// process must say it created the keystore and the key.
func testConcurrentFirstEncrypts(t *testing.T, bin string) {
	const procs = 8
	rounds := firstUseRounds(t)
	start := time.Now()
	for round := range rounds {
		home := filepath.Join(t.TempDir(), "envhome")
		work := t.TempDir()
		env := serveEnviron(home, false)
		results := make([]result, procs)
		plains := make([][]byte, procs)
		var wg sync.WaitGroup
		for i := range procs {
			plains[i] = fmt.Appendf(nil, "round %d, process %d: %d", round, i, rand.Int64())
			in := filepath.Join(work, fmt.Sprintf("plain%d", i))
			if err := os.WriteFile(in, plains[i], 0o600); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { results[i] = runEnvelope(t, bin, env, "encrypt", "-o", in+".esdk", in) })
		}
		wg.Wait()
		createdKeystore, createdKey := 0, 0
		for _, r := range results {
			if r.code != 0 {
				t.Errorf("round %d: %v", round, r)
			}
			createdKeystore += strings.Count(r.stderr, "envelope: created a new keystore in ")
			createdKey += strings.Count(r.stderr, "envelope: created the default key alias/default ")
		}
		if createdKeystore != 1 || createdKey != 1 {
			t.Errorf("round %d: %d processes said they created the keystore and %d the default key, want 1 and 1", round, createdKeystore, createdKey)
		}
		checkFirstUseKeystore(t, round, home, work, plains, nil)
		if t.Failed() {
			t.Fatalf("round %d of %d failed (after %v)", round, rounds, time.Since(start).Round(time.Millisecond))
		}
	}
	t.Logf("%d rounds of %d processes in %v", rounds, procs, time.Since(start).Round(time.Millisecond))
}

// checkFirstUseKeystore opens the keystore in home and checks that it
// holds exactly one key, alias/default's, and that work/plainI.esdk
// decrypts to plains[I] for each I.
func checkFirstUseKeystore(t *testing.T, round int, home, work string, plains [][]byte, pass []byte) {
	t.Helper()
	ctx := context.Background()
	ks, err := keystore.Open(ctx, home, keystore.Options{MustExist: true, Passphrase: pass})
	if err != nil {
		t.Errorf("round %d: the keystore does not open: %v", round, err)
		return
	}
	defer ks.Close()
	keys, err := ks.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	def, err := ks.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: defaultAlias})
	switch {
	case err != nil:
		t.Errorf("round %d: %s: %v", round, defaultAlias, err)
	case len(keys.Keys) != 1 || keys.Keys[0].KeyId != def.KeyMetadata.KeyId:
		t.Errorf("round %d: the keystore holds %d keys %v, want only %s's %s", round, len(keys.Keys), keys.Keys, defaultAlias, def.KeyMetadata.KeyId)
	}
	kr, err := awskms.NewDiscovery(ks, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range plains {
		name := filepath.Join(work, fmt.Sprintf("plain%d.esdk", i))
		msg, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("round %d: %v", round, err)
			continue
		}
		got, _, err := envelope.DecryptBytes(ctx, msg, kr)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("round %d: message %d does not decrypt: %q, %v", round, i, got, err)
		}
	}
}

// testConcurrentFirstPassphrase is testConcurrentFirstEncrypts for a
// keystore whose root key is derived from ENVELOPE_PASSPHRASE (the salt is
// what the processes race to choose). Argon2id costs 64 MiB per process:
// one round of 4.
func testConcurrentFirstPassphrase(t *testing.T, bin string) {
	const procs = 4
	pass := "correct horse battery staple"
	home := filepath.Join(t.TempDir(), "envhome")
	work := t.TempDir()
	env := append(serveEnviron(home, false), "ENVELOPE_PASSPHRASE="+pass)
	results := make([]result, procs)
	plains := make([][]byte, procs)
	var wg sync.WaitGroup
	for i := range procs {
		plains[i] = fmt.Appendf(nil, "passphrase process %d", i)
		in := filepath.Join(work, fmt.Sprintf("plain%d", i))
		if err := os.WriteFile(in, plains[i], 0o600); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { results[i] = runEnvelope(t, bin, env, "encrypt", "-o", in+".esdk", in) })
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		if r.code != 0 {
			t.Errorf("%v", r)
		}
		created += strings.Count(r.stderr, "envelope: created a new keystore in ")
	}
	if created != 1 {
		t.Errorf("%d processes said they created the keystore, want 1", created)
	}
	checkFirstUseKeystore(t, 0, home, work, plains, []byte(pass))
}

// testKeysCreateAliasKilled kills "envelope keys create --alias" processes
// at random moments of their lives and checks that no key was ever left
// without the alias it was created with.
func testKeysCreateAliasKilled(t *testing.T, bin string) {
	const kills = 40
	home := filepath.Join(t.TempDir(), "envhome")
	env := serveEnviron(home, false)
	// The keystore exists before the kills: they are to land on the key
	// and its alias, not on the keystore's creation.
	if r := runEnvelope(t, bin, env, "keys", "create", "--alias", "alias/first"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	// How long a run takes, to spread the kills over it: the median of
	// runs timed before and between the kills, so that it follows the
	// machine's load.
	var lives []time.Duration
	timed := func(i int) {
		began := time.Now()
		if r := runEnvelope(t, bin, env, "keys", "create", "--alias", fmt.Sprintf("alias/timed%d", i)); r.code != 0 {
			t.Fatalf("%v", r)
		}
		lives = append(lives, time.Since(began))
	}
	timed(-1)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	killed, finished := 0, 0
	for i := range kills {
		if i%5 == 0 {
			timed(i)
		}
		life := slices.Sorted(slices.Values(lives))[len(lives)/2]
		cmd := exec.Command(bin, "keys", "create", "--alias", fmt.Sprintf("alias/k%d", i), "--description", fmt.Sprintf("kill %d", i))
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The kill point, not a wait for anything: somewhere in the
		// process's life (a little past it, so that some finish).
		time.Sleep(time.Duration(r.Int64N(int64(life) * 11 / 10)))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			killed++
		case ws.ExitStatus() == 0:
			finished++
		default:
			t.Fatalf("keys create --alias alias/k%d failed: %v\n%s", i, cmd.ProcessState, out.String())
		}
	}
	t.Logf("%d kills, %d runs finished first; a run takes %v (median of %d)", killed, finished, slices.Sorted(slices.Values(lives))[len(lives)/2], len(lives))

	ctx := context.Background()
	ks, err := keystore.Open(ctx, home, keystore.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	keys, err := ks.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.Keys {
		d, err := ks.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId})
		if err != nil {
			t.Fatal(err)
		}
		as, err := ks.ListAliases(ctx, &kms.ListAliasesInput{KeyId: k.KeyId})
		if err != nil {
			t.Fatal(err)
		}
		want := "alias/" + strings.Replace(d.KeyMetadata.Description, "kill ", "k", 1)
		if d.KeyMetadata.Description == "" {
			continue // alias/first and alias/timedN
		}
		if len(as.Aliases) != 1 || as.Aliases[0].AliasName != want {
			t.Errorf("key %s (%q) has aliases %v, want only %s: a key was left without its alias", k.KeyId, d.KeyMetadata.Description, as.Aliases, want)
		}
	}
	if killed < kills/4 {
		t.Errorf("only %d of %d runs were killed before they finished: the kills tested too little", killed, kills)
	}
}

package keystore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
)

// crashDirEnv selects child mode (see TestMain) and names the keystore.
const crashDirEnv = "ENVELOPE_TEST_CRASH_DIR"

const crashAliases = 4

// crashChild is the process TestCrashSafety kills. Run by itself it does
// nothing. In child mode it opens the keystore and works on it until it is
// killed, printing "ready" once the keystore is open and then one line per
// call that returned successfully:
//
//	key ID                       CreateKey returned ID
//	try ALIAS ID                 about to point ALIAS at ID
//	alias ALIAS ID               ALIAS points at ID
//	rot ID N                     ID has had N on-demand rotations by this child
//	blob BLOB CONTEXT PLAINTEXT  GenerateDataKey (all base64; CONTEXT is JSON)
//
// TestMain runs the crash child (or the creation child of
// TestCrashDuringCreation) instead of the tests when a crash test
// re-executes this binary.
func TestMain(m *testing.M) {
	if os.Getenv(crashDirEnv) != "" {
		crashChild()
		os.Exit(0)
	}
	if os.Getenv(createDirEnv) != "" {
		createChild()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func crashChild() {
	dir := os.Getenv(crashDirEnv)
	ctx := context.Background()
	ks, err := keystore.Open(ctx, dir, keystore.Options{})
	say := func(format string, args ...any) {
		// One write per line: a pipe write this short is atomic, so the
		// parent never sees half a line.
		os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
	}
	if err != nil {
		say("error open %v", err)
		os.Exit(2)
	}
	say("ready")
	die := func(op string, err error) {
		say("error %s %v", op, err)
		os.Exit(3)
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	var keys []string
	rotations := map[string]int{}
	deadline := time.Now().Add(20 * time.Second) // never outlive a lost parent
	for seq := 0; time.Now().Before(deadline); seq++ {
		op := r.IntN(100)
		switch {
		case len(keys) == 0 || op < 15:
			out, err := ks.CreateKey(ctx, &kms.CreateKeyInput{Description: fmt.Sprintf("crash %d", seq)})
			if err != nil {
				die("CreateKey", err)
			}
			keys = append(keys, out.KeyMetadata.KeyId)
			say("key %s", out.KeyMetadata.KeyId)
		case op < 35:
			name := fmt.Sprintf("alias/crash-%d", r.IntN(crashAliases))
			id := keys[r.IntN(len(keys))]
			say("try %s %s", name, id)
			_, err := ks.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: name, TargetKeyId: id})
			if kms.CodeOf(err) == kms.CodeAlreadyExists {
				_, err = ks.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: name, TargetKeyId: id})
			}
			if err != nil {
				die("CreateAlias/UpdateAlias", err)
			}
			say("alias %s %s", name, id)
		case op < 50:
			id := keys[r.IntN(len(keys))]
			if rotations[id] >= 5 { // far below the quota of 25
				continue
			}
			if _, err := ks.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}); err != nil {
				die("RotateKeyOnDemand", err)
			}
			rotations[id]++
			say("rot %s %d", id, rotations[id])
		default:
			id := keys[r.IntN(len(keys))]
			ec := map[string]string{"pid": strconv.Itoa(os.Getpid()), "seq": strconv.Itoa(seq)}
			out, err := ks.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, NumberOfBytes: i32(1 + r.Int32N(64)), EncryptionContext: ec})
			if err != nil {
				die("GenerateDataKey", err)
			}
			ecJSON, _ := json.Marshal(ec)
			b64 := base64.StdEncoding.EncodeToString
			say("blob %s %s %s", b64(out.CiphertextBlob), b64(ecJSON), b64(out.Plaintext))
		}
	}
	ks.Close()
	os.Exit(0)
}

func i32(v int32) *int32 { return &v }

// ack is one acknowledged data key.
type ack struct {
	blob []byte
	ec   map[string]string
	pt   []byte
}

// aliasAttempt is one attempt to point an alias at a key, in order.
type aliasAttempt struct {
	key   string
	acked bool
}

// crashLog is what the children acknowledged, across all of them.
type crashLog struct {
	keys      []string
	rotations map[string]int // key -> acknowledged on-demand rotations
	blobs     []ack
	aliases   map[string][]aliasAttempt
}

func (l *crashLog) parse(t *testing.T, line string) error {
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil
	}
	switch {
	case f[0] == "key" && len(f) == 2:
		l.keys = append(l.keys, f[1])
	case f[0] == "try" && len(f) == 3:
		l.aliases[f[1]] = append(l.aliases[f[1]], aliasAttempt{key: f[2]})
	case f[0] == "alias" && len(f) == 3:
		at := l.aliases[f[1]]
		if len(at) == 0 || at[len(at)-1].key != f[2] {
			return fmt.Errorf("acknowledgement without attempt: %q", line)
		}
		at[len(at)-1].acked = true
	case f[0] == "rot" && len(f) == 3:
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return err
		}
		l.rotations[f[1]] = max(l.rotations[f[1]], n)
	case f[0] == "blob" && len(f) == 4:
		var a ack
		var err error
		dec := base64.StdEncoding.DecodeString
		if a.blob, err = dec(f[1]); err != nil {
			return err
		}
		ec, err := dec(f[2])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(ec, &a.ec); err != nil {
			return err
		}
		if a.pt, err = dec(f[3]); err != nil {
			return err
		}
		l.blobs = append(l.blobs, a)
	case f[0] == "ready" && len(f) == 1:
	case f[0] == "error":
		return fmt.Errorf("child failed: %s", line)
	default:
		// Not ours (the test framework's own output).
		t.Logf("child: %s", line)
	}
	return nil
}

// verify checks the keystore against the acknowledgements: blobs from
// index firstBlob on, and everything else in full.
func (l *crashLog) verify(t *testing.T, ks *keystore.Keystore, firstBlob int) {
	t.Helper()
	ctx := t.Context()
	for _, id := range l.keys {
		m, err := ks.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
		if err != nil || m.KeyMetadata.KeyState != "Enabled" {
			t.Fatalf("acknowledged key %s: DescribeKey() = %v, %v", id, m, err)
		}
	}
	for id, n := range l.rotations {
		out, err := ks.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id})
		if err != nil || len(out.Rotations) < n {
			t.Fatalf("key %s: %d rotations acknowledged, ListKeyRotations() = %v, %v", id, n, out, err)
		}
	}
	for i, b := range l.blobs[firstBlob:] {
		out, err := ks.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: b.blob, EncryptionContext: b.ec})
		if err != nil || !bytes.Equal(out.Plaintext, b.pt) {
			t.Fatalf("acknowledged blob %d does not decrypt: %v", firstBlob+i, err)
		}
	}
	for name, attempts := range l.aliases {
		last := -1
		for i, a := range attempts {
			if a.acked {
				last = i
			}
		}
		d, err := ks.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: name})
		if last < 0 {
			// Only attempts: the alias may exist, pointing at one of them.
			if err == nil && !slices.ContainsFunc(attempts, func(a aliasAttempt) bool { return a.key == d.KeyMetadata.KeyId }) {
				t.Fatalf("%s points at %s, which no attempt named", name, d.KeyMetadata.KeyId)
			}
			continue
		}
		if err != nil {
			t.Fatalf("acknowledged alias %s: DescribeKey() err = %v", name, err)
		}
		// The last acknowledged target, or a later attempt that may have
		// committed before its child died.
		ok := false
		for _, a := range attempts[last:] {
			ok = ok || a.key == d.KeyMetadata.KeyId
		}
		if !ok {
			t.Fatalf("alias %s points at %s; the last acknowledged target is %s (attempts %+v)", name, d.KeyMetadata.KeyId, attempts[last].key, attempts[last:])
		}
	}
}

// TestCrashSafety kills a process working on a keystore at random moments
// and checks, each time, that the keystore opens and holds everything the
// process was told had succeeded.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped in -short mode")
	}
	const kills = 24
	dir := t.TempDir()
	// The parent creates the keystore, so that each child opens an
	// existing one (see TestOpenAfterCrashDuringCreation for a crash during
	// creation).
	ks := open(t, dir, keystore.Options{})
	closeKS(t, ks)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	log := &crashLog{rotations: map[string]int{}, aliases: map[string][]aliasAttempt{}}
	killedAfterWork := 0
	start := time.Now()
	for i := range kills {
		delay := time.Duration(20+r.IntN(281)) * time.Millisecond
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				lines <- sc.Text()
			}
			io.Copy(io.Discard, stdout)
		}()
		// Most kills land while the child works: the delay runs from the
		// moment its keystore is open. Every fourth runs from its start,
		// so that some land while it opens (and recovers) the keystore.
		var got []string
		fromStart := i%4 == 3
		if !fromStart {
			ready := time.After(30 * time.Second)
		wait:
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						break wait
					}
					got = append(got, l)
					if l == "ready" {
						break wait
					}
				case <-ready:
					cmd.Process.Kill()
					t.Fatalf("child %d not ready after 30 s; output %q", i, got)
				}
			}
		}
		time.Sleep(delay) // the crash point, not a wait for readiness
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill: %v", err)
		}
		for l := range lines {
			got = append(got, l)
		}
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child %d did not die of SIGKILL (%v); output:\n%s", i, werr, strings.Join(got, "\n"))
		}
		firstBlob := len(log.blobs)
		for _, line := range got {
			if err := log.parse(t, line); err != nil {
				t.Fatalf("child %d: %v", i, err)
			}
		}
		if len(got) > 0 && got[len(got)-1] != "ready" {
			killedAfterWork++
		}

		ks, err := keystore.Open(t.Context(), dir, keystore.Options{})
		if err != nil {
			t.Fatalf("after kill %d (%v into the child, %d lines): keystore.Open() err = %v", i, delay, len(got), err)
		}
		log.verify(t, ks, firstBlob)
		// Re-check a sample of older blobs too.
		for range min(10, firstBlob) {
			j := r.IntN(firstBlob)
			b := log.blobs[j]
			out, err := ks.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: b.blob, EncryptionContext: b.ec})
			if err != nil || !bytes.Equal(out.Plaintext, b.pt) {
				t.Fatalf("after kill %d: blob %d no longer decrypts: %v", i, j, err)
			}
		}
		closeKS(t, ks)
	}

	ks = open(t, dir, keystore.Options{})
	log.verify(t, ks, 0)
	closeKS(t, ks)
	t.Logf("%d kills in %v (%d after the child had acknowledged work): %d keys, %d rotations, %d blobs, %d aliases acknowledged",
		kills, time.Since(start).Round(time.Millisecond), killedAfterWork, len(log.keys), sumValues(log.rotations), len(log.blobs), len(log.aliases))
	if killedAfterWork < kills/4 || len(log.blobs) == 0 || len(log.keys) == 0 {
		t.Errorf("the children did too little work before being killed (%d of %d kills after work) to test anything", killedAfterWork, kills)
	}
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

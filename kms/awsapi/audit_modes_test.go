package awsapi

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// testAuditWriteThrough: in both modes a line is in the file when Write
// returns, for every one of many concurrent writers (who share writes, and
// in sync mode fsyncs): a crash of the process after an answer cannot lose
// its line.
func testAuditWriteThrough(t *testing.T, syncMode bool) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := openTestLog(t, path, syncMode)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				ev := &AuditEvent{Operation: fmt.Sprintf("Op%d-%d", g, i), Result: "Success"}
				if err := a.Write(ev); err != nil {
					t.Error(err)
					return
				}
				if n := countLines(t, path); int64(n) < ev.Seq {
					t.Errorf("line %d not in the file when Write returned (%d lines)", ev.Seq, n)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := countLines(t, path); n != 321 {
		t.Fatalf("%d lines in the file after 320 writes and a start record", n)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Write(&AuditEvent{Operation: "AfterClose"}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	f, _ := os.Open(path)
	defer f.Close()
	if n, err := VerifyAudit(f, testAuditKey); err != nil || n != 321 {
		t.Fatalf("VerifyAudit = %d, %v; want 321 lines", n, err)
	}
}

func TestAuditSyncMode(t *testing.T)    { testAuditWriteThrough(t, true) }
func TestAuditBatchedMode(t *testing.T) { testAuditWriteThrough(t, false) }

// TestUnsyncedLines checks the default mode's buffer of unsynced lines
// against a plain byte slice, through writes and drops across chunks.
func TestUnsyncedLines(t *testing.T) {
	var u unsyncedLines
	var model []byte
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		if rng.IntN(3) > 0 {
			b := bytes.Repeat([]byte{byte(i)}, rng.IntN(3*unsyncedChunk/2))
			u.write(b)
			model = append(model, b...)
		} else {
			n := rng.IntN(len(model) + 1)
			u.drop(n)
			model = model[n:]
		}
		if got := u.appendTo(nil); u.n != len(model) || !bytes.Equal(got, model) {
			t.Fatalf("step %d: holds %d bytes (n %d), want %d", i, len(got), u.n, len(model))
		}
	}
	if len(u.free) > maxUnsynced/unsyncedChunk {
		t.Errorf("%d free chunks kept, want at most %d", len(u.free), maxUnsynced/unsyncedChunk)
	}
}

package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms/keystore"
)

// markedLog is an audit log whose marks the keystore of its directory
// keeps.
type markedLog struct {
	ks   *keystore.Keystore
	key  []byte
	path string
}

func newMarkedLog(t *testing.T) *markedLog {
	t.Helper()
	dir := t.TempDir()
	ks, err := keystore.Open(context.Background(), dir, keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	key, _, err := ks.AuditKey(context.Background(), filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &markedLog{ks: ks, key: key, path: filepath.Join(dir, "audit.log")}
}

func (m *markedLog) open(t *testing.T, syncMode bool) *AuditLog {
	t.Helper()
	a, err := OpenAuditLog(m.path, AuditOptions{Key: m.key, Sync: syncMode, Marks: m.ks})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// write opens the log, writes n events and closes it.
func (m *markedLog) write(t *testing.T, n int) {
	t.Helper()
	a := m.open(t, false)
	appendEvents(t, a, 1, n)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// verify runs VerifyAuditLog over the log's file with the keystore's marks.
func (m *markedLog) verify(t *testing.T, path string) *AuditReport {
	t.Helper()
	marks := marksOf(t, m.ks)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := VerifyAuditLog(f, m.key, marks)
	if err != nil {
		t.Fatalf("VerifyAuditLog: %v", err)
	}
	return rep
}

// cutLines removes the last n lines of the file at path.
func cutLines(t *testing.T, path string, n int) {
	t.Helper()
	lines := readLines(t, path)
	if err := os.WriteFile(path, []byte(strings.Join(lines[:len(lines)-n], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAuditMarkDetectsCutTail reproduces issue 9 item 5: lines cut from
// the end of the log were not detected, and the restarted server reused
// their sequence numbers. The keystore's high-water mark tells how many
// lines were cut; a reopened log continues after the mark and its start
// record says what is missing.
func TestAuditMarkDetectsCutTail(t *testing.T) {
	m := newMarkedLog(t)
	m.write(t, 10) // a start record and 10 events: seq 1 to 11
	if rep := m.verify(t, m.path); len(rep.Problems()) != 0 || rep.Mark == nil || rep.Mark.Seq != 11 || rep.LastSeq != 11 {
		t.Fatalf("the complete log: %+v, problems %q; want its end at the mark, seq 11", rep, rep.Problems())
	}
	cutLines(t, m.path, 3)
	rep := m.verify(t, m.path)
	if rep.Cut != 3 || len(rep.Problems()) != 1 || !strings.Contains(rep.Problems()[0], "at least 3 lines were cut from the end") {
		t.Fatalf("a log with 3 lines cut: %+v, problems %q; want 3 lines cut", rep, rep.Problems())
	}

	// Reopen: the sequence goes on after the mark, and the gap is recorded.
	m.write(t, 1)
	lines := readLines(t, m.path)
	var start struct {
		Seq, PrevSeq, Missing, HighWater int64
		LogID                            string `json:"logId"`
	}
	json.Unmarshal([]byte(lines[8]), &start)
	if start.Seq != 12 || start.PrevSeq != 8 || start.Missing != 3 || start.HighWater != 11 || start.LogID != rep.LogID {
		t.Errorf("the start record after the cut = %s; want seq 12 after seq 8, 3 missing, high water 11, log %s", lines[8], rep.LogID)
	}
	rep = m.verify(t, m.path)
	if rep.Cut != 0 || len(rep.Gaps) != 1 || rep.Gaps[0] != (AuditGap{Line: 9, From: 9, Through: 11}) || len(rep.Problems()) != 1 {
		t.Errorf("the continued log: %+v, problems %q; want the gap of seq 9 to 11 before line 9", rep, rep.Problems())
	}
}

// TestAuditMarkNewFile: a log whose file was removed (or moved away) goes
// on in a new file at the same place: the same log id, after the mark,
// chained from the mark's line. Verified alone, the new file shows the
// earlier lines missing; verified after the old file, the chain is whole.
func TestAuditMarkNewFile(t *testing.T) {
	m := newMarkedLog(t)
	m.write(t, 4)
	old := m.path + ".1"
	if err := os.Rename(m.path, old); err != nil {
		t.Fatal(err)
	}
	m.write(t, 2)
	rep := m.verify(t, m.path)
	if rep.FirstSeq != 6 || rep.ContinuesFrom != 5 || len(rep.Problems()) != 1 || !strings.Contains(rep.Problems()[0], "5 earlier lines are not in it") {
		t.Errorf("the new file alone: %+v, problems %q; want it to begin at seq 6, 5 lines not in it", rep, rep.Problems())
	}
	both := append(bytes.Clone(mustRead(t, old)), mustRead(t, m.path)...)
	joined := filepath.Join(t.TempDir(), "joined.log")
	if err := os.WriteFile(joined, both, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := m.verify(t, joined); len(rep.Problems()) != 0 || rep.Lines != 8 || rep.Starts != 2 {
		t.Errorf("the old and the new file together: %+v, problems %q; want 8 lines, complete", rep, rep.Problems())
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuditMarkRaisedWhileRunning: the mark follows a running log within
// a few AuditSyncIntervals, in both modes, so that a crash leaves at most
// that much of the log's end unprotected.
func TestAuditMarkRaisedWhileRunning(t *testing.T) {
	for _, syncMode := range []bool{false, true} {
		t.Run(map[bool]string{false: "batched", true: "sync"}[syncMode], func(t *testing.T) {
			t.Parallel()
			testAuditMarkRaised(t, syncMode)
		})
	}
}

func testAuditMarkRaised(t *testing.T, syncMode bool) {
	m := newMarkedLog(t)
	a := m.open(t, syncMode)
	defer a.Close()
	appendEvents(t, a, 1, 20) // seq 2 to 21
	deadline := time.Now().Add(5 * AuditSyncInterval)
	for {
		seq, _, err := m.ks.AuditMark(context.Background(), a.id)
		if err != nil {
			t.Fatal(err)
		}
		if seq == 21 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mark is at seq %d %v after the last write, want 21", seq, 5*AuditSyncInterval)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAuditMarkIsTheLogs: a mark is only ever raised; a log whose mark
// another log's lines would lower is not fooled, and the mark's mac must
// be the line's.
func TestAuditMarkIsTheLogs(t *testing.T) {
	m := newMarkedLog(t)
	m.write(t, 3)
	rep := m.verify(t, m.path)
	ctx := context.Background()
	if err := m.ks.RaiseAuditMark(ctx, rep.LogID, "elsewhere", 2, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	if seq, _, _ := m.ks.AuditMark(ctx, rep.LogID); seq != 4 {
		t.Errorf("the mark went down to %d", seq)
	}
	// A line at the mark that is not the one marked (the marks of
	// another keystore, say) is reported.
	marks := marksOf(t, m.ks)
	marks[0].MAC = make([]byte, 32)
	f, _ := os.Open(m.path)
	defer f.Close()
	r, err := VerifyAuditLog(f, m.key, marks)
	if err != nil || !r.MarkMismatch || len(r.Problems()) != 1 {
		t.Errorf("VerifyAuditLog with a wrong mark mac = %+v, %v; want a mismatch", r, err)
	}
}

// TestAuditMarkMissing: a log whose server kept marks, checked against a
// keystore without its mark (another keystore, or marks removed), cannot
// be said complete; a log whose server kept none only gets a note.
func TestAuditMarkMissing(t *testing.T) {
	m := newMarkedLog(t)
	m.write(t, 2)
	check := func(path string, marks []AuditMark) *AuditReport {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rep, err := VerifyAuditLog(f, m.key, marks)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := check(m.path, []AuditMark{}); len(rep.Problems()) != 1 || !strings.Contains(rep.Problems()[0], "no high-water mark") {
		t.Errorf("a marked log against no marks: problems %q, want the missing mark", rep.Problems())
	}
	if rep := check(m.path, nil); len(rep.Problems()) != 0 {
		t.Errorf("a marked log without a keystore: problems %q, want none", rep.Problems())
	}
	unmarked := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAuditLog(unmarked, AuditOptions{Key: m.key})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if rep := check(unmarked, []AuditMark{}); len(rep.Problems()) != 0 || len(rep.Notes()) != 1 || !strings.Contains(rep.Notes()[0], "cannot be detected") {
		t.Errorf("a log kept without marks: problems %q, notes %q; want a note only", rep.Problems(), rep.Notes())
	}
	legacy := []byte{}
	prev := make([]byte, 32)
	for i := 1; i <= 2; i++ {
		line, mac := macLine(m.key, prev, `{"seq":`+string(rune('0'+i))+`,"time":"t","requestId":"r","principal":"p","sourceAddress":"s","operation":"o","result":"Success"`)
		legacy = append(legacy, line+"\n"...)
		prev = mac
	}
	old := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(old, legacy, 0o600)
	if rep := check(old, marksOf(t, m.ks)); len(rep.Problems()) != 0 || rep.Lines != 2 || len(rep.Notes()) != 1 || !strings.Contains(rep.Notes()[0], "no start record") {
		t.Errorf("a log of a server before start records: %+v, problems %q, notes %q", rep, rep.Problems(), rep.Notes())
	}
}

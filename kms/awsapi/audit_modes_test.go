package awsapi

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// TestAuditSyncMode: in sync mode a line is in the file when Write returns,
// for every one of many concurrent writers (who share fsyncs).
func TestAuditSyncMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAuditLog(path, testAuditKey, true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if err := a.Write(&AuditEvent{Operation: fmt.Sprintf("Op%d-%d", g, i), Result: "Success"}); err != nil {
					t.Error(err)
					return
				}
				if n := countLines(t, path); n < 1 {
					t.Errorf("line not in the file when Write returned")
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := countLines(t, path); n != 320 {
		t.Fatalf("%d lines on disk after 320 synced writes", n)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	if n, err := VerifyAudit(f, testAuditKey); err != nil || n != 320 {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
}

// TestAuditBatchedMode: by default Write returns at once and lines reach
// the file within the flush interval; Close writes what is pending.
func TestAuditBatchedMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAuditLog(path, testAuditKey, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := a.Write(&AuditEvent{Operation: fmt.Sprint("Op", i), Result: "Success"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for countLines(t, path) < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("lines not written within 5 s (flush interval %v)", AuditFlushInterval)
		}
		time.Sleep(AuditFlushInterval)
	}
	a.Write(&AuditEvent{Operation: "Last", Result: "Success"})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Write(&AuditEvent{Operation: "AfterClose"}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	f, _ := os.Open(path)
	defer f.Close()
	if n, err := VerifyAudit(f, testAuditKey); err != nil || n != 101 {
		t.Fatalf("VerifyAudit = %d, %v; want 101 lines", n, err)
	}
}

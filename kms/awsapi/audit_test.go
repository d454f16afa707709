package awsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var testAuditKey = bytes.Repeat([]byte{0x42}, 32)

// writeAuditLog writes a new log of a start record and n events (lines 2
// to n+1) and returns its path.
func writeAuditLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := openTestLog(t, path, true)
	if err != nil {
		t.Fatalf("OpenAuditLog err = %v", err)
	}
	appendEvents(t, a, 1, n)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// appendEvents writes events first..last (distinguished by their
// principal, "p<i>"), checking that each takes the next seq.
func appendEvents(t *testing.T, a *AuditLog, first, last int) {
	t.Helper()
	var prev int64
	for i := first; i <= last; i++ {
		ev := &AuditEvent{Time: "2026-03-01T12:00:00Z", RequestID: fmt.Sprintf("req-%d", i), Principal: fmt.Sprintf("p%d", i),
			SourceAddress: "127.0.0.1", Operation: "Encrypt", KeyARN: "arn:aws:kms:us-east-1:111122223333:key/k",
			EncryptionContextKeys: []string{"tenant"}, Result: "Success"}
		if err := a.Write(ev); err != nil {
			t.Fatalf("Write event %d err = %v", i, err)
		}
		if prev != 0 && ev.Seq != prev+1 {
			t.Fatalf("event %d got seq %d after %d", i, ev.Seq, prev)
		}
		prev = ev.Seq
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("audit log %q does not end with a newline", b)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func verifyLines(lines []string, key []byte) (int, error) {
	return VerifyAudit(strings.NewReader(strings.Join(lines, "\n")+"\n"), key)
}

func TestAuditLogLines(t *testing.T) {
	path := writeAuditLog(t, 5)
	lines := readLines(t, path)
	if len(lines) != 6 {
		t.Fatalf("%d lines, want a start record and 5 events", len(lines))
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d %q is not JSON: %v", i+1, line, err)
		}
		if i == 0 {
			host, _ := os.Hostname()
			if m["seq"] != float64(1) || m["type"] != "start" || len(m["logId"].(string)) != 32 || m["host"] != host ||
				m["pid"] != float64(os.Getpid()) || m["mode"] != "sync" || m["prevSeq"] != float64(0) ||
				m["prevMac"] != strings.Repeat("0", 64) || m["missing"] != float64(0) {
				t.Errorf("start record = %s", line)
			}
			if _, ok := m["highWater"]; ok {
				t.Errorf("start record of a log without marks has a highWater: %s", line)
			}
		} else if m["seq"] != float64(i+1) || m["principal"] != fmt.Sprintf("p%d", i) || m["result"] != "Success" || m["type"] != nil {
			t.Errorf("line %d = %s", i+1, line)
		}
		mac, _ := m["mac"].(string)
		if len(mac) != 64 || !strings.HasSuffix(line, `,"mac":"`+mac+`"}`) {
			t.Errorf("line %d does not end with its 64-hex-digit mac: %s", i+1, line)
		}
	}
	n, err := VerifyAudit(strings.NewReader(strings.Join(lines, "\n")+"\n"), testAuditKey)
	if n != 6 || err != nil {
		t.Errorf("VerifyAudit = %d, %v; want 6, nil", n, err)
	}
	if n, err := VerifyAudit(strings.NewReader(""), testAuditKey); n != 0 || err != nil {
		t.Errorf("VerifyAudit(empty) = %d, %v; want 0, nil", n, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
}

func TestAuditTamper(t *testing.T) {
	// Line 1 is the start record; event i (principal p<i>) is line i+1.
	lines := readLines(t, writeAuditLog(t, 6))
	for _, tc := range []struct {
		name string
		edit func([]string) []string
		line int
	}{
		{"edit a value", func(l []string) []string {
			l[3] = strings.Replace(l[3], `"principal":"p3"`, `"principal":"p9"`, 1)
			return l
		}, 4},
		{"edit the result", func(l []string) []string {
			l[4] = strings.Replace(l[4], `"result":"Success"`, `"result":"Successful"`, 1)
			return l
		}, 5},
		{"edit the start record", func(l []string) []string {
			l[0] = strings.Replace(l[0], `"mode":"sync"`, `"mode":"batched"`, 1)
			return l
		}, 1},
		{"edit the start record's chain origin", func(l []string) []string {
			l[0] = strings.Replace(l[0], `"prevMac":"00`, `"prevMac":"01`, 1)
			return l
		}, 1},
		{"edit the first event", func(l []string) []string {
			l[1] = strings.Replace(l[1], `"operation":"Encrypt"`, `"operation":"Decrypt"`, 1)
			return l
		}, 2},
		{"edit the last line", func(l []string) []string {
			l[6] = strings.Replace(l[6], `"sourceAddress":"127.0.0.1"`, `"sourceAddress":"127.0.0.2"`, 1)
			return l
		}, 7},
		{"edit the mac", func(l []string) []string {
			i := strings.LastIndex(l[2], `"mac":"`) + len(`"mac":"`)
			c := byte('0')
			if l[2][i] == '0' {
				c = '1'
			}
			l[2] = l[2][:i] + string(c) + l[2][i+1:]
			return l
		}, 3},
		{"drop the mac", func(l []string) []string {
			l[3] = l[3][:strings.LastIndex(l[3], `,"mac":"`)] + "}"
			return l
		}, 4},
		{"cut a line short", func(l []string) []string {
			l[5] = l[5][:len(l[5])/2]
			return l
		}, 6},
		{"delete a line", func(l []string) []string {
			return append(l[:3:3], l[4:]...)
		}, 4},
		{"delete the start record", func(l []string) []string {
			return l[1:]
		}, 1},
		{"delete the first two lines", func(l []string) []string {
			return l[2:]
		}, 1},
		{"insert a copy of a line", func(l []string) []string {
			return append(append(l[:4:4], l[2]), l[4:]...)
		}, 5},
		{"insert a copy of the start record", func(l []string) []string {
			return append(append(l[:4:4], l[0]), l[4:]...)
		}, 5},
		{"insert a forged line", func(l []string) []string {
			forged := `{"seq":4,"time":"2026-03-01T12:00:00Z","requestId":"x","principal":"p","sourceAddress":"1.2.3.4","operation":"Decrypt","result":"Success","mac":"` + strings.Repeat("ab", 32) + `"}`
			return append(append(l[:3:3], forged), l[3:]...)
		}, 4},
		{"swap two lines", func(l []string) []string {
			l[2], l[3] = l[3], l[2]
			return l
		}, 3},
		{"swap the last two lines", func(l []string) []string {
			l[5], l[6] = l[6], l[5]
			return l
		}, 6},
		{"append garbage", func(l []string) []string {
			return append(l, "garbage")
		}, 8},
		{"empty line inserted", func(l []string) []string {
			return append(append(l[:4:4], ""), l[4:]...)
		}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := tc.edit(append([]string(nil), lines...))
			_, err := verifyLines(edited, testAuditKey)
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("VerifyAudit err = %v, want a *ChainError at line %d", err, tc.line)
			}
			if ce.Line != tc.line {
				t.Errorf("VerifyAudit names line %d (%v), want line %d", ce.Line, ce, tc.line)
			}
			if !strings.HasPrefix(ce.Error(), fmt.Sprintf("line %d: ", tc.line)) {
				t.Errorf("ChainError text %q does not start with the line number", ce.Error())
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		_, err := verifyLines(lines, bytes.Repeat([]byte{0x43}, 32))
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Line != 1 {
			t.Errorf("VerifyAudit with another key err = %v, want a *ChainError at line 1", err)
		}
	})
	t.Run("the last newline cut", func(t *testing.T) {
		_, err := VerifyAudit(strings.NewReader(strings.Join(lines, "\n")), testAuditKey)
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Line != 7 || !strings.Contains(ce.Reason, "incomplete") {
			t.Errorf("VerifyAudit of a log without its last newline err = %v, want line 7 incomplete", err)
		}
	})
	t.Run("lines cut from the end", func(t *testing.T) {
		// The chain alone cannot tell a log that ends early from a
		// complete one: the keystore's high-water mark can
		// (TestAuditMarkDetectsCutTail).
		if n, err := verifyLines(lines[:4], testAuditKey); n != 4 || err != nil {
			t.Errorf("VerifyAudit of the first 4 lines = %d, %v; want 4, nil", n, err)
		}
	})
}

func TestAuditReopenContinuesChain(t *testing.T) {
	path := writeAuditLog(t, 3)
	for range 2 {
		a, err := openTestLog(t, path, true)
		if err != nil {
			t.Fatalf("reopening: %v", err)
		}
		appendEvents(t, a, 1, 2)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	lines := readLines(t, path)
	if n, err := verifyLines(lines, testAuditKey); n != 10 || err != nil {
		t.Fatalf("VerifyAudit after two reopens = %d, %v; want 10 (3 start records, 7 events), nil", n, err)
	}
	var id string
	for i, line := range lines {
		if !strings.HasPrefix(line, fmt.Sprintf(`{"seq":%d,`, i+1)) {
			t.Errorf("line %d: %s", i+1, line)
		}
		if i == 0 || i == 4 || i == 7 {
			var rec struct {
				Type    string `json:"type"`
				LogID   string `json:"logId"`
				PrevSeq int64  `json:"prevSeq"`
			}
			json.Unmarshal([]byte(line), &rec)
			if id == "" {
				id = rec.LogID
			}
			if rec.Type != "start" || rec.LogID != id || rec.PrevSeq != int64(i) {
				t.Errorf("line %d = %s; want a start record of log %s after seq %d", i+1, line, id, i)
			}
		}
	}
}

// TestAuditOneWriter: a log open in one AuditLog cannot be opened by
// another (another server), whose lines would break the chain.
func TestAuditOneWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := openTestLog(t, path, false)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := openTestLog(t, path, false); err == nil || !strings.Contains(err.Error(), "in use") {
		if err == nil {
			b.Close()
		}
		t.Errorf("opening a log that is open err = %v, want in use", err)
	}
	a.Close()
	b, err := openTestLog(t, path, false)
	if err != nil {
		t.Fatalf("opening the log once closed: %v", err)
	}
	b.Close()
}

func TestAuditReopenDamaged(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"last line not JSON", func(b []byte) []byte {
			return append(b, []byte(`not json,"mac":"`+strings.Repeat("00", 32)+`"}`+"\n")...)
		}},
		{"last line without its mac", func(b []byte) []byte {
			return append(b, []byte(`{"seq":4,"time":"x"}`+"\n")...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeAuditLog(t, 2)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.edit(b), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := openTestLog(t, path, true)
			if err == nil {
				a.Close()
				t.Fatalf("OpenAuditLog of a log whose %s err = nil, want an error", tc.name)
			}
			if !strings.Contains(err.Error(), "damaged") {
				t.Errorf("OpenAuditLog err = %v, want the last line damaged", err)
			}
		})
	}
}

func TestAuditLongLog(t *testing.T) {
	// More than the 64 KiB OpenAuditLog reads back at a time.
	path := writeAuditLog(t, 1200)
	a, err := openTestLog(t, path, true)
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, a, 1201, 1201)
	a.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := VerifyAudit(f, testAuditKey); n != 1203 || err != nil {
		t.Errorf("VerifyAudit = %d, %v; want 1203, nil", n, err)
	}
}

func TestAuditConcurrentWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := openTestLog(t, path, true)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := a.Write(&AuditEvent{RequestID: fmt.Sprintf("%d-%d", w, i), Operation: "Decrypt", Result: "Success"}); err != nil {
					t.Errorf("Write err = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := verifyLines(readLines(t, path), testAuditKey); n != 1+writers*each || err != nil {
		t.Errorf("VerifyAudit = %d, %v; want %d, nil", n, err, 1+writers*each)
	}
}

// openTestLog opens the audit log at path with testAuditKey and no marks.
func openTestLog(t *testing.T, path string, sync bool) (*AuditLog, error) {
	t.Helper()
	return OpenAuditLog(path, AuditOptions{Key: testAuditKey, Sync: sync})
}

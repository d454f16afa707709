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

// writeAuditLog writes n events to a new log and returns its path.
func writeAuditLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAuditLog(path, testAuditKey, true)
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
// principal, "p<i>").
func appendEvents(t *testing.T, a *AuditLog, first, last int) {
	t.Helper()
	for i := first; i <= last; i++ {
		ev := &AuditEvent{Time: "2026-03-01T12:00:00Z", RequestID: fmt.Sprintf("req-%d", i), Principal: fmt.Sprintf("p%d", i),
			SourceAddress: "127.0.0.1", Operation: "Encrypt", KeyARN: "arn:aws:kms:us-east-1:111122223333:key/k",
			EncryptionContextKeys: []string{"tenant"}, Result: "Success"}
		if err := a.Write(ev); err != nil {
			t.Fatalf("Write event %d err = %v", i, err)
		}
		if ev.Seq != int64(i) {
			t.Fatalf("event %d got seq %d", i, ev.Seq)
		}
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
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5", len(lines))
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d %q is not JSON: %v", i+1, line, err)
		}
		if m["seq"] != float64(i+1) || m["principal"] != fmt.Sprintf("p%d", i+1) || m["result"] != "Success" {
			t.Errorf("line %d = %s", i+1, line)
		}
		mac, _ := m["mac"].(string)
		if len(mac) != 64 || !strings.HasSuffix(line, `,"mac":"`+mac+`"}`) {
			t.Errorf("line %d does not end with its 64-hex-digit mac: %s", i+1, line)
		}
	}
	n, err := VerifyAudit(strings.NewReader(strings.Join(lines, "\n")+"\n"), testAuditKey)
	if n != 5 || err != nil {
		t.Errorf("VerifyAudit = %d, %v; want 5, nil", n, err)
	}
	if n, err := VerifyAudit(strings.NewReader(""), testAuditKey); n != 0 || err != nil {
		t.Errorf("VerifyAudit(empty) = %d, %v; want 0, nil", n, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
}

func TestAuditTamper(t *testing.T) {
	lines := readLines(t, writeAuditLog(t, 6))
	for _, tc := range []struct {
		name string
		edit func([]string) []string
		line int
	}{
		{"edit a value", func(l []string) []string {
			l[2] = strings.Replace(l[2], `"principal":"p3"`, `"principal":"p9"`, 1)
			return l
		}, 3},
		{"edit the result", func(l []string) []string {
			l[3] = strings.Replace(l[3], `"result":"Success"`, `"result":"Successful"`, 1)
			return l
		}, 4},
		{"edit the first line", func(l []string) []string {
			l[0] = strings.Replace(l[0], `"operation":"Encrypt"`, `"operation":"Decrypt"`, 1)
			return l
		}, 1},
		{"edit the last line", func(l []string) []string {
			l[5] = strings.Replace(l[5], `"sourceAddress":"127.0.0.1"`, `"sourceAddress":"127.0.0.2"`, 1)
			return l
		}, 6},
		{"edit the mac", func(l []string) []string {
			i := strings.LastIndex(l[1], `"mac":"`) + len(`"mac":"`)
			c := byte('0')
			if l[1][i] == '0' {
				c = '1'
			}
			l[1] = l[1][:i] + string(c) + l[1][i+1:]
			return l
		}, 2},
		{"drop the mac", func(l []string) []string {
			l[2] = l[2][:strings.LastIndex(l[2], `,"mac":"`)] + "}"
			return l
		}, 3},
		{"cut a line short", func(l []string) []string {
			l[4] = l[4][:len(l[4])/2]
			return l
		}, 5},
		{"delete a line", func(l []string) []string {
			return append(l[:2:2], l[3:]...)
		}, 3},
		{"delete the first line", func(l []string) []string {
			return l[1:]
		}, 1},
		{"insert a copy of a line", func(l []string) []string {
			return append(append(l[:3:3], l[1]), l[3:]...)
		}, 4},
		{"insert a forged line", func(l []string) []string {
			forged := `{"seq":3,"time":"2026-03-01T12:00:00Z","requestId":"x","principal":"p","sourceAddress":"1.2.3.4","operation":"Decrypt","result":"Success","mac":"` + strings.Repeat("ab", 32) + `"}`
			return append(append(l[:2:2], forged), l[2:]...)
		}, 3},
		{"swap two lines", func(l []string) []string {
			l[1], l[2] = l[2], l[1]
			return l
		}, 2},
		{"swap the last two lines", func(l []string) []string {
			l[4], l[5] = l[5], l[4]
			return l
		}, 5},
		{"append garbage", func(l []string) []string {
			return append(l, "garbage")
		}, 7},
		{"empty line inserted", func(l []string) []string {
			return append(append(l[:3:3], ""), l[3:]...)
		}, 4},
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
	t.Run("lines cut from the end", func(t *testing.T) {
		// Documented limit: the chain alone cannot tell a log that ends
		// early from a complete one.
		if n, err := verifyLines(lines[:4], testAuditKey); n != 4 || err != nil {
			t.Errorf("VerifyAudit of the first 4 lines = %d, %v; want 4, nil", n, err)
		}
	})
}

func TestAuditReopenContinuesChain(t *testing.T) {
	path := writeAuditLog(t, 3)
	for round := range 2 {
		a, err := OpenAuditLog(path, testAuditKey, true)
		if err != nil {
			t.Fatalf("reopening: %v", err)
		}
		first := 4 + 2*round
		appendEvents(t, a, first, first+1)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	lines := readLines(t, path)
	if n, err := verifyLines(lines, testAuditKey); n != 7 || err != nil {
		t.Fatalf("VerifyAudit after two reopens = %d, %v; want 7, nil", n, err)
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, fmt.Sprintf(`{"seq":%d,`, i+1)) {
			t.Errorf("line %d: %s", i+1, line)
		}
	}
}

func TestAuditReopenDamaged(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"last line cut short", func(b []byte) []byte { return b[:len(b)-10] }},
		{"last line not JSON", func(b []byte) []byte {
			return append(b, []byte(`not json,"mac":"`+strings.Repeat("00", 32)+`"}`+"\n")...)
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
			if a, err := OpenAuditLog(path, testAuditKey, true); err == nil {
				a.Close()
				t.Fatalf("OpenAuditLog of a log whose %s err = nil, want an error", tc.name)
			}
		})
	}
}

func TestAuditLongLog(t *testing.T) {
	// More than the 64 KiB OpenAuditLog reads back at a time.
	path := writeAuditLog(t, 1200)
	a, err := OpenAuditLog(path, testAuditKey, true)
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
	if n, err := VerifyAudit(f, testAuditKey); n != 1201 || err != nil {
		t.Errorf("VerifyAudit = %d, %v; want 1201, nil", n, err)
	}
}

func TestAuditConcurrentWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAuditLog(path, testAuditKey, true)
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
	if n, err := verifyLines(readLines(t, path), testAuditKey); n != writers*each || err != nil {
		t.Errorf("VerifyAudit = %d, %v; want %d, nil", n, err, writers*each)
	}
}

func TestAuditKeyFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.key")
	k1, err := LoadOrCreateAuditKey(file)
	if err != nil || len(k1) != 32 {
		t.Fatalf("LoadOrCreateAuditKey = %d bytes, %v; want 32, nil", len(k1), err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit key mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	k2, err := LoadOrCreateAuditKey(file)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Errorf("second LoadOrCreateAuditKey = %x, %v; want the first key", k2, err)
	}
	if bytes.Equal(k1, make([]byte, 32)) {
		t.Errorf("the audit key is all zeros")
	}
	short := filepath.Join(t.TempDir(), "audit.key")
	os.WriteFile(short, []byte("short"), 0o600)
	if _, err := LoadOrCreateAuditKey(short); err == nil {
		t.Errorf("LoadOrCreateAuditKey of a 5-byte file err = nil, want an error")
	}
}

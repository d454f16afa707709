package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi/internal/httpserver"
	"github.com/envelopekms/envelope/kms/keystore"
)

// faultyFile is the real log file, whose writes or syncs fail on demand
// as a full disk or a failing device makes them fail: a write that fails
// writes half of its bytes first.
type faultyFile struct {
	*os.File
	mu        sync.Mutex
	failWrite error
	failSync  error
	syncs     int
}

func (f *faultyFile) set(write, sync error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failWrite, f.failSync = write, sync
}

func (f *faultyFile) WriteAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	err := f.failWrite
	f.mu.Unlock()
	if err != nil {
		n, _ := f.File.WriteAt(b[:len(b)/2], off)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.File.WriteAt(b, off)
}

func (f *faultyFile) Sync() error {
	f.mu.Lock()
	err := f.failSync
	if err == nil {
		f.syncs++
	}
	f.mu.Unlock()
	if err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

// faultyServer is a Server over a real keystore whose audit log's file is
// a faultyFile.
type faultyServer struct {
	ks    *keystore.Keystore
	srv   *Server
	audit *AuditLog
	file  *faultyFile
	path  string
	key   []byte
}

func newFaultyServer(t *testing.T, syncMode bool, failWrite error) *faultyServer {
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
	fs := &faultyServer{ks: ks, path: filepath.Join(dir, "audit.log"), key: key}
	fs.audit, err = OpenAuditLog(fs.path, AuditOptions{Key: key, Sync: syncMode, Marks: ks, wrap: func(f *os.File) auditFile {
		fs.file = &faultyFile{File: f, failWrite: failWrite}
		return fs.file
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.audit.Close() })
	fs.srv, err = New(Config{Backend: ks, Region: ks.Region(), Root: RootCredentials{AccessKeyID: testRootID, SecretAccessKey: testRootSecret}, Audit: fs.audit})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// call runs a request signed as root through the core request path.
func (fs *faultyServer) call(t *testing.T, x *exchange, op, body string) {
	t.Helper()
	r := httptestRequest(op, body)
	signHTTP(t, r, []byte(body), signOpts{})
	x.req = kmsRequest{header: x.req.header[:0], ctx: context.Background(), method: "POST", path: "/", rawPath: "/", host: r.Host,
		contentLength: int64(len(body)), source: "127.0.0.1", body: []byte(body)}
	for name, vs := range r.Header {
		for _, v := range vs {
			x.req.header = append(x.req.header, httpserver.Field{Name: name, Value: v})
		}
	}
	fs.srv.handle(x)
}

func httptestRequest(op, body string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8500/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService."+op)
	return r
}

// waitHealthy polls until the log's health is want.
func waitHealthy(t *testing.T, a *AuditLog, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for (a.Err() == nil) != want {
		if time.Now().After(deadline) {
			t.Fatalf("the audit log is not healthy=%v within 10 s (Err = %v)", want, a.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAuditFailsClosed reproduces issue 9 item 4 with an injected failing
// file: a write or sync of the audit log fails (ENOSPC, EIO). The request
// whose line it was is answered KMSInternalException, its computed answer
// (a data key) wiped; every request after is refused before it runs;
// /healthz answers 503 and the metrics say so. Once the file works again
// the log recovers by itself: the pending lines are written, a resume
// record says what happened, and the whole log verifies.
func TestAuditFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sync      bool
		failWrite bool // else fail the sync
	}{
		{"sync/write fails", true, true},
		{"sync/fsync fails", true, false},
		{"batched/write fails", false, true},
		{"batched/fsync fails", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFaultyServer(t, tc.sync, nil)
			ck, err := fs.ks.CreateKey(context.Background(), &kms.CreateKeyInput{})
			if err != nil {
				t.Fatal(err)
			}
			gdk := fmt.Sprintf(`{"KeyId":%q,"NumberOfBytes":32}`, ck.KeyMetadata.KeyId)
			var x exchange
			fs.call(t, &x, "GenerateDataKey", gdk)
			if x.resp.status != http.StatusOK {
				t.Fatalf("GenerateDataKey = %d %s", x.resp.status, x.resp.body)
			}
			cause := syscall.ENOSPC
			if !tc.failWrite {
				cause = syscall.EIO
			}
			var failedID string
			if tc.failWrite || tc.sync {
				if tc.failWrite {
					fs.file.set(cause, nil)
				} else {
					fs.file.set(nil, cause)
				}
				// The request whose line cannot be written is refused,
				// and what it computed is gone from its buffer.
				fs.call(t, &x, "GenerateDataKey", gdk)
				if x.resp.status != http.StatusInternalServerError || x.resp.errorType != kms.CodeInternal {
					t.Errorf("GenerateDataKey with the audit log failing = %d %s, want 500 %s", x.resp.status, x.resp.body, kms.CodeInternal)
				}
				if bytes.Contains(x.resp.body[:cap(x.resp.body)], []byte("Plaintext")) {
					t.Errorf("the refused answer's buffer still holds the data key: %q", x.resp.body[:cap(x.resp.body)])
				}
				failedID = x.resp.requestID
			} else {
				// The default mode's answers wait for the write, not the
				// sync: the periodic sync fails, and from then on
				// requests are refused.
				fs.file.set(nil, cause)
				fs.call(t, &x, "GenerateDataKey", gdk)
				if x.resp.status != http.StatusOK {
					t.Fatalf("GenerateDataKey before the periodic sync = %d %s", x.resp.status, x.resp.body)
				}
				waitHealthy(t, fs.audit, false)
			}
			if fs.audit.Err() == nil || !strings.Contains(fs.audit.Err().Error(), cause.Error()) {
				t.Errorf("Err() = %v, want the failure (%v)", fs.audit.Err(), cause)
			}
			// Every request is refused before it runs, while it fails.
			for _, op := range []struct{ name, body string }{{"ListKeys", `{}`}, {"CreateKey", `{}`}, {"GenerateDataKey", gdk}} {
				fs.call(t, &x, op.name, op.body)
				if x.resp.status != http.StatusInternalServerError || x.resp.errorType != kms.CodeInternal || !bytes.Contains(x.resp.body, []byte("audit log")) {
					t.Errorf("%s while the audit log fails = %d %s, want 500 %s about the audit log", op.name, x.resp.status, x.resp.body, kms.CodeInternal)
				}
			}
			if keys, _ := fs.ks.ListKeys(context.Background(), &kms.ListKeysInput{}); len(keys.Keys) != 1 {
				t.Errorf("%d keys: a refused CreateKey ran", len(keys.Keys))
			}
			status, text := checkHealthz(t, fs.srv)
			if status != http.StatusServiceUnavailable || !strings.Contains(text, "audit log") || !strings.Contains(text, cause.Error()) {
				t.Errorf("/healthz = %d %q, want 503 naming the audit log's failure", status, text)
			}
			if v := metricValue(t, fs.srv, "envelope_audit_healthy"); v != 0 {
				t.Errorf("envelope_audit_healthy = %v, want 0", v)
			}
			if v := metricValue(t, fs.srv, "envelope_audit_write_failures_total"); v < 1 {
				t.Errorf("envelope_audit_write_failures_total = %v, want at least 1", v)
			}
			if v := metricValue(t, fs.srv, "envelope_audit_refused_total"); v != 3 {
				t.Errorf("envelope_audit_refused_total = %v, want 3", v)
			}

			// The file works again: the log recovers by itself.
			fs.file.set(nil, nil)
			waitHealthy(t, fs.audit, true)
			fs.call(t, &x, "GenerateDataKey", gdk)
			if x.resp.status != http.StatusOK {
				t.Errorf("GenerateDataKey after recovery = %d %s", x.resp.status, x.resp.body)
			}
			if status, text := checkHealthz(t, fs.srv); status != http.StatusOK {
				t.Errorf("/healthz after recovery = %d %q", status, text)
			}
			if v := metricValue(t, fs.srv, "envelope_audit_healthy"); v != 1 {
				t.Errorf("envelope_audit_healthy after recovery = %v, want 1", v)
			}
			if err := fs.audit.Close(); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(fs.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rep, err := VerifyAuditLog(f, fs.key, marksOf(t, fs.ks))
			if err != nil || len(rep.Problems()) > 0 || rep.Resumes != 1 {
				t.Fatalf("VerifyAuditLog = %+v, %v (problems %q); want a complete log with one resume record", rep, err, rep.Problems())
			}
			var resume struct {
				Error    string `json:"error"`
				Refused  int    `json:"refused"`
				Withheld *struct {
					From, Through int64
				} `json:"withheld"`
			}
			var failedSeq int64
			for _, line := range readLines(t, fs.path) {
				if strings.Contains(line, `"type":"resume"`) {
					json.Unmarshal([]byte(line), &resume)
				}
				if failedID != "" && strings.Contains(line, failedID) {
					var ev AuditEvent
					json.Unmarshal([]byte(line), &ev)
					failedSeq = ev.Seq
				}
			}
			if !strings.Contains(resume.Error, cause.Error()) || resume.Refused != 3 {
				t.Errorf("resume record error %q, refused %d; want the cause and 3 refused", resume.Error, resume.Refused)
			}
			if failedID != "" {
				// The refused request ran: its line is kept, written late,
				// and the resume record says its answer was withheld.
				if failedSeq == 0 || resume.Withheld == nil || failedSeq < resume.Withheld.From || failedSeq > resume.Withheld.Through {
					t.Errorf("the refused request's line (seq %d) is not in the resume record's withheld range %+v", failedSeq, resume.Withheld)
				}
			}
		})
	}
}

// marksOf returns the keystore's audit marks.
func marksOf(t *testing.T, ks *keystore.Keystore) []AuditMark {
	t.Helper()
	ms, err := ks.AuditMarks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var marks []AuditMark
	for _, m := range ms {
		marks = append(marks, AuditMark{LogID: m.ID, Seq: m.Seq, MAC: m.MAC})
	}
	return marks
}

// TestAuditOpensOnAFullDisk: a log that cannot be written when the server
// starts (its start record) opens unhealthy rather than failing, refuses
// requests, and recovers when it can be written.
func TestAuditOpensOnAFullDisk(t *testing.T) {
	fs := newFaultyServer(t, false, syscall.ENOSPC)
	if fs.audit.Err() == nil {
		t.Fatal("the log opened healthy though its start record could not be written")
	}
	var x exchange
	fs.call(t, &x, "ListKeys", `{}`)
	if x.resp.errorType != kms.CodeInternal {
		t.Errorf("ListKeys = %d %s, want %s", x.resp.status, x.resp.body, kms.CodeInternal)
	}
	fs.file.set(nil, nil)
	waitHealthy(t, fs.audit, true)
	fs.call(t, &x, "ListKeys", `{}`)
	if x.resp.status != http.StatusOK {
		t.Errorf("ListKeys after recovery = %d %s", x.resp.status, x.resp.body)
	}
	if err := fs.audit.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, fs.path)
	if len(lines) != 3 || !strings.Contains(lines[0], `"type":"start"`) || !strings.Contains(lines[1], `"type":"resume"`) {
		t.Errorf("log = %q, want the start record, the resume record and the ListKeys", lines)
	}
	if _, err := verifyLines(lines, fs.key); err != nil {
		t.Error(err)
	}
}

// TestAuditCloseWhileFailing: closing a log that still cannot be written
// says how many lines are lost.
func TestAuditCloseWhileFailing(t *testing.T) {
	fs := newFaultyServer(t, true, nil)
	fs.file.set(syscall.ENOSPC, nil)
	if err := fs.audit.Write(&AuditEvent{Operation: "X", Result: "Success"}); err == nil {
		t.Fatal("Write on a full disk succeeded")
	}
	err := fs.audit.Close()
	if err == nil || !strings.Contains(err.Error(), "1 lines were not written to disk") || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Close = %v, want ENOSPC and 1 line lost", err)
	}
}

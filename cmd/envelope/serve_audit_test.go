package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestServeAudit runs "envelope serve" as a process against what issue 9
// found in its audit log: a full disk, SIGKILLs under load, lines cut from
// the end, and the audit key lying unsealed beside the log.
func TestServeAudit(t *testing.T) {
	bin := buildEnvelope(t)
	for _, mode := range []string{"batched", "sync"} {
		t.Run("DiskFull/"+mode, func(t *testing.T) { testServeAuditDiskFull(t, bin, mode == "sync") })
	}
	for _, mode := range []string{"batched", "sync"} {
		t.Run("KillLossWindow/"+mode, func(t *testing.T) { testServeAuditKills(t, bin, mode == "sync") })
	}
	t.Run("CutTail", func(t *testing.T) { testServeAuditCutTail(t, bin) })
	t.Run("TornTail", func(t *testing.T) { testServeAuditTornTail(t, bin) })
	t.Run("LegacyKeyFile", func(t *testing.T) { testServeAuditLegacyKey(t, bin) })
}

// launch starts "envelope serve --addr addr args..." with ENVELOPE_HOME=home
// and waits until /healthz answers. With wrap, the command line is given
// to wrap's command as its last arguments. The caller stops the process.
func launch(t *testing.T, bin, home, addr string, wrap []string, args ...string) (*serveProc, error) {
	t.Helper()
	p := &serveProc{t: t, home: home, addr: addr, url: "http://" + addr, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	argv := append([]string{bin, "serve", "--addr", addr}, args...)
	argv = append(slices.Clone(wrap), argv...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = serveEnviron(home, true)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	if err := p.waitReady(30 * time.Second); err != nil {
		p.kill()
		return nil, fmt.Errorf("%v; output:\n%s", err, p.stderr.String())
	}
	return p, nil
}

// mustLaunch is launch that fails the test on error and stops the server
// (if still running) when the test ends.
func mustLaunch(t *testing.T, bin, home, addr string, wrap []string, args ...string) *serveProc {
	t.Helper()
	p, err := launch(t, bin, home, addr, wrap, args...)
	if err != nil {
		t.Fatalf("envelope serve %s: %v", strings.Join(args, " "), err)
	}
	t.Cleanup(func() { p.kill() })
	return p
}

// auditVerify runs "envelope audit verify args..." with ENVELOPE_HOME=home.
func auditVerify(t *testing.T, bin, home string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"audit", "verify"}, args...)...)
	cmd.Env = serveEnviron(home, false)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Run()
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// auditRecords decodes every line of an audit log.
func auditRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s line %d %q: %v", path, i+1, line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// gdkRequest returns a signed GenerateDataKey request for key.
func gdkRequest(t *testing.T, url, key string) *http.Request {
	body := []byte(`{"KeyId":"` + key + `","NumberOfBytes":32}`)
	r, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService.GenerateDataKey")
	signer(t, body, serveRoot, serveRegion, "kms", time.Now())(r)
	return r
}

// getText GETs url and returns the status and body.
func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of an unlabelled metric from a /metrics text,
// or -1.
func metric(text, name string) float64 {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// childPid returns the pid of pid's only child, polling until it has one.
func childPid(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err == nil {
			if f := strings.Fields(string(b)); len(f) == 1 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d has no child: %q, %v", pid, b, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tmpfsMagic is the f_type of a tmpfs file system (linux/magic.h).
const tmpfsMagic = 0x01021994

// testServeAuditDiskFull reproduces issue 9 item 4: with the audit log's
// disk full the server went on answering. The log is on a 256 KiB tmpfs,
// mounted in a mount namespace of the server's own (never a real file
// system), which the test fills through /proc/PID/root: requests must fail
// with KMSInternalException and /healthz say why; once space is freed the
// server recovers by itself, and the whole log verifies.
func testServeAuditDiskFull(t *testing.T, bin string, syncMode bool) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs in a private mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	home := t.TempDir()
	dir := filepath.Join(t.TempDir(), "auditfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "audit.log")
	// sh mounts the tmpfs, runs the server, then copies the log out of
	// the tmpfs (which goes with the namespace) and exits with the
	// server's status.
	script := `mount -t tmpfs -o size=256k,mode=0700 tmpfs "$1" || exit 97
dir=$1 out=$2
shift 2
"$@"
st=$?
cp "$dir/audit.log" "$out" || exit 98
exit $st`
	wrap := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", dir, saved}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	args := []string{"--audit-log", filepath.Join(dir, "audit.log"), "--metrics-addr", strings.TrimPrefix(metricsURL, "http://")}
	if syncMode {
		args = append(args, "--audit-sync")
	}
	p := mustLaunch(t, bin, home, fmt.Sprintf("127.0.0.1:%d", freePort(t)), wrap, args...)
	server := childPid(t, p.cmd.Process.Pid)
	fs := fmt.Sprintf("/proc/%d/root%s", server, dir)
	var st syscall.Statfs_t
	if err := syscall.Statfs(fs, &st); err != nil || st.Type != tmpfsMagic || uint64(st.Blocks)*uint64(st.Bsize) > 1<<20 {
		t.Fatalf("%s is not the server's small tmpfs (statfs %+v, %v): refusing to fill it", fs, st, err)
	}

	ctx := context.Background()
	key := must[*kms.CreateKeyOutput](t, "CreateKey")(p.client(serveRoot).CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	if res := p.send(gdkRequest(t, p.url, *key)); res.status != http.StatusOK {
		t.Fatalf("GenerateDataKey before the disk is full: %d %s", res.status, res.body)
	}

	// Fill the tmpfs.
	filler, err := os.OpenFile(filepath.Join(fs, "filler"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for written := 0; ; written += len(chunk) {
		if written > 1<<20 {
			t.Fatalf("wrote %d bytes into a 256 KiB tmpfs without filling it", written)
		}
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the tmpfs: %v", err)
			}
			break
		}
	}
	filler.Close()

	// Lines still fit in the log's last page of the tmpfs for a while; the
	// first request whose line does not fit fails closed, and so does
	// every request after it.
	fitted := 0
	for ; ; fitted++ {
		if fitted > 200 {
			t.Fatalf("%d requests succeeded with the audit log's disk full", fitted)
		}
		res := p.send(gdkRequest(t, p.url, *key))
		if res.status == http.StatusOK {
			continue
		}
		if res.status != http.StatusInternalServerError || res.code != "KMSInternalException" || bytes.Contains(res.body, []byte("Plaintext")) {
			t.Fatalf("GenerateDataKey whose audit line does not fit = %d %q %s; want 500 KMSInternalException, no data key", res.status, res.code, res.body)
		}
		break
	}
	t.Logf("%d requests' lines fitted in the log's last tmpfs page", fitted)
	for i := range 5 {
		res := p.send(gdkRequest(t, p.url, *key))
		if res.status != http.StatusInternalServerError || res.code != "KMSInternalException" {
			t.Errorf("GenerateDataKey %d with the audit disk full = %d %q %s; want 500 KMSInternalException", i, res.status, res.code, res.body)
		}
		if bytes.Contains(res.body, []byte("Plaintext")) {
			t.Errorf("a refused GenerateDataKey released its data key: %s", res.body)
		}
	}
	if _, err := p.client(serveRoot).ListKeys(ctx, &kms.ListKeysInput{}); err == nil {
		t.Errorf("ListKeys with the audit disk full succeeded")
	}
	status, text := getText(t, p.url+"/healthz")
	if status != http.StatusServiceUnavailable || !strings.Contains(text, "audit") || !strings.Contains(text, "no space left") {
		t.Errorf("/healthz with the audit disk full = %d %q; want 503 naming the audit log and the full disk", status, text)
	}
	_, metrics := getText(t, metricsURL+"/metrics")
	if v := metric(metrics, "envelope_audit_healthy"); v != 0 {
		t.Errorf("envelope_audit_healthy = %v with the disk full, want 0", v)
	}
	if v := metric(metrics, "envelope_audit_write_failures_total"); v < 1 {
		t.Errorf("envelope_audit_write_failures_total = %v with the disk full, want at least 1", v)
	}

	// Space returns: the server recovers by itself.
	if err := os.Remove(filepath.Join(fs, "filler")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, text = getText(t, p.url+"/healthz")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %d %q 15 s after space was freed", status, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 3 {
		if res := p.send(gdkRequest(t, p.url, *key)); res.status != http.StatusOK {
			t.Errorf("GenerateDataKey %d after space was freed: %d %s", i, res.status, res.body)
		}
	}
	_, metrics = getText(t, metricsURL+"/metrics")
	if v := metric(metrics, "envelope_audit_healthy"); v != 1 {
		t.Errorf("envelope_audit_healthy = %v after recovery, want 1", v)
	}

	if err := syscall.Kill(server, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("the server did not exit on SIGTERM")
	}
	if p.code != 0 {
		t.Fatalf("the server (and its copy of the log) exited with status %d; output:\n%s", p.code, p.stderr.String())
	}
	if code, out, errOut := auditVerify(t, bin, home, "--store", home, saved); code != 0 || !strings.Contains(out, "chain intact") {
		t.Errorf("envelope audit verify over the whole log = %d %q %q; want 0, chain intact", code, out, errOut)
	}
	resumed := 0
	for _, r := range auditRecords(t, saved) {
		if r["type"] == "resume" {
			resumed++
			if e, _ := r["error"].(string); !strings.Contains(e, "no space left") {
				t.Errorf("resume record %v does not name the failure", r)
			}
		}
	}
	if resumed != 1 {
		t.Errorf("%d resume records in the log, want 1", resumed)
	}
}

// ack is one acknowledged request: its id and when its answer arrived.
type ack struct {
	id string
	at time.Time
}

// testServeAuditKills reproduces issue 9 item 5's loss window: a server
// under load from concurrent signed clients is SIGKILLed several times and
// restarted; every request acknowledged before a kill must have its line in
// the log (the documented guarantee of both modes against a crash of the
// server process), and the log, with a start record after each kill,
// verifies.
func testServeAuditKills(t *testing.T, bin string, syncMode bool) {
	const clients = 8
	kills := 5
	perRound := int64(400) // acknowledged requests between kills
	if testing.Short() {
		kills, perRound = 2, 200
	}
	home := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var args []string
	if syncMode {
		args = append(args, "--audit-sync")
	}
	p := mustLaunch(t, bin, home, addr, nil, args...)
	ctx := context.Background()
	key := must[*kms.CreateKeyOutput](t, "CreateKey")(p.client(serveRoot).CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId

	var stop atomic.Bool
	var acked atomic.Int64
	acks := make([][]ack, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for !stop.Load() {
				resp, err := client.Do(gdkRequest(t, "http://"+addr, *key))
				if err != nil {
					time.Sleep(5 * time.Millisecond) // the server is down: try again
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				at := time.Now()
				if err != nil || resp.StatusCode != http.StatusOK {
					continue // cut off by the kill: not acknowledged
				}
				if !bytes.Contains(b, []byte(`"Plaintext"`)) {
					t.Errorf("GenerateDataKey answer without a data key: %s", b)
					continue
				}
				acks[c] = append(acks[c], ack{resp.Header.Get("x-amzn-RequestId"), at})
				acked.Add(1)
			}
		})
	}
	var killedAt []time.Time
	for round := range kills {
		target := acked.Load() + perRound
		deadline := time.Now().Add(30 * time.Second)
		for acked.Load() < target {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("round %d: only %d requests acknowledged in 30 s; output:\n%s", round, acked.Load(), p.stderr.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
		killedAt = append(killedAt, time.Now())
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		p = mustLaunch(t, bin, home, addr, nil, args...)
	}
	target := acked.Load() + perRound/4
	for acked.Load() < target {
		time.Sleep(2 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d on SIGTERM; output:\n%s", code, p.stderr.String())
	}

	logged := map[string]bool{}
	lines, starts, torn := 0, 0, 0
	for _, r := range auditRecords(t, filepath.Join(home, "audit.log")) {
		lines++
		if id, ok := r["requestId"].(string); ok {
			logged[id] = true
		}
		if r["type"] == "start" {
			starts++
			if r["torn"] != nil {
				torn++
			}
		}
	}
	var all []ack
	for _, a := range acks {
		all = append(all, a...)
	}
	missing := 0
	var oldest time.Duration
	for _, a := range all {
		if logged[a.id] {
			continue
		}
		missing++
		// How long before the next kill the lost request was acknowledged.
		for _, k := range killedAt {
			if k.After(a.at) {
				oldest = max(oldest, k.Sub(a.at))
				break
			}
		}
	}
	mode := "batched"
	if syncMode {
		mode = "sync"
	}
	t.Logf("%s mode: %d SIGKILLs under load from %d clients: %d requests acknowledged, %d audit lines (%d start records, %d torn tails recovered); %d acknowledged requests without a line (the oldest acknowledged %v before its kill)",
		mode, kills, clients, len(all), lines, starts, torn, missing, oldest)
	if missing != 0 {
		t.Errorf("%d of %d acknowledged requests have no audit line after %d SIGKILLs (the oldest acknowledged %v before the kill); want none", missing, len(all), kills, oldest)
	}
	if code, out, errOut := auditVerify(t, bin, home); code != 0 || !strings.Contains(out, "chain intact") {
		t.Errorf("envelope audit verify after the kills = %d %q %q; want 0, chain intact", code, out, errOut)
	}
}

// testServeAuditCutTail reproduces issue 9 item 5: lines cut from the end
// of the log went unnoticed, and the restarted server numbered its lines
// from the cut again. The keystore keeps a high-water mark of the log:
// verify counts the lines cut, and the restarted server continues after
// the mark and records the gap in its start record.
func testServeAuditCutTail(t *testing.T, bin string) {
	home := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := mustLaunch(t, bin, home, addr, nil)
	c := p.client(serveRoot)
	for range 10 {
		if _, err := c.ListKeys(context.Background(), &kms.ListKeysInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d", code)
	}
	logFile := filepath.Join(home, "audit.log")
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	lines = lines[:len(lines)-1] // "" after the last newline
	before := len(lines)
	if err := os.WriteFile(logFile, []byte(strings.Join(lines[:before-3], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := auditVerify(t, bin, home)
	if code != 1 || !strings.Contains(errOut, "3 lines") || !strings.Contains(errOut, "cut") {
		t.Errorf("envelope audit verify of a log whose last 3 lines were cut = %d %q %q; want 1 saying 3 lines were cut", code, out, errOut)
	}

	p = mustLaunch(t, bin, home, addr, nil)
	if _, err := p.client(serveRoot).ListKeys(context.Background(), &kms.ListKeysInput{}); err != nil {
		t.Fatal(err)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d", code)
	}
	recs := auditRecords(t, logFile)
	seqs := map[float64]bool{}
	for _, r := range recs {
		s, _ := r["seq"].(float64)
		if seqs[s] {
			t.Errorf("seq %v is used twice", s)
		}
		seqs[s] = true
	}
	start := recs[before-3]
	if start["type"] != "start" || start["seq"] != float64(before+1) || start["missing"] != float64(3) {
		t.Errorf("the restarted server's start record = %v; want seq %d (after the high-water mark) and missing 3", start, before+1)
	}
	code, out, errOut = auditVerify(t, bin, home)
	if code != 1 || !strings.Contains(errOut, "3 lines") {
		t.Errorf("envelope audit verify of the continued log = %d %q %q; want 1 reporting the 3 missing lines", code, out, errOut)
	}
}

// testServeAuditTornTail reproduces issue 9 item 4: a log whose last line
// a crash cut short kept the server from starting. It starts: the torn
// bytes are cut and recorded in its start record, and the log verifies.
func testServeAuditTornTail(t *testing.T, bin string) {
	home := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := mustLaunch(t, bin, home, addr, nil)
	if _, err := p.client(serveRoot).ListKeys(context.Background(), &kms.ListKeysInput{}); err != nil {
		t.Fatal(err)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d", code)
	}
	logFile := filepath.Join(home, "audit.log")
	raw := mustReadFile(t, logFile)
	lines := strings.SplitAfter(string(raw), "\n")
	torn := lines[1][:len(lines[1])/2] // the ListKeys line, half written
	if err := os.WriteFile(logFile, []byte(lines[0]+torn), 0o600); err != nil {
		t.Fatal(err)
	}
	p = mustLaunch(t, bin, home, addr, nil)
	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d", code)
	}
	recs := auditRecords(t, logFile)
	if len(recs) != 2 || recs[1]["type"] != "start" {
		t.Fatalf("log after the restart = %v, want the first start record and a new one", recs)
	}
	tornRec, _ := recs[1]["torn"].(map[string]any)
	if tornRec == nil || tornRec["bytes"] != float64(len(torn)) || tornRec["text"] != torn {
		t.Errorf("start record %v does not record the %d torn bytes", recs[1], len(torn))
	}
	// The cut line was counted by the mark: verify says it is missing.
	code, out, errOut := auditVerify(t, bin, home)
	if code != 1 || !strings.Contains(errOut, "1 lines (seq 2 to 2) are missing") {
		t.Errorf("envelope audit verify = %d %q %q; want 1 reporting the torn line missing", code, out, errOut)
	}
}

// legacyAuditLog writes a log of n lines chained under key, as servers
// before the start records wrote them.
func legacyAuditLog(t *testing.T, path string, key []byte, n int) {
	t.Helper()
	prev := make([]byte, 32)
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		rest := fmt.Sprintf(`{"seq":%d,"time":"2026-03-01T12:00:00Z","requestId":"old-%d","principal":"root","sourceAddress":"127.0.0.1","operation":"ListKeys","result":"Success"`, i, i)
		h := hmac.New(sha256.New, key)
		h.Write(prev)
		h.Write([]byte(rest))
		prev = h.Sum(nil)
		b.WriteString(rest + `,"mac":"` + hex.EncodeToString(prev) + "\"}\n")
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testServeAuditLegacyKey reproduces issue 9 item 5: audit.key lay
// unsealed beside the log. A server finding one moves it into the
// keystore, sealed under the root key, and removes the file; the old
// lines still verify, with the keystore's key or with a copy of the file.
func testServeAuditLegacyKey(t *testing.T, bin string) {
	home := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(filepath.Join(home, "audit.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	exported := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(exported, key, 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(home, "audit.log")
	legacyAuditLog(t, logFile, key, 3)

	p := mustLaunch(t, bin, home, fmt.Sprintf("127.0.0.1:%d", freePort(t)), nil)
	if _, err := p.client(serveRoot).ListKeys(context.Background(), &kms.ListKeysInput{}); err != nil {
		t.Fatal(err)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d", code)
	}
	if _, err := os.Stat(filepath.Join(home, "audit.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("audit.key is still beside the log after the server started (stat err = %v)", err)
	}
	for _, name := range []string{"keystore.db", "keystore.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(home, name)); err == nil && bytes.Contains(b, key) {
			t.Errorf("%s holds the audit key unsealed", name)
		}
	}
	n := len(auditRecords(t, logFile))
	want := fmt.Sprintf("%d lines, chain intact", n)
	if code, out, errOut := auditVerify(t, bin, home); code != 0 || !strings.Contains(out, want) {
		t.Errorf("envelope audit verify with the keystore's key = %d %q %q; want 0, %q", code, out, errOut, want)
	}
	if code, out, errOut := auditVerify(t, bin, home, "--key", exported, logFile); code != 0 || !strings.Contains(out, want) {
		t.Errorf("envelope audit verify --key (the old file) = %d %q %q; want 0, %q", code, out, errOut, want)
	}
	cmd := exec.Command(bin, "audit", "verify", "-")
	cmd.Env = serveEnviron(home, false)
	cmd.Stdin = bytes.NewReader(mustReadFile(t, logFile))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "standard input: "+want) {
		t.Errorf("envelope audit verify - = %v %q; want %q", err, out, want)
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

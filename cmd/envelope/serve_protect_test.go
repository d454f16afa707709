package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testServeProtection: the metrics are served on --metrics-addr alone, not
// beside the API; the server turns core dumps off; a loopback server
// prints no plain-HTTP warning.
func testServeProtection(t *testing.T, bin string) {
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, bin, serveOpts{args: []string{"--metrics-addr", metricsAddr}})
	if res := p.raw("ListKeys", []byte(`{}`), signer(t, []byte(`{}`), serveRoot, serveRegion, "kms", time.Now())); res.status != http.StatusOK {
		t.Fatalf("ListKeys: %d %s", res.status, res.body)
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("http://" + metricsAddr + "/metrics"); status != http.StatusOK ||
		!strings.Contains(body, `envelope_kms_requests_total{operation="ListKeys",result="Success"} 1`) {
		t.Errorf("GET /metrics on --metrics-addr = %d, want 200 with the request counters:\n%.500s", status, body)
	}
	if status, body := get(p.url + "/metrics"); status == http.StatusOK || strings.Contains(body, "envelope_kms_requests_total") {
		t.Errorf("GET /metrics on the API's address = %d %.200q, want it not served there", status, body)
	}
	if status, _ := get("http://" + metricsAddr + "/healthz"); status != http.StatusNotFound {
		t.Errorf("GET /healthz on --metrics-addr = %d, want 404: only the metrics are served there", status)
	}
	if runtime.GOOS == "linux" {
		// RLIMIT_CORE is set right after PR_SET_DUMPABLE (see
		// TestProtectProcess for both, checked from inside).
		limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^Max core file size\s+0\s+0\s`).Match(limits) {
			t.Errorf("envelope serve allows core dumps:\n%s", limits)
		}
	}
	if strings.Contains(p.stderr.String(), "plain HTTP") {
		t.Errorf("a loopback server warns about plain HTTP:\n%s", p.stderr.String())
	}

	// A bad --metrics-addr is a usage error.
	cmd := exec.Command(bin, "serve", "--metrics-addr", "9500")
	cmd.Env = serveEnviron(t.TempDir(), true)
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "--metrics-addr") {
		t.Errorf("envelope serve --metrics-addr 9500 = status %d, %q; want 2 and a usage error", cmd.ProcessState.ExitCode(), out)
	}
}

// testServePlainHTTPWarning: plain HTTP on an address others can reach
// warns on stderr, whatever the log level, and in the log at WARN.
func testServePlainHTTPWarning(t *testing.T, bin string) {
	for _, level := range []string{"info", "error"} {
		port := freePort(t)
		cmd := exec.Command(bin, "serve", "--addr", fmt.Sprintf("0.0.0.0:%d", port), "--log-level", level)
		cmd.Env = serveEnviron(t.TempDir(), true)
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		p := &serveProc{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), exited: exited}
		err := p.waitReady(30 * time.Second)
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if err != nil {
			t.Fatalf("envelope serve --addr 0.0.0.0:%d: %v\n%s", port, err, stderr.String())
		}
		out := stderr.String()
		if !strings.Contains(out, "envelope serve: WARNING: serving plain HTTP on a non-loopback address") || !strings.Contains(out, "--tls-cert") {
			t.Errorf("--log-level %s: no plain-HTTP warning on stderr:\n%s", level, out)
		}
		wantLog := level == "info"
		if got := bytes.Contains([]byte(out), []byte("level=WARN msg=\"serving plain HTTP")); got != wantLog {
			t.Errorf("--log-level %s: WARN log line present = %v, want %v:\n%s", level, got, wantLog, out)
		}
	}
}

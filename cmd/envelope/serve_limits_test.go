package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	envkms "github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsclient"
)

// nofileMain is "envelope-nofile ARGS...": envelope ARGS with its limit on
// open files (soft and hard) lowered to $ENVELOPE_TEST_NOFILE, as an
// operator's ulimit -n would, before anything is opened.
func nofileMain() {
	n, err := strconv.ParseUint(os.Getenv("ENVELOPE_TEST_NOFILE"), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "envelope-nofile: set ENVELOPE_TEST_NOFILE to the limit")
		os.Exit(255)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintf(os.Stderr, "envelope-nofile: setrlimit: %v\n", err)
		os.Exit(255)
	}
	os.Exit(run(os.Args[1:]))
}

// procStatus returns a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// attackReport is what envelope-attack prints when it is done.
type attackReport struct {
	Dials, DialErrors int64
	// LongestSilent is the longest a silent connection stayed open, in
	// milliseconds.
	LongestSilent int64
}

// attackMain is "envelope-attack ADDR DURATION AMZDATE": for DURATION, it
// attacks the server at ADDR without credentials, with 200 slow-body
// connections from 127.0.0.1 (1 MiB announced, all but the last KiB sent
// at once, then a byte every 100 ms; half with the root's access key id
// and a forged signature dated AMZDATE, which pass the check before the
// body, half unsigned), joined after 300 ms by 300 silent connections from
// 127.0.0.1 and 100 from 127.0.0.2, each attacker connecting again as soon
// as it is closed. It prints an
// attackReport as JSON. An attacker is a process of its own, as it would
// be: in the test's process, its goroutines would starve the signed
// clients' own.
func attackMain() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: envelope-attack ADDR DURATION AMZDATE")
		os.Exit(255)
	}
	addr, amzDate := os.Args[1], os.Args[3]
	attackFor, err := time.ParseDuration(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "envelope-attack:", err)
		os.Exit(255)
	}
	stop := make(chan struct{})
	time.AfterFunc(attackFor, func() { close(stop) })
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var dials, dialErrors, longestSilent atomic.Int64
	dial := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		dials.Add(1)
		c, err := d.Dial("tcp", addr)
		if err != nil {
			dialErrors.Add(1)
			return nil
		}
		go func() { <-stop; c.SetDeadline(time.Now()) }()
		return c
	}
	var wg sync.WaitGroup
	silent := func(src string) {
		for !stopped() {
			c := dial(src)
			if c == nil {
				continue
			}
			start := time.Now()
			c.Read(make([]byte, 1)) // until closed, or the attack ends
			for d := time.Since(start).Milliseconds(); ; {
				if old := longestSilent.Load(); d <= old || longestSilent.CompareAndSwap(old, d) {
					break
				}
			}
			c.Close()
		}
	}
	forged := "AWS4-HMAC-SHA256 Credential=" + serveRootID + "/" + amzDate[:8] + "/" + serveRegion + "/kms/aws4_request, " +
		"SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + strings.Repeat("0", 64)
	slowBody := func(signed bool) {
		var head bytes.Buffer
		fmt.Fprintf(&head, "POST / HTTP/1.1\r\nHost: %s\r\nX-Amz-Target: TrentService.UpdateKeyDescription\r\n"+
			"Content-Type: application/x-amz-json-1.1\r\nX-Amz-Date: %s\r\nContent-Length: %d\r\n", addr, amzDate, 1<<20)
		if signed {
			head.WriteString("Authorization: " + forged + "\r\n")
		}
		head.WriteString("\r\n")
		body := bytes.Repeat([]byte("x"), 1<<20-1<<10)
		for !stopped() {
			c := dial("127.0.0.1")
			if c == nil {
				continue
			}
			if _, err := c.Write(head.Bytes()); err == nil {
				if _, err := c.Write(body); err == nil {
					for !stopped() {
						if _, err := c.Write([]byte("x")); err != nil {
							break
						}
						select {
						case <-stop:
						case <-time.After(100 * time.Millisecond):
						}
					}
				}
			}
			c.Close()
		}
	}
	for i := range 200 {
		wg.Go(func() { slowBody(i%2 == 0) })
	}
	select {
	case <-stop:
	case <-time.After(300 * time.Millisecond):
	}
	for range 300 {
		wg.Go(func() { silent("127.0.0.1") })
	}
	for range 100 {
		wg.Go(func() { silent("127.0.0.2") })
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(attackReport{Dials: dials.Load(), DialErrors: dialErrors.Load(), LongestSilent: longestSilent.Load()})
}

// TestServeUnderAttack runs envelope serve with its open-file limit
// lowered to 256, and attacks it for a few seconds without credentials
// (envelope-attack, a process of its own, from the same address as the
// clients): hundreds of slow bodies and hundreds of silent connections,
// each attacker connecting again as soon as it is closed. Signed clients
// (aws-sdk-go-v2 through kms/awsclient, with the SDK's standard retryer)
// must succeed throughout, with no gap over 2 s: four established ones on
// kept-alive connections, and one that opens a new connection for every
// call. No connection that has completed a signed request may be shed. A
// new connection may be, if its request has not arrived by the time the
// attacker has opened a per-source cap's worth of connections (44 here;
// the attacker opens 10,000 to 20,000 a second): the SDK retries then, and
// retries must stay under 2% of the calls (about 0.2% is typical; each
// call may make 5 attempts, so that the test does not fail by chance).
// The server's RSS must stay within a bound, and a silent connection must
// be closed within the header timeout (1 s here).
func TestServeUnderAttack(t *testing.T) {
	shim, err := exec.LookPath("envelope-nofile")
	if err != nil {
		t.Fatalf("the test binary's envelope-nofile command: %v", err)
	}
	attacker, err := exec.LookPath("envelope-attack")
	if err != nil {
		t.Fatalf("the test binary's envelope-attack command: %v", err)
	}
	const (
		nofile        = 256
		headerTimeout = time.Second
		// rssBound is what the server's RSS may reach under the attack:
		// the Go memory limit serve sets (64 MiB, the 16 MiB of request
		// memory, 64 KiB for each of the 176 connections: 91 MiB), and
		// the program's code.
		rssBound = 112 << 20
	)
	attackFor := 6 * time.Second
	if testing.Short() {
		attackFor = 3 * time.Second
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, shim, serveOpts{
		env:  []string{"ENVELOPE_TEST_NOFILE=" + strconv.Itoa(nofile)},
		args: []string{"--header-timeout", headerTimeout.String(), "--max-request-memory", "16M", "--metrics-addr", metricsAddr},
	})
	pid := p.cmd.Process.Pid
	if limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid)); err != nil || !regexp.MustCompile(`Max open files\s+256\s+256`).Match(limits) {
		t.Fatalf("the server's open-file limit is not 256: %v\n%s", err, limits)
	}
	ctx := context.Background()
	var retries atomic.Int64
	newClient := func(tr *http.Transport) *awsclient.Client {
		c, err := awsclient.NewEndpoint(ctx, p.url, awsclient.WithCredentials(serveRootID, serveRootSecret), awsclient.WithRegion(serveRegion),
			awsclient.WithHTTPClient(&http.Client{Transport: tr, Timeout: 5 * time.Second}),
			awsclient.WithSDKOptions(func(o *awskms.Options) {
				o.Retryer = countRetries{retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 5 }), &retries}
			}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	keepAlive := &http.Transport{MaxIdleConnsPerHost: 8}
	defer keepAlive.CloseIdleConnections()
	admin := newClient(keepAlive)
	key, err := admin.CreateKey(ctx, &envkms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	keyID := key.KeyMetadata.KeyId
	rest, err := procStatus(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}

	// The clients: four established before the attack, on kept-alive
	// connections; one on a new connection for every call.
	var clientsOf []*awsclient.Client
	var established sync.WaitGroup
	for range 4 {
		c := newClient(keepAlive)
		clientsOf = append(clientsOf, c)
		established.Go(func() {
			if _, err := c.DescribeKey(ctx, &envkms.DescribeKeyInput{KeyId: keyID}); err != nil {
				t.Errorf("DescribeKey before the attack: %v", err)
			}
		})
	}
	established.Wait()
	clientsOf = append(clientsOf, newClient(&http.Transport{DisableKeepAlives: true}))
	retries.Store(0)

	// The attack, and measures while it lasts.
	start := time.Now()
	attack := exec.Command(attacker, p.addr, attackFor.String(), start.UTC().Format("20060102T150405Z"))
	var attackOut, attackErr bytes.Buffer
	attack.Stdout, attack.Stderr = &attackOut, &attackErr
	if err := attack.Start(); err != nil {
		t.Fatal(err)
	}
	attacked := make(chan error, 1)
	go func() { attacked <- attack.Wait() }()
	var maxRSS, maxFDs atomic.Int64
	stop := make(chan struct{})
	var monitor sync.WaitGroup
	monitor.Go(func() {
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := procStatus(pid, "VmRSS"); err == nil && rss > maxRSS.Load() {
				maxRSS.Store(rss)
			}
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil && int64(len(fds)) > maxFDs.Load() {
				maxFDs.Store(int64(len(fds)))
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	// The signed clients.
	var mu sync.Mutex
	var pairs, failures int
	var firstErr error
	var last time.Time
	var longestGap time.Duration
	deadline := start.Add(attackFor)
	var clients sync.WaitGroup
	for i, c := range clientsOf {
		ec := map[string]string{"client": strconv.Itoa(i)}
		clients.Go(func() {
			n := int32(32)
			for time.Now().Before(deadline) {
				dk, err := c.GenerateDataKey(ctx, &envkms.GenerateDataKeyInput{KeyId: keyID, NumberOfBytes: &n, EncryptionContext: ec})
				if err == nil {
					var dec *envkms.DecryptOutput
					dec, err = c.Decrypt(ctx, &envkms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
					if err == nil && !bytes.Equal(dec.Plaintext, dk.Plaintext) {
						err = fmt.Errorf("Decrypt returned another data key")
					}
				}
				now := time.Now()
				mu.Lock()
				if err != nil {
					failures++
					if firstErr == nil {
						firstErr = fmt.Errorf("client %d: %w", i, err)
					}
				} else {
					pairs++
					if !last.IsZero() {
						longestGap = max(longestGap, now.Sub(last))
					}
					last = now
				}
				mu.Unlock()
			}
		})
	}
	clients.Wait()
	select {
	case err := <-attacked:
		if err != nil {
			t.Fatalf("envelope-attack: %v\n%s", err, attackErr.String())
		}
	case <-time.After(attackFor + 20*time.Second):
		attack.Process.Kill()
		t.Fatalf("envelope-attack did not end")
	}
	close(stop)
	monitor.Wait()
	var report attackReport
	if err := json.Unmarshal(attackOut.Bytes(), &report); err != nil {
		t.Fatalf("envelope-attack's report %q: %v", attackOut.String(), err)
	}

	t.Logf("attack: %v, %d connections opened (%d dials failed); signed clients: %d GenerateDataKey+Decrypt pairs, %d failures, %d retries, longest gap between successes %v",
		attackFor, report.Dials, report.DialErrors, pairs, failures, retries.Load(), longestGap.Round(time.Millisecond))
	t.Logf("server: RSS %.1f MiB at rest, at most %.1f MiB under attack; at most %d open file descriptors (limit %d); longest-held silent connection %v",
		float64(rest)/1024, float64(maxRSS.Load())/1024, maxFDs.Load(), nofile, time.Duration(report.LongestSilent)*time.Millisecond)
	if failures > 0 {
		t.Errorf("%d signed calls failed under attack; first: %v", failures, firstErr)
	}
	if pairs < 10 || longestGap > 2*time.Second {
		t.Errorf("signed clients made %d pairs, with a gap of %v: want them served throughout", pairs, longestGap)
	}
	if n := retries.Load(); n*50 > int64(2*pairs) {
		t.Errorf("signed clients retried %d of %d calls, want under 2%%", n, 2*pairs)
	}
	bound := int64(rssBound)
	if raceDetector {
		bound *= 5
	}
	if rss := maxRSS.Load() << 10; rss > bound {
		t.Errorf("the server's RSS reached %d MiB under attack, want at most %d MiB", rss>>20, bound>>20)
	}
	if d := time.Duration(report.LongestSilent) * time.Millisecond; d > headerTimeout+time.Second {
		t.Errorf("a silent connection was held %v, want it closed within the %v header timeout", d, headerTimeout)
	}
	if !strings.Contains(p.stderr.String(), "maxConnections=176 maxConnectionsPerSource=44") {
		t.Errorf("the server did not log the limits derived from its open-file limit (176 and 44 under 256):\n%s", p.stderr.String())
	}

	// After the attack, all is well.
	if _, err := admin.DescribeKey(ctx, &envkms.DescribeKeyInput{KeyId: keyID}); err != nil {
		t.Errorf("DescribeKey after the attack: %v", err)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "envelope_http_") || strings.Contains(line, `result="ThrottlingException"`) {
			t.Logf("metric: %s", line)
		}
	}
	if !strings.Contains(string(b), "\nenvelope_http_connections_shed_total{kind=\"trusted\"} 0\n") {
		t.Errorf("connections that had completed a signed request were shed (or the metric is missing)")
	}
}

// countRetries is an SDK retryer that counts the retries it allows.
type countRetries struct {
	aws.RetryerV2
	n *atomic.Int64
}

func (r countRetries) RetryDelay(attempt int, err error) (time.Duration, error) {
	r.n.Add(1)
	return r.RetryerV2.RetryDelay(attempt, err)
}

// TestServeLimitFlags: the limit flags are documented, and refused when
// out of range, before anything is opened.
func TestServeLimitFlags(t *testing.T) {
	envelopeCmd, err := exec.LookPath("envelope")
	if err != nil {
		t.Fatalf("the test binary's envelope command: %v", err)
	}
	out, err := exec.Command(envelopeCmd, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("envelope serve --help: %v\n%s", err, out)
	}
	for _, want := range []string{"--max-connections N", "--max-connections-per-source N", "--max-request-memory SIZE", "--header-timeout D",
		"sheds an open one that is not\nbeing served", "ThrottlingException"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("envelope serve --help does not say %q", want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-connections", "0"}, "--max-connections 0: want at least 1"},
		{[]string{"--max-connections-per-source", "-1"}, "--max-connections-per-source -1: want at least 1"},
		{[]string{"--max-request-memory", "512K"}, `--max-request-memory "512K": want a size of at least 1M`},
		{[]string{"--max-request-memory", "4G"}, `--max-request-memory "4G": want a size of at least 1M (the largest request body) and below 4G`},
		{[]string{"--max-request-memory", "64Q"}, `--max-request-memory "64Q": want a size`},
		{[]string{"--header-timeout", "0s"}, "--header-timeout 0s: want a positive duration"},
	} {
		home := t.TempDir()
		cmd := exec.Command(envelopeCmd, append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...)...)
		cmd.Env = serveEnviron(home, true)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("envelope serve %s = status %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr.String(), tc.want)
		}
		if _, err := os.Stat(home + "/keystore.db"); err == nil {
			t.Errorf("envelope serve %s made a keystore before refusing its flags", strings.Join(tc.args, " "))
		}
	}
}

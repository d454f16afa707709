// Command loadgen is the benchmark's lean load generator for AWS-KMS-API
// servers (envelope serve, local-kms).
//
// It opens -c HTTP/1.1 keep-alive connections (raw net.Conn, one goroutine
// each) and on each runs, back to back, the pair an Encryption SDK performs
// per message with a KMS keyring: GenerateDataKey, then Decrypt of the
// returned CiphertextBlob (whose plaintext must equal the data key). The
// GenerateDataKey request is signed (SigV4) once per connection and re-signed
// every -resign interval (requests must stay within 15 minutes of their
// X-Amz-Date); the Decrypt request depends on the response, so it is signed
// per request with the connection's cached signing key (two SHA-256 and one
// HMAC). After -warmup, it counts pairs for -d, then prints ops/s, latency
// percentiles and errors, and, with -server-pid, the server's CPU time per
// pair (utime+stime from /proc/PID/stat, read at the start and end of the
// window) and its peak RSS (VmHWM).
//
//	loadgen -url http://127.0.0.1:8500 -key alias/bench -c 64 -d 10s \
//	    -server-pid 1234 -json out.json
//
// With -d 0 it runs one pair and exits (a readiness probe; with -wait).
//
// Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; -unsigned sends no
// Authorization header. The exit status is 1 if any request failed.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelopekms/envelope/bench/internal/proc"
)

// Config is one load run.
type Config struct {
	URL         string        // http://HOST:PORT
	KeyID       string        // key for GenerateDataKey
	Clients     int           // connections, one goroutine each
	Duration    time.Duration // measured window
	Warmup      time.Duration // before the window
	Resign      time.Duration // re-sign GenerateDataKey after this long
	Region      string
	AccessKeyID string // empty: unsigned
	Secret      string
	ServerPID   int    // 0: no server CPU/RSS
	Context     string // encryption context, JSON object ("" for none)
}

// Result is what a run measured. Latencies are in milliseconds.
type Result struct {
	Target        string  `json:"target"`
	Clients       int     `json:"clients"`
	WindowS       float64 `json:"window_s"`
	Pairs         int64   `json:"pairs"`
	PairsPerS     float64 `json:"pairs_per_s"`
	OpsPerS       float64 `json:"ops_per_s"`
	Errors        int64   `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	PairP50       float64 `json:"pair_p50_ms"`
	PairP90       float64 `json:"pair_p90_ms"`
	PairP99       float64 `json:"pair_p99_ms"`
	PairP999      float64 `json:"pair_p999_ms"`
	GDKP50        float64 `json:"gdk_p50_ms"`
	GDKP99        float64 `json:"gdk_p99_ms"`
	DecryptP50    float64 `json:"decrypt_p50_ms"`
	DecryptP99    float64 `json:"decrypt_p99_ms"`
	ServerCPUS    float64 `json:"server_cpu_s,omitempty"`
	ServerCPUMsPP float64 `json:"server_cpu_ms_per_pair,omitempty"`
	ServerRSSKB   int64   `json:"server_peak_rss_kb,omitempty"`
	ClientCPUS    float64 `json:"client_cpu_s"`
	ClientCPUMsPP float64 `json:"client_cpu_ms_per_pair"`
}

func main() {
	var c Config
	var jsonOut string
	flag.StringVar(&c.URL, "url", "http://127.0.0.1:8500", "server `URL` (http only)")
	flag.StringVar(&c.KeyID, "key", "alias/bench", "`KEY` id, ARN or alias for GenerateDataKey")
	flag.IntVar(&c.Clients, "c", 64, "concurrent keep-alive connections")
	flag.DurationVar(&c.Duration, "d", 10*time.Second, "measured window")
	flag.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load before the window, not counted")
	flag.DurationVar(&c.Resign, "resign", time.Minute, "re-sign the GenerateDataKey request after this long (max 15m)")
	flag.StringVar(&c.Region, "region", "us-east-1", "SigV4 `REGION`")
	flag.IntVar(&c.ServerPID, "server-pid", 0, "server `PID`: report its CPU time per pair (from /proc) and peak RSS")
	flag.StringVar(&c.Context, "context", `{"purpose":"bench"}`, "encryption context `JSON` sent with both operations (\"\" for none)")
	unsigned := flag.Bool("unsigned", false, "send no Authorization header")
	wait := flag.Duration("wait", 0, "first wait up to this long for the server to accept connections")
	flag.StringVar(&jsonOut, "json", "", "also write the result as JSON to `FILE`")
	flag.Parse()
	if !*unsigned {
		c.AccessKeyID, c.Secret = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		if c.AccessKeyID == "" || c.Secret == "" {
			fatalf("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass -unsigned")
		}
	}
	if c.Resign <= 0 || c.Resign > 14*time.Minute {
		fatalf("-resign must be in (0, 14m]")
	}
	if *wait > 0 {
		if err := waitFor(c.URL, *wait); err != nil {
			fatalf("%v", err)
		}
	}
	r, err := Run(c)
	if err != nil {
		fatalf("%v", err)
	}
	fmt.Println(r.Summary())
	if jsonOut != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	if r.Errors > 0 {
		os.Exit(1)
	}
}

// waitFor waits until the server at rawURL accepts TCP connections.
func waitFor(rawURL string, d time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	end := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s: not accepting connections after %v: %v", u.Host, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
	os.Exit(2)
}

// Summary is one human-readable line.
func (r *Result) Summary() string {
	s := fmt.Sprintf("%s c=%d: %.0f pairs/s (%.0f ops/s) over %.1fs, pair latency p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f ms (GenerateDataKey p99 %.2f, Decrypt p99 %.2f), errors %d",
		r.Target, r.Clients, r.PairsPerS, r.OpsPerS, r.WindowS, r.PairP50, r.PairP90, r.PairP99, r.PairP999, r.GDKP99, r.DecryptP99, r.Errors)
	if r.ServerCPUS > 0 {
		s += fmt.Sprintf(", server CPU %.3f ms/pair, server peak RSS %.1f MiB", r.ServerCPUMsPP, float64(r.ServerRSSKB)/1024)
	}
	s += fmt.Sprintf(", client CPU %.3f ms/pair", r.ClientCPUMsPP)
	if r.FirstError != "" {
		s += "; first error: " + r.FirstError
	}
	return s
}

const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

type shared struct {
	cfg   Config
	host  string // HOST:PORT
	phase atomic.Int32

	pairs  atomic.Int64
	errors atomic.Int64

	mu       sync.Mutex
	firstErr string
	pairLat  []int64
	gdkLat   []int64
	decLat   []int64
}

func (sh *shared) fail(err error) {
	if sh.phase.Load() == phaseStop {
		return // interrupted in-flight requests at the end do not count
	}
	sh.errors.Add(1)
	sh.mu.Lock()
	if sh.firstErr == "" {
		sh.firstErr = err.Error()
	}
	sh.mu.Unlock()
}

// Run runs the load described by c.
func Run(c Config) (*Result, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http://HOST:PORT", c.URL)
	}
	if c.Clients < 1 {
		return nil, errors.New("need at least one client")
	}
	if c.Resign <= 0 {
		c.Resign = time.Minute
	}
	host := u.Host
	if u.Port() == "" {
		host += ":80"
	}
	sh := &shared{cfg: c, host: u.Host}
	// Fail fast: one pair before starting the clients.
	w0 := newWorker(sh, host)
	if _, _, err := w0.pair(); err != nil {
		return nil, fmt.Errorf("first request: %w", err)
	}
	w0.close()
	if c.Duration <= 0 {
		// A probe: the server answered one pair.
		return &Result{Target: c.URL, Clients: c.Clients}, nil
	}

	var wg sync.WaitGroup
	for range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(sh, host)
			w.loop()
			w.close()
		}()
	}
	time.Sleep(c.Warmup)
	cpu0, _ := proc.CPU(c.ServerPID)
	self0 := proc.SelfCPU()
	t0 := time.Now()
	sh.phase.Store(phaseMeasure)
	time.Sleep(c.Duration)
	sh.phase.Store(phaseStop)
	window := time.Since(t0)
	cpu1, cpuErr := proc.CPU(c.ServerPID)
	self1 := proc.SelfCPU()
	wg.Wait()

	r := &Result{Target: c.URL, Clients: c.Clients, WindowS: window.Seconds(), Pairs: sh.pairs.Load(), Errors: sh.errors.Load(), FirstError: sh.firstErr}
	r.PairsPerS = float64(r.Pairs) / window.Seconds()
	r.OpsPerS = 2 * r.PairsPerS
	pct := func(lat []int64, p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p * float64(len(lat)))
		return float64(lat[min(i, len(lat)-1)]) / 1e6
	}
	for _, l := range [][]int64{sh.pairLat, sh.gdkLat, sh.decLat} {
		slices.Sort(l)
	}
	r.PairP50, r.PairP90, r.PairP99, r.PairP999 = pct(sh.pairLat, .50), pct(sh.pairLat, .90), pct(sh.pairLat, .99), pct(sh.pairLat, .999)
	r.GDKP50, r.GDKP99 = pct(sh.gdkLat, .50), pct(sh.gdkLat, .99)
	r.DecryptP50, r.DecryptP99 = pct(sh.decLat, .50), pct(sh.decLat, .99)
	r.ClientCPUS = (self1 - self0).Seconds()
	if r.Pairs > 0 {
		r.ClientCPUMsPP = r.ClientCPUS * 1e3 / float64(r.Pairs)
	}
	if c.ServerPID > 0 {
		if cpuErr != nil {
			return nil, fmt.Errorf("server CPU: %v", cpuErr)
		}
		r.ServerCPUS = (cpu1 - cpu0).Seconds()
		if r.Pairs > 0 {
			r.ServerCPUMsPP = r.ServerCPUS * 1e3 / float64(r.Pairs)
		}
		r.ServerRSSKB, _ = proc.PeakRSS(c.ServerPID)
	}
	return r, nil
}

type worker struct {
	sh   *shared
	addr string
	sig  *signer
	conn net.Conn
	br   *bufio.Reader

	gdk       []byte // the signed GenerateDataKey request
	gdkSigned time.Time
	req       []byte
	body      []byte
	rbuf      bytes.Buffer

	pairLat, gdkLat, decLat []int64
}

func newWorker(sh *shared, addr string) *worker {
	return &worker{sh: sh, addr: addr, sig: newSigner(sh.cfg.AccessKeyID, sh.cfg.Secret, sh.cfg.Region, sh.host)}
}

func (w *worker) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	sh := w.sh
	sh.mu.Lock()
	sh.pairLat = append(sh.pairLat, w.pairLat...)
	sh.gdkLat = append(sh.gdkLat, w.gdkLat...)
	sh.decLat = append(sh.decLat, w.decLat...)
	sh.mu.Unlock()
	w.pairLat, w.gdkLat, w.decLat = nil, nil, nil
}

func (w *worker) loop() {
	for w.sh.phase.Load() != phaseStop {
		t0 := time.Now()
		g, d, err := w.pair()
		if err != nil {
			w.sh.fail(err)
			if w.conn != nil {
				w.conn.Close()
				w.conn = nil
			}
			continue
		}
		if w.sh.phase.Load() == phaseMeasure {
			w.sh.pairs.Add(1)
			w.pairLat = append(w.pairLat, int64(time.Since(t0)))
			w.gdkLat = append(w.gdkLat, int64(g))
			w.decLat = append(w.decLat, int64(d))
		}
	}
}

func (w *worker) contextMember() string {
	if w.sh.cfg.Context == "" {
		return ""
	}
	return `,"EncryptionContext":` + w.sh.cfg.Context
}

// pair runs GenerateDataKey then Decrypt and checks the round trip.
func (w *worker) pair() (gdkLat, decLat time.Duration, err error) {
	now := time.Now()
	if w.gdk == nil || now.Sub(w.gdkSigned) > w.sh.cfg.Resign {
		body, _ := json.Marshal(w.sh.cfg.KeyID)
		b := append([]byte(`{"KeyId":`), body...)
		b = append(b, w.contextMember()+`,"NumberOfBytes":32}`...)
		w.gdk = w.sig.request(w.gdk[:0], now, "TrentService.GenerateDataKey", b)
		w.gdkSigned = now
	}
	t0 := time.Now()
	resp, err := w.roundTrip(w.gdk)
	if err != nil {
		return 0, 0, fmt.Errorf("GenerateDataKey: %w", err)
	}
	gdkLat = time.Since(t0)
	blob, ok1 := jsonString(resp, "CiphertextBlob")
	keyID, ok2 := jsonString(resp, "KeyId")
	plain, ok3 := jsonString(resp, "Plaintext")
	if !ok1 || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("GenerateDataKey: unexpected response %.200q", resp)
	}
	b := append(w.body[:0], `{"CiphertextBlob":"`...)
	b = append(b, blob...)
	b = append(b, `"`+w.contextMember()+`,"KeyId":"`...)
	b = append(b, keyID...)
	b = append(b, `"}`...)
	w.body = b
	plain = append([]byte(nil), plain...) // resp is reused by the next round trip
	t1 := time.Now()
	w.req = w.sig.request(w.req[:0], t1, "TrentService.Decrypt", b)
	resp, err = w.roundTrip(w.req)
	if err != nil {
		return 0, 0, fmt.Errorf("decrypt: %w", err)
	}
	decLat = time.Since(t1)
	got, ok := jsonString(resp, "Plaintext")
	if !ok || !bytes.Equal(got, plain) {
		return 0, 0, fmt.Errorf("decrypt: plaintext does not match the data key; response %.200q", resp)
	}
	return gdkLat, decLat, nil
}

// roundTrip sends req on the connection (dialing if needed) and returns the
// body of a 200 response; it is valid until the next call.
func (w *worker) roundTrip(req []byte) ([]byte, error) {
	if w.conn == nil {
		c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		w.conn = c
		w.br = bufio.NewReaderSize(c, 16<<10)
	}
	w.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := w.conn.Write(req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return nil, err
	}
	w.rbuf.Reset()
	_, err = w.rbuf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.Close {
		w.conn.Close()
		w.conn = nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, w.rbuf.Bytes())
	}
	return w.rbuf.Bytes(), nil
}

// jsonString finds the string member name of a flat JSON object without
// decoding the whole object. It handles the responses of KMS servers, whose
// string values (base64, ARNs) hold no escapes; a value with an escape is
// decoded properly.
func jsonString(b []byte, name string) ([]byte, bool) {
	key := `"` + name + `"`
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	b = bytes.TrimLeft(b[i+len(key):], " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return nil, false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return nil, false
	}
	v := b[1 : 1+end]
	if bytes.IndexByte(v, '\\') >= 0 {
		// Escapes: decode the string properly (up to its real end).
		dec := json.NewDecoder(bytes.NewReader(b))
		var s string
		if err := dec.Decode(&s); err != nil {
			return nil, false
		}
		return []byte(s), true
	}
	return v, true
}

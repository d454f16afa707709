package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi"
	"github.com/envelopekms/envelope/kms/keystore"
)

const serveHelp = `Usage: envelope serve [--addr HOST:PORT] [--store STORE] [--region R] [--account-id A]
                      [--tls-cert FILE --tls-key FILE] [--policy FILE] [--metrics-addr HOST:PORT] [flags]

Serve the keystore over the AWS KMS API (AWS JSON 1.1, SigV4), so that AWS
SDKs, the AWS CLI and the AWS Encryption SDK work against it with only the
endpoint changed (endpoint_url, --endpoint-url, BaseEndpoint).

Keystore: --store (default $ENVELOPE_STORE, else $ENVELOPE_HOME) is a
keystore directory, sqlite:DIR or postgres://…, created on first start. Its
root key comes from the source it was created with, given again at every
start: root.key beside a keystore directory (the default), --root-key-file,
ENVELOPE_PASSPHRASE, or an upstream KMS (--root-kms with --root-key-id) that
unseals it. A root key that does not open the keystore, or another source,
stops the server at start with an error that says so. A store that is not a
directory needs --audit-log, and the root credentials in the environment.

Authentication: every request must be signed (SigV4) for the server's region
and service kms. The root principal's credentials come from
ENVELOPE_ROOT_ACCESS_KEY_ID and ENVELOPE_ROOT_SECRET_ACCESS_KEY, or else from
root-credentials.json in the keystore directory, made (mode 0600) on first
start. Further principals, with the actions and keys each may use, come from
--policy FILE (mode 0600, it holds secrets):

  {"principals": [
    {"name": "app", "accessKeyId": "AKIAAPP00000000000001", "secretAccessKey": "…",
     "allow": [
       {"actions": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "keys": ["alias/app"]},
       {"actions": ["kms:ListKeys", "kms:ListAliases"], "keys": ["*"]}]}]}

Each principal is an IAM user of the server's account (arn:aws:iam::ACCOUNT:
user/NAME; "arn" gives another, such as …:role/NAME) with identity policies:
its "allow" entries (actions "kms:Operation", * and ? wildcards; keys are
key ids, key ARNs, alias names, meaning the keys they point to, or "*",
needed for operations on no key) and IAM policy documents under "policies"
({"NAME": {"Version": "2012-10-17", "Statement": [...]}}). Requests are
decided as AWS KMS decides them: the key policy allows the caller, or it
allows the account (as the default key policy of every new key does) and an
identity policy allows the caller, or a grant does, and nothing denies it.
Operations on no key are decided by identity policies alone. Refusals are
AccessDeniedException, worded as AWS words them, and the audit line records
what decided ("decidedBy") and the statement's Sid. SIGHUP reloads the
policy file: requests in flight finish with the principals they began with;
a file that does not load is logged and the previous one stays in force.

Audit: every request appends one JSON line to the audit log (time,
principal, source address, operation, key ARN, encryption context keys,
result, request id; never key material, plaintext or context values),
chained with HMAC-SHA256 under the audit key, which the keystore keeps
sealed under its root key (an audit.key file of an older version is moved
into it). Long key ids and contexts are summarised (count and SHA-256);
requests failing without credentials beyond 10 a second are counted into
one summary line every 10 s. Each start writes a start record, and the
keystore keeps the log's high-water mark (raised every second and at
shutdown), so "envelope audit verify" detects lines cut from the end.
A request is answered only once its line is written to the operating
system, in batches shared by concurrent requests: a crash of the server
loses no answered request's line; a power failure can lose the last second
of lines (the log is synced every second). With --audit-sync each answer
waits until its line is on disk (one fsync for the requests waiting
together). If the log cannot be written (a full disk), every request is
answered KMSInternalException and /healthz answers 503 until it can; the
server retries by itself and records the outage in the log.

HTTP: HTTP/1.1 (and 1.0) with keep-alive, pipelining and "Expect:
100-continue"; over TLS, ALPN offers only http/1.1. Requests are parsed
strictly: a body only by Content-Length, at most 1 MiB (Transfer-Encoding is
refused), headers at most 64 KiB in 100 lines. Timeouts: --header-timeout
(10 s) to read a request's headers, counted from the connection's accept
for its first request (a connection that sends nothing is closed then), 30 s
for the whole request and for the answer, 2 minutes idle between requests.

Limits: at most --max-connections connections at once, and
--max-connections-per-source from one client address (one /64 for IPv6).
At a cap a new connection is not refused: it sheds an open one that is not
being served, first among those that have not completed a signed request
(the oldest first), then the one idle longest. A connection whose request
has arrived counts as being served (on Linux even before it is read); only
when every connection is being served is the new one closed. Silent or slow
clients cannot lock signed ones out: established connections stay, and a
new client is safe once its request has arrived. The signature's access key
and scope are checked before a body over 4 KiB is read: an unknown key or a
wrong region, service or date is answered at once and the connection
closed, the body unread. Bodies and headers too large for a connection's
8 KiB buffer share --max-request-memory; a request that cannot get its
share within a second is answered ThrottlingException (which AWS SDKs retry
with backoff). /metrics shows envelope_http_connections,
envelope_http_connections_shed_total and envelope_http_request_memory_bytes.

Plain HTTP carries requests and answers unencrypted, plaintext data keys
included: without --tls-cert, serve on a loopback address only (a warning
says so otherwise). --insecure-dev takes unsigned requests as root, only on
a loopback address and only with a loopback Host header (localhost,
127.0.0.1, [::1]): a web page cannot reach it by DNS rebinding.

Also served: GET /healthz (503 while the audit log cannot be written).
Metrics (Prometheus: requests and latency by
operation and result, the key cache, the Go runtime) are served only with
--metrics-addr, at GET /metrics on that address alone and without
authentication, as they show which operations run, how often and how many
are refused: give it a loopback or internal address only the scraper
reaches. Logs go to stderr (log/slog). SIGTERM or SIGINT shut the server
down gracefully. Unless GOGC is set, the garbage collector runs at GOGC=400
(less CPU per request, a little more memory); unless GOMEMLIMIT is set, the
Go memory limit is 64 MiB, plus --max-request-memory, plus 64 KiB per
connection allowed. The server's memory holds
unsealed keys: it makes itself non-dumpable (Linux) and turns core dumps
off.

Flags:
%s
Examples:
  envelope serve
  envelope serve --addr 0.0.0.0:8443 --tls-cert server.crt --tls-key server.key --policy policy.json
  envelope serve --metrics-addr 127.0.0.1:9500
  aws kms list-keys --endpoint-url http://127.0.0.1:8500
`

// maxRequestMemory bounds --max-request-memory: it must stay below 4 GiB.
const maxRequestMemory = 4 << 30

// DefaultAddr is where serve listens by default.
const DefaultAddr = "127.0.0.1:8500"

func (c *cli) serve(args []string) error {
	var addr, region, account, certFile, keyFile, policyFile, auditFile, logLevel, logFormat, metricsAddr string
	var insecure, auditSync bool
	fs := c.newFlagSet("serve")
	fs.StringVar(&addr, "addr", DefaultAddr, "listen on `HOST:PORT`")
	c.store.register(fs)
	fs.StringVar(&region, "region", "", "`REGION` of the key ARNs and of request signatures (fixed when the keystore is created; default us-east-1)")
	fs.StringVar(&account, "account-id", "", "`ACCOUNT` of the key ARNs (fixed when the keystore is created; default 111122223333)")
	fs.StringVar(&certFile, "tls-cert", "", "serve HTTPS with this certificate `FILE` (PEM; with --tls-key)")
	fs.StringVar(&keyFile, "tls-key", "", "the TLS private key `FILE` (PEM)")
	fs.StringVar(&policyFile, "policy", "", "principals and their permissions from `FILE` (see above)")
	fs.StringVar(&auditFile, "audit-log", "", "append the audit log to `FILE`; default audit.log in the keystore directory")
	fs.BoolVar(&auditSync, "audit-sync", false, "answer each request only once its audit line is on disk (fsync, shared by concurrent requests); default: once it is written to the operating system, synced every second")
	fs.BoolVar(&insecure, "insecure-dev", false, "accept unsigned requests as root (development only; loopback addresses only)")
	fs.StringVar(&logLevel, "log-level", "info", "`LEVEL`: debug (every request), info, warn or error")
	fs.StringVar(&logFormat, "log-format", "text", "`FORMAT` of the logs: text or json")
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve GET /metrics (Prometheus, unauthenticated) on `HOST:PORT`; default: metrics are not served")
	limits := awsapi.DefaultLimits()
	limits.MaxConnectionsPerSource = 0 // a quarter of --max-connections
	requestMemory, headerTimeout := sizeText(awsapi.DefaultRequestMemory), 10*time.Second
	fs.IntVar(&limits.MaxConnections, "max-connections", limits.MaxConnections, "serve at most `N` connections at once; the default is the open-file limit (RLIMIT_NOFILE) less 64 and a sixteenth, at most 4096")
	fs.IntVar(&limits.MaxConnectionsPerSource, "max-connections-per-source", 0, "serve at most `N` connections from one client address (IPv6: one /64); default a quarter of --max-connections")
	fs.StringVar(&requestMemory, "max-request-memory", requestMemory, "hold at most `SIZE` bytes for all requests together beyond each connection's 8 KiB buffer (large bodies and headers); at least 1M, below 4G ("+sizeUnits+")")
	fs.DurationVar(&headerTimeout, "header-timeout", headerTimeout, "close a connection that has not sent a request's headers within `D` of its accept (or of a later request's first byte)")
	if ok, err := c.parse(fs, args, serveHelp); !ok {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("serve takes no arguments; see \"envelope serve --help\"")
	}
	if (certFile == "") != (keyFile == "") {
		return usageErrorf("--tls-cert and --tls-key go together")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("--addr %q: want HOST:PORT", addr)
	}
	if insecure && !isLoopback(host) {
		return usageErrorf("--insecure-dev accepts unsigned requests and is refused on %q: use a loopback address such as 127.0.0.1", addr)
	}
	if metricsAddr != "" {
		if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
			return usageErrorf("--metrics-addr %q: want HOST:PORT", metricsAddr)
		}
	}
	switch {
	case limits.MaxConnections < 1:
		return usageErrorf("--max-connections %d: want at least 1", limits.MaxConnections)
	case limits.MaxConnectionsPerSource < 0:
		return usageErrorf("--max-connections-per-source %d: want at least 1", limits.MaxConnectionsPerSource)
	case headerTimeout <= 0:
		return usageErrorf("--header-timeout %v: want a positive duration, such as 10s", headerTimeout)
	}
	n, err := parseSize(requestMemory)
	if err != nil || n < awsapi.MaxBodyBytes || n >= maxRequestMemory {
		return usageErrorf("--max-request-memory %q: want a size of at least 1M (the largest request body) and below 4G, such as 64M", requestMemory)
	}
	limits.RequestMemory = n
	if limits.MaxConnectionsPerSource == 0 {
		limits.MaxConnectionsPerSource = max(limits.MaxConnections/4, 1)
	}
	// Before any key is unsealed in this process.
	if err := protectProcess(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usageErrorf("--log-level %q: want debug, info, warn or error", logLevel)
	}
	loc, err := c.location(c.store.store)
	if err != nil {
		return err
	}
	if loc.dir == "" && auditFile == "" {
		return usageErrorf("--audit-log FILE is needed with a store that is not a keystore directory (%s)", loc.name)
	}
	var handler slog.Handler
	switch logFormat {
	case "text":
		handler = slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(c.stderr, &slog.HandlerOptions{Level: level})
	default:
		return usageErrorf("--log-format %q: want text or json", logFormat)
	}
	// No secret of the store's URL reaches the logs.
	log := slog.New(&redactingHandler{handler, c.secrets})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("GOGC") == "" {
		// Requests allocate little that lives: collecting less often
		// halves the CPU per request for a few MiB more of heap.
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// At GOGC=400 garbage may grow to four times the live heap, and
		// clients can make the live heap as large as the request memory
		// and their connections: ask the collector to keep the process
		// under that bound instead (a soft limit: it collects more often).
		debug.SetMemoryLimit(memoryLimit(limits))
	}
	opts := keystore.Options{Service: kms.Options{Region: region, AccountID: account}}
	if err := c.rootOptions(ctx, c.store.root, "", &opts); err != nil {
		return err
	}
	ks, err := c.openKeystore(ctx, loc, opts)
	if err != nil {
		if errors.Is(err, keystore.ErrIdentityMismatch) {
			return &hintError{err, "leave out --region and --account-id, or serve another keystore (--store)"}
		}
		return keystoreHint(err, loc, opts)
	}
	defer ks.Close()
	if ks.Created {
		log.Info("created a new keystore", "store", loc.name, "rootKey", string(ks.RootSource))
	}
	if ks.ReadOnly != nil {
		log.Warn(fsProblem(ks.ReadOnly)+"; reading it only: requests that change keys fail", "store", loc.name)
	}

	root, err := rootCredentials(loc.dir, log)
	if err != nil {
		return err
	}
	var principals []*awsapi.Principal
	if policyFile != "" {
		pf, err := awsapi.LoadPolicy(policyFile)
		if err != nil {
			return err
		}
		principals = pf.Principals
	}
	legacyAuditKey := "" // only a keystore directory had one
	if loc.dir != "" {
		legacyAuditKey = filepath.Join(loc.dir, keystore.AuditKeyFileName)
	}
	if auditFile == "" {
		auditFile = filepath.Join(loc.dir, "audit.log")
	}
	auditKey, migrated, err := ks.AuditKey(ctx, legacyAuditKey)
	if err != nil {
		return err
	}
	if migrated {
		log.Info("moved the audit key into the keystore, sealed under its root key, and removed its file", "file", legacyAuditKey)
	}
	audit, err := awsapi.OpenAuditLog(auditFile, awsapi.AuditOptions{Key: auditKey, Sync: auditSync, Marks: ks, Logger: log})
	clear(auditKey)
	if err != nil {
		return err
	}
	defer func() {
		if err := audit.Close(); err != nil {
			log.Error("closing the audit log", "err", err)
		}
	}()
	srv, err := awsapi.New(awsapi.Config{Backend: ks, Region: ks.Region(), Root: root, Principals: principals,
		InsecureDev: insecure, Audit: audit, Logger: log, SecureTransport: certFile != "",
		Timeouts: awsapi.Timeouts{ReadHeader: headerTimeout, Read: 30 * time.Second, Write: 30 * time.Second, Idle: 2 * time.Minute},
		Limits:   limits})
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("loading the TLS certificate: %v", err)
		}
		// Go's defaults (TLS 1.2 and up, its cipher suites), as net/http
		// would use; HTTP/1.1 only, which is all the KMS API needs.
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %v", addr, err)
	}
	scheme := "http"
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
		scheme = "https"
	}
	if tlsConfig == nil && !isLoopback(host) {
		const warning = "serving plain HTTP on a non-loopback address: requests and answers, plaintext data keys included, cross the network unencrypted; use --tls-cert and --tls-key"
		fmt.Fprintf(c.stderr, "envelope serve: WARNING: %s (%s)\n", warning, addr)
		log.Warn(warning, "addr", addr)
	}
	if metricsAddr != "" {
		stopMetrics, err := serveMetrics(metricsAddr, srv.MetricsHandler(), log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopMetrics()
	}
	go sweep(ctx, ks, log)
	log.Info("connection limits", "maxConnections", limits.MaxConnections, "maxConnectionsPerSource", limits.MaxConnectionsPerSource,
		"maxRequestMemory", limits.RequestMemory, "headerTimeout", headerTimeout)
	log.Info("serving the AWS KMS API", "url", scheme+"://"+ln.Addr().String(), "region", ks.Region(), "account", ks.AccountID(),
		"store", loc.name, "rootKey", string(ks.RootSource), "audit", auditFile, "principals", len(principals)+1, "insecureDev", insecure)
	if policyFile != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP) // before serving: a SIGHUP then no longer ends the process
		defer signal.Stop(hup)
		go reloadPolicy(ctx, hup, srv, policyFile, log)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %v", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %v", err)
	}
	log.Info("stopped")
	return nil
}

// reloadPolicy loads the policy file again on each SIGHUP, until ctx ends,
// and swaps the server's principals at once; a file that does not load
// leaves the principals in force, and the log says why.
func reloadPolicy(ctx context.Context, hup <-chan os.Signal, srv *awsapi.Server, file string, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		pf, err := awsapi.LoadPolicy(file)
		if err == nil {
			err = srv.SetPrincipals(pf.Principals)
		}
		if err != nil {
			log.Error("policy file not reloaded: the previous one stays in force", "file", file, "err", err)
			continue
		}
		log.Info("policy file reloaded", "file", file, "principals", len(pf.Principals)+1)
	}
}

// serveMetrics serves GET /metrics on addr with h, until the function it
// returns is called.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s (--metrics-addr): %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go hs.Serve(ln)
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { hs.Close() }, nil
}

// memoryLimit is the Go memory limit serve sets: 64 MiB for the server
// itself, the request memory, and 64 KiB for each connection (its buffers,
// its goroutine's stack and its answer).
func memoryLimit(l awsapi.Limits) int64 {
	return 64<<20 + l.RequestMemory + int64(l.MaxConnections)*64<<10
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// rootCredentials returns the root principal's credentials: from the
// environment, or from root-credentials.json in the keystore directory dir
// (made on first start; a store that is not a directory has none).
func rootCredentials(dir string, log *slog.Logger) (awsapi.RootCredentials, error) {
	id, secret := os.Getenv("ENVELOPE_ROOT_ACCESS_KEY_ID"), os.Getenv("ENVELOPE_ROOT_SECRET_ACCESS_KEY")
	switch {
	case id != "" && secret != "":
		return awsapi.RootCredentials{AccessKeyID: id, SecretAccessKey: secret}, nil
	case id != "" || secret != "":
		return awsapi.RootCredentials{}, errors.New("set both ENVELOPE_ROOT_ACCESS_KEY_ID and ENVELOPE_ROOT_SECRET_ACCESS_KEY, or neither")
	case dir == "":
		return awsapi.RootCredentials{}, errors.New("set ENVELOPE_ROOT_ACCESS_KEY_ID and ENVELOPE_ROOT_SECRET_ACCESS_KEY: a store that is not a keystore directory has no root-credentials.json (give every server of the store the same)")
	}
	file := filepath.Join(dir, "root-credentials.json")
	c, created, err := awsapi.LoadOrCreateRootCredentials(file)
	if err != nil {
		return c, err
	}
	if created {
		log.Info("generated root credentials (mode 0600); use them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", "file", file, "accessKeyId", c.AccessKeyID)
	} else {
		log.Info("root credentials", "file", file, "accessKeyId", c.AccessKeyID)
	}
	return c, nil
}

// sweep destroys keys whose deletion window ended and performs due
// rotations, every minute.
func sweep(ctx context.Context, ks *keystore.Keystore, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := ks.Sweep(ctx); err != nil && ctx.Err() == nil {
			log.Warn("keystore maintenance failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

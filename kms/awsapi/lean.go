package awsapi

import (
	"context"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/envelopekms/envelope/kms/awsapi/internal/httpserver"
)

// The lean front end: [Server.Serve] serves the API with the lean HTTP/1.1
// server of package httpserver, which hands every POST / to leanFront as
// an exchange of plain values, and every other request to
// [Server.Handler].

// Timeouts bound the connections of [Server.Serve]; zero fields take the
// defaults: ReadHeader (10 s) bounds a request's line and headers, from
// the connection's accept for its first request, so that a connection
// that sends nothing is closed after it; Read (30 s) a whole request, body
// included; Write (30 s) an answer; Idle (2 min) the wait for the next
// request on a kept-alive connection.
type Timeouts = httpserver.Timeouts

// Limits bound what the connections of [Server.Serve] may hold, so that
// clients without credentials cannot exhaust the server's file descriptors
// or memory; zero fields take those of [DefaultLimits]: MaxConnections
// caps the open connections; MaxConnectionsPerSource those from one client
// address (for IPv6, one /64 network), default a quarter of
// MaxConnections; RequestMemory the bytes all connections together hold
// for requests beyond each connection's 8 KiB buffer (raised to
// [MaxBodyBytes] if lower). At a cap a new connection sheds an open one
// that is not being served, never one that is (see [Server.Serve]).
type Limits = httpserver.Limits

// DefaultRequestMemory is the default of Limits.RequestMemory: 64 MiB.
const DefaultRequestMemory = httpserver.DefaultRequestMemory

// DefaultLimits returns the default limits for this process:
// MaxConnections from its limit on open files (RLIMIT_NOFILE) less a
// reserve for the rest of the server (64 descriptors and a sixteenth of
// the limit), between 16 and 4096 (1024 where the limit is unknown);
// MaxConnectionsPerSource a quarter of that; RequestMemory 64 MiB.
func DefaultLimits() Limits { return httpserver.DefaultLimits() }

// ErrServerClosed is what [Server.Serve] returns after [Server.Shutdown]
// (it is net/http's, so that callers can treat both servers alike).
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections on ln and serves the KMS API on each, with a
// lean HTTP/1.1 server, until ln fails or [Server.Shutdown] is called
// (then it returns [ErrServerClosed]). For HTTPS, pass a listener from
// [crypto/tls.NewListener] whose config offers only "http/1.1" by ALPN.
//
// It serves the same routes as [Server.Handler] with the same answers, at
// a fraction of net/http's cost per request, within the [Config]'s
// [Limits] and [Timeouts]: request lines and headers of at most 64 KiB,
// bodies only by Content-Length, strict parsing (a malformed request is
// refused and the connection closed). At a connection cap a new
// connection sheds an open one that is not being served: one that has not
// completed a signed request, the oldest first, else the one idle longest;
// it is closed at once only when every open connection is being served.
// Before a body over 4 KiB is waited for, the signature's access key and
// scope are checked: a request bound to be refused is refused without its
// body.
func (s *Server) Serve(ln net.Listener) error {
	return s.lean.Serve(ln, (*leanFront)(s), s.Handler())
}

// Shutdown stops Serve gracefully: it closes the listeners and the idle
// connections, then waits for the requests in flight to be answered (each
// connection closes after its answer). If ctx ends first, it closes the
// remaining connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error { return s.lean.Shutdown(ctx) }

// leanFront is the Server as the lean server's handler of POST /.
type leanFront Server

var _ httpserver.Handler = (*leanFront)(nil)

// kmsRequestOf returns the request r of the lean server as a kmsRequest.
func kmsRequestOf(r *httpserver.Request) kmsRequest {
	return kmsRequest{ctx: r.Context, method: r.Method, path: r.Path, rawPath: r.Path, rawQuery: r.RawQuery, host: r.Host,
		contentLength: r.ContentLength, header: r.Header, source: r.Source, body: r.Body, bodyErr: r.BodyErr}
}

// Precheck implements [httpserver.Handler] with [Server.precheck].
func (f *leanFront) Precheck(r *httpserver.Request) error {
	req := kmsRequestOf(r)
	return (*Server)(f).precheck(&req)
}

// ServeExchange implements [httpserver.Handler] with [Server.handle]. The
// answer is built in the connection's buffer, from which the lean server
// writes it.
func (f *leanFront) ServeExchange(hx *httpserver.Exchange) {
	x := exchanges.Get().(*exchange)
	x.req = kmsRequestOf(&hx.Request)
	x.resp.body = hx.Response.Body
	(*Server)(f).handle(x)
	w := &hx.Response
	w.Status, w.Body, w.Authenticated = x.resp.status, x.resp.body, x.resp.authenticated
	w.Header = append(w.Header, httpserver.Field{Name: "Content-Type", Value: jsonContentType},
		httpserver.Field{Name: "x-amzn-RequestId", Value: x.resp.requestID})
	if x.resp.errorType != "" {
		w.Header = append(w.Header, httpserver.Field{Name: "x-amzn-ErrorType", Value: x.resp.errorType})
	}
	x.req, x.resp = kmsRequest{}, kmsResponse{} // nothing of the connection's stays in the pool
	exchanges.Put(x)
}

// jsonContentType is the Content-Type of every KMS answer.
const jsonContentType = "application/x-amz-json-1.1"

// leanMetrics returns the metrics of the lean server hs.
func leanMetrics(hs *httpserver.Server) []prometheus.Collector {
	gauge := func(name, help string, f func(httpserver.Stats) int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f(hs.Stats())) })
	}
	counter := func(name, help string, labels prometheus.Labels, f func(httpserver.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f(hs.Stats())) })
	}
	const shedHelp = "Connections closed at a connection cap to make room for a new one, by kind: " +
		"fresh (had not completed a signed request) or trusted (had)."
	return []prometheus.Collector{
		gauge("envelope_http_connections", "Open connections of the HTTP server.",
			func(st httpserver.Stats) int64 { return int64(st.Connections) }),
		counter("envelope_http_connections_shed_total", shedHelp, prometheus.Labels{"kind": "fresh"},
			func(st httpserver.Stats) int64 { return st.ShedFresh }),
		counter("envelope_http_connections_shed_total", shedHelp, prometheus.Labels{"kind": "trusted"},
			func(st httpserver.Stats) int64 { return st.ShedTrusted }),
		counter("envelope_http_connections_refused_total", "New connections closed at a connection cap, every open one being served.", nil,
			func(st httpserver.Stats) int64 { return st.Refused }),
		gauge("envelope_http_request_memory_bytes", "Memory held by requests beyond their connections' buffers (large bodies and headers).",
			func(st httpserver.Stats) int64 { return st.RequestMemory }),
		gauge("envelope_http_request_memory_waiting", "Requests waiting for request memory.",
			func(st httpserver.Stats) int64 { return st.RequestMemoryWaiting }),
	}
}

package httpserver

import (
	"context"
	"errors"
)

// A Handler serves the requests of the API: every POST / (whatever its
// query). The server calls it from the connection's goroutine, one
// request at a time per connection, and many connections at once.
type Handler interface {
	// Precheck is asked whether to read a request's body before the
	// server waits for it: when the body has not all arrived with the
	// headers and is longer than [PrecheckBytes], or its client waits
	// for "100 Continue". r is the request without its Body. A non-nil
	// error refuses the body unread: the server then calls ServeExchange
	// with the error as the request's BodyErr, and closes the connection
	// after the answer. It is the place to refuse, without holding a body,
	// a request that is bound to be refused (an unknown credential).
	Precheck(r *Request) error
	// ServeExchange answers x.Request into x.Response. It must not keep
	// x, or anything it refers to, after it returns.
	ServeExchange(x *Exchange)
}

// An Exchange is one request to a [Handler] and its answer. The server
// reuses it, and the memory of its slices, from request to request on a
// connection.
type Exchange struct {
	Request  Request
	Response Response
}

// Request is a request to the [Handler]. Its strings are parts of one
// copy of the request's head, safe to keep; Header and Body are the
// connection's memory, valid until ServeExchange returns.
type Request struct {
	// Context is cancelled when the connection closes, or when
	// [Server.Shutdown] gives up waiting for the request.
	Context context.Context
	// Method, Path (as sent, not unescaped), RawQuery (after the "?")
	// and Host (the Host header; "" for HTTP/1.0 without one) are those
	// of the request line and headers.
	Method, Path, RawQuery, Host string
	// ContentLength is the Content-Length header's value (0 without one).
	ContentLength int64
	// Header is the request's header fields, in the order received.
	Header Header
	// Source is the client's address, without the port.
	Source string
	// Body is the whole body, read before the Handler is called.
	Body []byte
	// BodyErr is why Body was not read: [ErrBodyTooLarge],
	// [ErrNoMemory], the error of [Handler.Precheck], or the error of
	// reading it (the read timeout, the client gone). The server closes
	// the connection after the answer.
	BodyErr error
}

// Response is the answer to a request of the [Handler]. The server resets
// it (keeping the memory of Header and Body) before each request.
type Response struct {
	// Status is the HTTP status: 0 is 200; one whose answer has no body
	// (1xx, 204, 304) or outside 100–599 is answered 500.
	Status int
	// Header is the answer's header fields, Content-Type among them,
	// besides Content-Length, Date and Connection, which the server
	// writes. Names must be tokens (fields with other names are not
	// written); control characters are left out of values.
	Header Header
	// Body is the answer's body: append to Body[:0] to reuse its memory.
	// It must not share memory with the request's Body.
	Body []byte
	// Authenticated says that the request proved its client's identity
	// (a valid signature): the connection is then trusted, and at a
	// connection cap kept over those that have not (see [Limits]).
	Authenticated bool
}

// Field is a header field.
type Field struct{ Name, Value string }

// HasName reports whether the field's name is name, ignoring ASCII case.
func (f Field) HasName(name string) bool { return asciiEqualFold(f.Name, name) }

// Header is a request's or response's header fields, in order.
type Header []Field

// Get returns the value of the first field named name (ignoring ASCII
// case), or "".
func (h Header) Get(name string) string {
	for i := range h {
		if h[i].HasName(name) {
			return h[i].Value
		}
	}
	return ""
}

// Errors a request's BodyErr may hold.
var (
	// ErrBodyTooLarge is a body longer than [MaxBodyBytes], refused by
	// its Content-Length before it is read.
	ErrBodyTooLarge = errors.New("httpserver: request body too large")
	// ErrNoMemory is a body that could not get its share of the request
	// memory ([Limits.RequestMemory]) in time: the client should retry
	// later.
	ErrNoMemory = errors.New("httpserver: no request memory available")
)

// asciiEqualFold reports whether a and b are equal ignoring ASCII case.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

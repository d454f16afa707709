package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// mask replaces passwords in what Redact returns.
const mask = "xxxxx"

// Redact returns a connection string (a URL or a keyword/value string) fit
// for a message: its password — the user information's, and any password or
// sslpassword parameter — replaced by "xxxxx", as in
// postgres://user:xxxxx@host/db. In a URL that does not parse, everything
// from the first ':' of the user information to its last '@' is masked, and
// every password=… in it.
func Redact(conn string) string {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			scheme, rest, _ := strings.Cut(conn, "://")
			if i := strings.LastIndexByte(rest, '@'); i >= 0 {
				if user, _, ok := strings.Cut(rest[:i], ":"); ok {
					rest = user + ":" + mask + rest[i:]
				}
			}
			return redactParams(scheme + "://" + rest)
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), mask)
		}
		q := u.Query()
		changed := false
		for name := range q {
			if strings.EqualFold(name, "password") || strings.EqualFold(name, "sslpassword") {
				q.Set(name, mask)
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
		// url.URL.String escapes the mask's neighbours as it should; the
		// mask itself needs no escaping.
		return u.String()
	}
	return redactParams(conn)
}

// passwordParam matches a password or sslpassword parameter of a
// keyword/value connection string or of a URL's query, quoted or not.
var passwordParam = regexp.MustCompile(`(?i)\b((?:ssl)?password)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]*)`)

func redactParams(s string) string {
	return passwordParam.ReplaceAllString(s, "${1}="+mask)
}

// secrets returns what may be passwords in a connection string that may
// not parse: the user information after its first ':' (as written and
// decoded), and the values of password parameters.
func secrets(conn string) []string {
	var out []string
	if _, rest, ok := strings.Cut(conn, "://"); ok {
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			if _, pw, ok := strings.Cut(rest[:i], ":"); ok && pw != "" {
				out = append(out, pw)
				if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
					out = append(out, dec)
				}
			}
		}
	}
	for _, m := range passwordParam.FindAllStringSubmatch(conn, -1) {
		if v := strings.Trim(m[2], "'"); v != "" {
			out = append(out, v, m[2])
		}
	}
	return out
}

// scrub masks in msg whatever may be a password of conn.
func scrub(msg, conn string) string {
	for _, pw := range secrets(conn) {
		msg = strings.ReplaceAll(msg, pw, mask)
	}
	return msg
}

// parseErrorText describes why pgx could not parse the connection string
// conn, without the string itself (which may hold a password).
func parseErrorText(conn string, err error) string {
	return scrub(parseErrorReason(err), conn)
}

func parseErrorReason(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// Its Error repeats the string, redacted on a best-effort basis,
		// then says why: keep only why.
		msg := pe.Error()
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			return "invalid connection string: " + oneLine(msg[i+3:])
		}
		if cause := pe.Unwrap(); cause != nil {
			return "invalid connection string: " + oneLine(cause.Error())
		}
		return "invalid connection string"
	}
	return "invalid connection string: " + oneLine(err.Error())
}

// connErrorText describes a failure to connect to the server that cfg
// names, in one line and without the password: the server's own reason
// (authentication, a missing database) when it gave one, else the network's.
func connErrorText(cfg *pgx.ConnConfig, err error) string {
	where := "the server"
	if cfg != nil && cfg.Host != "" {
		if strings.HasPrefix(cfg.Host, "/") {
			where = fmt.Sprintf("the server's socket in %s", cfg.Host)
		} else {
			where = net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
		}
	}
	user, database := "", ""
	if cfg != nil {
		user, database = cfg.User, cfg.Database
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01":
			return fmt.Sprintf("password authentication failed for user %q at %s", user, where)
		case "28000":
			return fmt.Sprintf("%s refused user %q: %s", where, user, oneLine(pgErr.Message))
		case "3D000":
			return fmt.Sprintf("database %q does not exist at %s", database, where)
		case "57P03":
			return fmt.Sprintf("%s is starting up or shutting down: %s", where, oneLine(pgErr.Message))
		}
		return fmt.Sprintf("%s: %s (SQLSTATE %s)", where, oneLine(pgErr.Message), pgErr.Code)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot connect to %s: connection refused (is PostgreSQL running there?)", where)
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return fmt.Sprintf("cannot connect to %s: timed out", where)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("cannot connect to %s: unknown host %q", where, dnsErr.Name)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return fmt.Sprintf("cannot connect to %s: %s", where, oneLine(opErr.Err.Error()))
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) && connErr.Unwrap() != nil {
		return fmt.Sprintf("cannot connect to %s: %s", where, oneLine(connErr.Unwrap().Error()))
	}
	return fmt.Sprintf("cannot connect to %s: %s", where, oneLine(err.Error()))
}

// errorText returns the text of a statement's error in one line: the
// server's message and code, or the client's error.
func errorText(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Sprintf("%s (SQLSTATE %s)", oneLine(pgErr.Message), pgErr.Code)
	}
	return oneLine(err.Error())
}

// oneLine joins the lines of s.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

package policy

import (
	"errors"
	"strconv"
	"strings"
)

// Error is why [Parse] refused a document: the element at fault and what is
// wrong with it. The server answers MalformedPolicyDocumentException with
// it (or LimitExceededException for [ErrTooLarge]).
type Error struct {
	// Path names the element: "Statement[2].Condition.StringEquals.
	// kms:EncryptionContext:tenant", with statements counted from 0 as in
	// [Decision.Statement]. It is "" for the document as a whole.
	Path string
	// Reason says what is wrong with it, and often what to write instead.
	Reason string

	err error
}

// Error returns "policy: PATH: REASON".
func (e *Error) Error() string {
	if e.Path == "" {
		return "policy: " + e.Reason
	}
	return "policy: " + e.Path + ": " + e.Reason
}

// Unwrap returns [ErrTooLarge] for a document over the size limit, and nil
// otherwise.
func (e *Error) Unwrap() error { return e.err }

// ErrTooLarge is the error an [*Error] for a document over its size limit
// wraps: AWS answers those with LimitExceededException rather than
// MalformedPolicyDocumentException.
var ErrTooLarge = errors.New("policy: document too large")

// path is the position of an element in a document while it is parsed.
type path struct {
	parent  *path
	name    string // an object member
	index   int    // an array element, when isIndex
	isIndex bool
}

// The document itself is the nil *path.
func (p *path) key(name string) *path { return &path{parent: p, name: name} }
func (p *path) at(i int) *path        { return &path{parent: p, index: i, isIndex: true} }

// String renders the path as Error.Path shows it. Member names holding a
// dot, bracket, quote or space are quoted.
func (p *path) String() string {
	if p == nil {
		return ""
	}
	var parts []*path
	for q := p; q != nil; q = q.parent {
		parts = append(parts, q)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		q := parts[i]
		if q.isIndex {
			b.WriteString("[" + strconv.Itoa(q.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if q.name == "" || strings.ContainsAny(q.name, ".[]\" \t\n\r") {
			b.WriteString(strconv.Quote(q.name))
		} else {
			b.WriteString(q.name)
		}
	}
	return b.String()
}

func errAt(p *path, reason string) *Error { return &Error{Path: p.String(), Reason: reason} }

package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/envelopekms/envelope/kms"
)

// operation is one entry of the dispatch table ([operations]): how to
// decode, authorize, call and audit one KMS operation. [op] makes it from
// the operation's declaration.
type operation struct {
	name string
	// index numbers the operation for per-operation state (metrics);
	// unknownOperation is 0.
	index int
	// call decodes the JSON body, runs the operation and appends its JSON
	// answer to dst. A nil check allows everything (the root principal).
	// Permissions on keys are not check's: the KMS asks the kms.Authorizer
	// ctx carries for each key it resolves.
	call func(ctx context.Context, api kms.API, body []byte, check authorizer, dst []byte) (opResult, error)
	// spec is the declaration call runs (a *spec[In, Out]), for the tests
	// that hold the table to kms.API and the fast codecs to encoding/json.
	spec any
}

// unknownOperation stands for requests that name no operation.
var unknownOperation = operation{name: "Unknown"}

// opResult is what an operation returns: the answer's JSON, and what the
// audit log records.
type opResult struct {
	body  []byte
	audit auditInfo
}

// authorizer checks that the caller may perform action on a resource the
// server checks itself, where the KMS resolves no key: an alias as a
// resource of its own (CreateAlias, UpdateAlias and DeleteAlias need
// permission on the alias and, checked by the KMS, on the keys involved),
// or, for alias "", no key at all ("*": CreateKey, ListKeys, ListAliases
// without KeyId, GenerateRandom).
type authorizer func(action, alias string) error

// auditInfo is what the audit log records of a request besides who and
// when.
type auditInfo struct {
	keyARN string
	ecKeys []string
	// decidedBy and sid: what decided the request's authorization.
	decidedBy, sid string
}

// scope is what an operation acts on, as far as the server authorizes it
// itself: keys are the KMS's to authorize (it asks the kms.Authorizer of
// the request's context about each key it resolves), the rest the
// server's.
type scope int

const (
	undeclared scope = iota
	// onKey: a key the request names.
	onKey
	// onKeyOrNone: a key if the request names one, else no key, and the
	// server checks the action on "*".
	onKeyOrNone
	// onNoKey: no key; the server checks the action on "*".
	onNoKey
)

// spec is an operation as its entry in the table declares it.
type spec[In, Out any] struct {
	name   string
	action string // the IAM action the server checks itself: "kms:" + name
	method func(kms.API, context.Context, *In) (*Out, error)
	scope  scope
	req    request[In]
	answer answer[Out]
	// members maps In's JSON member names by their lower case (see
	// checkMemberNames).
	members map[string]string
}

// request is what an operation's entry declares about its input.
type request[In any] struct {
	// key returns the key reference the request gives: the audit log
	// records it when the KMS resolves no key.
	key func(*In) string
	// alias returns the alias the operation changes: the server checks
	// the action on it as a resource of its own.
	alias func(*In) string
	// context returns the encryption context, whose keys the audit log
	// records.
	context func(*In) map[string]string
	// fast, if set, decodes the common shapes of the input faster than
	// encoding/json, to the same result.
	fast *fieldTable[In]
}

// answer is what an operation's entry declares about its output.
type answer[Out any] struct {
	// arn returns the ARN of the key the operation acted on, as the
	// answer reports it (the audit log records it).
	arn func(*Out) string
	// fast, if set, encodes the output exactly as encoding/json would.
	fast *fieldTable[Out]
}

// A fact declares one thing about an operation, in its entry of the table
// (see [op]): it records itself in the operation's scope, request[In] or
// answer[Out], or returns why it cannot (it is about other types).
type fact func(sc *scope, req, ans any) error

// requestFact is a fact about the input type In.
func requestFact[In any](set func(*request[In])) fact {
	return func(_ *scope, req, _ any) error {
		r, ok := req.(*request[In])
		if !ok {
			return fmt.Errorf("a fact about %v in %v", reflect.TypeFor[In](), reflect.TypeOf(req).Elem())
		}
		set(r)
		return nil
	}
}

// scoped is a fact that sets the operation's scope.
func scoped(s scope, then fact) fact {
	return func(sc *scope, req, ans any) error {
		if *sc != undeclared {
			return errors.New("its scope (key, keyOrNone or noKey) is declared twice")
		}
		*sc = s
		if then == nil {
			return nil
		}
		return then(sc, req, ans)
	}
}

// key declares that the operation acts on the key the request names in
// the member ref returns (the audit log records it when the KMS resolves
// none); the KMS authorizes the key.
func key[In any](ref func(*In) string) fact {
	return scoped(onKey, requestFact(func(r *request[In]) { r.key = ref }))
}

// keyOrNone declares that the operation acts on the key the request names
// in the member ref returns, or, if it names none, on no key: the server
// then checks the action on "*".
func keyOrNone[In any](ref func(*In) string) fact {
	return scoped(onKeyOrNone, requestFact(func(r *request[In]) { r.key = ref }))
}

// noKey declares that the operation acts on no key: the server checks the
// action on "*".
var noKey = scoped(onNoKey, nil)

// alias declares that the operation changes the alias the member name
// returns: the server checks the action on the alias as a resource of its
// own (the KMS checks it on the keys involved).
func alias[In any](name func(*In) string) fact {
	return requestFact(func(r *request[In]) { r.alias = name })
}

// encryptionContext declares the member that holds the request's
// encryption context, whose keys (never values) the audit log records.
func encryptionContext[In any](ec func(*In) map[string]string) fact {
	return requestFact(func(r *request[In]) { r.context = ec })
}

// arn declares the member of the answer that reports the ARN of the key
// the operation acted on, which the audit log records.
func arn[Out any](keyARN func(*Out) string) fact {
	return func(_ *scope, _, ans any) error {
		a, ok := ans.(*answer[Out])
		if !ok {
			return fmt.Errorf("a fact about %v in %v", reflect.TypeFor[Out](), reflect.TypeOf(ans).Elem())
		}
		a.arn = keyARN
		return nil
	}
}

// fast declares the fast codecs of the operation: in decodes the common
// shapes of its input (and leaves the rest to encoding/json), out encodes
// its output; out must list every field of the output.
func fast[In, Out any](in *fieldTable[In], out *fieldTable[Out]) fact {
	return func(_ *scope, req, ans any) error {
		r, ok1 := req.(*request[In])
		a, ok2 := ans.(*answer[Out])
		switch {
		case !ok1 || !ok2:
			return fmt.Errorf("fast codecs of %v and %v in %v and %v", reflect.TypeFor[In](), reflect.TypeFor[Out](), reflect.TypeOf(req).Elem(), reflect.TypeOf(ans).Elem())
		case !out.encodes:
			return fmt.Errorf("the field table of %v cannot encode it: it must list every field, each a string or a []byte", reflect.TypeFor[Out]())
		}
		r.fast, a.fast = in, out
		return nil
	}
}

// op declares an operation: its name (X-Amz-Target "TrentService." +
// name), the kms.API method that runs it (a method expression,
// kms.API.Name), and the facts the server needs of it. Its scope (key,
// keyOrNone or noKey) must be among them; the IAM action the server
// checks itself is "kms:" + name. A fact about other types than the
// method's, a scope declared twice or none, panic: the table is made when
// the package is initialized, so every test stops.
func op[In, Out any](name string, method func(kms.API, context.Context, *In) (*Out, error), facts ...fact) operation {
	s := &spec[In, Out]{name: name, action: "kms:" + name, method: method, members: memberNames(reflect.TypeFor[In]())}
	for _, f := range facts {
		if err := f(&s.scope, &s.req, &s.answer); err != nil {
			panic(fmt.Sprintf("awsapi: operation %s: %v", name, err))
		}
	}
	if s.scope == undeclared {
		panic(fmt.Sprintf("awsapi: operation %s: no scope declared (key, keyOrNone or noKey)", name))
	}
	return operation{name: name, call: s.call, spec: s}
}

// table makes the dispatch table of ops, numbering them; it panics if a
// name is used twice.
func table(ops ...operation) map[string]operation {
	m := make(map[string]operation, len(ops))
	for i, o := range ops {
		if _, dup := m[o.name]; dup {
			panic("awsapi: operation " + o.name + " is declared twice")
		}
		o.index = i + 1
		m[o.name] = o
	}
	return m
}

// errEncode is an answer encoding/json could not encode.
var errEncode = &kms.Error{Code: kms.CodeInternal, Message: "could not encode the answer"}

// call runs the operation for one request (see [operation.call]).
func (s *spec[In, Out]) call(ctx context.Context, api kms.API, body []byte, check authorizer, dst []byte) (opResult, error) {
	in := new(In)
	var res opResult
	if len(body) > 0 && (s.req.fast == nil || !s.req.fast.decode(body, in)) {
		*in = *new(In) // whatever the fast decoder had set
		if err := json.Unmarshal(body, in); err != nil {
			return res, &kms.Error{Code: "SerializationException", Message: "the request body is not valid JSON for " + s.name + ": " + jsonErrorText(err)}
		}
		if err := checkMemberNames(body, s.members); err != nil {
			return res, err
		}
	}
	if s.req.context != nil {
		if ec := s.req.context(in); len(ec) > 0 {
			keys := make([]string, 0, len(ec))
			for k := range ec {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			res.audit.ecKeys = keys
		}
	}
	if s.req.key != nil {
		res.audit.keyARN = s.req.key(in)
	}
	if check != nil {
		if err := s.authorize(in, check); err != nil {
			return res, err
		}
	}
	out, err := s.method(api, ctx, in)
	if err != nil {
		return res, err
	}
	if s.answer.arn != nil {
		res.audit.keyARN = s.answer.arn(out)
	}
	if s.answer.fast != nil {
		res.body = s.answer.fast.encode(dst, out)
	} else {
		b, err := json.Marshal(out)
		if err != nil {
			return res, errEncode
		}
		res.body = append(dst, b...)
	}
	return res, nil
}

// authorize makes the checks the server makes itself: the action on the
// alias the request changes, or on "*" for a request on no key.
func (s *spec[In, Out]) authorize(in *In, check authorizer) error {
	switch {
	case s.req.alias != nil:
		return check(s.action, s.req.alias(in))
	case s.scope == onNoKey, s.scope == onKeyOrNone && s.req.key(in) == "":
		return check(s.action, "")
	}
	return nil
}

// memberNames returns the JSON member names of the struct type t, as
// encoding/json names its fields, by their lower case.
func memberNames(t reflect.Type) map[string]string {
	m := map[string]string{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		m[strings.ToLower(name)] = name
	}
	return m
}

// checkMemberNames refuses members whose names match one of names (from
// memberNames) only when case is ignored: encoding/json would take
// {"keyid": …} for KeyId, where AWS matches member names exactly.
func checkMemberNames(body []byte, names map[string]string) error {
	for _, k := range topLevelKeys(body) {
		if exact, ok := names[strings.ToLower(k)]; ok && exact != k {
			return &kms.Error{Code: kms.CodeValidation, Message: fmt.Sprintf("unknown member %q: member names are case-sensitive (did you mean %s?)", k, exact)}
		}
	}
	return nil
}

// topLevelKeys returns the member names of a JSON object without decoding
// its values (the body is already known to be valid JSON), unescaped as
// encoding/json reads them.
func topLevelKeys(b []byte) []string {
	var keys []string
	depth := 0
	expectKey := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{':
			depth++
			expectKey = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		case '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if expectKey && depth == 1 && j <= len(b) {
				raw := b[i+1 : min(j, len(b))]
				name := string(raw)
				if bytes.IndexByte(raw, '\\') >= 0 {
					// "\u006beyId" is the member keyId to encoding/json.
					if json.Unmarshal(b[i:min(j+1, len(b))], &name) != nil {
						name = string(raw)
					}
				}
				keys = append(keys, name)
			}
			expectKey = false
			i = j
		}
	}
	return keys
}

// jsonErrorText keeps decode errors short and free of request content.
func jsonErrorText(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return "field " + e.Field + " has the wrong type"
	case *json.SyntaxError:
		return "syntax error"
	}
	return "cannot decode"
}

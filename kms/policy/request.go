package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A Request is what a policy is asked about: may Principal perform Action
// on Resource, in this Context?
type Request struct {
	// Principal is the caller's ARN: arn:aws:iam::ACCOUNT:user/NAME or
	// …:role/NAME for an identity, arn:aws:iam::ACCOUNT:root for the
	// account itself. The account, aws:PrincipalArn, aws:PrincipalAccount,
	// kms:CallerAccount and aws:username (for a user) come from it.
	Principal string
	// Action is the permission asked for, as IAM names it: "kms:Decrypt",
	// "kms:ReEncryptFrom"...
	Action string
	// Resource is the ARN of the key acted on, or, for an operation on no
	// key (CreateKey, ListKeys...), "arn:aws:kms:REGION:ACCOUNT:*" as AWS
	// authorizes those: only the Resource entries "*" and that account-wide
	// pattern match it.
	Resource string
	// Context holds the condition keys' values.
	Context Context
}

// Context is the request context: the values of the condition keys a
// request has. A key it lacks is absent: conditions on it are false,
// negated ones ("StringNotEquals") true, IfExists ones true, as AWS has it.
type Context struct {
	// Time is the time of the request: aws:CurrentTime and aws:EpochTime.
	// The zero Time leaves both absent. (The package has no clock.)
	Time time.Time
	// SourceIP is the caller's address: aws:SourceIp. The zero Addr leaves
	// it absent.
	SourceIP netip.Addr
	// EncryptionContext is the request's encryption context:
	// kms:EncryptionContext:KEY and kms:EncryptionContextKeys. An empty
	// one leaves both absent, as AWS has it for a request without one.
	EncryptionContext map[string]string
	// Values are the other keys' values ([String], [Strings], [Bool]). A
	// key the fields above supply, or that the evaluator does not know, is
	// never read from here: [Request.Check] reports such entries.
	Values []Value
}

// Value is a condition key and its value (or values, for a multi-valued
// key) in a [Context].
type Value struct {
	// Key is the condition key, such as "kms:KeySpec" or
	// "aws:ResourceTag/team"; like IAM, the evaluator ignores its case.
	Key string

	one   string
	many  []string
	multi bool
}

// String returns a single-valued key's value.
func String(key, value string) Value { return Value{Key: key, one: value} }

// Strings returns a multi-valued key's values (kms:GrantOperations,
// kms:ResourceAliases, aws:TagKeys...). Strings(key, nil) is the key with
// no value: absent, as AWS has an empty set.
func Strings(key string, values []string) Value { return Value{Key: key, many: values, multi: true} }

// Bool returns a Boolean key's value, "true" or "false".
func Bool(key string, value bool) Value { return Value{Key: key, one: strconv.FormatBool(value)} }

// Check reports what the evaluator would not read as the caller meant: an
// entry of Context.Values whose key it does not know, whose key the
// Request's other fields supply, or with one value for a multi-valued key
// or several for a single-valued one (a single-valued key with several
// values is taken as undecided). Evaluate does not call it: it is for tests
// and for a server to check, once, the requests it builds.
func (r *Request) Check() error {
	var errs []error
	if r.Principal != "" {
		if _, _, _, _, ok := parseCaller(r.Principal); !ok {
			errs = append(errs, fmt.Errorf("principal %q is not an IAM or STS ARN", r.Principal))
		}
	}
	for _, v := range r.Context.Values {
		k, ok := lookupKey(v.Key)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("unknown condition key %q", v.Key))
		case k.def.isDerived():
			errs = append(errs, fmt.Errorf("condition key %q comes from the request's fields, not from Context.Values", v.Key))
		case k.def.multi && !v.multi:
			errs = append(errs, fmt.Errorf("condition key %q is multi-valued: use Strings", v.Key))
		case !k.def.multi && v.multi:
			errs = append(errs, fmt.Errorf("condition key %q is single-valued: use String or Bool", v.Key))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	return nil
}

// parseCaller cuts a principal ARN, arn:PARTITION:SERVICE::ACCOUNT:RESOURCE.
func parseCaller(arn string) (partition, service, account, resource string, ok bool) {
	parts, ok := splitARN(arn)
	if !ok || parts[0] != "arn" || parts[3] != "" || parts[1] == "" || !isAccountID(parts[4]) ||
		parts[2] != "iam" && parts[2] != "sts" || parts[5] == "" {
		return "", "", "", "", false
	}
	return parts[1], parts[2], parts[4], parts[5], true
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// cvKind says what a context value is.
type cvKind uint8

const (
	cvString cvKind = iota
	cvTime          // aws:CurrentTime
	cvEpoch         // aws:EpochTime
	cvIP            // aws:SourceIp
)

// cval is one value of a condition key in a request.
type cval struct {
	kind cvKind
	s    string
	t    time.Time
	ip   netip.Addr
}

// text is the value as a string. Only the typed keys (aws:CurrentTime,
// aws:EpochTime, aws:SourceIp) compared as strings pay for formatting.
func (v *cval) text() string {
	switch v.kind {
	case cvTime:
		return v.t.UTC().Format(time.RFC3339)
	case cvEpoch:
		return strconv.FormatInt(v.t.Unix(), 10)
	case cvIP:
		return v.ip.String()
	}
	return v.s
}

func (v *cval) number() (float64, bool) {
	if v.kind == cvEpoch {
		return float64(v.t.Unix()), true
	}
	return parseNumber(v.text())
}

func (v *cval) time() (time.Time, bool) {
	switch v.kind {
	case cvTime:
		return v.t, true
	case cvEpoch:
		return time.Unix(v.t.Unix(), 0), true
	}
	t, err := parseDate(v.text())
	return t, err == nil
}

func (v *cval) addr() (netip.Addr, bool) {
	if v.kind == cvIP {
		return v.ip.Unmap(), true
	}
	a, err := netip.ParseAddr(v.s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (v *cval) bool() (bool, bool) {
	switch {
	case v.kind != cvString:
		return false, false
	case strings.EqualFold(v.s, "true"):
		return true, true
	case strings.EqualFold(v.s, "false"):
		return false, true
	}
	return false, false
}

// evalState is one evaluation's view of its Request.
type evalState struct {
	r *Request
	// The caller, from r.Principal; account is "" if it is no IAM or STS
	// ARN.
	partition, account, username string
	root                         bool
	// ecDup: the encryption context has two keys equal but for case
	// (known once ecChecked).
	ecChecked, ecDup bool
}

func newEvalState(r *Request) evalState {
	st := evalState{r: r}
	partition, service, account, resource, ok := parseCaller(r.Principal)
	if !ok {
		return st
	}
	st.partition, st.account = partition, account
	if service == "iam" {
		st.root = resource == "root"
		if rest, ok := strings.CutPrefix(resource, "user/"); ok {
			st.username = rest[strings.LastIndexByte(rest, '/')+1:]
		}
	}
	return st
}

// each calls f with each value the request has for key, and returns how
// many there were.
func (st *evalState) each(key *keyRef, f func(v cval)) int {
	ctx := &st.r.Context
	var v cval
	switch key.def.src {
	case srcPrincipalArn:
		if st.r.Principal == "" {
			return 0
		}
		v.s = st.r.Principal
	case srcPrincipalAccount:
		if st.account == "" {
			return 0
		}
		v.s = st.account
	case srcUsername:
		if st.username == "" {
			return 0
		}
		v.s = st.username
	case srcCurrentTime, srcEpochTime:
		if ctx.Time.IsZero() {
			return 0
		}
		v.kind, v.t = cvTime, ctx.Time
		if key.def.src == srcEpochTime {
			v.kind = cvEpoch
		}
	case srcSourceIP:
		if !ctx.SourceIP.IsValid() {
			return 0
		}
		v.kind, v.ip = cvIP, ctx.SourceIP
	case srcEncryptionContext:
		ec := ctx.EncryptionContext
		if s, ok := ec[key.suffix]; ok && !st.ecHasDup() {
			v.s = s
			f(v)
			return 1
		}
		n := 0
		for k, s := range ec {
			if strings.EqualFold(k, key.suffix) {
				v.s = s
				f(v)
				n++
			}
		}
		return n
	case srcEncryptionContextKeys:
		for k := range ctx.EncryptionContext {
			v.s = k
			f(v)
		}
		return len(ctx.EncryptionContext)
	default:
		n := 0
		for i := range ctx.Values {
			cv := &ctx.Values[i]
			if !strings.EqualFold(cv.Key, key.name) {
				continue
			}
			if !cv.multi {
				v.s = cv.one
				f(v)
				n++
				continue
			}
			for _, s := range cv.many {
				v.s = s
				f(v)
				n++
			}
		}
		return n
	}
	f(v)
	return 1
}

// ecHasDup reports whether the encryption context has two keys that differ
// only in case.
func (st *evalState) ecHasDup() bool {
	if st.ecChecked {
		return st.ecDup
	}
	st.ecChecked = true
	ec := st.r.Context.EncryptionContext
	if len(ec) < 2 {
		return false
	}
	var buf [16]string
	keys := buf[:0]
	for k := range ec {
		keys = append(keys, k)
	}
	for i := range keys {
		for _, k := range keys[i+1:] {
			if strings.EqualFold(keys[i], k) {
				st.ecDup = true
				return true
			}
		}
	}
	return false
}

// variable resolves a policy variable: yes with its value; no if the
// request lacks the key and the variable has no default; unknown if the
// key has several different values (an encryption context key given in two
// cases).
func (st *evalState) variable(v *variable) (string, tri) {
	var val string
	t := no
	st.each(&v.key, func(c cval) {
		s := c.text()
		switch t {
		case no:
			val, t = s, yes
		case yes:
			if s != val {
				t = unknown
			}
		}
	})
	if t == no && v.hasDef {
		return v.def, yes
	}
	return val, t
}

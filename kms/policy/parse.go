package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// Kind is what a policy document is attached to, which decides what it may
// hold.
type Kind uint8

const (
	// KeyPolicy is a key's resource policy: every statement names its
	// principals (Principal or NotPrincipal).
	KeyPolicy Kind = iota + 1
	// IdentityPolicy is attached to a user or role: it names no principal
	// (the identity it is attached to is the principal), and its Sids are
	// unique and alphanumeric, as IAM requires.
	IdentityPolicy
)

// String returns "key policy" or "identity policy".
func (k Kind) String() string {
	switch k {
	case KeyPolicy:
		return "key policy"
	case IdentityPolicy:
		return "identity policy"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Size limits, as AWS sets them.
const (
	// MaxKeyPolicySize is the size of the largest key policy, in bytes
	// (AWS KMS: 32 KiB, not adjustable).
	MaxKeyPolicySize = 32768
	// MaxIdentityPolicySize is the size of the largest identity policy, in
	// characters other than white space (IAM's managed policy quota).
	MaxIdentityPolicySize = 6144
)

// Versions of the policy language.
const (
	Version2012 = "2012-10-17" // the current one: policy variables
	Version2008 = "2008-10-17" // no policy variables: "${…}" is literal text
)

// Parse checks and compiles a policy document of the given kind. It refuses
// what AWS would refuse and also what this evaluator does not support,
// with an [*Error] naming the element: nothing in a document it accepts is
// ignored. A document over the size limit gives an [*Error] that wraps
// [ErrTooLarge].
//
// The Policy is immutable and safe for concurrent use: parse a document
// once and evaluate it for every request.
func Parse(doc string, kind Kind) (*Policy, error) {
	switch kind {
	case KeyPolicy:
		if len(doc) > MaxKeyPolicySize {
			return nil, &Error{Reason: fmt.Sprintf("the key policy is %d bytes, over the limit of %d", len(doc), MaxKeyPolicySize), err: ErrTooLarge}
		}
	case IdentityPolicy:
		n := 0
		for _, r := range doc {
			if !unicode.IsSpace(r) {
				n++
			}
		}
		if n > MaxIdentityPolicySize {
			return nil, &Error{Reason: fmt.Sprintf("the identity policy has %d characters other than white space, over the limit of %d", n, MaxIdentityPolicySize), err: ErrTooLarge}
		}
	default:
		return nil, fmt.Errorf("policy: Parse with unknown kind %v", kind)
	}
	if strings.TrimSpace(doc) == "" {
		return nil, &Error{Reason: "the document is empty"}
	}
	root, err := readDocument(doc)
	if err != nil {
		return nil, err
	}
	if root.kind != jsonObject {
		return nil, &Error{Reason: "a policy is a JSON object, not " + root.kind.String()}
	}
	pol := &Policy{kind: kind}
	var stmts *node
	for i, k := range root.keys {
		v, p := root.vals[i], (*path)(nil).key(k)
		switch k {
		case "Version":
			if v.kind != jsonString || v.str != Version2012 && v.str != Version2008 {
				return nil, errAt(p, `must be "2012-10-17" (or the old "2008-10-17")`)
			}
			pol.version = v.str
		case "Id":
			if v.kind != jsonString {
				return nil, errAt(p, "must be a string")
			}
			pol.id, pol.hasID = v.str, true
		case "Statement":
			stmts = v
		default:
			return nil, errAt(p, unknownElement(k, "policy", "Version", "Id", "Statement"))
		}
	}
	if stmts == nil {
		return nil, &Error{Reason: "the policy has no Statement"}
	}
	p := (*path)(nil).key("Statement")
	switch stmts.kind {
	case jsonObject:
		s, err := pol.compileStatement(p, stmts)
		if err != nil {
			return nil, err
		}
		pol.stmts, pol.single = []statement{s}, true
	case jsonArray:
		if len(stmts.vals) == 0 {
			return nil, errAt(p, "has no statement")
		}
		for i, n := range stmts.vals {
			s, err := pol.compileStatement(p.at(i), n)
			if err != nil {
				return nil, err
			}
			pol.stmts = append(pol.stmts, s)
		}
	default:
		return nil, errAt(p, "must be a statement (an object) or a list of them")
	}
	seen := map[string]int{}
	for i := range pol.stmts {
		s := &pol.stmts[i]
		if kind == IdentityPolicy && s.hasSid {
			if j, ok := seen[s.sid]; ok {
				return nil, errAt(pol.stmtPath(i).key("Sid"), fmt.Sprintf("%q is also statement %d's Sid: an identity policy's Sids are unique", s.sid, j))
			}
			seen[s.sid] = i
		}
		if s.effect == Deny {
			pol.denies = append(pol.denies, i)
		} else {
			pol.allows = append(pol.allows, i)
		}
	}
	return pol, nil
}

func (pol *Policy) stmtPath(i int) *path {
	p := (*path)(nil).key("Statement")
	if pol.single {
		return p
	}
	return p.at(i)
}

// unknownElement explains an element a container (policy, statement,
// principal map) does not hold.
func unknownElement(k, container string, known ...string) string {
	for _, w := range known {
		if strings.EqualFold(k, w) {
			return fmt.Sprintf("unknown element %q: did you mean %q? (element names are case-sensitive)", k, w)
		}
	}
	return fmt.Sprintf("unknown element %q (a %s holds %s)", k, container, strings.Join(known, ", "))
}

// statement is a compiled statement.
type statement struct {
	sid    string
	hasSid bool
	effect Effect

	principal  principalMode
	principals principalSet

	notAction bool
	actions   []actionPattern

	notResource bool
	resources   []arnPattern

	conds []cond

	// The elements as written, for MarshalJSON.
	principalNode, actionNode, resourceNode, conditionNode *node
}

type principalMode uint8

const (
	noPrincipal principalMode = iota // an identity policy's statement
	isPrincipal
	isNotPrincipal
)

func (pol *Policy) compileStatement(p *path, n *node) (statement, error) {
	var s statement
	if n.kind != jsonObject {
		return s, errAt(p, "a statement is a JSON object, not "+n.kind.String())
	}
	var effect, action, resource, principal string
	for i, k := range n.keys {
		v, kp := n.vals[i], p.key(k)
		var err error
		switch k {
		case "Sid":
			if v.kind != jsonString {
				return s, errAt(kp, "must be a string")
			}
			if pol.kind == IdentityPolicy {
				for _, r := range v.str {
					if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
						return s, errAt(kp, fmt.Sprintf("%q: an identity policy's Sid holds only letters and digits", v.str))
					}
				}
			}
			s.sid, s.hasSid = v.str, true
		case "Effect":
			switch {
			case v.kind == jsonString && v.str == "Allow":
				s.effect = Allow
			case v.kind == jsonString && v.str == "Deny":
				s.effect = Deny
			default:
				return s, errAt(kp, `must be "Allow" or "Deny"`)
			}
			effect = k
		case "Principal", "NotPrincipal":
			if principal != "" {
				return s, errAt(kp, "a statement has Principal or NotPrincipal, not both")
			}
			principal = k
			s.principal = isPrincipal
			if k == "NotPrincipal" {
				s.principal = isNotPrincipal
			}
			s.principalNode = v
			err = pol.compilePrincipal(kp, v, &s.principals)
		case "Action", "NotAction":
			if action != "" {
				return s, errAt(kp, "a statement has Action or NotAction, not both")
			}
			action, s.notAction, s.actionNode = k, k == "NotAction", v
			err = eachString(kp, v, func(ep *path, a string) error {
				ap, err := compileAction(ep, a)
				s.actions = append(s.actions, ap)
				return err
			})
		case "Resource", "NotResource":
			if resource != "" {
				return s, errAt(kp, "a statement has Resource or NotResource, not both")
			}
			resource, s.notResource, s.resourceNode = k, k == "NotResource", v
			err = eachString(kp, v, func(ep *path, r string) error {
				ap, err := pol.compileResource(ep, r)
				s.resources = append(s.resources, ap)
				return err
			})
		case "Condition":
			s.conditionNode = v
			s.conds, err = pol.compileConditions(kp, v)
		default:
			return s, errAt(kp, unknownElement(k, "statement", "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"))
		}
		if err != nil {
			return s, err
		}
	}
	switch {
	case effect == "":
		return s, errAt(p, `has no Effect ("Allow" or "Deny")`)
	case action == "":
		return s, errAt(p, "has no Action (or NotAction)")
	case resource == "":
		return s, errAt(p, `has no Resource (or NotResource): a key policy's statements have "Resource": "*"`)
	case principal == "" && pol.kind == KeyPolicy:
		return s, errAt(p, `has no Principal (or NotPrincipal): a key policy's statements name whom they apply to, such as {"AWS": "arn:aws:iam::111122223333:root"}`)
	}
	return s, nil
}

// eachString calls f with each string of a string-or-list-of-strings
// element.
func eachString(p *path, n *node, f func(p *path, s string) error) error {
	switch n.kind {
	case jsonString:
		return f(p, n.str)
	case jsonArray:
		if len(n.vals) == 0 {
			return errAt(p, "is an empty list")
		}
		for i, v := range n.vals {
			if v.kind != jsonString {
				return errAt(p.at(i), "must be a string, not "+v.kind.String())
			}
			if err := f(p.at(i), v.str); err != nil {
				return err
			}
		}
		return nil
	}
	return errAt(p, "must be a string or a list of strings, not "+n.kind.String())
}

// principalSet is the principals a Principal or NotPrincipal names.
type principalSet struct {
	any      bool     // "*"
	arns     []string // identities (users, roles, role sessions), by ARN
	accounts []accountRef
	services []string // AWS services: never an IAM caller
}

// accountRef is an account principal: "111122223333" (any partition) or
// "arn:PARTITION:iam::111122223333:root".
type accountRef struct {
	partition, id string
}

func (pol *Policy) compilePrincipal(p *path, n *node, ps *principalSet) error {
	if pol.kind == IdentityPolicy {
		return errAt(p, "an identity policy names no principal: it applies to the user or role it is attached to")
	}
	switch n.kind {
	case jsonString:
		if n.str != "*" {
			return errAt(p, `must be "*" or a map such as {"AWS": "arn:aws:iam::111122223333:user/name"}`)
		}
		ps.any = true
		return nil
	case jsonObject:
	default:
		return errAt(p, `must be "*" or a map such as {"AWS": "arn:aws:iam::111122223333:user/name"}, not `+n.kind.String())
	}
	if len(n.keys) == 0 {
		return errAt(p, "names no principal")
	}
	for i, k := range n.keys {
		kp := p.key(k)
		var err error
		switch k {
		case "AWS":
			err = eachString(kp, n.vals[i], func(ep *path, s string) error { return ps.addAWS(ep, s) })
		case "Service":
			err = eachString(kp, n.vals[i], func(ep *path, s string) error {
				if s == "" || strings.ContainsAny(s, "*?") || strings.ContainsFunc(s, unicode.IsSpace) {
					return errAt(ep, quote(s)+" is not a service principal (such as \"cloudtrail.amazonaws.com\")")
				}
				ps.services = append(ps.services, s)
				return nil
			})
		case "Federated", "CanonicalUser":
			return errAt(kp, "this KMS supports AWS principals (and Service principals, which never match its callers), not "+k+" ones")
		default:
			return errAt(kp, unknownElement(k, "Principal", "AWS", "Service"))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// addAWS adds an "AWS" principal: "*", an account id, or the ARN of an
// account, user, role, role session or federated user.
func (ps *principalSet) addAWS(p *path, s string) error {
	if s == "*" {
		ps.any = true
		return nil
	}
	if isAccountID(s) {
		ps.accounts = append(ps.accounts, accountRef{id: s})
		return nil
	}
	if strings.ContainsAny(s, "*?") {
		return errAt(p, quote(s)+`: a principal cannot hold wildcards; use "*" and a condition on aws:PrincipalArn (ArnLike) instead`)
	}
	const want = `: want "*", an account id, or the ARN of an account (arn:aws:iam::111122223333:root), user (…:user/NAME) or role (…:role/NAME)`
	parts, ok := splitARN(s)
	if !ok || parts[0] != "arn" || !isPartition(parts[1]) || parts[3] != "" || !isAccountID(parts[4]) {
		return errAt(p, quote(s)+" is not a principal"+want)
	}
	res := parts[5]
	switch parts[2] {
	case "iam":
		if res == "root" {
			ps.accounts = append(ps.accounts, accountRef{partition: parts[1], id: parts[4]})
			return nil
		}
		kind, name, _ := strings.Cut(res, "/")
		switch kind {
		case "user", "role":
			if validIAMPath(name) {
				ps.arns = append(ps.arns, s)
				return nil
			}
		case "group":
			return errAt(p, quote(s)+": a user group cannot be a principal (policies name users and roles)")
		}
	case "sts":
		kind, name, _ := strings.Cut(res, "/")
		switch kind {
		case "assumed-role":
			role, session, ok := strings.Cut(name, "/")
			if ok && validIAMName(role) && validIAMName(session) {
				ps.arns = append(ps.arns, s)
				return nil
			}
		case "federated-user":
			if validIAMName(name) {
				ps.arns = append(ps.arns, s)
				return nil
			}
		}
	}
	return errAt(p, quote(s)+" is not a principal"+want)
}

func isPartition(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// validIAMName reports whether s is an IAM name: letters, digits and
// +=,.@_- (the IAM user guide's name requirements).
func validIAMName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+=,.@_-", r)) {
			return false
		}
	}
	return true
}

// validIAMPath reports whether s is a path and a name, "path/to/name": the
// path holds printable ASCII (IAM's rule; wildcards were refused before),
// the name is an IAM name.
func validIAMPath(s string) bool {
	i := strings.LastIndexByte(s, '/')
	for j := range i + 1 {
		if s[j] < 0x21 || s[j] > 0x7e {
			return false
		}
	}
	return len(s) <= 512+128 && validIAMName(s[i+1:])
}

// variables reports whether the policy's version has policy variables.
func (pol *Policy) variables() bool { return pol.version == Version2012 }

// compileResource checks a Resource entry: "*", or a KMS ARN whose parts
// may hold wildcards (not the service) and, after the fifth colon,
// policy variables.
func (pol *Policy) compileResource(p *path, s string) (arnPattern, error) {
	if s == "*" {
		return arnPattern{any: true}, nil
	}
	const want = `: want "*" or a KMS ARN such as "arn:aws:kms:us-east-1:111122223333:key/*"`
	parts := splitPattern(s, pol.variables())
	switch {
	case len(parts) < 6 || parts[0] != "arn":
		return arnPattern{}, errAt(p, quote(s)+" is not an ARN"+want)
	case strings.ContainsAny(parts[2], "*?"):
		return arnPattern{}, errAt(p, quote(s)+": the service part of a resource ARN cannot hold wildcards")
	case parts[2] != "kms":
		return arnPattern{}, errAt(p, quote(s)+" is not a KMS resource: only arn:…:kms:… resources (and \"*\") mean anything to this KMS")
	}
	var a arnPattern
	for i, part := range parts {
		if i < 5 && pol.variables() && strings.Contains(part, "${") {
			return arnPattern{}, errAt(p, quote(s)+": a policy variable may stand only in the resource part of an ARN (after the fifth colon)")
		}
		g, err := compileGlob(p, part, pol.variables(), true)
		if err != nil {
			return arnPattern{}, err
		}
		a.parts[i] = g
	}
	return a, nil
}

// splitPattern cuts s at its first five colons, not counting the colons
// inside policy variables ("${aws:username}") when vars is set.
func splitPattern(s string, vars bool) []string {
	var parts []string
	start, depth := 0, 0
	for i := 0; i < len(s) && len(parts) < 5; i++ {
		switch {
		case vars && strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case vars && s[i] == '}' && depth > 0:
			depth--
		case s[i] == ':' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// compileGlob compiles a condition value or an ARN part. With vars (policy
// language 2012-10-17), ${key} and ${key, 'default'} are policy variables
// and ${*}, ${?}, ${$} stand for the literal characters; with wild, * and ?
// are wildcards.
func compileGlob(p *path, text string, vars, wild bool) (glob, error) {
	g := glob{text: text, wild: wild, plain: !wild || !strings.ContainsAny(text, "*?")}
	if !vars || !strings.Contains(text, "${") {
		return g, nil
	}
	lit := func(s string) {
		for s != "" {
			i := len(s)
			if wild {
				if j := strings.IndexAny(s, "*?"); j >= 0 {
					i = j
				}
			}
			if i > 0 {
				g.segs = append(g.segs, seg{kind: segLit, lit: s[:i]})
			}
			if i == len(s) {
				return
			}
			if s[i] == '*' {
				g.segs = append(g.segs, seg{kind: segStar})
			} else {
				g.segs = append(g.segs, seg{kind: segOne})
			}
			s = s[i+1:]
		}
	}
	rest := text
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			lit(rest)
			break
		}
		lit(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return glob{}, errAt(p, quote(text)+`: a policy variable "${" has no closing "}" (write ${$} for a literal "$")`)
		}
		inner := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		switch inner {
		case "*", "?", "$":
			g.segs = append(g.segs, seg{kind: segLit, lit: inner})
			continue
		}
		v, err := parseVariable(p, text, inner)
		if err != nil {
			return glob{}, err
		}
		g.segs = append(g.segs, seg{kind: segVar, v: v})
	}
	return g, nil
}

// parseVariable reads the inside of ${…}: a key, and maybe ", 'default'".
func parseVariable(p *path, text, inner string) (*variable, error) {
	name, def, hasDef := strings.Cut(inner, ",")
	name = strings.TrimSpace(name)
	v := &variable{hasDef: hasDef}
	if hasDef {
		def = strings.TrimSpace(def)
		if len(def) < 2 || def[0] != '\'' || def[len(def)-1] != '\'' {
			return nil, errAt(p, quote(text)+": a policy variable's default is written ${key, 'default'}")
		}
		v.def = def[1 : len(def)-1]
	}
	k, ok := lookupKey(name)
	switch {
	case !ok:
		return nil, errAt(p, quote(text)+": unknown condition key "+quote(name)+" in policy variable")
	case k.def.multi:
		return nil, errAt(p, quote(text)+": "+quote(name)+" is multi-valued and cannot be a policy variable")
	}
	v.key = k
	return v, nil
}

func (pol *Policy) compileConditions(p *path, n *node) ([]cond, error) {
	if n.kind != jsonObject {
		return nil, errAt(p, `must be a map of operators to maps of keys to values, such as {"StringEquals": {"kms:EncryptionContext:tenant": "a"}}`)
	}
	var conds []cond
	for i, opName := range n.keys {
		op, set, ifExists, err := parseOperator(p.key(opName), opName)
		if err != nil {
			return nil, err
		}
		keys := n.vals[i]
		if keys.kind != jsonObject {
			return nil, errAt(p.key(opName), `must be a map of condition keys to values, such as {"kms:EncryptionContext:tenant": "a"}`)
		}
		for j, keyName := range keys.keys {
			c, err := pol.compileCondition(p.key(opName).key(keyName), op, set, ifExists, keyName, keys.vals[j])
			if err != nil {
				return nil, err
			}
			conds = append(conds, c)
		}
	}
	return conds, nil
}

func (pol *Policy) compileCondition(p *path, op *opDef, set setOp, ifExists bool, keyName string, vals *node) (cond, error) {
	c := cond{op: op, set: set, ifExists: ifExists}
	k, ok := lookupKey(keyName)
	if !ok {
		return c, errAt(p, unknownKey(keyName))
	}
	c.key = k
	switch {
	case k.def.multi && set == setNone && op.family != famNull:
		return c, errAt(p, quote(keyName)+" is multi-valued: qualify the operator with ForAnyValue: (some value matches) or ForAllValues: (every value matches)")
	case set == setAll && k.def.noForAll:
		return c, errAt(p, "OverlyPermissiveCondition: ForAllValues with the single-valued key "+quote(keyName)+" matches requests without it, or with other keys; remove ForAllValues")
	}
	var texts []string
	var tp []*path
	switch vals.kind {
	case jsonString, jsonNumber, jsonBool:
		texts, tp = []string{vals.str}, []*path{p}
	case jsonArray:
		if len(vals.vals) == 0 {
			return c, errAt(p, "has no value")
		}
		for i, v := range vals.vals {
			switch v.kind {
			case jsonString, jsonNumber, jsonBool:
				texts, tp = append(texts, v.str), append(tp, p.at(i))
			default:
				return c, errAt(p.at(i), "a condition value is a string, number or boolean, not "+v.kind.String())
			}
		}
	default:
		return c, errAt(p, "a condition value is a string, number or boolean (or a list of them), not "+vals.kind.String())
	}
	for i, t := range texts {
		vp := tp[i]
		if pol.variables() && strings.Contains(t, "${") && op.family != famString && op.family != famArn {
			return c, errAt(vp, quote(t)+": policy variables work only with the String and Arn operators")
		}
		switch op.family {
		case famString:
			g, err := compileGlob(vp, t, pol.variables(), op.wild)
			if err != nil {
				return c, err
			}
			c.globs = append(c.globs, g)
		case famArn:
			a, err := compileArnValue(vp, t, pol.variables())
			if err != nil {
				return c, err
			}
			c.arns = append(c.arns, a)
		case famNumeric:
			f, ok := parseNumber(t)
			if !ok {
				return c, errAt(vp, quote(t)+" is not a number")
			}
			c.nums = append(c.nums, f)
		case famDate:
			d, err := parseDate(t)
			if err != nil {
				return c, errAt(vp, quote(t)+": "+err.Error())
			}
			c.times = append(c.times, d)
		case famBool, famNull:
			switch {
			case strings.EqualFold(t, "true"):
				c.bools = append(c.bools, true)
			case strings.EqualFold(t, "false"):
				c.bools = append(c.bools, false)
			default:
				return c, errAt(vp, quote(t)+` is not "true" or "false"`)
			}
		case famIP:
			pr, err := parsePrefix(t)
			if err != nil {
				return c, errAt(vp, quote(t)+" is not an IP address or CIDR block (such as \"203.0.113.0/24\" or \"2001:db8::/32\")")
			}
			c.prefixes = append(c.prefixes, pr)
		}
	}
	return c, nil
}

func unknownKey(name string) string {
	for _, k := range keyDefs {
		if k.prefix && strings.EqualFold(name, k.name) {
			return quote(name) + " names no key after the prefix: write " + quote(k.name+"KEY")
		}
	}
	if strings.EqualFold(name, "kms:EncryptionContext") {
		return quote(name) + " is no condition key: write kms:EncryptionContext:KEY (one context key's value) or kms:EncryptionContextKeys (the keys)"
	}
	return "unknown condition key " + quote(name) + " (this KMS knows AWS KMS's condition keys and AWS's global ones)"
}

// compileArnValue compiles an Arn operator's value: "*" or an ARN whose six
// parts may hold wildcards and policy variables.
func compileArnValue(p *path, s string, vars bool) (arnPattern, error) {
	if s == "*" {
		return arnPattern{any: true}, nil
	}
	parts := splitPattern(s, vars)
	if len(parts) < 6 || parts[0] != "arn" && !strings.ContainsAny(parts[0], "*?$") {
		return arnPattern{}, errAt(p, quote(s)+` is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, with wildcards if need be)`)
	}
	var a arnPattern
	for i, part := range parts {
		g, err := compileGlob(p, part, vars, true)
		if err != nil {
			return arnPattern{}, err
		}
		a.parts[i] = g
	}
	return a, nil
}

// parsePrefix reads an IpAddress value: a CIDR block, or an address alone
// (a /32 or /128), its host bits cleared.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			if !p.IsValid() {
				return netip.Prefix{}, fmt.Errorf("bad prefix")
			}
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad address")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

package policy

import (
	"fmt"
	"strconv"
)

// Policy is a parsed policy document ([Parse]). It is immutable and safe
// for concurrent use.
type Policy struct {
	kind    Kind
	version string
	id      string
	hasID   bool
	single  bool // Statement was one object, not a list
	stmts   []statement
	denies  []int // the Deny statements, in order
	allows  []int // the Allow statements, in order
}

// Kind returns the kind of policy p was parsed as.
func (p *Policy) Kind() Kind { return p.kind }

// Len returns the number of statements.
func (p *Policy) Len() int { return len(p.stmts) }

// Sid returns statement i's Sid, "" if it has none.
func (p *Policy) Sid(i int) string { return p.stmts[i].sid }

// Principals returns the AWS principals the policy's statements name
// (Principal and NotPrincipal, "AWS" entries other than "*"), each once, in
// document order: AWS refuses a key policy that names a principal that
// does not exist, and a server checks them with this.
func (p *Policy) Principals() []string {
	var out []string
	seen := map[string]bool{}
	for i := range p.stmts {
		n := p.stmts[i].principalNode
		if n == nil || n.kind != jsonObject {
			continue
		}
		for j, k := range n.keys {
			if k != "AWS" {
				continue
			}
			v := n.vals[j]
			vals := []*node{v}
			if v.kind == jsonArray {
				vals = v.vals
			}
			for _, e := range vals {
				if e.str != "*" && !seen[e.str] {
					seen[e.str] = true
					out = append(out, e.str)
				}
			}
		}
	}
	return out
}

// Effect is the outcome of an evaluation.
type Effect uint8

const (
	// ImplicitDeny: no statement allows the request (and none denies it).
	ImplicitDeny Effect = iota
	// Allow: a statement allows the request, and none denies it.
	Allow
	// Deny: a statement denies the request. An explicit deny wins over
	// every allow, in this policy and in any other.
	Deny
)

// String returns the Effect's name: "ImplicitDeny", "Allow" or "Deny".
func (e Effect) String() string {
	switch e {
	case ImplicitDeny:
		return "ImplicitDeny"
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	}
	return "Effect(" + strconv.Itoa(int(e)) + ")"
}

// Decision is a policy's answer to a request, and the statement that gave
// it.
type Decision struct {
	// Effect is the answer.
	Effect Effect
	// Statement is the index (from 0) of the statement that decided: the
	// first Deny statement that applies, else the first Allow statement
	// that applies (one that names the caller before one that names only
	// its account). It is -1 for ImplicitDeny.
	Statement int
	// Sid is that statement's Sid ("" if it has none, or for
	// ImplicitDeny).
	Sid string
	// ViaAccount is set for an Allow whose statement names the caller's
	// account (arn:aws:iam::ACCOUNT:root, or the bare account id) rather
	// than the caller or everyone. In a key policy, AWS reads that as
	// "the account's identity policies decide": the caller needs one of
	// them to allow the request too. (The account's root itself is
	// allowed directly.)
	ViaAccount bool
}

// String describes the decision for a person: "Allow by statement 0
// (\"Enable IAM User Permissions\"), for the caller's account".
func (d Decision) String() string {
	if d.Statement < 0 {
		return d.Effect.String() + ": no statement applies"
	}
	s := fmt.Sprintf("%s by statement %d", d.Effect, d.Statement)
	if d.Sid != "" {
		s += fmt.Sprintf(" (%q)", d.Sid)
	}
	if d.ViaAccount {
		s += ", for the caller's account"
	}
	return s
}

// Evaluate decides r against the policy: Deny if a Deny statement applies,
// else Allow if an Allow statement does, else ImplicitDeny. The order of
// the statements does not change the Effect, only which statement the
// Decision names when several apply.
//
// A statement applies when its Action (or NotAction), Resource (or
// NotResource), Principal (or NotPrincipal, in a key policy) and every
// Condition match. A request that leaves a condition undecided (an
// encryption context with two keys that differ only in case, a value an
// operator cannot read) gains no Allow from it and escapes no Deny.
//
// Evaluate does not allocate for the usual condition keys; comparing
// aws:CurrentTime, aws:EpochTime or aws:SourceIp as strings formats them.
func (p *Policy) Evaluate(r *Request) Decision {
	st := newEvalState(r)
	for _, i := range p.denies {
		if ok, _ := p.stmts[i].applies(&st); ok {
			return Decision{Effect: Deny, Statement: i, Sid: p.stmts[i].sid}
		}
	}
	viaAccount := -1
	for _, i := range p.allows {
		ok, via := p.stmts[i].applies(&st)
		switch {
		case ok && !via:
			return Decision{Effect: Allow, Statement: i, Sid: p.stmts[i].sid}
		case ok && viaAccount < 0:
			viaAccount = i
		}
	}
	if viaAccount >= 0 {
		return Decision{Effect: Allow, Statement: viaAccount, Sid: p.stmts[viaAccount].sid, ViaAccount: true}
	}
	return Decision{Effect: ImplicitDeny, Statement: -1}
}

// applies reports whether the statement applies to the request, and
// whether only through the caller's account (a Principal naming the
// account the caller belongs to).
func (s *statement) applies(st *evalState) (ok, viaAccount bool) {
	switch s.principal {
	case isPrincipal:
		direct, via := s.principals.match(st)
		if !direct && !via {
			return false, false
		}
		viaAccount = !direct
	case isNotPrincipal:
		if s.principals.excludes(st) {
			return false, false
		}
	}

	m := false
	for i := range s.actions {
		if s.actions[i].match(st.r.Action) {
			m = true
			break
		}
	}
	if m == s.notAction {
		return false, false
	}

	res := no
	for i := range s.resources {
		if res = or(res, s.resources[i].match(st.r.Resource, st)); res == yes {
			break
		}
	}
	if s.notResource {
		res = res.not()
	}
	if res == no {
		return false, false
	}

	for i := range s.conds {
		if res = and(res, s.conds[i].eval(st)); res == no {
			return false, false
		}
	}
	if s.effect == Allow && res != yes {
		return false, false
	}
	return true, viaAccount
}

// match reports whether a Principal names the caller (or everyone), or
// only the caller's account.
func (ps *principalSet) match(st *evalState) (direct, viaAccount bool) {
	if ps.any {
		return true, false
	}
	for _, a := range ps.arns {
		if a == st.r.Principal {
			return true, false
		}
	}
	if ps.namesAccount(st) {
		return st.root, !st.root
	}
	return false, false
}

// excludes reports whether a NotPrincipal exempts the caller: it names the
// caller itself, or everyone. Naming the caller's account exempts the
// account's root only, not its users and roles.
func (ps *principalSet) excludes(st *evalState) bool {
	if ps.any {
		return true
	}
	for _, a := range ps.arns {
		if a == st.r.Principal {
			return true
		}
	}
	return st.root && ps.namesAccount(st)
}

func (ps *principalSet) namesAccount(st *evalState) bool {
	if st.account == "" {
		return false
	}
	for _, a := range ps.accounts {
		if a.id == st.account && (a.partition == "" || a.partition == st.partition) {
			return true
		}
	}
	return false
}

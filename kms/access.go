package kms

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelopekms/envelope/kms/policy"
)

// Caller is who makes a request, as AWS KMS decides for it: an IAM
// identity of the KMS's account and its identity policies.
type Caller struct {
	// ARN is the caller's ARN: arn:aws:iam::ACCOUNT:user/NAME,
	// …:role/NAME, or arn:aws:iam::ACCOUNT:root for the account itself.
	ARN string
	// Policies are the caller's identity policies.
	Policies []*IdentityPolicy
	// SourceIP is the caller's address (aws:SourceIp); the zero Addr
	// leaves it absent.
	SourceIP netip.Addr
	// SecureTransport is aws:SecureTransport: the request came over TLS.
	SecureTransport bool
	// Known reports whether a principal ARN of the KMS's account names an
	// identity that exists, for the principals a new key policy names
	// (AWS refuses a key policy naming one that does not). nil accepts
	// every principal.
	Known func(arn string) bool

	// scratch holds a decision's policy request, so that deciding for a
	// Caller the server keeps per request allocates nothing: a Caller
	// decides for one request at a time.
	scratch struct {
		pr   policy.Request
		vals [16]policy.Value
	}
}

// IdentityPolicy is a parsed identity policy with its name.
type IdentityPolicy struct {
	// Name names the policy in decisions ("policy-file", "readers" ...).
	Name   string
	Policy *policy.Policy
	// aliases: the document mentions kms:ResourceAliases, whose values
	// cost a read to collect.
	aliases bool
}

// ParseIdentityPolicy parses an identity policy document strictly (see
// [policy.Parse]).
func ParseIdentityPolicy(name, doc string) (*IdentityPolicy, error) {
	p, err := policy.Parse(doc, policy.IdentityPolicy)
	if err != nil {
		return nil, err
	}
	return &IdentityPolicy{Name: name, Policy: p, aliases: mentionsAliases(doc)}, nil
}

func mentionsAliases(doc string) bool {
	return strings.Contains(strings.ToLower(doc), "kms:resourcealiases")
}

// Source says what decided an [Access].
type Source uint8

const (
	// SourceNone: nothing allowed the request.
	SourceNone Source = iota
	// SourceRoot: the caller is the account's root, which may do
	// everything here.
	SourceRoot
	// SourceKeyPolicy: the key policy (allowing or denying the caller).
	SourceKeyPolicy
	// SourceIdentityPolicy: an identity policy of the caller.
	SourceIdentityPolicy
	// SourceGrant: a grant.
	SourceGrant
)

// String returns "none", "root", "key policy", "identity policy" or
// "grant".
func (s Source) String() string {
	switch s {
	case SourceRoot:
		return "root"
	case SourceKeyPolicy:
		return "key policy"
	case SourceIdentityPolicy:
		return "identity policy"
	case SourceGrant:
		return "grant"
	}
	return "none"
}

// Access is the answer to "may this caller do this?", decided as AWS KMS
// decides: allowed when the key policy allows the caller, or the key
// policy allows the caller's account and an identity policy allows the
// caller, or a grant allows it — and no policy denies it. Operations on no
// key, and aliases as resources, are decided by identity policies alone.
type Access struct {
	// Allowed is the answer.
	Allowed bool
	// Source is what decided: for a denial, the policy whose Deny
	// statement applied (Explicit), else SourceNone.
	Source Source
	// Explicit is set when a Deny statement decided.
	Explicit bool
	// Decision is the deciding policy's decision (its Statement and Sid),
	// for SourceKeyPolicy and SourceIdentityPolicy.
	Decision policy.Decision
	// Policy names the deciding identity policy.
	Policy string
	// GrantID is the grant that allowed the request, for SourceGrant.
	GrantID string
	// NeedIdentity is set on a denial where the key policy allowed the
	// caller's account, and so left the decision to identity policies,
	// none of which allowed it.
	NeedIdentity bool
	// PolicyErr is set when the key's stored policy cannot be parsed: the
	// key is then refused to all but the account's root.
	PolicyErr error

	caller, action, resource string
}

// Sid returns the Sid of the deciding statement, "" if none.
func (a *Access) Sid() string { return a.Decision.Sid }

// String describes the decision for a person: "Allow by key policy:
// Allow by statement 0 (\"Enable IAM User Permissions\")".
func (a *Access) String() string {
	verdict := "Deny"
	if a.Allowed {
		verdict = "Allow"
	}
	switch a.Source {
	case SourceRoot:
		return verdict + ": the account's root principal may do everything"
	case SourceGrant:
		return verdict + " by grant " + a.GrantID
	case SourceKeyPolicy:
		return verdict + " by key policy: " + a.Decision.String()
	case SourceIdentityPolicy:
		return fmt.Sprintf("%s by identity policy %q: %s", verdict, a.Policy, a.Decision.String())
	}
	if a.PolicyErr != nil {
		return verdict + ": the key policy cannot be read: " + a.PolicyErr.Error()
	}
	if a.NeedIdentity {
		return verdict + ": the key policy leaves the decision to identity policies, and none allows the request"
	}
	if a.resource != "" && !strings.HasSuffix(a.resource, ":*") && strings.Contains(a.resource, ":key/") {
		return verdict + ": no key policy statement, identity policy or grant allows the request"
	}
	return verdict + ": no identity policy allows the request"
}

// Err returns the AccessDeniedException of a denial, worded as AWS words
// it ("User: ARN is not authorized to perform: kms:Decrypt on resource:
// ARN because no resource-based policy allows the kms:Decrypt action"),
// and nil for an allowed request. ref names the resource as the caller
// named it ("" for the resource decided on).
func (a *Access) Err(ref string) error {
	if a.Allowed {
		return nil
	}
	res := a.resource
	if ref != "" {
		res = ref
	}
	msg := "User: " + a.caller + " is not authorized to perform: " + a.action
	if res != "" {
		msg += " on resource: " + res
	}
	switch {
	case a.Explicit && a.Source == SourceKeyPolicy:
		msg += " with an explicit deny in a resource-based policy"
	case a.Explicit:
		msg += " with an explicit deny in an identity-based policy"
	case a.NeedIdentity || !isKeyARN(a.resource):
		msg += " because no identity-based policy allows the " + a.action + " action"
	default:
		msg += " because no resource-based policy allows the " + a.action + " action"
	}
	return &Error{Code: CodeAccessDenied, Message: msg}
}

func isKeyARN(s string) bool { return strings.Contains(s, ":key/") }

// GrantRequest is the grant a CreateGrant request asks for, for the
// conditions on it (kms:GrantOperations, kms:GranteePrincipal,
// kms:RetiringPrincipal, kms:GrantConstraintType) and for the limits a
// grant that allows CreateGrant sets.
type GrantRequest struct {
	Operations        []string
	GranteePrincipal  string
	RetiringPrincipal string
	Constraints       *GrantConstraints
}

// Decide decides the request for caller as AWS KMS does (see [Access]),
// reading the key's policy, its grants and its aliases as req.Key was
// read. The caller's account's root is allowed everything. It must not be
// called after Authorize returns.
func (req *AuthzRequest) Decide(c *Caller) Access {
	s := req.s
	acc := Access{caller: c.ARN, action: req.Action}
	if req.Key != nil {
		acc.resource = req.Key.ARN
	} else if req.Ref != "" {
		acc.resource = req.Ref
	}
	if isRootARN(c.ARN) && (s == nil || c.ARN == s.rootARN()) {
		acc.Allowed, acc.Source = true, SourceRoot
		return acc
	}
	if s == nil {
		return acc // not asked by a Service: nothing to decide with
	}
	if req.Key == nil {
		// No key, so no key policy: the caller's identity policies
		// decide whether it may learn that (NotFoundException follows
		// if they allow), on the key ARN the caller named, if any.
		res := "arn:aws:kms:" + s.region + ":" + s.account + ":key/"
		if ref, err := s.parseKeyRef(req.Ref, true); err == nil && ref.id != "" {
			res += ref.id
		} else if err == nil {
			res = s.AliasARN(ref.alias)
		}
		id := DecideIdentity(c, req.Action, res, s.region, s.now())
		id.resource = acc.resource
		return id
	}
	if g := req.retire; req.Action == "kms:RetireGrant" && g != nil && g.KeyID == req.Key.ID &&
		(g.RetiringPrincipal == c.ARN || g.GranteePrincipal == c.ARN && slices.Contains(g.Operations, "RetireGrant")) {
		acc.Allowed, acc.Source, acc.GrantID = true, SourceGrant, g.ID
		return acc
	}
	pr := &c.scratch.pr
	*pr = policyRequest(c, req.Action, req.Key.ARN, req.EncryptionContext, s.region, s.now(), c.scratch.vals[:0])
	pr.Context.Values = req.values(pr.Context.Values)
	kp := s.parsedPolicy(req.Key.Policy)
	if kp.err != nil {
		acc.PolicyErr = kp.err
		return acc
	}
	if kp.aliases || c.wantsAliases() {
		pr.Context.Values = req.aliasValues(pr.Context.Values)
	}
	kd := kp.p.Evaluate(pr)
	if kd.Effect == policy.Deny {
		acc.Source, acc.Explicit, acc.Decision = SourceKeyPolicy, true, kd
		return acc
	}
	id, ip := evalIdentity(c, pr)
	if id.Effect == policy.Deny {
		acc.Source, acc.Explicit, acc.Decision, acc.Policy = SourceIdentityPolicy, true, id, ip
		return acc
	}
	switch {
	case kd.Effect == policy.Allow && !kd.ViaAccount:
		acc.Allowed, acc.Source, acc.Decision = true, SourceKeyPolicy, kd
		return acc
	case kd.Effect == policy.Allow && id.Effect == policy.Allow:
		acc.Allowed, acc.Source, acc.Decision, acc.Policy = true, SourceIdentityPolicy, id, ip
		return acc
	}
	if g := req.grantFor(c.ARN); g != nil && req.Action != "kms:RetireGrant" {
		acc.Allowed, acc.Source, acc.GrantID = true, SourceGrant, g.ID
		return acc
	}
	acc.NeedIdentity = kd.Effect == policy.Allow
	return acc
}

// evalIdentity evaluates the caller's identity policies: the first Deny,
// else the first Allow, else ImplicitDeny, and the deciding policy's name.
func evalIdentity(c *Caller, pr *policy.Request) (policy.Decision, string) {
	allow, name := policy.Decision{Effect: policy.ImplicitDeny, Statement: -1}, ""
	for _, ip := range c.Policies {
		d := ip.Policy.Evaluate(pr)
		switch {
		case d.Effect == policy.Deny:
			return d, ip.Name
		case d.Effect == policy.Allow && allow.Effect != policy.Allow:
			allow, name = d, ip.Name
		}
	}
	return allow, name
}

func (c *Caller) wantsAliases() bool {
	for _, ip := range c.Policies {
		if ip.aliases {
			return true
		}
	}
	return false
}

// DecideWithoutKey decides, by the caller's identity policies alone, an
// action on no key (resource "" stands for arn:aws:kms:REGION:ACCOUNT:*,
// as AWS authorizes CreateKey, ListKeys, ListAliases, GenerateRandom) or
// on an alias as a resource of its own (its ARN). The account's root is
// allowed everything.
func (s *Service) DecideWithoutKey(c *Caller, action, resource string) Access {
	if resource == "" {
		resource = "arn:aws:kms:" + s.region + ":" + s.account + ":*"
	}
	return DecideIdentity(c, action, resource, s.region, s.now())
}

// DecideIdentity decides a caller's action on a resource by the caller's
// identity policies alone, as AWS KMS decides operations on no key
// (resource arn:aws:kms:REGION:ACCOUNT:*) and on aliases as resources of
// their own; region is aws:RequestedRegion and now aws:CurrentTime. An
// account's root (arn:aws:iam::ACCOUNT:root) is allowed everything.
func DecideIdentity(c *Caller, action, resource, region string, now time.Time) Access {
	acc := Access{caller: c.ARN, action: action, resource: resource}
	if isRootARN(c.ARN) {
		acc.Allowed, acc.Source = true, SourceRoot
		return acc
	}
	pr := &c.scratch.pr
	*pr = policyRequest(c, action, resource, nil, region, now, c.scratch.vals[:0])
	id, ip := evalIdentity(c, pr)
	switch id.Effect {
	case policy.Deny:
		acc.Source, acc.Explicit, acc.Decision, acc.Policy = SourceIdentityPolicy, true, id, ip
	case policy.Allow:
		acc.Allowed, acc.Source, acc.Decision, acc.Policy = true, SourceIdentityPolicy, id, ip
	}
	return acc
}

func isRootARN(arn string) bool {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::")
	return ok && len(rest) == len("111122223333:root") && strings.HasSuffix(rest, ":root")
}

func (s *Service) rootARN() string { return "arn:aws:iam::" + s.account + ":root" }

// policyRequest builds the policy request of a caller's action on a
// resource, with the condition keys every request has appended to vals.
func policyRequest(c *Caller, action, resource string, ec map[string]string, region string, now time.Time, vals []policy.Value) policy.Request {
	vals = append(vals,
		policy.Bool("aws:SecureTransport", c.SecureTransport),
		policy.String("aws:RequestedRegion", region),
		policy.Bool("aws:ViaAWSService", false),
		policy.Bool("aws:PrincipalIsAWSService", false),
	)
	return policy.Request{Principal: c.ARN, Action: action, Resource: resource,
		Context: policy.Context{Time: now, SourceIP: c.SourceIP, EncryptionContext: ec, Values: vals}}
}

// values appends the condition keys of the request and its key.
func (req *AuthzRequest) values(vals []policy.Value) []policy.Value {
	k := req.Key
	vals = append(vals,
		policy.String("kms:KeySpec", k.Spec),
		policy.String("kms:KeyUsage", k.Usage),
		policy.String("kms:KeyOrigin", "AWS_KMS"),
		policy.String("kms:KeyManager", "CUSTOMER"),
	)
	if req.EncryptionAlgorithm != "" {
		vals = append(vals, policy.String("kms:EncryptionAlgorithm", req.EncryptionAlgorithm))
	}
	if req.RequestAlias != "" {
		vals = append(vals, policy.String("kms:RequestAlias", req.RequestAlias))
	}
	if g := req.Grant; g != nil {
		vals = append(vals,
			policy.Strings("kms:GrantOperations", g.Operations),
			policy.String("kms:GranteePrincipal", g.GranteePrincipal),
			policy.Bool("kms:GrantIsForAWSResource", false),
		)
		if g.RetiringPrincipal != "" {
			vals = append(vals, policy.String("kms:RetiringPrincipal", g.RetiringPrincipal))
		}
		if t := g.Constraints.constraintType(); t != "" {
			vals = append(vals, policy.String("kms:GrantConstraintType", t))
		}
	}
	if req.Action == "kms:PutKeyPolicy" {
		vals = append(vals, policy.Bool("kms:BypassPolicyLockoutSafetyCheck", req.BypassPolicyLockoutSafetyCheck))
	}
	return vals
}

// aliasValues appends kms:ResourceAliases, read through the request's
// reader.
func (req *AuthzRequest) aliasValues(vals []policy.Value) []policy.Value {
	if req.r == nil {
		return vals
	}
	names, err := req.r.keyAliases(req.Key.ID)
	if err != nil {
		if req.err == nil {
			req.err = err // the store's failure (or a cache miss) decides
		}
		return vals
	}
	return append(vals, policy.Strings("kms:ResourceAliases", names))
}

// grantFor returns a grant of the key that allows caller the request, or
// nil.
func (req *AuthzRequest) grantFor(caller string) *GrantRecord {
	op, ok := strings.CutPrefix(req.Action, "kms:")
	if !ok || req.r == nil || !grantOperations[op] {
		return nil
	}
	gs, err := req.r.grants(req.Key.ID, caller)
	if err != nil {
		if req.err == nil {
			req.err = err
		}
		return nil
	}
	for _, g := range gs {
		if g.allows(op, req) {
			return g
		}
	}
	return nil
}

// keyPolicy is a key policy parsed once for every key that has its text.
type keyPolicy struct {
	p       *policy.Policy
	err     error
	aliases bool
}

// policyCache holds parsed key policies by their text: a key's policy
// changes only through PutKeyPolicy, and a Policy is immutable.
type policyCache struct {
	m sync.Map // string → *keyPolicy
	n atomic.Int64
}

// maxCachedPolicies bounds the policy cache; past it, it starts over.
const maxCachedPolicies = 4096

// parsedPolicy returns a key policy document parsed (or why it cannot be).
// A policy that fails the strict parser now, though stored before it
// existed, is reported as such: the key is then refused to all but the
// account's root (see Access.PolicyErr).
func (s *Service) parsedPolicy(doc string) *keyPolicy {
	if v, ok := s.policies.m.Load(doc); ok {
		return v.(*keyPolicy)
	}
	kp := &keyPolicy{aliases: mentionsAliases(doc)}
	text := doc
	if text == "" { // a key stored without one: AWS's default
		text = policy.DefaultKeyPolicy(s.account)
	}
	kp.p, kp.err = policy.Parse(text, policy.KeyPolicy)
	if s.policies.n.Add(1) > maxCachedPolicies {
		s.policies.m.Clear()
		s.policies.n.Store(0)
	}
	s.policies.m.Store(doc, kp)
	return kp
}

// parseKeyPolicy checks a key policy document given to CreateKey or
// PutKeyPolicy: strictly parsed (MalformedPolicyDocumentException naming
// the element, LimitExceededException over the size limit), naming only
// principals that exist, and, unless bypass, still allowing the caller to
// change the policy afterwards (AWS's policy lockout safety check).
func (s *Service) parseKeyPolicy(c *Caller, doc, keyARN string, bypass bool) (*policy.Policy, error) {
	p, err := policy.Parse(doc, policy.KeyPolicy)
	if err != nil {
		var pe *policy.Error
		if errors.As(err, &pe) && errors.Is(err, policy.ErrTooLarge) {
			return nil, newError(CodeLimitExceeded, "%s", pe.Reason)
		}
		if errors.As(err, &pe) {
			msg := pe.Reason
			if pe.Path != "" {
				msg = pe.Path + ": " + pe.Reason
			}
			return nil, newError(CodeMalformedPolicy, "%s", msg)
		}
		return nil, newError(CodeMalformedPolicy, "%v", err)
	}
	if c.Known != nil {
		for _, arn := range p.Principals() {
			if !s.principalExists(c, arn) {
				return nil, newError(CodeMalformedPolicy, "Policy contains a statement with one or more invalid principals: %q is no principal of account %s", arn, s.account)
			}
		}
	}
	if bypass {
		return p, nil
	}
	var buf [16]policy.Value
	pr := policyRequest(c, "kms:PutKeyPolicy", keyARN, nil, s.region, s.now(), buf[:0])
	pr.Context.Values = append(pr.Context.Values, policy.Bool("kms:BypassPolicyLockoutSafetyCheck", false))
	d := p.Evaluate(&pr)
	ok := d.Effect == policy.Allow && !d.ViaAccount
	if d.Effect == policy.Allow && d.ViaAccount {
		id, _ := evalIdentity(c, &pr)
		ok = id.Effect == policy.Allow
	}
	if !ok {
		return nil, newError(CodeMalformedPolicy, "The new key policy will not allow you to update the key policy in the future (%s may not call kms:PutKeyPolicy under it); set BypassPolicyLockoutSafetyCheck to set it all the same", c.ARN)
	}
	return p, nil
}

// principalExists reports whether a principal a key policy names may be
// accepted: any of another account (which this KMS cannot know), the
// account itself, and the identities of this account c.Known knows.
func (s *Service) principalExists(c *Caller, arn string) bool {
	if arn == s.account || arn == s.rootARN() {
		return true
	}
	prefix := "arn:aws:iam::" + s.account + ":"
	if !strings.HasPrefix(arn, prefix) && !strings.HasPrefix(arn, "arn:aws:sts::"+s.account+":") {
		return true
	}
	return c.Known(arn)
}

// callerOf returns the caller of the context's Authorizer, or the
// account's root if it has none (the embedded CLI).
func (s *Service) callerOf(a Authorizer) *Caller {
	if cp, ok := a.(CallerProvider); ok {
		if c := cp.Caller(); c != nil {
			return c
		}
	}
	return &Caller{ARN: s.rootARN()}
}

// CallerProvider is implemented by an [Authorizer] that decides for a
// [Caller]: the Service then checks, with it, that a key policy given to
// CreateKey or PutKeyPolicy does not lock the caller out.
type CallerProvider interface {
	Caller() *Caller
}

// CheckAccess decides, without acting, whether caller may perform action
// on the key ref names (a key id, key ARN, alias name or alias ARN) with
// the encryption context ec, as an operation would: the key, its policy,
// its grants and its aliases are read from the store. A ref of "" or "*"
// asks about an action on no key (identity policies alone). It is what
// "envelope policy check" shows; the key need not be usable.
func (s *Service) CheckAccess(ctx context.Context, caller *Caller, action, ref string, ec map[string]string) (Access, error) {
	if ref == "" || ref == "*" {
		return s.DecideWithoutKey(caller, action, ""), nil
	}
	kr, err := s.parseKeyRef(ref, true)
	if err != nil {
		return Access{}, err
	}
	var acc Access
	_, err = s.read(ctx, func(r keyReader) error {
		k, err := s.load(r, kr)
		if err != nil && CodeOf(err) != CodeNotFound {
			return err
		}
		req := &AuthzRequest{Action: action, Ref: ref, EncryptionContext: ec, RequestAlias: aliasOf(ref), s: s, r: r}
		if k != nil {
			req.key = KeyInfo{ID: k.ID, ARN: s.KeyARN(k.ID), Spec: k.Spec, Usage: k.Usage, State: k.State, Policy: k.Policy}
			req.Key = &req.key
		}
		acc = req.Decide(caller)
		req.r = nil
		if req.err != nil {
			return req.err
		}
		if k == nil {
			return err // the key does not exist
		}
		return nil
	})
	return acc, internal(err)
}

package kms

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Grant limits and forms, from the AWS KMS service model and quotas.
const (
	maxGrantsPerKey       = 50000
	maxGrantNameLen       = 256
	maxPrincipalLen       = 256
	maxGrantTokenLen      = 8192
	maxGrantIDLen         = 128
	maxConstraintPairs    = 8
	maxConstraintValueLen = 384
	maxGrantListLimit     = 100
	defaultGrantListLimit = 50
)

var (
	grantNameRE = regexp.MustCompile(`^[a-zA-Z0-9:/_-]+$`)
	principalRE = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	grantIDRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// grantOperations are the operations a grant may allow.
var grantOperations = map[string]bool{
	"Decrypt": true, "Encrypt": true, "GenerateDataKey": true, "GenerateDataKeyWithoutPlaintext": true,
	"ReEncryptFrom": true, "ReEncryptTo": true, "Sign": true, "Verify": true, "GetPublicKey": true,
	"CreateGrant": true, "RetireGrant": true, "DescribeKey": true, "GenerateDataKeyPair": true,
	"GenerateDataKeyPairWithoutPlaintext": true, "GenerateMac": true, "VerifyMac": true,
	"DeriveSharedSecret": true, "Encapsulate": true, "Decapsulate": true,
}

// contextOperations are the grant operations that take an encryption
// context (on a symmetric key): the only ones a grant's constraints apply
// to.
var contextOperations = map[string]bool{
	"Decrypt": true, "Encrypt": true, "GenerateDataKey": true, "GenerateDataKeyWithoutPlaintext": true,
	"ReEncryptFrom": true, "ReEncryptTo": true, "GenerateDataKeyPair": true,
	"GenerateDataKeyPairWithoutPlaintext": true,
}

// symmetricGrantOps and usageGrantOps are the grant operations each kind of
// key supports, as AWS has them: symmetric encryption keys, and the other
// keys (asymmetric, HMAC) by usage.
var (
	symmetricGrantOps = []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"ReEncryptFrom", "ReEncryptTo", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
		"CreateGrant", "RetireGrant", "DescribeKey"}
	usageGrantOps = map[string][]string{
		UsageEncryptDecrypt:    {"Decrypt", "Encrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey"},
		UsageSignVerify:        {"Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey"},
		UsageGenerateVerifyMac: {"GenerateMac", "VerifyMac", "CreateGrant", "RetireGrant", "DescribeKey"},
		UsageKeyAgreement:      {"DeriveSharedSecret", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey"},
	}
)

// GrantConstraints limit a grant's cryptographic operations to requests
// whose encryption context equals (EncryptionContextEquals) or includes
// (EncryptionContextSubset) the pairs given. Keys compare ignoring case,
// values exactly, as AWS documents.
type GrantConstraints struct {
	EncryptionContextSubset map[string]string `json:"EncryptionContextSubset,omitempty"`
	EncryptionContextEquals map[string]string `json:"EncryptionContextEquals,omitempty"`
}

// constraintType is kms:GrantConstraintType: "EncryptionContextEquals",
// "EncryptionContextSubset", or "" for none.
func (c *GrantConstraints) constraintType() string {
	switch {
	case c == nil:
		return ""
	case len(c.EncryptionContextEquals) > 0:
		return "EncryptionContextEquals"
	case len(c.EncryptionContextSubset) > 0:
		return "EncryptionContextSubset"
	}
	return ""
}

// empty reports whether c constrains nothing (AWS treats an empty map as
// not given).
func (c *GrantConstraints) empty() bool {
	return c == nil || len(c.EncryptionContextEquals) == 0 && len(c.EncryptionContextSubset) == 0
}

// lookupFold returns the value of key in ec, comparing keys ignoring case;
// ok is false if no key or several keys match.
func lookupFold(ec map[string]string, key string) (string, bool) {
	if v, ok := ec[key]; ok {
		n := 0
		for k := range ec {
			if strings.EqualFold(k, key) {
				n++
			}
		}
		return v, n == 1
	}
	var val string
	n := 0
	for k, v := range ec {
		if strings.EqualFold(k, key) {
			val = v
			n++
		}
	}
	return val, n == 1
}

// satisfied reports whether an encryption context meets the constraints.
func (c *GrantConstraints) satisfied(ec map[string]string) bool {
	if c == nil {
		return true
	}
	if eq := c.EncryptionContextEquals; len(eq) > 0 {
		if len(ec) != len(eq) {
			return false
		}
		for k, want := range eq {
			if v, ok := lookupFold(ec, k); !ok || v != want {
				return false
			}
		}
	}
	for k, want := range c.EncryptionContextSubset {
		if v, ok := lookupFold(ec, k); !ok || v != want {
			return false
		}
	}
	return true
}

// asStrict reports whether the constraints of a grant being created (n)
// are as strict as those of the grant that allows creating it (c), or
// stricter: a grant's CreateGrant permission passes on no more than it
// holds.
func (c *GrantConstraints) asStrict(n *GrantConstraints) bool {
	if c.empty() {
		return true
	}
	if n.empty() {
		return false
	}
	if eq := c.EncryptionContextEquals; len(eq) > 0 {
		// Only the same context is as strict.
		return len(n.EncryptionContextSubset) == 0 && len(n.EncryptionContextEquals) == len(eq) &&
			(&GrantConstraints{EncryptionContextEquals: eq}).satisfied(n.EncryptionContextEquals)
	}
	// c has a subset: every pair of it must be required by n too.
	need := &GrantConstraints{EncryptionContextSubset: c.EncryptionContextSubset}
	if len(n.EncryptionContextEquals) > 0 && need.satisfied(n.EncryptionContextEquals) {
		return true
	}
	return len(n.EncryptionContextSubset) > 0 && need.satisfied(n.EncryptionContextSubset)
}

// allows reports whether g allows its grantee op ("Decrypt") in req.
func (g *GrantRecord) allows(op string, req *AuthzRequest) bool {
	if !slices.Contains(g.Operations, op) {
		return false
	}
	if contextOperations[op] && !g.Constraints.satisfied(req.EncryptionContext) {
		return false
	}
	if op == "CreateGrant" && req.Grant != nil {
		for _, o := range req.Grant.Operations {
			if !slices.Contains(g.Operations, o) {
				return false
			}
		}
		return g.Constraints.asStrict(req.Grant.Constraints)
	}
	return true
}

// --- the API -------------------------------------------------------------

// CreateGrantInput is the input of CreateGrant.
type CreateGrantInput struct {
	KeyId                    string            `json:"KeyId"`
	GranteePrincipal         string            `json:"GranteePrincipal,omitempty"`
	RetiringPrincipal        string            `json:"RetiringPrincipal,omitempty"`
	Operations               []string          `json:"Operations"`
	Constraints              *GrantConstraints `json:"Constraints,omitempty"`
	GrantTokens              []string          `json:"GrantTokens,omitempty"`
	Name                     string            `json:"Name,omitempty"`
	DryRun                   bool              `json:"DryRun,omitempty"`
	GranteeServicePrincipal  string            `json:"GranteeServicePrincipal,omitempty"`
	RetiringServicePrincipal string            `json:"RetiringServicePrincipal,omitempty"`
}

// CreateGrantOutput is the output of CreateGrant.
type CreateGrantOutput struct {
	GrantToken string `json:"GrantToken"`
	GrantId    string `json:"GrantId"`
}

// ListGrantsInput is the input of ListGrants.
type ListGrantsInput struct {
	KeyId            string `json:"KeyId"`
	Limit            *int32 `json:"Limit,omitempty"`
	Marker           string `json:"Marker,omitempty"`
	GrantId          string `json:"GrantId,omitempty"`
	GranteePrincipal string `json:"GranteePrincipal,omitempty"`
}

// GrantListEntry is one grant of a ListGrants or ListRetirableGrants page.
type GrantListEntry struct {
	KeyId             string            `json:"KeyId"`
	GrantId           string            `json:"GrantId"`
	Name              string            `json:"Name,omitempty"`
	CreationDate      *Timestamp        `json:"CreationDate,omitempty"`
	GranteePrincipal  string            `json:"GranteePrincipal"`
	RetiringPrincipal string            `json:"RetiringPrincipal,omitempty"`
	IssuingAccount    string            `json:"IssuingAccount"`
	Operations        []string          `json:"Operations"`
	Constraints       *GrantConstraints `json:"Constraints,omitempty"`
}

// ListGrantsOutput is the output of ListGrants and ListRetirableGrants
// (AWS's ListGrantsResponse).
type ListGrantsOutput struct {
	Grants     []GrantListEntry `json:"Grants"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

// ListRetirableGrantsInput is the input of ListRetirableGrants.
type ListRetirableGrantsInput struct {
	Limit                    *int32 `json:"Limit,omitempty"`
	Marker                   string `json:"Marker,omitempty"`
	RetiringPrincipal        string `json:"RetiringPrincipal,omitempty"`
	RetiringServicePrincipal string `json:"RetiringServicePrincipal,omitempty"`
}

// ListRetirableGrantsOutput is the output of ListRetirableGrants.
type ListRetirableGrantsOutput = ListGrantsOutput

// RetireGrantInput is the input of RetireGrant: a GrantToken, or KeyId and
// GrantId.
type RetireGrantInput struct {
	GrantToken string `json:"GrantToken,omitempty"`
	KeyId      string `json:"KeyId,omitempty"`
	GrantId    string `json:"GrantId,omitempty"`
	DryRun     bool   `json:"DryRun,omitempty"`
}

// RetireGrantOutput is the (empty) output of RetireGrant.
type RetireGrantOutput struct{}

// RevokeGrantInput is the input of RevokeGrant.
type RevokeGrantInput struct {
	KeyId   string `json:"KeyId"`
	GrantId string `json:"GrantId"`
	DryRun  bool   `json:"DryRun,omitempty"`
}

// RevokeGrantOutput is the (empty) output of RevokeGrant.
type RevokeGrantOutput struct{}

// --- tokens ----------------------------------------------------------------

// grantTokenPrefix starts every grant token: a version byte and the
// grant's id follow, then random bytes, so that each CreateGrant returns a
// token of its own, as AWS does; every token of a grant stands for it.
const grantTokenPrefix = "EVGT1"

func newGrantToken(grantID string) string {
	id, _ := hex.DecodeString(grantID)
	b := make([]byte, len(id)+16)
	copy(b, id)
	rand.Read(b[len(id):])
	return grantTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// grantIDOfToken returns the grant id a token names, or false if it is
// not a token of this KMS.
func grantIDOfToken(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, grantTokenPrefix)
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) != 48 {
		return "", false
	}
	return hex.EncodeToString(b[:32]), true
}

// checkGrantTokens checks the grant tokens a request passes: at most 10,
// each of this KMS's form and naming a grant that exists. (Grants are in
// force as soon as they are made here, so tokens add no permission.)
func (s *Service) checkGrantTokens(ctx context.Context, tokens []string) error {
	if len(tokens) > maxGrantTokens {
		return validationf("at most %d grant tokens are allowed, got %d", maxGrantTokens, len(tokens))
	}
	if len(tokens) == 0 {
		return nil
	}
	ids := make([]string, len(tokens))
	for i, t := range tokens {
		if t == "" || len(t) > maxGrantTokenLen {
			return validationf("each grant token must be 1 to %d characters", maxGrantTokenLen)
		}
		id, ok := grantIDOfToken(t)
		if !ok {
			return newError(CodeInvalidGrantToken, "Invalid grant token: not a grant token of this KMS")
		}
		ids[i] = id
	}
	err := s.store.View(ctx, func(tx Tx) error {
		for _, id := range ids {
			if _, err := tx.GetGrant(id); errors.Is(err, ErrNoRecord) {
				return newError(CodeInvalidGrantToken, "Invalid grant token: the grant it names (%s) does not exist, or was retired or revoked", id)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	return internal(err)
}

// --- operations --------------------------------------------------------------

func newGrantID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// checkPrincipal checks a grantee or retiring principal's form: an ARN of
// an IAM or STS principal (or an account id), 1 to 256 characters.
func checkPrincipal(field, p string) error {
	if p == "" || len(p) > maxPrincipalLen || !principalRE.MatchString(p) {
		return validationf("%s must be 1 to %d characters of letters, digits and _+=,.@:/-", field, maxPrincipalLen)
	}
	if isAccountIDText(p) {
		return nil
	}
	parts := strings.SplitN(p, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] != "iam" && parts[2] != "sts" ||
		parts[3] != "" || !isAccountIDText(parts[4]) || parts[5] == "" {
		return newError(CodeInvalidArn, "%s %q is not the ARN of an AWS principal (arn:aws:iam::ACCOUNT:user/NAME, …:role/NAME, …:root)", field, p)
	}
	return nil
}

func isAccountIDText(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func checkConstraintMap(name string, m map[string]string) error {
	if len(m) > maxConstraintPairs {
		return validationf("Constraints.%s holds %d pairs; at most %d are allowed", name, len(m), maxConstraintPairs)
	}
	for k, v := range m {
		if k == "" {
			return validationf("Constraints.%s has an empty key", name)
		}
		if utf8.RuneCountInString(v) > maxConstraintValueLen {
			return validationf("Constraints.%s: the value of %q is longer than %d characters", name, k, maxConstraintValueLen)
		}
	}
	return nil
}

// CreateGrant implements [API]: the grantee may perform the operations on
// the key, under the constraints, from now on. A grant with a Name that
// the key has already, with the same grantee, retiring principal,
// operations and constraints, is returned again (with a new token).
func (s *Service) CreateGrant(ctx context.Context, in *CreateGrantInput) (*CreateGrantOutput, error) {
	if in.GranteeServicePrincipal != "" || in.RetiringServicePrincipal != "" {
		return nil, newError(CodeUnsupportedOperation, "grants to AWS service principals are not supported: no AWS service calls this KMS")
	}
	if err := checkPrincipal("GranteePrincipal", in.GranteePrincipal); err != nil {
		return nil, err
	}
	if in.RetiringPrincipal != "" {
		if err := checkPrincipal("RetiringPrincipal", in.RetiringPrincipal); err != nil {
			return nil, err
		}
	}
	if len(in.Operations) == 0 {
		return nil, validationf("Operations is required: name at least one grant operation")
	}
	ops := slices.Clone(in.Operations)
	for _, op := range ops {
		if !grantOperations[op] {
			return nil, validationf("%q is not a grant operation", op)
		}
	}
	slices.Sort(ops)
	ops = slices.Compact(ops)
	if in.Name != "" && (len(in.Name) > maxGrantNameLen || !grantNameRE.MatchString(in.Name)) {
		return nil, validationf("Name must be 1 to %d characters of letters, digits and :/_-", maxGrantNameLen)
	}
	var cons *GrantConstraints
	if c := in.Constraints; !c.empty() {
		if err := checkConstraintMap("EncryptionContextEquals", c.EncryptionContextEquals); err != nil {
			return nil, err
		}
		if err := checkConstraintMap("EncryptionContextSubset", c.EncryptionContextSubset); err != nil {
			return nil, err
		}
		cons = &GrantConstraints{}
		if len(c.EncryptionContextEquals) > 0 {
			cons.EncryptionContextEquals = maps.Clone(c.EncryptionContextEquals)
		}
		if len(c.EncryptionContextSubset) > 0 {
			cons.EncryptionContextSubset = maps.Clone(c.EncryptionContextSubset)
		}
	}
	if err := s.checkGrantTokens(ctx, in.GrantTokens); err != nil {
		return nil, err
	}
	info := &authzInfo{grant: &GrantRequest{Operations: ops, GranteePrincipal: in.GranteePrincipal,
		RetiringPrincipal: in.RetiringPrincipal, Constraints: cons}}
	const action = "kms:CreateGrant"
	ref, err := s.parseAuthorizedWith(ctx, action, in.KeyId, false, info)
	if err != nil {
		return nil, err
	}
	var out *CreateGrantOutput
	err = s.update(ctx, func(tx Tx, r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, action, ref)
		if err != nil {
			return err
		}
		if err := s.notPendingDeletion(k); err != nil {
			return err
		}
		if k.State == StateDisabled {
			return s.keyError(k.ID, CodeDisabled, "%s is disabled.", s.KeyARN(k.ID))
		}
		spec := keySpecs[k.Spec]
		allowed := usageGrantOps[k.Usage]
		if spec != nil && spec.symmetric() {
			allowed = symmetricGrantOps
		}
		for _, op := range ops {
			if !slices.Contains(allowed, op) {
				return s.keyError(k.ID, CodeValidation, "a grant for a %s key cannot allow %s (it allows %s)", k.Spec, op, strings.Join(allowed, ", "))
			}
		}
		if cons != nil && (spec == nil || !spec.symmetric()) {
			return s.keyError(k.ID, CodeValidation, "encryption context constraints apply only to symmetric keys; %s is %s", s.KeyARN(k.ID), k.Spec)
		}
		if in.DryRun {
			return dryRun()
		}
		if in.Name != "" {
			same, err := tx.ListGrants(GrantFilter{KeyID: k.ID, Name: in.Name}, "", 0)
			if err != nil {
				return err
			}
			for _, g := range same {
				if g.GranteePrincipal == in.GranteePrincipal && g.RetiringPrincipal == in.RetiringPrincipal &&
					slices.Equal(g.Operations, ops) && sameConstraints(g.Constraints, cons) {
					out = &CreateGrantOutput{GrantId: g.ID, GrantToken: newGrantToken(g.ID)}
					return nil
				}
			}
		}
		n, err := tx.CountGrants(k.ID)
		if err != nil {
			return err
		}
		if n >= maxGrantsPerKey {
			return s.keyError(k.ID, CodeLimitExceeded, "%s has %d grants, the most a key may have", s.KeyARN(k.ID), n)
		}
		g := &GrantRecord{ID: newGrantID(), KeyID: k.ID, Name: in.Name, GranteePrincipal: in.GranteePrincipal,
			RetiringPrincipal: in.RetiringPrincipal, Operations: ops, Constraints: cons,
			IssuingAccount: s.rootARN(), CreationDate: s.now().UTC()}
		if err := tx.PutGrant(g); err != nil {
			return err
		}
		out = &CreateGrantOutput{GrantId: g.ID, GrantToken: newGrantToken(g.ID)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func sameConstraints(a, b *GrantConstraints) bool {
	if a.empty() || b.empty() {
		return a.empty() == b.empty()
	}
	return maps.Equal(a.EncryptionContextEquals, b.EncryptionContextEquals) &&
		maps.Equal(a.EncryptionContextSubset, b.EncryptionContextSubset)
}

func (s *Service) grantEntry(g *GrantRecord) GrantListEntry {
	return GrantListEntry{KeyId: s.KeyARN(g.KeyID), GrantId: g.ID, Name: g.Name, CreationDate: ts(g.CreationDate),
		GranteePrincipal: g.GranteePrincipal, RetiringPrincipal: g.RetiringPrincipal, IssuingAccount: g.IssuingAccount,
		Operations: slices.Clone(g.Operations), Constraints: g.Constraints}
}

func checkGrantMarker(m string) error {
	if m != "" && !grantIDRE.MatchString(m) {
		return newError(CodeInvalidMarker, "invalid Marker %q", m)
	}
	return nil
}

// page cuts a listing of up to limit+1 grants to a page.
func (s *Service) page(gs []*GrantRecord, limit int) *ListGrantsOutput {
	out := &ListGrantsOutput{Grants: []GrantListEntry{}}
	for i, g := range gs {
		if i == limit {
			out.Truncated = true
			out.NextMarker = gs[i-1].ID
			break
		}
		out.Grants = append(out.Grants, s.grantEntry(g))
	}
	return out
}

// ListGrants implements [API]: the grants of a key (GrantId: that grant;
// GranteePrincipal: that grantee's), in grant id order.
func (s *Service) ListGrants(ctx context.Context, in *ListGrantsInput) (*ListGrantsOutput, error) {
	limit, err := checkLimit(in.Limit, maxGrantListLimit, defaultGrantListLimit)
	if err != nil {
		return nil, err
	}
	if err := checkGrantMarker(in.Marker); err != nil {
		return nil, err
	}
	if in.GrantId != "" && len(in.GrantId) > maxGrantIDLen {
		return nil, newError("InvalidGrantIdException", "GrantId is longer than %d characters", maxGrantIDLen)
	}
	if in.GranteePrincipal != "" {
		if err := checkPrincipal("GranteePrincipal", in.GranteePrincipal); err != nil {
			return nil, err
		}
	}
	const action = "kms:ListGrants"
	ref, err := s.parseAuthorized(ctx, action, in.KeyId, false)
	if err != nil {
		return nil, err
	}
	var out *ListGrantsOutput
	err = s.store.View(ctx, func(tx Tx) error { // a listing: not cached
		k, err := s.loadAuthorized(ctx, &storeReader{s: s, tx: tx}, action, ref)
		if err != nil {
			return err
		}
		if in.GrantId != "" {
			var gs []*GrantRecord
			g, err := tx.GetGrant(in.GrantId)
			switch {
			case errors.Is(err, ErrNoRecord):
			case err != nil:
				return err
			case g.KeyID == k.ID && g.ID > in.Marker && (in.GranteePrincipal == "" || g.GranteePrincipal == in.GranteePrincipal):
				gs = append(gs, g)
			}
			out = s.page(gs, limit)
			return nil
		}
		gs, err := tx.ListGrants(GrantFilter{KeyID: k.ID, Grantee: in.GranteePrincipal}, in.Marker, limit+1)
		if err != nil {
			return err
		}
		out = s.page(gs, limit)
		return nil
	})
	if err != nil {
		return nil, internal(err)
	}
	return out, nil
}

// ListRetirableGrants implements [API]: the grants, of every key, whose
// retiring principal is RetiringPrincipal.
func (s *Service) ListRetirableGrants(ctx context.Context, in *ListRetirableGrantsInput) (*ListRetirableGrantsOutput, error) {
	limit, err := checkLimit(in.Limit, maxGrantListLimit, defaultGrantListLimit)
	if err != nil {
		return nil, err
	}
	if err := checkGrantMarker(in.Marker); err != nil {
		return nil, err
	}
	if in.RetiringServicePrincipal != "" {
		return nil, newError(CodeUnsupportedOperation, "grants to AWS service principals are not supported: no AWS service calls this KMS")
	}
	if err := checkPrincipal("RetiringPrincipal", in.RetiringPrincipal); err != nil {
		return nil, err
	}
	var out *ListGrantsOutput
	err = s.store.View(ctx, func(tx Tx) error {
		gs, err := tx.ListGrants(GrantFilter{RetiringPrincipal: in.RetiringPrincipal}, in.Marker, limit+1)
		if err != nil {
			return err
		}
		out = s.page(gs, limit)
		return nil
	})
	if err != nil {
		return nil, internal(err)
	}
	return out, nil
}

// RetireGrant implements [API]: the grant named by GrantToken, or by KeyId
// and GrantId, is deleted. Its retiring principal may retire it, its
// grantee if it allows RetireGrant, the account's root, and whoever the
// key's policies allow kms:RetireGrant.
func (s *Service) RetireGrant(ctx context.Context, in *RetireGrantInput) (*RetireGrantOutput, error) {
	id := in.GrantId
	switch {
	case in.GrantToken != "":
		if len(in.GrantToken) > maxGrantTokenLen {
			return nil, validationf("GrantToken must be 1 to %d characters", maxGrantTokenLen)
		}
		tid, ok := grantIDOfToken(in.GrantToken)
		if !ok {
			return nil, newError(CodeInvalidGrantToken, "Invalid grant token: not a grant token of this KMS")
		}
		if id != "" && id != tid {
			return nil, newError("InvalidGrantIdException", "GrantId %q is not the grant the GrantToken names", id)
		}
		id = tid
	case in.KeyId == "" || in.GrantId == "":
		return nil, validationf("give GrantToken, or KeyId and GrantId")
	}
	if len(id) > maxGrantIDLen {
		return nil, newError("InvalidGrantIdException", "GrantId is longer than %d characters", maxGrantIDLen)
	}
	const action = "kms:RetireGrant"
	err := s.update(ctx, func(tx Tx, r keyReader) error {
		g, err := tx.GetGrant(id)
		if errors.Is(err, ErrNoRecord) {
			if in.GrantToken != "" {
				return newError(CodeInvalidGrantToken, "Invalid grant token: the grant it names does not exist, or was retired or revoked")
			}
			g = nil
		} else if err != nil {
			return err
		}
		keyID := in.KeyId
		if keyID == "" {
			keyID = g.KeyID
		}
		ref, err := s.parseKeyRef(keyID, false)
		if err != nil {
			if aerr := s.authorize(ctx, nil, action, keyID, nil, nil); aerr != nil {
				return aerr
			}
			return err
		}
		ref.info = &authzInfo{retire: g}
		k, err := s.loadAuthorized(ctx, r, action, ref)
		if err != nil {
			return err
		}
		if g == nil || g.KeyID != k.ID {
			return newError(CodeNotFound, "Grant %s does not exist for key %s", id, s.KeyARN(k.ID))
		}
		if in.DryRun {
			return dryRun()
		}
		return tx.DeleteGrant(id)
	})
	if err != nil {
		return nil, err
	}
	return &RetireGrantOutput{}, nil
}

// RevokeGrant implements [API]: the grant is deleted, by whoever the key's
// policies allow kms:RevokeGrant.
func (s *Service) RevokeGrant(ctx context.Context, in *RevokeGrantInput) (*RevokeGrantOutput, error) {
	if in.GrantId == "" {
		return nil, validationf("GrantId is required")
	}
	if len(in.GrantId) > maxGrantIDLen {
		return nil, newError("InvalidGrantIdException", "GrantId is longer than %d characters", maxGrantIDLen)
	}
	const action = "kms:RevokeGrant"
	ref, err := s.parseAuthorized(ctx, action, in.KeyId, false)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx Tx, r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, action, ref)
		if err != nil {
			return err
		}
		g, err := tx.GetGrant(in.GrantId)
		if errors.Is(err, ErrNoRecord) || err == nil && g.KeyID != k.ID {
			return newError(CodeNotFound, "Grant %s does not exist for key %s", in.GrantId, s.KeyARN(k.ID))
		}
		if err != nil {
			return err
		}
		if in.DryRun {
			return dryRun()
		}
		return tx.DeleteGrant(g.ID)
	})
	if err != nil {
		return nil, err
	}
	return &RevokeGrantOutput{}, nil
}

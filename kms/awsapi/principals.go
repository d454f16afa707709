package awsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/envelopekms/envelope/kms"
)

// iamNameRE is what IAM allows in a user or role name.
var iamNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// uuidRE matches a key id.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// principalARN returns p's ARN: the one the policy file gives (a user or
// role of the account), or arn:aws:iam::ACCOUNT:user/NAME.
func (p *Principal) principalARN(account string) (string, error) {
	if p.ARN == "" {
		if !iamNameRE.MatchString(p.Name) {
			return "", fmt.Errorf("principal %q: the name is no IAM user name (letters, digits and _+=,.@-, at most 64): give an \"arn\"", p.Name)
		}
		return "arn:aws:iam::" + account + ":user/" + p.Name, nil
	}
	rest, ok := strings.CutPrefix(p.ARN, "arn:aws:iam::"+account+":")
	kind, path, _ := strings.Cut(rest, "/")
	name := path[strings.LastIndexByte(path, '/')+1:]
	if !ok || kind != "user" && kind != "role" || !iamNameRE.MatchString(name) {
		return "", fmt.Errorf("principal %q: arn %q is not a user or role of account %s (arn:aws:iam::%s:user/NAME or …:role/NAME)", p.Name, p.ARN, account, account)
	}
	return p.ARN, nil
}

// translateAllow returns the identity policy that the policy file's allow
// entries of p stand for, "" if it has none. Each entry becomes
// statements allowing its actions on its keys: "*" on every resource; key
// ids and key ARNs on those keys; alias names (and alias ARNs) on the keys
// the aliases point to (kms:ResourceAliases) and on the aliases themselves
// as resources (CreateAlias, UpdateAlias, DeleteAlias need them).
func translateAllow(p *Principal, account, region string) (string, error) {
	if len(p.Allow) == 0 {
		return "", nil
	}
	type statement struct {
		Sid       string         `json:"Sid"`
		Effect    string         `json:"Effect"`
		Action    []string       `json:"Action"`
		Resource  []string       `json:"Resource"`
		Condition map[string]any `json:"Condition,omitempty"`
	}
	var stmts []statement
	prefix := "arn:aws:kms:" + region + ":" + account + ":"
	for i, g := range p.Allow {
		var all bool
		var keys, aliases []string
		for _, k := range g.Keys {
			switch {
			case k == "*":
				all = true
			case uuidRE.MatchString(k):
				keys = append(keys, prefix+"key/"+k)
			case strings.HasPrefix(k, "alias/") && len(k) > len("alias/"):
				aliases = append(aliases, k)
			case strings.HasPrefix(k, "arn:"):
				parts := strings.SplitN(k, ":", 6)
				switch {
				case len(parts) == 6 && parts[2] == "kms" && strings.HasPrefix(parts[5], "key/"):
					keys = append(keys, k) // of another region or account, it names no key here
				case len(parts) == 6 && parts[2] == "kms" && strings.HasPrefix(parts[5], "alias/") && parts[3] == region && parts[4] == account:
					aliases = append(aliases, parts[5])
				case len(parts) == 6 && parts[2] == "kms" && strings.HasPrefix(parts[5], "alias/"):
					keys = append(keys, k) // an alias elsewhere: matches nothing here
				default:
					return "", fmt.Errorf("principal %q: allow entry %d: %q is no key or alias ARN", p.Name, i+1, k)
				}
			default:
				return "", fmt.Errorf("principal %q: allow entry %d: %q is no key id, key ARN, alias name or \"*\"", p.Name, i+1, k)
			}
		}
		sid := fmt.Sprintf("PolicyFileAllow%d", i+1)
		switch {
		case all:
			stmts = append(stmts, statement{Sid: sid, Effect: "Allow", Action: g.Actions, Resource: []string{"*"}})
			continue
		case len(keys) > 0:
			stmts = append(stmts, statement{Sid: sid + "Keys", Effect: "Allow", Action: g.Actions, Resource: keys})
		}
		if len(aliases) > 0 {
			stmts = append(stmts, statement{Sid: sid + "AliasedKeys", Effect: "Allow", Action: g.Actions,
				Resource:  []string{prefix + "key/*"},
				Condition: map[string]any{"ForAnyValue:StringEquals": map[string]any{"kms:ResourceAliases": aliases}}})
			arns := make([]string, len(aliases))
			for j, a := range aliases {
				arns[j] = prefix + a
			}
			stmts = append(stmts, statement{Sid: sid + "Aliases", Effect: "Allow", Action: g.Actions, Resource: arns})
		}
	}
	doc, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
	if err != nil {
		return "", err
	}
	return string(doc), nil
}

// compile builds p's caller for a server of account and region: its ARN,
// and its identity policies (the policy file's "policies", and its
// "allow" entries translated, named "allow").
func (p *Principal) compile(account, region string, known func(string) bool) error {
	arn, err := p.principalARN(account)
	if err != nil {
		return err
	}
	c := kms.Caller{ARN: arn, Known: known}
	doc, err := translateAllow(p, account, region)
	if err != nil {
		return err
	}
	if doc != "" {
		ip, err := kms.ParseIdentityPolicy("allow", doc)
		if err != nil {
			return fmt.Errorf("principal %q: allow: %v", p.Name, policyError(err))
		}
		c.Policies = append(c.Policies, ip)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Policies)) {
		if name == "allow" {
			return fmt.Errorf("principal %q: policy name \"allow\" is taken by the allow entries", p.Name)
		}
		ip, err := kms.ParseIdentityPolicy(name, string(p.Policies[name]))
		if err != nil {
			return fmt.Errorf("principal %q: policy %q: %v", p.Name, name, policyError(err))
		}
		c.Policies = append(c.Policies, ip)
	}
	p.caller = c
	return nil
}

// policyError drops the "policy: " prefix of a policy error, for a message
// that names the policy already.
func policyError(err error) string {
	return strings.TrimPrefix(err.Error(), "policy: ")
}

// principalSet is the server's principals, swapped whole on a reload.
type principalSet struct {
	byKey map[string]*Principal // by access key id
	byARN map[string]*Principal
}

// buildPrincipals checks and compiles ps for the server, with root.
func (s *Server) buildPrincipals(ps []*Principal) (*principalSet, error) {
	set := &principalSet{byKey: map[string]*Principal{s.root.AccessKeyID: s.root}, byARN: map[string]*Principal{}}
	set.byARN[s.root.caller.ARN] = s.root
	known := s.knownPrincipal
	for _, p := range ps {
		if _, dup := set.byKey[p.AccessKeyID]; dup {
			return nil, fmt.Errorf("awsapi: access key %s is used twice", p.AccessKeyID)
		}
		if p.Root {
			return nil, fmt.Errorf("awsapi: principal %q: only the server's root credentials are root", p.Name)
		}
		cp := *p
		if err := cp.compile(s.account, s.cfg.Region, known); err != nil {
			return nil, fmt.Errorf("awsapi: %v", err)
		}
		if other, dup := set.byARN[cp.caller.ARN]; dup {
			return nil, fmt.Errorf("awsapi: principals %q and %q have the same ARN %s", other.Name, cp.Name, cp.caller.ARN)
		}
		set.byKey[cp.AccessKeyID] = &cp
		set.byARN[cp.caller.ARN] = &cp
	}
	return set, nil
}

// knownPrincipal reports whether a principal ARN names one of the server's
// principals (or the account).
func (s *Server) knownPrincipal(arn string) bool {
	return s.principals.Load().byARN[arn] != nil
}

// SetPrincipals replaces the server's principals (those of the policy
// file: the root principal stays) at once: requests authenticated before
// the call finish with the principals they were authenticated as, later
// ones use the new set. On an error nothing changes.
func (s *Server) SetPrincipals(ps []*Principal) error {
	set, err := s.buildPrincipals(ps)
	if err != nil {
		return err
	}
	s.principals.Store(set)
	return nil
}

// Caller returns the [kms.Caller] the server decides for when the
// principal with the given ARN calls (the root principal's ARN is
// arn:aws:iam::ACCOUNT:root), and false if no principal has it: what
// "envelope policy check" evaluates.
func (s *Server) Caller(arn string) (*kms.Caller, bool) {
	p := s.principals.Load().byARN[arn]
	if p == nil {
		return nil, false
	}
	c := p.caller
	return &c, true
}

// Callers compiles the principals of a policy file for a KMS of account
// and region, as a server would, and returns their callers by ARN: for
// "envelope policy check", which evaluates without a server.
func (pf *PolicyFile) Callers(account, region string) (map[string]*kms.Caller, error) {
	out := map[string]*kms.Caller{}
	isKnown := func(arn string) bool { return out[arn] != nil }
	for _, p := range pf.Principals {
		cp := *p
		if err := cp.compile(account, region, isKnown); err != nil {
			return nil, err
		}
		if _, dup := out[cp.caller.ARN]; dup {
			return nil, errors.New("two principals have the ARN " + cp.caller.ARN)
		}
		c := cp.caller
		out[c.ARN] = &c
	}
	return out, nil
}

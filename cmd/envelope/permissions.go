package main

// Permissions: "envelope keys policy get|put", "envelope keys grant
// create|list|retire|revoke" and "envelope policy check".

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi"
	"github.com/spf13/pflag"
)

// maxPolicyFile bounds a key policy read by "keys policy put": AWS's limit
// is 32 KiB, and a larger file is refused by the KMS all the same.
const maxPolicyFile = 1 << 20

// permissionCommands are the keys commands of key policies and grants.
var permissionCommands = []keysCommand{
	{name: "policy get", usage: "KEY", doc: "Print the key's policy document, exactly as stored.",
		key: (*keysCmd).policyGet},
	{name: "policy put", usage: "KEY [FILE] [--bypass-policy-lockout-safety-check]",
		doc: `Set the key's policy to the document in FILE (or standard input). It is checked
strictly (the element at fault is named), may name only principals that exist,
and must still let you change the policy afterwards unless
--bypass-policy-lockout-safety-check is given.`,
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.BoolVar(&f.bypass, "bypass-policy-lockout-safety-check", false, "set a policy that would lock you out of changing it")
		},
		run: (*keysCmd).policyPut},
	{name: "grant create", usage: "KEY --grantee ARN --operations OP,... [--retiring ARN] [--name NAME] [--constraint-equals k=v]... [--constraint-subset k=v]...",
		doc: `Create a grant: the grantee principal may perform the operations (Decrypt,
Encrypt, GenerateDataKey, ReEncryptFrom, ...) with the key, for requests whose
encryption context equals the --constraint-equals pairs or includes the
--constraint-subset pairs. Prints the grant id and the grant token.`,
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.StringVar(&f.grantee, "grantee", "", "the grantee principal's `ARN`")
			fs.StringSliceVar(&f.operations, "operations", nil, "the grant `OPERATIONS`, comma-separated")
			fs.StringVar(&f.retiring, "retiring", "", "the `ARN` of the principal that may retire the grant")
			fs.StringVar(&f.grantName, "name", "", "the grant's `NAME` (a retried create with the same name and fields returns the same grant)")
			fs.StringArrayVar(&f.equals, "constraint-equals", nil, "encryption context pair `k=v` the request's context must equal (repeatable)")
			fs.StringArrayVar(&f.subset, "constraint-subset", nil, "encryption context pair `k=v` the request's context must include (repeatable)")
		},
		run: (*keysCmd).grantCreate},
	{name: "grant list", usage: "KEY", doc: "List the key's grants.", key: (*keysCmd).grantList},
	{name: "grant retire", usage: "KEY GRANT_ID | --token TOKEN", doc: "Retire a grant (as its retiring principal, or its grantee if it allows RetireGrant).",
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.StringVar(&f.token, "token", "", "the grant's `TOKEN` (instead of KEY and GRANT_ID)")
		},
		run: (*keysCmd).grantRetire},
	{name: "grant revoke", usage: "KEY GRANT_ID", doc: "Revoke a grant.", run: (*keysCmd).grantRevoke},
}

func init() {
	keysCommands = append(keysCommands, permissionCommands...)
	keysGroups = append(keysGroups, "policy", "grant")
}

func (k *keysCmd) policyGet(r keyRef) error {
	out, err := r.conn.api.GetKeyPolicy(k.ctx, &kms.GetKeyPolicyInput{KeyId: r.m.KeyId})
	if err != nil {
		return kmsHint(err, r.ref)
	}
	if k.f.json {
		return k.printJSON(out)
	}
	doc := out.Policy
	if !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	_, err = io.WriteString(k.c.stdout, doc)
	return err
}

func (k *keysCmd) policyPut(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return usageErrorf("keys policy put takes KEY and an optional FILE; see \"envelope keys policy put --help\"")
	}
	var src io.Reader = k.c.stdin
	name := "standard input"
	if len(args) == 2 && args[1] != "-" {
		f, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		src, name = f, args[1]
	}
	doc, err := io.ReadAll(io.LimitReader(src, maxPolicyFile+1))
	if err != nil {
		return fmt.Errorf("reading the key policy from %s: %v", name, err)
	}
	if len(doc) > maxPolicyFile {
		return fmt.Errorf("the key policy in %s is over %d bytes", name, maxPolicyFile)
	}
	r, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	out, err := r.conn.api.PutKeyPolicy(k.ctx, &kms.PutKeyPolicyInput{KeyId: r.m.KeyId, Policy: string(doc),
		BypassPolicyLockoutSafetyCheck: k.f.bypass})
	if err != nil {
		if kms.CodeOf(err) == kms.CodeMalformedPolicy {
			return &hintError{err, "\"envelope policy check\" shows what a policy decides; see the README's Permissions section"}
		}
		return kmsHint(err, r.ref)
	}
	return k.done(out, "set the key policy of %s", r.ref)
}

// pairs parses k=v arguments into an encryption context.
func pairs(flag string, args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, usageErrorf("%s %q: want name=value", flag, a)
		}
		m[name] = value
	}
	return m, nil
}

func (k *keysCmd) grantCreate(args []string) error {
	if err := nargs("grant create", args, 1, "one KEY"); err != nil {
		return err
	}
	if k.f.grantee == "" || len(k.f.operations) == 0 {
		return usageErrorf("keys grant create needs --grantee and --operations")
	}
	eq, err := pairs("--constraint-equals", k.f.equals)
	if err != nil {
		return err
	}
	sub, err := pairs("--constraint-subset", k.f.subset)
	if err != nil {
		return err
	}
	in := &kms.CreateGrantInput{GranteePrincipal: k.f.grantee, RetiringPrincipal: k.f.retiring,
		Operations: k.f.operations, Name: k.f.grantName}
	if eq != nil || sub != nil {
		in.Constraints = &kms.GrantConstraints{EncryptionContextEquals: eq, EncryptionContextSubset: sub}
	}
	r, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	in.KeyId = r.m.KeyId
	out, err := r.conn.api.CreateGrant(k.ctx, in)
	if err != nil {
		return kmsHint(err, r.ref)
	}
	if k.f.json {
		return k.printJSON(out)
	}
	fmt.Fprintf(k.c.stdout, "grant %s on key %s\ntoken %s\n", out.GrantId, r.name(), out.GrantToken)
	return nil
}

func (k *keysCmd) grantList(r keyRef) error {
	all, err := listAll(func(marker string) ([]kms.GrantListEntry, string, error) {
		out, err := r.conn.api.ListGrants(k.ctx, &kms.ListGrantsInput{KeyId: r.m.KeyId, Marker: marker})
		if err != nil {
			return nil, "", kmsHint(err, r.ref)
		}
		return out.Grants, nextMarker(out.Truncated, out.NextMarker), nil
	})
	if err != nil {
		return err
	}
	if k.f.json {
		return k.printJSON(&kms.ListGrantsOutput{Grants: all})
	}
	tw := tabwriter.NewWriter(k.c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT ID\tNAME\tGRANTEE\tOPERATIONS\tCONSTRAINTS")
	for _, g := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.GrantId, dash(g.Name), g.GranteePrincipal, strings.Join(g.Operations, ","), constraintText(g.Constraints))
	}
	return tw.Flush()
}

// constraintText shows a grant's constraints: "equals k=v,..." or
// "subset k=v,...", "-" for none.
func constraintText(c *kms.GrantConstraints) string {
	if c == nil {
		return "-"
	}
	var parts []string
	for _, x := range []struct {
		name string
		m    map[string]string
	}{{"equals", c.EncryptionContextEquals}, {"subset", c.EncryptionContextSubset}} {
		if len(x.m) == 0 {
			continue
		}
		var kv []string
		for key, v := range x.m {
			kv = append(kv, key+"="+v)
		}
		slices.Sort(kv)
		parts = append(parts, x.name+" "+strings.Join(kv, ","))
	}
	return dash(strings.Join(parts, "; "))
}

func (k *keysCmd) grantRetire(args []string) error {
	if k.f.token != "" {
		if len(args) != 0 {
			return usageErrorf("keys grant retire takes --token, or KEY and GRANT_ID, not both")
		}
		conn, err := k.conn(false)
		if err != nil {
			return err
		}
		out, err := conn.api.RetireGrant(k.ctx, &kms.RetireGrantInput{GrantToken: k.f.token})
		if err != nil {
			return err
		}
		return k.done(out, "retired the grant")
	}
	if err := nargs("grant retire", args, 2, "KEY and GRANT_ID, or --token"); err != nil {
		return err
	}
	r, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	out, err := r.conn.api.RetireGrant(k.ctx, &kms.RetireGrantInput{KeyId: r.m.KeyId, GrantId: args[1]})
	if err != nil {
		return kmsHint(err, r.ref)
	}
	return k.done(out, "retired grant %s of key %s", args[1], r.name())
}

func (k *keysCmd) grantRevoke(args []string) error {
	if err := nargs("grant revoke", args, 2, "KEY and GRANT_ID"); err != nil {
		return err
	}
	r, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	out, err := r.conn.api.RevokeGrant(k.ctx, &kms.RevokeGrantInput{KeyId: r.m.KeyId, GrantId: args[1]})
	if err != nil {
		return kmsHint(err, r.ref)
	}
	return k.done(out, "revoked grant %s of key %s", args[1], r.name())
}

const policyHelp = `Usage: envelope policy check --principal ARN --action ACTION [--key KEY] [-c name=value]... [--policy FILE]

Decide, without acting, whether a principal may perform an action on a key of
the keystore (--store), as "envelope serve" would: the key's policy, its
grants, and the principal's identity policies from the server's policy file
(--policy; without it the principal has none). Prints the decision and the
statement that decided it; the exit status is 0 if allowed, 1 if not.

ARN is arn:aws:iam::ACCOUNT:user/NAME (a policy file principal named NAME
without an "arn"), …:role/NAME, or arn:aws:iam::ACCOUNT:root. ACTION is as IAM
names it: kms:Decrypt, kms:GenerateDataKey, kms:ReEncryptFrom, ... Without
--key, the action is decided on no key (identity policies alone).

Flags:
%s
Example:
  envelope policy check --policy policy.json --principal arn:aws:iam::111122223333:user/reader \
      --action kms:Decrypt --key alias/app -c tenant=a
`

// policy runs "envelope policy check".
func (c *cli) policy(args []string) error {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintf(c.stdout, policyHelp, c.policyFlags(new(policyFlags)).FlagUsages())
			return nil
		}
		return usageErrorf("policy needs a command: check; see \"envelope policy --help\"")
	}
	var f policyFlags
	fs := c.policyFlags(&f)
	if ok, err := c.parse(fs, args[1:], policyHelp); !ok {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("policy check takes flags only, not %q", fs.Arg(0))
	}
	if f.principal == "" || f.action == "" {
		return usageErrorf("policy check needs --principal and --action")
	}
	ec, err := pairs("-c", f.context)
	if err != nil {
		return err
	}
	if c.kmsURL() != "" {
		return usageErrorf("policy check reads the keystore (--store): it cannot ask a remote KMS (--kms)")
	}
	conn, err := c.openKMS(c.ctx, needExisting)
	if err != nil {
		return err
	}
	svc := conn.ks.Service
	caller := &kms.Caller{ARN: f.principal}
	if f.policyFile != "" {
		pf, err := awsapi.LoadPolicy(f.policyFile)
		if err != nil {
			return err
		}
		callers, err := pf.Callers(svc.AccountID(), svc.Region())
		if err != nil {
			return fmt.Errorf("policy file %s: %v", f.policyFile, err)
		}
		if pc, ok := callers[f.principal]; ok {
			caller = pc
		} else if !strings.HasSuffix(f.principal, ":root") {
			fmt.Fprintf(c.stderr, "envelope: note: no principal of %s has the ARN %s: it has no identity policies\n", f.policyFile, f.principal)
		}
	}
	acc, err := svc.CheckAccess(c.ctx, caller, f.action, f.key, ec)
	if err != nil && kms.CodeOf(err) != kms.CodeNotFound {
		return err
	}
	if err != nil && acc.Allowed {
		fmt.Fprintln(c.stdout, acc.String())
		return kmsHint(err, f.key)
	}
	fmt.Fprintln(c.stdout, acc.String())
	if !acc.Allowed {
		return &exitError{code: 1, err: errors.New(acc.Err("").(*kms.Error).Message)}
	}
	return nil
}

type policyFlags struct {
	principal, action, key, policyFile string
	context                            []string
}

func (c *cli) policyFlags(f *policyFlags) *pflag.FlagSet {
	fs := c.newFlagSet("policy check")
	fs.StringVar(&f.principal, "principal", "", "the caller's `ARN`")
	fs.StringVar(&f.action, "action", "", "the `ACTION` (kms:Decrypt, ...)")
	fs.StringVar(&f.key, "key", "", "the `KEY` (alias/NAME, key id or ARN); none: an action on no key")
	fs.StringArrayVarP(&f.context, "context", "c", nil, "encryption context `name=value` of the request (repeatable)")
	fs.StringVar(&f.policyFile, "policy", "", "the server's policy `FILE`: the principals' identity policies")
	c.store.register(fs)
	return fs
}

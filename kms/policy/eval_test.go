package policy_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms/policy"
)

// Where the cases come from: the AWS documentation pages (IAM user guide,
// KMS developer guide) whose examples and rules they check, or this
// package's documented choice where AWS says nothing.
const (
	cOps       = "IAM UG, IAM JSON policy elements: Condition operators"
	cCond      = "IAM UG, IAM JSON policy elements: Condition"
	cMulti     = "IAM UG, Creating a condition with multiple keys or values"
	cVars      = "IAM UG, IAM policy elements: Variables and tags"
	cPrincipal = "IAM UG, AWS JSON policy elements: Principal"
	cNotPrin   = "IAM UG, AWS JSON policy elements: NotPrincipal"
	cAction    = "IAM UG, IAM JSON policy elements: Action"
	cNotAction = "IAM UG, IAM JSON policy elements: NotAction"
	cResource  = "IAM UG, IAM JSON policy elements: Resource"
	cNotRes    = "IAM UG, IAM JSON policy elements: NotResource"
	cEval      = "IAM UG, Policy evaluation logic"
	cGlobal    = "IAM UG, AWS global condition context keys"
	cDates     = "IAM UG, AWS: Allows access based on date and time"
	cDenyIP    = "IAM UG, AWS: Denies access to AWS based on the source IP"
	cVersion   = "IAM UG, IAM JSON policy elements: Version"
	cKMSCond   = "KMS DG, AWS KMS condition keys"
	cKMSDef    = "KMS DG, Default key policy"
	cKMSEval   = "KMS DG, Troubleshooting key access"
	cKMSPerms  = "KMS DG, AWS KMS permissions (resources)"
	cHere      = "package policy's documented choice"
)

const (
	acct    = "111122223333"
	app     = "arn:aws:iam::111122223333:user/app"
	bob     = "arn:aws:iam::111122223333:user/bob"
	admin   = "arn:aws:iam::111122223333:role/KeyAdmin"
	root    = "arn:aws:iam::111122223333:root"
	eve     = "arn:aws:iam::444455556666:user/eve"
	keyARN  = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	alias   = "arn:aws:kms:us-west-2:111122223333:alias/app"
	account = "arn:aws:kms:us-west-2:111122223333:*"
)

// allowApp is a statement allowing app every KMS action, under cond (a
// Condition's JSON, or "" for none).
func allowApp(cond string) string { return allowWho(app, cond) }

func allowWho(principal, cond string) string {
	s := `{"Effect": "Allow", "Principal": {"AWS": "` + principal + `"}, "Action": "kms:*", "Resource": "*"`
	if cond != "" {
		s += `, "Condition": ` + cond
	}
	return s + "}"
}

func denyAll(cond string) string {
	return `{"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": ` + cond + `}`
}

// docOf lays statements out as a 2012-10-17 policy.
func docOf(stmts []string) string {
	return `{"Version": "2012-10-17", "Statement": [` + strings.Join(stmts, ",\n") + `]}`
}

type mod func(*policy.Request)

func ec(kv ...string) mod {
	return func(r *policy.Request) {
		r.Context.EncryptionContext = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			r.Context.EncryptionContext[kv[i]] = kv[i+1]
		}
	}
}
func vals(v ...policy.Value) mod {
	return func(r *policy.Request) { r.Context.Values = append(r.Context.Values, v...) }
}
func ip(s string) mod { return func(r *policy.Request) { r.Context.SourceIP = netip.MustParseAddr(s) } }
func at(s string) mod {
	return func(r *policy.Request) {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		r.Context.Time = t
	}
}
func as(arn string) mod { return func(r *policy.Request) { r.Principal = arn } }
func act(a string) mod  { return func(r *policy.Request) { r.Action = a } }
func res(s string) mod  { return func(r *policy.Request) { r.Resource = s } }

// rq is app asking kms:Decrypt on keyARN, changed by mods.
func rq(mods ...mod) policy.Request {
	r := policy.Request{Principal: app, Action: "kms:Decrypt", Resource: keyARN}
	for _, m := range mods {
		m(&r)
	}
	return r
}

type evalCase struct {
	name  string
	cite  string
	stmts []string    // the statements of a 2012-10-17 key policy…
	doc   string      // …or a whole document
	kind  policy.Kind // KeyPolicy if 0
	req   policy.Request
	want  policy.Effect
	stmt  int  // the deciding statement; -2: not checked
	via   bool // Decision.ViaAccount
	odd   bool // the request is one Request.Check reports, on purpose
}

func (c *evalCase) document() string {
	if c.doc != "" {
		return c.doc
	}
	return docOf(c.stmts)
}

func (c *evalCase) policyKind() policy.Kind {
	if c.kind == 0 {
		return policy.KeyPolicy
	}
	return c.kind
}

// t builds a case whose deciding statement is not checked.
func t_(name, cite string, stmts []string, r policy.Request, want policy.Effect) evalCase {
	return evalCase{name: name, cite: cite, stmts: stmts, req: r, want: want, stmt: -2}
}

func S(s ...string) []string { return s }

func evalCases() []evalCase {
	const (
		allow = policy.Allow
		deny  = policy.Deny
		none  = policy.ImplicitDeny
	)
	defaultPolicy := policy.DefaultKeyPolicy(acct)
	ecApp := func(cond string) []string { return S(allowApp(cond)) }
	// withDeny puts a Deny statement after an Allow of everything to app.
	withDeny := func(deny string) []string { return S(allowApp(""), deny) }

	return []evalCase{
		// Decisions: default key policy, explicit deny, implicit deny.
		{name: "default key policy: the account root", cite: cKMSDef, doc: defaultPolicy, req: rq(as(root)), want: allow, stmt: 0},
		{name: "default key policy: a user of the account, via its identity policies", cite: cKMSDef, doc: defaultPolicy, req: rq(), want: allow, stmt: 0, via: true},
		{name: "default key policy: a role of the account", cite: cKMSEval, doc: defaultPolicy, req: rq(as(admin), act("kms:PutKeyPolicy")), want: allow, stmt: 0, via: true},
		{name: "default key policy: another account's user", cite: cKMSEval, doc: defaultPolicy, req: rq(as(eve)), want: none, stmt: -1},
		{name: "default key policy: root, any action", cite: cKMSDef, doc: defaultPolicy, req: rq(as(root), act("kms:ScheduleKeyDeletion")), want: allow, stmt: 0},
		{name: "explicit deny beats allow", cite: cEval, stmts: S(allowApp(""), `{"Effect": "Deny", "Principal": {"AWS": "`+app+`"}, "Action": "kms:Decrypt", "Resource": "*"}`), req: rq(), want: deny, stmt: 1},
		{name: "explicit deny beats allow, deny first", cite: cEval, stmts: S(`{"Sid": "NoDecrypt", "Effect": "Deny", "Principal": {"AWS": "`+app+`"}, "Action": "kms:Decrypt", "Resource": "*"}`, allowApp("")), req: rq(), want: deny, stmt: 0},
		{name: "a deny of another action leaves the allow", cite: cEval, stmts: S(allowApp(""), `{"Effect": "Deny", "Principal": {"AWS": "`+app+`"}, "Action": "kms:Encrypt", "Resource": "*"}`), req: rq(), want: allow, stmt: 0},
		{name: "no statement applies: implicit deny", cite: cEval, stmts: S(allowWho(bob, "")), req: rq(), want: none, stmt: -1},
		{name: "a deny alone allows nothing", cite: cEval, stmts: S(`{"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"}`), req: rq(), want: none, stmt: -1},
		{name: "a deny alone denies", cite: cEval, stmts: S(`{"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}`), req: rq(), want: deny, stmt: 0},
		{name: "the caller's own statement before the account's", cite: cKMSEval, stmts: S(allowWho(root, ""), allowApp("")), req: rq(), want: allow, stmt: 1},
		{name: "a deny naming the account denies its users", cite: cPrincipal, stmts: S(allowApp(""), `{"Effect": "Deny", "Principal": {"AWS": "`+acct+`"}, "Action": "kms:*", "Resource": "*"}`), req: rq(), want: deny, stmt: 1},
		{name: "a deny naming the account denies its root", cite: cPrincipal, stmts: S(allowWho(root, ""), `{"Effect": "Deny", "Principal": {"AWS": "`+root+`"}, "Action": "kms:*", "Resource": "*"}`), req: rq(as(root)), want: deny, stmt: 1},
		{name: "Statement as one object", cite: cVersion, doc: `{"Version": "2012-10-17", "Statement": {"Sid": "One", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}}`, req: rq(), want: allow, stmt: 0},
		{name: "Version 2008-10-17", cite: cVersion, doc: `{"Version": "2008-10-17", "Statement": [` + allowApp("") + `]}`, req: rq(), want: allow, stmt: 0},
		{name: "no Version", cite: cVersion, doc: `{"Statement": [` + allowApp("") + `]}`, req: rq(), want: allow, stmt: 0},

		// Principals.
		t_(`Principal "*"`, cPrincipal, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}`), rq(as(eve)), allow),
		t_(`Principal {"AWS": "*"}`, cPrincipal, S(`{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}`), rq(as(eve)), allow),
		{name: "an account id: a user, via the account", cite: cPrincipal, stmts: S(allowWho(acct, "")), req: rq(), want: allow, stmt: 0, via: true},
		{name: "an account id: the account root itself", cite: cPrincipal, stmts: S(allowWho(acct, "")), req: rq(as(root)), want: allow, stmt: 0},
		{name: "an account ARN: a user, via the account", cite: cKMSDef, stmts: S(allowWho(root, "")), req: rq(), want: allow, stmt: 0, via: true},
		{name: "a user ARN", cite: cPrincipal, stmts: S(allowWho(app, "")), req: rq(), want: allow, stmt: 0},
		t_("a user ARN's name is case-sensitive", cPrincipal, S(allowWho("arn:aws:iam::111122223333:user/App", "")), rq(), none),
		t_("a role ARN", cPrincipal, S(allowWho(admin, "")), rq(as(admin)), allow),
		t_("a role ARN with a path", cPrincipal, S(allowWho("arn:aws:iam::111122223333:role/division/KeyAdmin", "")), rq(as("arn:aws:iam::111122223333:role/division/KeyAdmin")), allow),
		t_("a service-linked role", cPrincipal, S(allowWho("arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", "")), rq(as("arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling")), allow),
		t_("a role ARN does not name a user of the same name", cPrincipal, S(allowWho("arn:aws:iam::111122223333:role/app", "")), rq(), none),
		t_("a list of principals", cPrincipal, S(`{"Effect": "Allow", "Principal": {"AWS": ["`+bob+`", "`+app+`"]}, "Action": "kms:Decrypt", "Resource": "*"}`), rq(), allow),
		t_("another account's root", cPrincipal, S(allowWho("arn:aws:iam::444455556666:root", "")), rq(), none),
		{name: "another account's root: its users, via it", cite: cPrincipal, stmts: S(allowWho("arn:aws:iam::444455556666:root", "")), req: rq(as(eve)), want: allow, stmt: 0, via: true},
		t_("a Service principal never names a caller", cPrincipal, S(`{"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "kms:*", "Resource": "*"}`), rq(), none),
		t_("a role session ARN", cPrincipal, S(allowWho("arn:aws:sts::111122223333:assumed-role/KeyAdmin/alice", "")), rq(as("arn:aws:sts::111122223333:assumed-role/KeyAdmin/alice")), allow),
		t_("an account ARN of another partition", cPrincipal, S(allowWho("arn:aws-cn:iam::111122223333:root", "")), rq(), none),
		{name: "a bare account id, in any partition", cite: cPrincipal, stmts: S(allowWho(acct, "")), req: rq(as("arn:aws-cn:iam::111122223333:user/app")), want: allow, stmt: 0, via: true},
		{name: "a caller that is no ARN matches only \"*\"", cite: cHere, stmts: S(allowWho(acct, "")), req: rq(as("app")), want: none, stmt: -1, odd: true},

		// NotPrincipal.
		t_("Deny NotPrincipal: the named user is exempt", cNotPrin, withDeny(`{"Effect": "Deny", "NotPrincipal": {"AWS": ["`+app+`", "`+root+`"]}, "Action": "kms:*", "Resource": "*"}`), rq(), allow),
		t_("Deny NotPrincipal: another user is denied", cNotPrin, S(allowWho(bob, ""), `{"Effect": "Deny", "NotPrincipal": {"AWS": ["`+app+`", "`+root+`"]}, "Action": "kms:*", "Resource": "*"}`), rq(as(bob)), deny),
		t_("Deny NotPrincipal naming the account: its users are denied", cHere, withDeny(`{"Effect": "Deny", "NotPrincipal": {"AWS": "`+root+`"}, "Action": "kms:*", "Resource": "*"}`), rq(), deny),
		t_("Deny NotPrincipal naming the account: its root is exempt", cHere, S(allowWho(root, ""), `{"Effect": "Deny", "NotPrincipal": {"AWS": "`+acct+`"}, "Action": "kms:*", "Resource": "*"}`), rq(as(root)), allow),
		t_(`Deny NotPrincipal "*" exempts everyone`, cNotPrin, withDeny(`{"Effect": "Deny", "NotPrincipal": "*", "Action": "kms:*", "Resource": "*"}`), rq(), allow),
		t_("Allow NotPrincipal allows everyone else", cNotPrin, S(`{"Effect": "Allow", "NotPrincipal": {"AWS": "`+admin+`"}, "Action": "kms:Decrypt", "Resource": "*"}`), rq(), allow),
		t_("Allow NotPrincipal: the named role is not allowed", cNotPrin, S(`{"Effect": "Allow", "NotPrincipal": {"AWS": "`+admin+`"}, "Action": "kms:Decrypt", "Resource": "*"}`), rq(as(admin)), none),

		// Actions.
		t_("an exact action", cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}`), rq(), allow),
		t_("actions ignore case (pattern)", cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "KMS:decrypt", "Resource": "*"}`), rq(), allow),
		t_("actions ignore case (request)", cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}`), rq(act("KMS:DECRYPT")), allow),
		t_(`"kms:*"`, cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}`), rq(act("kms:CreateGrant")), allow),
		t_(`"*"`, cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}`), rq(act("kms:CreateGrant")), allow),
		t_(`"kms:GenerateDataKey*" and GenerateDataKeyWithoutPlaintext`, cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:GenerateDataKey*", "Resource": "*"}`), rq(act("kms:GenerateDataKeyWithoutPlaintext")), allow),
		t_(`"kms:GenerateDataKey*" and GenerateDataKey (* matches nothing)`, cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:GenerateDataKey*", "Resource": "*"}`), rq(act("kms:GenerateDataKey")), allow),
		t_(`"kms:GenerateDataKey*" and Decrypt`, cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:GenerateDataKey*", "Resource": "*"}`), rq(), none),
		t_(`"kms:ReEncrypt*" and ReEncryptFrom`, cKMSCond, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:ReEncrypt*", "Resource": "*"}`), rq(act("kms:ReEncryptFrom")), allow),
		t_(`"kms:*Key" and DescribeKey`, cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*Key", "Resource": "*"}`), rq(act("kms:DescribeKey")), allow),
		t_(`"kms:*Key" and Decrypt`, cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*Key", "Resource": "*"}`), rq(), none),
		t_(`"kms:?ecrypt" and Decrypt`, cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:?ecrypt", "Resource": "*"}`), rq(), allow),
		t_(`"kms:?ecrypt" and Encrypt`, cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:?ecrypt", "Resource": "*"}`), rq(act("kms:Encrypt")), none),
		t_("a list of actions", cAction, S(`{"Effect": "Allow", "Principal": "*", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}`), rq(), allow),
		t_("NotAction: another action is allowed", cNotAction, S(`{"Effect": "Allow", "Principal": "*", "NotAction": "kms:Decrypt", "Resource": "*"}`), rq(act("kms:Encrypt")), allow),
		t_("NotAction: the named action is not", cNotAction, S(`{"Effect": "Allow", "Principal": "*", "NotAction": "kms:Decrypt", "Resource": "*"}`), rq(), none),
		t_("Deny NotAction denies every other action", cNotAction, withDeny(`{"Effect": "Deny", "Principal": "*", "NotAction": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}`), rq(act("kms:Encrypt")), deny),
		t_("Deny NotAction spares the named actions", cNotAction, withDeny(`{"Effect": "Deny", "Principal": "*", "NotAction": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}`), rq(), allow),

		// Resources.
		t_(`Resource "*"`, cResource, S(allowApp("")), rq(), allow),
		t_("the key's ARN", cResource, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "`+keyARN+`"}`), rq(), allow),
		t_("another key's ARN", cResource, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-west-2:111122223333:key/other"}`), rq(), none),
		t_("every key of the account in a region", cKMSPerms, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-west-2:111122223333:key/*"}`), rq(), allow),
		t_("every key of the account", cKMSPerms, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:111122223333:key/*"}`), rq(), allow),
		t_("another account's keys", cKMSPerms, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:444455556666:key/*"}`), rq(), none),
		t_("aliases are not keys", cKMSPerms, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-west-2:111122223333:alias/*"}`), rq(), none),
		t_("an alias ARN", cKMSPerms, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:CreateAlias", "Resource": "arn:aws:kms:us-west-2:111122223333:alias/*"}`), rq(act("kms:CreateAlias"), res(alias)), allow),
		t_("an operation on no key, and the account-wide resource", cKMSPerms, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:CreateKey", "Resource": "arn:aws:kms:us-west-2:111122223333:*"}`), rq(act("kms:CreateKey"), res(account)), allow),
		t_(`an operation on no key, and "*"`, cKMSPerms, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:CreateKey", "Resource": "*"}`), rq(act("kms:CreateKey"), res(account)), allow),
		t_("an operation on no key, and key/*", cKMSPerms, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:CreateKey", "Resource": "arn:aws:kms:us-west-2:111122223333:key/*"}`), rq(act("kms:CreateKey"), res(account)), none),
		t_("a wildcard does not cross a colon", cResource, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-west-2:*:1234abcd-12ab-34cd-56ef-1234567890ab"}`), rq(res("arn:aws:kms:us-west-2:111122223333:key:1234abcd-12ab-34cd-56ef-1234567890ab")), none),
		t_("a resource that is no ARN matches only \"*\"", cResource, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:*:*"}`), rq(res("key/1234")), none),
		t_("a list of resources", cResource, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": ["arn:aws:kms:us-west-2:111122223333:alias/*", "`+keyARN+`"]}`), rq(), allow),
		t_("NotResource: the key is not excluded", cNotRes, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "NotResource": "arn:aws:kms:us-west-2:111122223333:alias/*"}`), rq(), allow),
		t_("NotResource: the key is excluded", cNotRes, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "NotResource": "`+keyARN+`"}`), rq(), none),
		t_("a variable in the resource part", cVars, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:CreateAlias", "Resource": "arn:aws:kms:us-west-2:111122223333:alias/${aws:username}"}`), rq(act("kms:CreateAlias"), res(alias)), allow),
		t_("a variable in the resource part, another user", cVars, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:CreateAlias", "Resource": "arn:aws:kms:us-west-2:111122223333:alias/${aws:username}"}`), rq(as(bob), act("kms:CreateAlias"), res(alias)), none),
		t_("a variable with no value matches no resource", cVars, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:CreateAlias", "Resource": "arn:aws:kms:us-west-2:111122223333:alias/${aws:username}"}`), rq(as(admin), act("kms:CreateAlias"), res(alias)), none),
		{name: "no variables in Version 2008-10-17", cite: cVersion, doc: `{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:CreateAlias", "Resource": "arn:aws:kms:us-west-2:111122223333:alias/${aws:username}"}]}`, req: rq(act("kms:CreateAlias"), res(alias)), want: none, stmt: -1},
		{name: "no variables in Version 2008-10-17: the literal text", cite: cVersion, doc: `{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:CreateAlias", "Resource": "arn:aws:kms:us-west-2:111122223333:alias/${aws:username}"}]}`, req: rq(act("kms:CreateAlias"), res("arn:aws:kms:us-west-2:111122223333:alias/${aws:username}")), want: allow, stmt: 0},

		// String operators and the encryption context.
		t_("StringEquals kms:EncryptionContext:KEY", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}}`), rq(ec("AppName", "ExampleApp")), allow),
		t_("StringEquals: the value's case counts", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}}`), rq(ec("AppName", "exampleapp")), none),
		t_("kms:EncryptionContext:KEY: the key's case does not count", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:Appname": "ExampleApp"}}`), rq(ec("AppName", "ExampleApp")), allow),
		t_("condition key names ignore case", cCond, ecApp(`{"StringEquals": {"KMS:ENCRYPTIONCONTEXT:AppName": "ExampleApp"}}`), rq(ec("AppName", "ExampleApp")), allow),
		t_("StringEquals: another context key", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}}`), rq(ec("Other", "ExampleApp")), none),
		t_("StringEquals: no encryption context", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}}`), rq(), none),
		t_("StringEquals: other pairs are permitted", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}}`), rq(ec("AppName", "ExampleApp", "Stage", "Test")), allow),
		t_("Deny one of several values (OR): Production", cKMSCond, withDeny(`{"Effect": "Deny", "Principal": {"AWS": "`+app+`"}, "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:Stage": ["Restricted", "Production"]}}}`), rq(ec("Stage", "Production")), deny),
		t_("Deny one of several values (OR): Test", cKMSCond, withDeny(`{"Effect": "Deny", "Principal": {"AWS": "`+app+`"}, "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:Stage": ["Restricted", "Production"]}}}`), rq(ec("Stage", "Test")), allow),
		t_("two context keys (AND): both", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:Department": "IT", "kms:EncryptionContext:Project": "Alpha"}}`), rq(ec("Department", "IT", "Project", "Alpha")), allow),
		t_("two context keys (AND): one", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:Department": "IT", "kms:EncryptionContext:Project": "Alpha"}}`), rq(ec("Department", "IT")), none),
		t_("StringNotEquals: another value", cOps, ecApp(`{"StringNotEquals": {"kms:EncryptionContext:Stage": "Production"}}`), rq(ec("Stage", "Test")), allow),
		t_("StringNotEquals: the value", cOps, ecApp(`{"StringNotEquals": {"kms:EncryptionContext:Stage": "Production"}}`), rq(ec("Stage", "Production")), none),
		t_("StringNotEquals: the key absent", cOps, ecApp(`{"StringNotEquals": {"kms:EncryptionContext:Stage": "Production"}}`), rq(), allow),
		t_("StringNotEquals, several values (NOR): one of them", cMulti, ecApp(`{"StringNotEquals": {"kms:EncryptionContext:Stage": ["Production", "Restricted"]}}`), rq(ec("Stage", "Restricted")), none),
		t_("StringNotEquals, several values (NOR): none of them", cMulti, ecApp(`{"StringNotEquals": {"kms:EncryptionContext:Stage": ["Production", "Restricted"]}}`), rq(ec("Stage", "Test")), allow),
		t_("StringEqualsIgnoreCase", cCond, ecApp(`{"StringEqualsIgnoreCase": {"kms:EncryptionContext:user": "johndoe"}}`), rq(ec("user", "JohnDoe")), allow),
		t_("StringEqualsIgnoreCase: another value", cCond, ecApp(`{"StringEqualsIgnoreCase": {"kms:EncryptionContext:user": "johndoe"}}`), rq(ec("user", "JaneDoe")), none),
		t_("StringEqualsIgnoreCase: Unicode case", cOps, ecApp(`{"StringEqualsIgnoreCase": {"kms:EncryptionContext:city": "ÅRHUS"}}`), rq(ec("city", "århus")), allow),
		t_("StringNotEqualsIgnoreCase: equal but for case", cOps, ecApp(`{"StringNotEqualsIgnoreCase": {"kms:EncryptionContext:user": "johndoe"}}`), rq(ec("user", "JOHNDOE")), none),
		t_("StringNotEqualsIgnoreCase: another value", cOps, ecApp(`{"StringNotEqualsIgnoreCase": {"kms:EncryptionContext:user": "johndoe"}}`), rq(ec("user", "jane")), allow),
		t_("StringLike *", cOps, ecApp(`{"StringLike": {"kms:EncryptionContext:purpose": "backup-*"}}`), rq(ec("purpose", "backup-daily")), allow),
		t_("StringLike is case-sensitive", cOps, ecApp(`{"StringLike": {"kms:EncryptionContext:purpose": "backup-*"}}`), rq(ec("purpose", "Backup-daily")), none),
		t_("StringLike ?: one character", cOps, ecApp(`{"StringLike": {"kms:EncryptionContext:v": "v?"}}`), rq(ec("v", "v1")), allow),
		t_("StringLike ?: not two", cOps, ecApp(`{"StringLike": {"kms:EncryptionContext:v": "v?"}}`), rq(ec("v", "v10")), none),
		t_("StringLike ?: one multibyte character", cOps, ecApp(`{"StringLike": {"kms:EncryptionContext:v": "v?"}}`), rq(ec("v", "vé")), allow),
		t_("StringLike * anywhere", cOps, ecApp(`{"StringLike": {"kms:EncryptionContext:file": "*/reports/*.pdf"}}`), rq(ec("file", "2026/01/reports/q1.pdf")), allow),
		t_(`StringLike "*": any value`, cOps, ecApp(`{"StringLike": {"kms:EncryptionContext:tenant": "*"}}`), rq(ec("tenant", "")), allow),
		t_(`StringLike "*": the key absent`, cOps, ecApp(`{"StringLike": {"kms:EncryptionContext:tenant": "*"}}`), rq(ec("other", "x")), none),
		t_(`StringEquals "": the empty value`, cOps, ecApp(`{"StringEquals": {"kms:EncryptionContext:tenant": ""}}`), rq(ec("tenant", "")), allow),
		t_("StringNotLike: a match", cOps, ecApp(`{"StringNotLike": {"kms:EncryptionContext:stage": "prod-*"}}`), rq(ec("stage", "prod-1")), none),
		t_("StringNotLike: no match", cOps, ecApp(`{"StringNotLike": {"kms:EncryptionContext:stage": "prod-*"}}`), rq(ec("stage", "dev-1")), allow),
		t_("StringNotLike: the key absent", cOps, ecApp(`{"StringNotLike": {"kms:EncryptionContext:stage": "prod-*"}}`), rq(), allow),
		t_("StringEquals takes * literally", cOps, ecApp(`{"StringEquals": {"kms:EncryptionContext:t": "a*"}}`), rq(ec("t", "abc")), none),
		t_("StringEquals takes * literally: the literal", cOps, ecApp(`{"StringEquals": {"kms:EncryptionContext:t": "a*"}}`), rq(ec("t", "a*")), allow),
		t_("kms:CallerAccount and kms:ViaService (EBS's key policy): a direct call", cKMSCond, S(`{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333", "kms:ViaService": "ec2.us-west-2.amazonaws.com"}}}`), rq(), none),
		t_("kms:CallerAccount and kms:ViaService: through the service", cKMSCond, S(`{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333", "kms:ViaService": "ec2.us-west-2.amazonaws.com"}}}`), rq(vals(policy.String("kms:ViaService", "ec2.us-west-2.amazonaws.com"))), allow),
		t_("kms:CallerAccount: another account", cKMSCond, S(`{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}}`), rq(as(eve)), none),
		t_("kms:CallerAccount: the account", cKMSCond, S(`{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}}`), rq(), allow),
		t_("kms:ViaService deny: a direct call is not denied", cKMSCond, withDeny(`{"Effect": "Deny", "Principal": {"AWS": "`+app+`"}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": ["lambda.us-west-2.amazonaws.com"]}}}`), rq(), allow),
		t_("kms:ViaService deny: through the service", cKMSCond, withDeny(`{"Effect": "Deny", "Principal": {"AWS": "`+app+`"}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": ["lambda.us-west-2.amazonaws.com"]}}}`), rq(vals(policy.String("kms:ViaService", "lambda.us-west-2.amazonaws.com"))), deny),
		t_("kms:RequestAlias: the alias", cKMSCond, ecApp(`{"StringEquals": {"kms:RequestAlias": "alias/finance-key"}}`), rq(vals(policy.String("kms:RequestAlias", "alias/finance-key"))), allow),
		t_("kms:RequestAlias: a key id (no alias)", cKMSCond, ecApp(`{"StringEquals": {"kms:RequestAlias": "alias/finance-key"}}`), rq(), none),
		t_("kms:RequestAlias: a pattern", cKMSCond, ecApp(`{"StringLike": {"kms:RequestAlias": "alias/*test*"}}`), rq(vals(policy.String("kms:RequestAlias", "alias/project-test-1"))), allow),
		t_("kms:KeySpec", cKMSCond, ecApp(`{"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}}`), rq(vals(policy.String("kms:KeySpec", "SYMMETRIC_DEFAULT"))), allow),
		t_("kms:KeySpec: another spec", cKMSCond, ecApp(`{"StringEquals": {"kms:KeySpec": "RSA_4096"}}`), rq(vals(policy.String("kms:KeySpec", "SYMMETRIC_DEFAULT"))), none),
		t_("kms:KeyUsage", cKMSCond, ecApp(`{"StringEquals": {"kms:KeyUsage": "ENCRYPT_DECRYPT"}}`), rq(vals(policy.String("kms:KeyUsage", "ENCRYPT_DECRYPT"))), allow),
		t_("kms:EncryptionAlgorithm deny (StringNotEquals): another algorithm", cKMSCond, withDeny(`{"Effect": "Deny", "Principal": {"AWS": "`+app+`"}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*"], "Resource": "*", "Condition": {"StringNotEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}}`), rq(vals(policy.String("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT"))), deny),
		t_("kms:EncryptionAlgorithm deny (StringNotEquals): the algorithm", cKMSCond, withDeny(`{"Effect": "Deny", "Principal": {"AWS": "`+app+`"}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*"], "Resource": "*", "Condition": {"StringNotEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}}`), rq(vals(policy.String("kms:EncryptionAlgorithm", "RSAES_OAEP_SHA_256"))), allow),
		t_("kms:DataKeyPairSpec StringLike", cKMSCond, ecApp(`{"StringLike": {"kms:DataKeyPairSpec": "RSA*"}}`), rq(vals(policy.String("kms:DataKeyPairSpec", "RSA_2048"))), allow),
		t_("aws:PrincipalArn", cGlobal, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalArn": "`+app+`"}}}`), rq(), allow),
		t_("aws:PrincipalArn: another caller", cGlobal, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalArn": "`+app+`"}}}`), rq(as(bob)), none),
		t_("aws:PrincipalAccount", cGlobal, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalAccount": "111122223333"}}}`), rq(as(admin)), allow),
		t_("aws:username", cGlobal, ecApp(`{"StringEquals": {"aws:username": "app"}}`), rq(), allow),
		t_("aws:username of a user with a path", cGlobal, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"aws:username": "app"}}}`), rq(as("arn:aws:iam::111122223333:user/division/app")), allow),
		t_("aws:username: a role has none", cGlobal, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"aws:username": "KeyAdmin"}}}`), rq(as(admin)), none),
		t_("aws:username: the root has none", cGlobal, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"Null": {"aws:username": "true"}}}`), rq(as(root)), allow),
		t_("aws:ResourceTag/KEY: the tag key ignores case", cCond, ecApp(`{"StringEquals": {"aws:ResourceTag/TagKey1": "Value1"}}`), rq(vals(policy.String("aws:ResourceTag/tagkey1", "Value1"))), allow),

		t_("aws:CurrentTime compared as a string (RFC 3339, UTC)", cGlobal, ecApp(`{"StringLike": {"aws:CurrentTime": "2020-04-*"}}`), rq(at("2020-04-01T01:00:00+02:00")), none),
		t_("aws:CurrentTime compared as a string: the day in UTC", cGlobal, ecApp(`{"StringLike": {"aws:CurrentTime": "2020-03-31T*"}}`), rq(at("2020-04-01T01:00:00+02:00")), allow),
		t_("aws:EpochTime compared as a string", cGlobal, ecApp(`{"StringEquals": {"aws:EpochTime": "1585699200"}}`), rq(at("2020-04-01T00:00:00Z")), allow),
		t_("aws:SourceIp compared as a string", cGlobal, ecApp(`{"StringEquals": {"aws:SourceIp": "2001:db8::7"}}`), rq(ip("2001:DB8::7")), allow),
		t_("aws:SourceIp as a variable", cVars, ecApp(`{"StringEquals": {"kms:EncryptionContext:from": "${aws:SourceIp}"}}`), rq(ip("192.0.2.1"), ec("from", "192.0.2.1")), allow),
		t_("a variable whose key has two values: no Allow", cHere, ecApp(`{"StringEquals": {"kms:EncryptionContext:user": "${kms:EncryptionContext:owner}"}}`), rq(ec("user", "a", "owner", "a", "OWNER", "b")), none),
		t_("a variable whose key has two values: the Deny applies", cHere, withDeny(denyAll(`{"StringEquals": {"kms:EncryptionContext:user": "${kms:EncryptionContext:owner}"}}`)), rq(ec("user", "a", "owner", "a", "OWNER", "b")), deny),
		t_("a variable whose key has two equal values", cHere, ecApp(`{"StringEquals": {"kms:EncryptionContext:user": "${kms:EncryptionContext:owner}"}}`), rq(ec("user", "a", "owner", "a", "OWNER", "a")), allow),
		t_("an address that is no address (a zone)", cHere, ecApp(`{"IpAddress": {"aws:VpcSourceIp": "fe80::/10"}}`), rq(vals(policy.String("aws:VpcSourceIp", "fe80::1%eth0"))), none),
		t_("Bool on a value that is no string (aws:CurrentTime)", cHere, withDeny(denyAll(`{"Bool": {"aws:CurrentTime": "true"}}`)), rq(at("2020-04-01T00:00:00Z")), deny),

		// Numeric operators.
		t_("NumericLessThanEquals: equal", cOps, ecApp(`{"NumericLessThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "10"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "10"))), allow),
		t_("NumericLessThanEquals: greater", cOps, ecApp(`{"NumericLessThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "10"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "11"))), none),
		t_("NumericLessThan: equal", cOps, ecApp(`{"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": "10"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "10"))), none),
		t_("NumericLessThan: less", cOps, ecApp(`{"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": "10"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "7"))), allow),
		t_("NumericEquals: 10 and 10.0", cOps, ecApp(`{"NumericEquals": {"kms:RotationPeriodInDays": "365"}}`), rq(vals(policy.String("kms:RotationPeriodInDays", "365.0"))), allow),
		t_("NumericEquals: a JSON number", cCond, ecApp(`{"NumericEquals": {"kms:RotationPeriodInDays": 365}}`), rq(vals(policy.String("kms:RotationPeriodInDays", "365"))), allow),
		t_("NumericNotEquals: another number", cOps, ecApp(`{"NumericNotEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "7"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "30"))), allow),
		t_("NumericNotEquals: the number", cOps, ecApp(`{"NumericNotEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "7"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "7"))), none),
		t_("NumericGreaterThan", cOps, ecApp(`{"NumericGreaterThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": "7"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "30"))), allow),
		t_("NumericGreaterThan: equal", cOps, ecApp(`{"NumericGreaterThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": "7"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "7"))), none),
		t_("NumericGreaterThanEquals: equal", cKMSCond, ecApp(`{"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "21"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "21"))), allow),
		t_("NumericGreaterThanEquals: less", cKMSCond, ecApp(`{"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "21"}}`), rq(vals(policy.String("kms:ScheduleKeyDeletionPendingWindowInDays", "7"))), none),
		t_("NumericLessThan: decimals", cOps, ecApp(`{"NumericLessThan": {"kms:EncryptionContext:version": "2.5"}}`), rq(ec("version", "2.25")), allow),
		t_("NumericLessThan: the key absent", cOps, ecApp(`{"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": "10"}}`), rq(), none),
		t_("NumericNotEquals: the key absent", cOps, ecApp(`{"NumericNotEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "10"}}`), rq(), allow),
		t_("aws:EpochTime with a numeric operator", cGlobal, ecApp(`{"NumericLessThan": {"aws:EpochTime": "1767225600"}}`), rq(at("2025-12-31T23:59:59Z")), allow),
		t_("aws:EpochTime with a numeric operator: later", cGlobal, ecApp(`{"NumericLessThan": {"aws:EpochTime": "1767225600"}}`), rq(at("2026-01-01T00:00:00Z")), none),

		// Date operators.
		t_("between two dates: inside", cDates, ecApp(`{"DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"}, "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}}`), rq(at("2020-05-01T12:00:00Z")), allow),
		t_("between two dates: after", cDates, ecApp(`{"DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"}, "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}}`), rq(at("2020-07-01T00:00:00Z")), none),
		t_("between two dates: before", cDates, ecApp(`{"DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"}, "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}}`), rq(at("2020-03-31T23:59:59Z")), none),
		t_("aws:CurrentTime absent (no time in the request)", cHere, ecApp(`{"DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"}}`), rq(), none),
		t_("a date in epoch seconds", cOps, ecApp(`{"DateGreaterThanEquals": {"aws:CurrentTime": "1585699200"}}`), rq(at("2020-04-01T00:00:00Z")), allow),
		t_("a date in epoch seconds: before", cOps, ecApp(`{"DateGreaterThanEquals": {"aws:CurrentTime": "1585699200"}}`), rq(at("2020-03-31T23:59:59Z")), none),
		t_("DateEquals", cOps, ecApp(`{"DateEquals": {"aws:CurrentTime": "2020-04-01T00:00:00Z"}}`), rq(at("2020-04-01T00:00:00Z")), allow),
		t_("DateEquals: another instant", cOps, ecApp(`{"DateEquals": {"aws:CurrentTime": "2020-04-01T00:00:00Z"}}`), rq(at("2020-04-01T00:00:01Z")), none),
		t_("DateNotEquals", cOps, ecApp(`{"DateNotEquals": {"aws:CurrentTime": "2020-04-01T00:00:00Z"}}`), rq(at("2020-04-01T00:00:01Z")), allow),
		t_("DateLessThanEquals: equal", cOps, ecApp(`{"DateLessThanEquals": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}}`), rq(at("2020-06-30T23:59:59Z")), allow),
		t_("DateLessThan: equal", cOps, ecApp(`{"DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}}`), rq(at("2020-06-30T23:59:59Z")), none),
		t_("a date with a time zone offset", cOps, ecApp(`{"DateEquals": {"aws:CurrentTime": "2020-04-01T02:00:00+02:00"}}`), rq(at("2020-04-01T00:00:00Z")), allow),
		t_("a date alone is its midnight, UTC", cOps, ecApp(`{"DateGreaterThanEquals": {"aws:CurrentTime": "2020-04-01"}}`), rq(at("2020-04-01T00:00:00Z")), allow),
		t_("a date with fractional seconds", cOps, ecApp(`{"DateLessThan": {"aws:CurrentTime": "2020-04-01T00:00:00.5Z"}}`), rq(at("2020-04-01T00:00:00Z")), allow),
		t_("aws:EpochTime with a date operator", cGlobal, ecApp(`{"DateGreaterThan": {"aws:EpochTime": "2020-04-01T00:00:00Z"}}`), rq(at("2020-04-02T00:00:00Z")), allow),
		t_("kms:ValidTo (epoch seconds) with a date operator", cKMSCond, ecApp(`{"DateLessThan": {"kms:ValidTo": "1767225600"}}`), rq(vals(policy.String("kms:ValidTo", "1700000000"))), allow),
		t_("kms:ValidTo: later", cKMSCond, ecApp(`{"DateLessThan": {"kms:ValidTo": "1767225600"}}`), rq(vals(policy.String("kms:ValidTo", "1800000000"))), none),

		// Bool.
		t_("Bool true (a JSON boolean)", cKMSCond, ecApp(`{"Bool": {"kms:GrantIsForAWSResource": true}}`), rq(vals(policy.Bool("kms:GrantIsForAWSResource", true))), allow),
		t_("Bool true: false", cKMSCond, ecApp(`{"Bool": {"kms:GrantIsForAWSResource": true}}`), rq(vals(policy.Bool("kms:GrantIsForAWSResource", false))), none),
		t_("Bool true: absent", cKMSCond, ecApp(`{"Bool": {"kms:GrantIsForAWSResource": "true"}}`), rq(), none),
		t_(`Bool "false" (aws:SecureTransport)`, cOps, withDeny(denyAll(`{"Bool": {"aws:SecureTransport": "false"}}`)), rq(vals(policy.Bool("aws:SecureTransport", false))), deny),
		t_(`Bool "false" (aws:SecureTransport): over TLS`, cOps, withDeny(denyAll(`{"Bool": {"aws:SecureTransport": "false"}}`)), rq(vals(policy.Bool("aws:SecureTransport", true))), allow),
		t_("Bool ignores the value's case", cOps, ecApp(`{"Bool": {"kms:MultiRegion": "TRUE"}}`), rq(vals(policy.String("kms:MultiRegion", "True"))), allow),
		t_("Bool: a value that is no boolean leaves Allow undecided", cHere, ecApp(`{"Bool": {"kms:MultiRegion": "true"}}`), rq(vals(policy.String("kms:MultiRegion", "yes"))), none),
		t_("Bool: a value that is no boolean leaves Deny undecided", cHere, withDeny(denyAll(`{"Bool": {"kms:MultiRegion": "false"}}`)), rq(vals(policy.String("kms:MultiRegion", "yes"))), deny),

		// Null.
		t_("Null true: absent", cOps, ecApp(`{"Null": {"kms:BypassPolicyLockoutSafetyCheck": true}}`), rq(act("kms:PutKeyPolicy")), allow),
		t_("Null true: present", cKMSCond, ecApp(`{"Null": {"kms:BypassPolicyLockoutSafetyCheck": true}}`), rq(act("kms:PutKeyPolicy"), vals(policy.Bool("kms:BypassPolicyLockoutSafetyCheck", false))), none),
		t_("Null false: present", cOps, ecApp(`{"Null": {"kms:EncryptionContext:tenant": "false"}}`), rq(ec("tenant", "")), allow),
		t_("Null false: absent", cOps, ecApp(`{"Null": {"kms:EncryptionContext:tenant": "false"}}`), rq(), none),
		t_("Null on kms:EncryptionContextKeys: no context", cKMSCond, ecApp(`{"Null": {"kms:EncryptionContextKeys": "true"}}`), rq(), allow),
		t_("Null on kms:EncryptionContextKeys: a context", cKMSCond, ecApp(`{"Null": {"kms:EncryptionContextKeys": "false"}}`), rq(ec("a", "b")), allow),
		t_(`Null ["true", "false"]: always`, cMulti, ecApp(`{"Null": {"kms:EncryptionContextKeys": ["true", "false"]}}`), rq(), allow),
		t_("Null: an empty set is absent", cMulti, ecApp(`{"Null": {"kms:GrantOperations": "true"}}`), rq(vals(policy.Strings("kms:GrantOperations", nil))), allow),

		// IP addresses.
		t_("IpAddress: inside the block", cOps, ecApp(`{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}`), rq(ip("203.0.113.7")), allow),
		t_("IpAddress: outside the block", cOps, ecApp(`{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}`), rq(ip("203.0.114.7")), none),
		t_("IpAddress: IPv6", cOps, ecApp(`{"IpAddress": {"aws:SourceIp": "2001:DB8:1234:5678::/64"}}`), rq(ip("2001:db8:1234:5678::42")), allow),
		t_("IpAddress: IPv6, outside", cOps, ecApp(`{"IpAddress": {"aws:SourceIp": "2001:DB8:1234:5678::/64"}}`), rq(ip("2001:db8:1234:5679::42")), none),
		t_("IpAddress: IPv4 and IPv6 blocks, an IPv4 caller", cOps, ecApp(`{"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}`), rq(ip("203.0.113.200")), allow),
		t_("IpAddress: an IPv6 caller and an IPv4 block", cOps, ecApp(`{"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}`), rq(ip("2001:db8::1")), none),
		t_("IpAddress: an address alone is a /32", cOps, ecApp(`{"IpAddress": {"aws:SourceIp": "203.0.113.5"}}`), rq(ip("203.0.113.5")), allow),
		t_("IpAddress: an address alone is a /32, another address", cOps, ecApp(`{"IpAddress": {"aws:SourceIp": "203.0.113.5"}}`), rq(ip("203.0.113.6")), none),
		t_("IpAddress: an IPv4-mapped IPv6 caller", cHere, ecApp(`{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}`), rq(ip("::ffff:203.0.113.9")), allow),
		t_("IpAddress: no source address", cOps, ecApp(`{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}`), rq(), none),
		t_("deny outside the company's addresses: outside", cDenyIP, withDeny(denyAll(`{"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}, "Bool": {"aws:ViaAWSService": "false"}}`)), rq(ip("198.51.100.1"), vals(policy.Bool("aws:ViaAWSService", false))), deny),
		t_("deny outside the company's addresses: inside", cDenyIP, withDeny(denyAll(`{"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}, "Bool": {"aws:ViaAWSService": "false"}}`)), rq(ip("192.0.2.77"), vals(policy.Bool("aws:ViaAWSService", false))), allow),
		t_("deny outside the company's addresses: through a service", cDenyIP, withDeny(denyAll(`{"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}, "Bool": {"aws:ViaAWSService": "false"}}`)), rq(ip("198.51.100.1"), vals(policy.Bool("aws:ViaAWSService", true))), allow),
		t_("NotIpAddress: no source address", cOps, ecApp(`{"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}`), rq(), allow),

		// ARN operators.
		t_("ArnLike aws:PrincipalArn: a role", cOps, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}}`), rq(as(admin)), allow),
		t_("ArnLike aws:PrincipalArn: a user", cOps, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}}`), rq(), none),
		t_("ArnEquals", cOps, ecApp(`{"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-west-2:123456789012:topic"}}`), rq(vals(policy.String("aws:SourceArn", "arn:aws:sns:us-west-2:123456789012:topic"))), allow),
		t_("ArnEquals takes wildcards as ArnLike does", cOps, ecApp(`{"ArnEquals": {"aws:SourceArn": "arn:aws:sns:*:123456789012:*"}}`), rq(vals(policy.String("aws:SourceArn", "arn:aws:sns:us-west-2:123456789012:topic"))), allow),
		t_("StringLike crosses colons", cOps, ecApp(`{"StringLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}`), rq(vals(policy.String("aws:SourceArn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"))), allow),
		t_("ArnLike matches part by part", cOps, ecApp(`{"ArnLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}`), rq(vals(policy.String("aws:SourceArn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"))), none),
		t_("ArnNotLike deny: the exempt role", cOps, S(allowWho(admin, ""), denyAll(`{"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/Key*"}}`)), rq(as(admin)), allow),
		t_("ArnNotLike deny: another caller", cOps, withDeny(denyAll(`{"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/Key*"}}`)), rq(), deny),
		t_("ArnNotEquals: absent", cOps, ecApp(`{"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:us-west-2:123456789012:topic"}}`), rq(), allow),
		t_("ArnLike: a value that is no ARN", cOps, ecApp(`{"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:*"}}`), rq(vals(policy.String("aws:SourceArn", "topic"))), none),
		t_(`ArnLike "*"`, cOps, ecApp(`{"ArnLike": {"aws:SourceArn": "*"}}`), rq(vals(policy.String("aws:SourceArn", "anything"))), allow),

		// IfExists.
		t_("StringEqualsIfExists: absent", cOps, ecApp(`{"StringEqualsIfExists": {"kms:EncryptionContext:tenant": "a"}}`), rq(), allow),
		t_("StringEqualsIfExists: present, equal", cOps, ecApp(`{"StringEqualsIfExists": {"kms:EncryptionContext:tenant": "a"}}`), rq(ec("tenant", "a")), allow),
		t_("StringEqualsIfExists: present, different", cOps, ecApp(`{"StringEqualsIfExists": {"kms:EncryptionContext:tenant": "a"}}`), rq(ec("tenant", "b")), none),
		t_("StringLikeIfExists: absent", cOps, ecApp(`{"StringLikeIfExists": {"kms:KeySpec": ["RSA_*", "ECC_*"]}}`), rq(), allow),
		t_("StringNotEqualsIfExists in a Deny: absent is still denied", cOps, withDeny(denyAll(`{"StringNotEqualsIfExists": {"kms:EncryptionContext:team": "blue"}}`)), rq(), deny),
		t_("StringNotEqualsIfExists in a Deny: the value", cOps, withDeny(denyAll(`{"StringNotEqualsIfExists": {"kms:EncryptionContext:team": "blue"}}`)), rq(ec("team", "blue")), allow),
		t_("NumericLessThanIfExists: absent", cOps, ecApp(`{"NumericLessThanIfExists": {"kms:RotationPeriodInDays": "400"}}`), rq(), allow),
		t_("NumericLessThanIfExists: present, greater", cOps, ecApp(`{"NumericLessThanIfExists": {"kms:RotationPeriodInDays": "400"}}`), rq(vals(policy.String("kms:RotationPeriodInDays", "500"))), none),
		t_("IpAddressIfExists: absent", cOps, ecApp(`{"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}`), rq(), allow),
		t_("DateLessThanIfExists: absent", cOps, ecApp(`{"DateLessThanIfExists": {"aws:CurrentTime": "2020-01-01"}}`), rq(), allow),
		t_("BoolIfExists: absent", cOps, ecApp(`{"BoolIfExists": {"aws:SecureTransport": "true"}}`), rq(), allow),
		t_("ArnLikeIfExists: absent", cOps, ecApp(`{"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:sns:*:*:*"}}`), rq(), allow),

		// Set qualifiers.
		t_("ForAnyValue:StringEquals kms:EncryptionContextKeys: the key", cKMSCond, ecApp(`{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}`), rq(ec("AppName", "x", "Other", "y")), allow),
		t_("ForAnyValue:StringEquals kms:EncryptionContextKeys: other keys", cKMSCond, ecApp(`{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}`), rq(ec("Other", "y")), none),
		t_("ForAnyValue:StringEquals kms:EncryptionContextKeys: no context", cKMSCond, ecApp(`{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}`), rq(), none),
		t_("ForAnyValue:StringEquals kms:EncryptionContextKeys: case counts", cKMSCond, ecApp(`{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}`), rq(ec("appname", "x")), none),
		t_("ForAllValues:StringEquals kms:EncryptionContextKeys: only those keys", cKMSCond, ecApp(`{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}`), rq(ec("Department", "IT")), allow),
		t_("ForAllValues:StringEquals kms:EncryptionContextKeys: another key", cKMSCond, ecApp(`{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}`), rq(ec("Department", "IT", "Stage", "Prod")), none),
		t_("ForAllValues:StringEquals kms:EncryptionContextKeys: no context passes", cKMSCond, ecApp(`{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}`), rq(), allow),
		t_("kms:EncryptionContext:KEY with ForAllValues keys: no context fails", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}, "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}`), rq(), none),
		t_("kms:EncryptionContext:KEY with ForAllValues keys: the pair", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}, "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}`), rq(ec("AppName", "ExampleApp")), allow),
		t_("kms:EncryptionContext:KEY with ForAllValues keys: one more pair", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}, "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}`), rq(ec("AppName", "ExampleApp", "x", "y")), none),
		t_("ForAnyValue kms:GrantOperations: one of them", cKMSCond, ecApp(`{"ForAnyValue:StringEquals": {"kms:GrantOperations": ["Encrypt", "ReEncryptTo"]}}`), rq(act("kms:CreateGrant"), vals(policy.Strings("kms:GrantOperations", []string{"Decrypt", "Encrypt"}))), allow),
		t_("ForAllValues kms:GrantOperations: another operation", cKMSCond, ecApp(`{"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "ReEncryptTo"]}}`), rq(act("kms:CreateGrant"), vals(policy.Strings("kms:GrantOperations", []string{"Decrypt", "Encrypt"}))), none),
		t_("ForAllValues kms:GrantOperations: all of them listed", cKMSCond, ecApp(`{"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "ReEncryptTo"]}}`), rq(act("kms:CreateGrant"), vals(policy.Strings("kms:GrantOperations", []string{"ReEncryptTo", "Encrypt"}))), allow),
		t_("ForAnyValue kms:ResourceAliases", cKMSCond, ecApp(`{"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/finance-key"}}`), rq(vals(policy.Strings("kms:ResourceAliases", []string{"alias/app", "alias/finance-key"}))), allow),
		t_("every alias holds Test, and one exists: no aliases", cKMSCond, ecApp(`{"ForAllValues:StringLike": {"kms:ResourceAliases": "alias/*Test*"}, "ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/*Test*"}}`), rq(act("kms:EnableKey")), none),
		t_("every alias holds Test, and one exists: one", cKMSCond, ecApp(`{"ForAllValues:StringLike": {"kms:ResourceAliases": "alias/*Test*"}, "ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/*Test*"}}`), rq(act("kms:EnableKey"), vals(policy.Strings("kms:ResourceAliases", []string{"alias/Test1"}))), allow),
		t_("every alias holds Test, and one exists: another alias too", cKMSCond, ecApp(`{"ForAllValues:StringLike": {"kms:ResourceAliases": "alias/*Test*"}, "ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/*Test*"}}`), rq(act("kms:EnableKey"), vals(policy.Strings("kms:ResourceAliases", []string{"alias/Test1", "alias/prod"}))), none),
		t_("ForAnyValue deny: a forbidden key among others", cMulti, withDeny(denyAll(`{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["ID", "PostDateTime"]}}`)), rq(ec("UserName", "a", "Message", "b", "PostDateTime", "c")), deny),
		t_("ForAnyValue deny: no forbidden key", cMulti, withDeny(denyAll(`{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["ID", "PostDateTime"]}}`)), rq(ec("UserName", "a")), allow),
		t_("ForAllValues: a key outside the list", cMulti, ecApp(`{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["PostDateTime", "Message", "Tags"]}}`), rq(ec("PostDateTime", "a", "UserName", "b")), none),
		t_("ForAllValues: keys inside the list", cMulti, ecApp(`{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["PostDateTime", "Message", "Tags"]}}`), rq(ec("Message", "a", "Tags", "b")), allow),
		t_("ForAllValues: an empty set passes", cMulti, ecApp(`{"ForAllValues:StringEquals": {"kms:GrantOperations": "Decrypt"}}`), rq(vals(policy.Strings("kms:GrantOperations", []string{}))), allow),
		t_("ForAnyValue: an empty set fails", cMulti, ecApp(`{"ForAnyValue:StringEquals": {"kms:GrantOperations": "Decrypt"}}`), rq(vals(policy.Strings("kms:GrantOperations", []string{}))), none),
		t_("ForAnyValue:StringNotEquals: a key not listed", cMulti, ecApp(`{"ForAnyValue:StringNotEquals": {"kms:EncryptionContextKeys": "a"}}`), rq(ec("a", "1", "b", "2")), allow),
		t_("ForAnyValue:StringNotEquals: only listed keys", cMulti, ecApp(`{"ForAnyValue:StringNotEquals": {"kms:EncryptionContextKeys": "a"}}`), rq(ec("a", "1")), none),
		t_("ForAnyValue:StringNotEquals: no context", cMulti, ecApp(`{"ForAnyValue:StringNotEquals": {"kms:EncryptionContextKeys": "a"}}`), rq(), none),
		t_("ForAllValues:StringNotEquals: no listed key", cMulti, ecApp(`{"ForAllValues:StringNotEquals": {"kms:EncryptionContextKeys": "secret"}}`), rq(ec("a", "1", "b", "2")), allow),
		t_("ForAllValues:StringNotEquals: a listed key", cMulti, ecApp(`{"ForAllValues:StringNotEquals": {"kms:EncryptionContextKeys": "secret"}}`), rq(ec("a", "1", "secret", "2")), none),
		t_("ForAllValues:StringNotEquals: no context", cMulti, ecApp(`{"ForAllValues:StringNotEquals": {"kms:EncryptionContextKeys": "secret"}}`), rq(), allow),
		t_("ForAnyValue with a single-valued key: one value", cKMSCond, ecApp(`{"ForAnyValue:StringEquals": {"kms:EncryptionContext:tenant": "a"}}`), rq(ec("tenant", "a")), allow),
		t_("ForAnyValue with a single-valued key: absent", cKMSCond, ecApp(`{"ForAnyValue:StringEquals": {"kms:EncryptionContext:tenant": "a"}}`), rq(), none),
		t_("ForAnyValue:StringEqualsIfExists: absent", cOps, ecApp(`{"ForAnyValue:StringEqualsIfExists": {"kms:EncryptionContextKeys": "a"}}`), rq(), allow),
		t_("ForAnyValue aws:TagKeys", cGlobal, ecApp(`{"ForAnyValue:StringLike": {"aws:TagKeys": "Cost*"}}`), rq(act("kms:TagResource"), vals(policy.Strings("aws:TagKeys", []string{"Owner", "CostCenter"}))), allow),

		// Policy variables.
		t_("${aws:username} in the context: the user's own", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}`), rq(ec("user", "app")), allow),
		t_("${aws:username} in the context: another user's", cKMSCond, ecApp(`{"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}`), rq(ec("user", "bob")), none),
		t_("${aws:username} for a role, which has none", cVars, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}}`), rq(as(admin), ec("user", "")), none),
		t_("a negated operator and a variable with no value", cVars, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringNotEquals": {"kms:EncryptionContext:user": "${aws:username}"}}}`), rq(as(admin), ec("user", "x")), allow),
		t_("a variable's default", cVars, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:user": "${aws:username, 'nobody'}"}}}`), rq(as(admin), ec("user", "nobody")), allow),
		t_("a variable's default is not used when the key is present", cVars, ecApp(`{"StringEquals": {"kms:EncryptionContext:user": "${aws:username, 'nobody'}"}}`), rq(ec("user", "nobody")), none),
		t_("${*} is a literal asterisk", cVars, ecApp(`{"StringLike": {"kms:EncryptionContext:t": "a${*}b"}}`), rq(ec("t", "a*b")), allow),
		t_("${*} is a literal asterisk: not a wildcard", cVars, ecApp(`{"StringLike": {"kms:EncryptionContext:t": "a${*}b"}}`), rq(ec("t", "axb")), none),
		t_("${?} is a literal question mark", cVars, ecApp(`{"StringLike": {"kms:EncryptionContext:t": "why${?}"}}`), rq(ec("t", "why!")), none),
		t_("${$} is a literal dollar", cVars, ecApp(`{"StringEquals": {"kms:EncryptionContext:t": "${$}{x}"}}`), rq(ec("t", "${x}")), allow),
		t_("a variable and a wildcard", cVars, ecApp(`{"StringLike": {"kms:EncryptionContext:file": "${aws:username}/*"}}`), rq(ec("file", "app/2026/report")), allow),
		t_("a variable and a wildcard: another user's file", cVars, ecApp(`{"StringLike": {"kms:EncryptionContext:file": "${aws:username}/*"}}`), rq(ec("file", "bob/report")), none),
		t_("a variable's value is literal text", cVars, ecApp(`{"StringLike": {"kms:EncryptionContext:name": "${kms:EncryptionContext:pattern}"}}`), rq(ec("pattern", "a*", "name", "abc")), none),
		t_("a variable's value is literal text: equal", cVars, ecApp(`{"StringLike": {"kms:EncryptionContext:name": "${kms:EncryptionContext:pattern}"}}`), rq(ec("pattern", "a*", "name", "a*")), allow),
		t_("a variable in StringEqualsIgnoreCase", cVars, ecApp(`{"StringEqualsIgnoreCase": {"kms:EncryptionContext:user": "user-${aws:username}"}}`), rq(ec("user", "USER-APP")), allow),
		t_("a variable in an ARN", cVars, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:user/*"}}}`), rq(), allow),
		t_("a variable in an ARN: a role", cVars, S(`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:user/*"}}}`), rq(as(admin)), none),
		{name: "no variables in Version 2008-10-17: literal condition text", cite: cVersion, doc: `{"Version": "2008-10-17", "Statement": [` + allowApp(`{"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}`) + `]}`, req: rq(ec("user", "${aws:username}")), want: allow, stmt: 0},

		// Undecided requests: an Allow needs every condition to hold, a Deny
		// applies unless one fails.
		t_("context keys equal but for case, values differ: no Allow", cHere, ecApp(`{"StringEquals": {"kms:EncryptionContext:tenant": "a"}}`), rq(ec("tenant", "a", "TENANT", "b")), none),
		t_("context keys equal but for case, values agree", cHere, ecApp(`{"StringEquals": {"kms:EncryptionContext:tenant": "a"}}`), rq(ec("tenant", "a", "Tenant", "a")), allow),
		t_("context keys equal but for case, values differ: the Deny applies", cHere, withDeny(denyAll(`{"StringEquals": {"kms:EncryptionContext:tenant": "b"}}`)), rq(ec("tenant", "a", "TENANT", "b")), deny),
		t_("context keys equal but for case: a negated Deny applies", cHere, withDeny(denyAll(`{"StringNotEquals": {"kms:EncryptionContext:tenant": "a"}}`)), rq(ec("tenant", "a", "TENANT", "b")), deny),
		t_("context keys equal but for case: ForAnyValue sees both", cHere, ecApp(`{"ForAnyValue:StringEquals": {"kms:EncryptionContext:tenant": "a"}}`), rq(ec("tenant", "a", "TENANT", "b")), allow),
		{name: "a single-valued key given two different values", cite: cHere, stmts: ecApp(`{"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}}`), req: rq(vals(policy.Strings("kms:KeySpec", []string{"SYMMETRIC_DEFAULT", "RSA_2048"}))), want: none, stmt: -1, odd: true},
		t_("a number that is no number: no Allow", cHere, ecApp(`{"NumericLessThan": {"kms:EncryptionContext:n": "10"}}`), rq(ec("n", "ten")), none),
		t_("a number that is no number: the Deny applies", cHere, withDeny(denyAll(`{"NumericLessThan": {"kms:EncryptionContext:n": "10"}}`)), rq(ec("n", "ten")), deny),
		t_("a date that is no date: the Deny applies", cHere, withDeny(denyAll(`{"DateGreaterThan": {"kms:EncryptionContext:d": "2020-01-01"}}`)), rq(ec("d", "yesterday")), deny),
		t_("an address that is no address: no Allow", cHere, ecApp(`{"IpAddress": {"aws:VpcSourceIp": "10.0.0.0/8"}}`), rq(vals(policy.String("aws:VpcSourceIp", "10.0.0.300"))), none),
		t_("an undecided condition and a failed one: the Deny does not apply", cHere, withDeny(denyAll(`{"NumericLessThan": {"kms:EncryptionContext:n": "10"}, "StringEquals": {"kms:EncryptionContext:t": "x"}}`)), rq(ec("n", "ten", "t", "y")), allow),

		// Identity policies.
		{name: "an identity policy allows", cite: cEval, kind: policy.IdentityPolicy, doc: `{"Version": "2012-10-17", "Statement": [{"Sid": "UseKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "` + keyARN + `"}]}`, req: rq(), want: allow, stmt: 0},
		{name: "an identity policy: another key", cite: cEval, kind: policy.IdentityPolicy, doc: `{"Version": "2012-10-17", "Statement": [{"Sid": "UseKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "` + keyARN + `"}]}`, req: rq(res("arn:aws:kms:us-west-2:111122223333:key/other")), want: none, stmt: -1},
		{name: "an identity policy denies", cite: cEval, kind: policy.IdentityPolicy, doc: `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}, {"Sid": "NoDelete", "Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}]}`, req: rq(act("kms:ScheduleKeyDeletion")), want: deny, stmt: 1},
		{name: "an identity policy with a condition", cite: cKMSCond, kind: policy.IdentityPolicy, doc: `{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": "arn:aws:kms:*:111122223333:key/*", "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/finance-key"}}}}`, req: rq(act("kms:GenerateDataKey"), vals(policy.Strings("kms:ResourceAliases", []string{"alias/finance-key"}))), want: allow, stmt: 0},
	}
}

func TestEvaluate(t *testing.T) {
	cases := evalCases()
	if len(cases) < 150 {
		t.Errorf("%d cases, want at least 150", len(cases))
	}
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Errorf("case %q appears twice", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			p, err := policy.Parse(c.document(), c.policyKind())
			if err != nil {
				t.Fatalf("Parse: %v (%s)", err, c.cite)
			}
			if err := c.req.Check(); (err != nil) != c.odd {
				t.Fatalf("the case's request: Check() = %v", err)
			}
			d := p.Evaluate(&c.req)
			if d.Effect != c.want {
				t.Fatalf("Evaluate = %v, want %v (%s)\n%s", d, c.want, c.cite, c.document())
			}
			if c.stmt != -2 && d.Statement != c.stmt {
				t.Errorf("Evaluate = %v, want statement %d", d, c.stmt)
			}
			if d.ViaAccount != c.via {
				t.Errorf("Evaluate = %v, want ViaAccount %v", d, c.via)
			}
			if d.Statement >= 0 && d.Sid != p.Sid(d.Statement) {
				t.Errorf("Decision.Sid = %q, statement %d's Sid is %q", d.Sid, d.Statement, p.Sid(d.Statement))
			}
			if d.Effect == policy.ImplicitDeny && (d.Statement != -1 || d.Sid != "") {
				t.Errorf("ImplicitDeny names statement %d (%q)", d.Statement, d.Sid)
			}
			if again := p.Evaluate(&c.req); again != d {
				t.Errorf("Evaluate is not deterministic: %v, then %v", d, again)
			}
		})
	}
}

// The order of the statements does not change a policy's Effect.
func TestEvaluateOrderIndependent(t *testing.T) {
	for _, c := range evalCases() {
		if len(c.stmts) < 2 {
			continue
		}
		want := mustParse(t, c.document(), c.policyKind()).Evaluate(&c.req)
		perm := slices.Clone(c.stmts)
		for i := range perm {
			// Every rotation, and every rotation reversed.
			for _, order := range [][]string{append(slices.Clone(perm[i:]), perm[:i]...), nil} {
				if order == nil {
					order = append(slices.Clone(perm[i:]), perm[:i]...)
					slices.Reverse(order)
				}
				got := mustParse(t, docOf(order), c.policyKind()).Evaluate(&c.req)
				if got.Effect != want.Effect || got.ViaAccount != want.ViaAccount {
					t.Errorf("%s: statements reordered: %v, in document order: %v", c.name, got, want)
				}
			}
		}
	}
}

// A policy written back by MarshalJSON parses to one that decides as the
// original does, and writes back the same again.
func TestMarshalRoundTrip(t *testing.T) {
	for _, c := range evalCases() {
		p := mustParse(t, c.document(), c.policyKind())
		b, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		q, err := policy.Parse(string(b), c.policyKind())
		if err != nil {
			t.Fatalf("%s: Parse(MarshalJSON) = %v\n%s", c.name, err, b)
		}
		if got, want := q.Evaluate(&c.req), p.Evaluate(&c.req); got != want {
			t.Errorf("%s: after a round trip %v, before %v", c.name, got, want)
		}
		b2, _ := q.MarshalJSON()
		if string(b2) != string(b) {
			t.Errorf("%s: MarshalJSON is not stable:\n%s\n%s", c.name, b, b2)
		}
	}
}

// MarshalJSON escapes what JSON needs escaped, and only that.
func TestMarshalEscapes(t *testing.T) {
	doc := "{\"Id\": \"q\\\" b\\\\ t\\t n\\n r\\r é\\u00e9 \\u0041\", \"Statement\": " + stmt(`"Sid": "Clé \"x\""`) + "}"
	p := mustParse(t, doc, policy.KeyPolicy)
	b, _ := p.MarshalJSON()
	want := `{"Id":"q\" b\\ t\t n\n r\r éé A","Statement":{"Sid":"Clé \"x\"","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/app"},"Action":"kms:Decrypt","Resource":"*"}}`
	if string(b) != want {
		t.Errorf("MarshalJSON:\n%s\nwant\n%s", b, want)
	}
	if _, err := policy.Parse(string(b), policy.KeyPolicy); err != nil {
		t.Error(err)
	}
}

func TestDecisionString(t *testing.T) {
	for _, c := range []struct {
		d    policy.Decision
		want string
	}{
		{policy.Decision{Effect: policy.ImplicitDeny, Statement: -1}, "ImplicitDeny: no statement applies"},
		{policy.Decision{Effect: policy.Allow, Statement: 0, Sid: "Enable IAM User Permissions", ViaAccount: true}, `Allow by statement 0 ("Enable IAM User Permissions"), for the caller's account`},
		{policy.Decision{Effect: policy.Deny, Statement: 3}, "Deny by statement 3"},
	} {
		if got := c.d.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

func TestRequestCheck(t *testing.T) {
	good := rq(ec("a", "b"), ip("192.0.2.1"), vals(policy.String("kms:KeySpec", "SYMMETRIC_DEFAULT"), policy.Strings("kms:GrantOperations", []string{"Decrypt"}), policy.Bool("aws:SecureTransport", true)))
	if err := good.Check(); err != nil {
		t.Errorf("Check() = %v, want nil", err)
	}
	for _, c := range []struct {
		r    policy.Request
		want string
	}{
		{rq(vals(policy.String("kms:NoSuchKey", "x"))), `unknown condition key "kms:NoSuchKey"`},
		{rq(vals(policy.String("aws:PrincipalArn", app))), "comes from the request's fields"},
		{rq(vals(policy.String("kms:GrantOperations", "Decrypt"))), "multi-valued: use Strings"},
		{rq(vals(policy.Strings("kms:KeySpec", []string{"A"}))), "single-valued: use String or Bool"},
		{rq(as("app")), `principal "app" is not an IAM or STS ARN`},
	} {
		err := c.r.Check()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check() = %v, want an error containing %q", err, c.want)
		}
	}
}

func TestPrincipals(t *testing.T) {
	p := mustParse(t, docOf(S(
		allowWho(root, ""),
		`{"Effect": "Allow", "Principal": {"AWS": ["`+app+`", "*", "`+acct+`"], "Service": "cloudtrail.amazonaws.com"}, "Action": "kms:*", "Resource": "*"}`,
		`{"Effect": "Deny", "NotPrincipal": {"AWS": "`+app+`"}, "Action": "kms:*", "Resource": "*"}`,
		`{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}`,
	)), policy.KeyPolicy)
	want := []string{root, app, acct}
	if got := p.Principals(); !slices.Equal(got, want) {
		t.Errorf("Principals() = %q, want %q", got, want)
	}
	if p.Len() != 4 || p.Kind() != policy.KeyPolicy {
		t.Errorf("Len() = %d, Kind() = %v", p.Len(), p.Kind())
	}
}

// Evaluate allocates nothing for the usual keys.
func TestEvaluateAllocations(t *testing.T) {
	p := mustParse(t, ecPolicy, policy.KeyPolicy)
	r := rq(ec("tenant", "alpha", "purpose", "backup-1"), ip("192.0.2.1"), at("2026-01-01T00:00:00Z"),
		vals(policy.String("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")))
	if d := p.Evaluate(&r); d.Effect != policy.Allow {
		t.Fatalf("Evaluate = %v", d)
	}
	if n := testing.AllocsPerRun(100, func() { p.Evaluate(&r) }); n != 0 {
		t.Errorf("Evaluate allocates %v times, want 0", n)
	}
	vp := mustParse(t, docOf(ecApp2(`{"StringLike": {"kms:EncryptionContext:file": "${aws:username}/*"}, "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:user/*"}}`)), policy.KeyPolicy)
	r = rq(ec("file", "app/x"))
	if d := vp.Evaluate(&r); d.Effect != policy.Allow {
		t.Fatalf("Evaluate = %v", d)
	}
	if n := testing.AllocsPerRun(100, func() { vp.Evaluate(&r) }); n != 0 {
		t.Errorf("Evaluate with policy variables allocates %v times, want 0", n)
	}
}

func ecApp2(cond string) []string { return S(allowApp(cond)) }

// One Policy serves concurrent requests (run with -race).
func TestEvaluateConcurrent(t *testing.T) {
	cases := evalCases()
	policies := make([]*policy.Policy, len(cases))
	want := make([]policy.Decision, len(cases))
	for i, c := range cases {
		policies[i] = mustParse(t, c.document(), c.policyKind())
		want[i] = policies[i].Evaluate(&c.req)
	}
	done := make(chan error)
	for range 4 {
		go func() {
			for i := range cases {
				r := cases[i].req
				if got := policies[i].Evaluate(&r); got != want[i] {
					done <- fmt.Errorf("%s: %v, want %v", cases[i].name, got, want[i])
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestDefaultKeyPolicy(t *testing.T) {
	doc := policy.DefaultKeyPolicy("123456789012")
	p := mustParse(t, doc, policy.KeyPolicy)
	b, _ := p.MarshalJSON()
	want := `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}`
	if string(b) != want {
		t.Errorf("DefaultKeyPolicy:\n%s\nwant\n%s", b, want)
	}
	if got := fmt.Sprint(p.Principals()); got != "[arn:aws:iam::123456789012:root]" {
		t.Errorf("Principals() = %s", got)
	}
}

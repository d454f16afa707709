package policy_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms/policy"
)

// fuzzRequests are the requests FuzzParse puts to every policy it accepts.
func fuzzRequests() []policy.Request {
	return []policy.Request{
		rq(),
		rq(as(root), act("kms:PutKeyPolicy")),
		rq(as(eve), act("kms:Encrypt")),
		rq(as(admin), act("kms:CreateKey"), res(account)),
		rq(ec("tenant", "a", "AppName", "ExampleApp"), ip("203.0.113.7"), at("2020-05-01T00:00:00Z")),
		rq(ec("tenant", "a", "TENANT", "b", "user", "app"), ip("2001:db8::1"), at("2026-01-01T00:00:00Z"),
			vals(policy.String("kms:KeySpec", "SYMMETRIC_DEFAULT"), policy.Bool("aws:SecureTransport", true),
				policy.Strings("kms:GrantOperations", []string{"Decrypt", "Encrypt"}), policy.String("kms:RotationPeriodInDays", "365"))),
		rq(act("kms:CreateAlias"), res(alias), vals(policy.Strings("kms:ResourceAliases", []string{"alias/app"}))),
		rq(as("arn:aws:sts::111122223333:assumed-role/KeyAdmin/s"), ec("n", "ten")),
	}
}

func addSeeds(f *testing.F) {
	for _, c := range evalCases() {
		f.Add(c.document(), c.policyKind() == policy.IdentityPolicy)
	}
	f.Add(ecPolicy, false)
	f.Add(twentyStatements(), false)
	f.Add(policy.DefaultKeyPolicy(acct), false)
	f.Add(`{"Statement": {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}}`, true)
	f.Add(`{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "NotAction": "kms:Describe*", "NotResource": "arn:aws:kms:*:*:alias/${aws:username, 'x'}", "Condition": {"ForAnyValue:StringLikeIfExists": {"kms:EncryptionContextKeys": "a${*}?"}}}]}`, false)
}

// FuzzParse: Parse never panics, refuses with a *policy.Error, and a
// policy it accepts survives MarshalJSON: the copy parses, writes back the
// same, and decides every request as the original, every time.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	requests := fuzzRequests()
	f.Fuzz(func(t *testing.T, doc string, identity bool) {
		kind := policy.KeyPolicy
		if identity {
			kind = policy.IdentityPolicy
		}
		p, err := policy.Parse(doc, kind)
		if err != nil {
			var pe *policy.Error
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("Parse error %v (%T) is no *policy.Error with a reason", err, err)
			}
			return
		}
		b, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		q, err := policy.Parse(string(b), kind)
		if err != nil {
			t.Fatalf("Parse(MarshalJSON) = %v\n%s\nfrom\n%s", err, b, doc)
		}
		if b2, _ := q.MarshalJSON(); string(b2) != string(b) {
			t.Fatalf("MarshalJSON is not stable:\n%s\n%s", b, b2)
		}
		for i := range requests {
			r := &requests[i]
			d := p.Evaluate(r)
			if again := p.Evaluate(r); again != d {
				t.Fatalf("request %d: Evaluate gave %v, then %v", i, d, again)
			}
			if got := q.Evaluate(r); got != d {
				t.Fatalf("request %d: %v, after MarshalJSON %v\n%s", i, d, got, b)
			}
			if d.Statement < -1 || d.Statement >= p.Len() || (d.Statement == -1) != (d.Effect == policy.ImplicitDeny) {
				t.Fatalf("request %d: Decision %+v for %d statements", i, d, p.Len())
			}
		}
	})
}

// FuzzEvaluate: any request, against policies that use every operator,
// gives a decision, the same one every time, and never panics.
func FuzzEvaluate(f *testing.F) {
	var policies []*policy.Policy
	for _, c := range evalCases() {
		policies = append(policies, mustParse(f, c.document(), c.policyKind()))
	}
	policies = append(policies, mustParse(f, ecPolicy, policy.KeyPolicy), mustParse(f, twentyStatements(), policy.KeyPolicy))
	f.Add(app, "kms:Decrypt", keyARN, "tenant", "a", "TENANT", "b", "203.0.113.7", int64(1585699200), "kms:KeySpec", "SYMMETRIC_DEFAULT")
	f.Add(root, "KMS:DECRYPT", "arn:aws:kms:us-west-2:111122223333:*", "user", "${aws:username}", "", "", "::ffff:203.0.113.9", int64(0), "kms:ValidTo", "1700000000")
	f.Add("arn:aws:iam::111122223333:user/division/app", "kms:GenerateDataKeyPair", "arn:aws:kms:us-west-2:111122223333:alias/app", "n", "ten", "d", "2020-01-01", "", int64(-62135596800), "aws:SourceArn", "arn:aws:sns:us-west-2:123456789012:topic")
	f.Add("arn", "", "", "", "", "", "", "", int64(253402300799), "aws:RequestTag/x", "")
	f.Fuzz(func(t *testing.T, principal, action, resource, k1, v1, k2, v2, addr string, unix int64, key, value string) {
		r := policy.Request{Principal: principal, Action: action, Resource: resource}
		r.Context.EncryptionContext = map[string]string{k1: v1, k2: v2}
		if a, err := netip.ParseAddr(addr); err == nil {
			r.Context.SourceIP = a
		}
		if unix != 0 {
			r.Context.Time = time.Unix(unix, 0)
		}
		r.Context.Values = []policy.Value{policy.String(key, value), policy.Strings(key, []string{value, v1})}
		for _, p := range policies {
			d := p.Evaluate(&r)
			if again := p.Evaluate(&r); again != d {
				t.Fatalf("Evaluate gave %v, then %v", d, again)
			}
			if d.Effect > policy.Deny || d.Statement >= p.Len() {
				t.Fatalf("Decision %+v", d)
			}
		}
	})
}

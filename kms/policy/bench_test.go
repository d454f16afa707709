package policy_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms/policy"
)

const (
	benchAccount = "111122223333"
	benchKey     = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// ecPolicy is a typical key policy with encryption-context conditions: key
// administrators, an application that may encrypt and decrypt only its
// tenant's data, and a deny of every algorithm but the symmetric one.
const ecPolicy = `{
  "Version": "2012-10-17",
  "Id": "tenant-keys",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "KeyAdministrators", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:role/KeyAdmin", "arn:aws:iam::111122223333:user/ops"]},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
     "Resource": "*"},
    {"Sid": "TenantApp", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/app"},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
     "Resource": "*",
     "Condition": {
       "StringEquals": {"kms:EncryptionContext:tenant": ["alpha", "beta"]},
       "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["tenant", "purpose", "file"]},
       "StringLike": {"kms:EncryptionContext:purpose": "backup-*"}
     }},
    {"Sid": "SymmetricOnly", "Effect": "Deny", "Principal": "*",
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
     "Resource": "*",
     "Condition": {"StringNotEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}}
  ]
}`

func mustParse(tb testing.TB, doc string, kind policy.Kind) *policy.Policy {
	tb.Helper()
	p, err := policy.Parse(doc, kind)
	if err != nil {
		tb.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

func benchEvaluate(b *testing.B, p *policy.Policy, r *policy.Request, want policy.Effect) {
	b.Helper()
	if d := p.Evaluate(r); d.Effect != want {
		b.Fatalf("Evaluate = %v, want %v", d, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(r)
	}
}

// The default key policy, asked by a user of the account (delegated to
// the account's identity policies).
func BenchmarkEvaluateDefaultKeyPolicy(b *testing.B) {
	p := mustParse(b, policy.DefaultKeyPolicy(benchAccount), policy.KeyPolicy)
	r := &policy.Request{
		Principal: "arn:aws:iam::111122223333:user/app",
		Action:    "kms:Decrypt",
		Resource:  benchKey,
		Context: policy.Context{
			Time:              time.Unix(1767225600, 0),
			SourceIP:          netip.MustParseAddr("192.0.2.10"),
			EncryptionContext: map[string]string{"tenant": "alpha"},
		},
	}
	benchEvaluate(b, p, r, policy.Allow)
}

// A typical key policy with encryption-context conditions, asked by the
// application with an allowed context: every statement is read.
func BenchmarkEvaluateEncryptionContextPolicy(b *testing.B) {
	p := mustParse(b, ecPolicy, policy.KeyPolicy)
	r := &policy.Request{
		Principal: "arn:aws:iam::111122223333:user/app",
		Action:    "kms:Decrypt",
		Resource:  benchKey,
		Context: policy.Context{
			Time:              time.Unix(1767225600, 0),
			SourceIP:          netip.MustParseAddr("192.0.2.10"),
			EncryptionContext: map[string]string{"tenant": "alpha", "purpose": "backup-daily", "file": "db.dump"},
			Values:            []policy.Value{policy.String("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")},
		},
	}
	benchEvaluate(b, p, r, policy.Allow)
}

// twentyStatements is a 20-statement key policy (the benchmark):
// one tenant statement per tenant, with the caller's the last.
func twentyStatements() string {
	var b strings.Builder
	b.WriteString(`{"Version": "2012-10-17", "Statement": [`)
	b.WriteString(`{"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},`)
	b.WriteString(`{"Sid": "NoDeletion", "Effect": "Deny", "Principal": "*", "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey"], "Resource": "*",
	  "Condition": {"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/KeyAdmin"}}},`)
	for i := range 18 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"Sid": "Tenant%d", "Effect": "Allow",
		  "Principal": {"AWS": "arn:aws:iam::111122223333:role/tenant-%d"},
		  "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"], "Resource": "*",
		  "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "t%d"},
		                "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}}}`, i, i, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

func BenchmarkEvaluateTwentyStatements(b *testing.B) {
	p := mustParse(b, twentyStatements(), policy.KeyPolicy)
	r := &policy.Request{
		Principal: "arn:aws:iam::111122223333:role/tenant-17",
		Action:    "kms:GenerateDataKey",
		Resource:  benchKey,
		Context: policy.Context{
			Time:              time.Unix(1767225600, 0),
			SourceIP:          netip.MustParseAddr("192.0.2.10"),
			EncryptionContext: map[string]string{"tenant": "t17", "file": "a"},
		},
	}
	benchEvaluate(b, p, r, policy.Allow)
}

func BenchmarkParseEncryptionContextPolicy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.Parse(ecPolicy, policy.KeyPolicy); err != nil {
			b.Fatal(err)
		}
	}
}

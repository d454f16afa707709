package policy_test

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/envelopekms/envelope/kms/policy"
)

// AWS's default key policy lets the account decide: its root is allowed
// outright, its users and roles when one of their identity policies allows
// them too, and other accounts not at all.
func Example() {
	p, err := policy.Parse(policy.DefaultKeyPolicy("111122223333"), policy.KeyPolicy)
	if err != nil {
		panic(err)
	}
	key := "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, caller := range []string{
		"arn:aws:iam::111122223333:root",
		"arn:aws:iam::111122223333:user/app",
		"arn:aws:iam::444455556666:user/eve",
	} {
		d := p.Evaluate(&policy.Request{Principal: caller, Action: "kms:Decrypt", Resource: key})
		fmt.Println(d)
	}
	// Output:
	// Allow by statement 0 ("Enable IAM User Permissions")
	// Allow by statement 0 ("Enable IAM User Permissions"), for the caller's account
	// ImplicitDeny: no statement applies
}

// A reader limited to one tenant's data: the key policy allows Decrypt only
// with the encryption context tenant=alpha, and denies it from outside the
// office's network.
func Example_encryptionContext() {
	const doc = `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Sid": "ReadAlpha", "Effect": "Allow",
	     "Principal": {"AWS": "arn:aws:iam::111122223333:role/reader"},
	     "Action": "kms:Decrypt", "Resource": "*",
	     "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "alpha"}}},
	    {"Sid": "OfficeOnly", "Effect": "Deny", "Principal": "*",
	     "Action": "kms:*", "Resource": "*",
	     "Condition": {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}}}
	  ]
	}`
	p, err := policy.Parse(doc, policy.KeyPolicy)
	if err != nil {
		panic(err)
	}
	ask := func(tenant, from string) policy.Decision {
		return p.Evaluate(&policy.Request{
			Principal: "arn:aws:iam::111122223333:role/reader",
			Action:    "kms:Decrypt",
			Resource:  "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
			Context: policy.Context{
				Time:              time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC),
				SourceIP:          netip.MustParseAddr(from),
				EncryptionContext: map[string]string{"tenant": tenant},
			},
		})
	}
	fmt.Println(ask("alpha", "192.0.2.10"))
	fmt.Println(ask("beta", "192.0.2.10"))
	fmt.Println(ask("alpha", "198.51.100.1"))
	// Output:
	// Allow by statement 0 ("ReadAlpha")
	// ImplicitDeny: no statement applies
	// Deny by statement 1 ("OfficeOnly")
}

// A document Parse refuses names the element at fault; the server answers
// MalformedPolicyDocumentException with it.
func ExampleParse_error() {
	_, err := policy.Parse(`{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/reader"},
	    "Action": "kms:Decrypt", "Resource": "*",
	    "Condition": {"StringEquals": {"kms:EncryptionContextKeys": "tenant"}}
	  }]
	}`, policy.KeyPolicy)
	var pe *policy.Error
	if errors.As(err, &pe) {
		fmt.Println(pe.Path)
		fmt.Println(pe.Reason)
	}
	// Output:
	// Statement[0].Condition.StringEquals.kms:EncryptionContextKeys
	// "kms:EncryptionContextKeys" is multi-valued: qualify the operator with ForAnyValue: (some value matches) or ForAllValues: (every value matches)
}

// Multi-valued keys (kms:GrantOperations, kms:ResourceAliases,
// kms:EncryptionContextKeys) take a set qualifier: here, a grant may carry
// only encryption operations.
func ExampleStrings() {
	p, err := policy.Parse(`{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/batch"},
	    "Action": "kms:CreateGrant", "Resource": "*",
	    "Condition": {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "GenerateDataKey"]}}
	  }]
	}`, policy.KeyPolicy)
	if err != nil {
		panic(err)
	}
	for _, ops := range [][]string{{"Encrypt"}, {"Encrypt", "Decrypt"}} {
		d := p.Evaluate(&policy.Request{
			Principal: "arn:aws:iam::111122223333:role/batch",
			Action:    "kms:CreateGrant",
			Resource:  "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
			Context:   policy.Context{Values: []policy.Value{policy.Strings("kms:GrantOperations", ops)}},
		})
		fmt.Println(ops, d.Effect)
	}
	// Output:
	// [Encrypt] Allow
	// [Encrypt Decrypt] ImplicitDeny
}

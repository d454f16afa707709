package awskms_test

import (
	"testing"

	"github.com/envelopekms/envelope/keyring/awskms"
)

// The valid and invalid forms follow the ESDK's "A valid AWS KMS ARN"
// (framework/aws-kms/aws-kms-key-arn.md).
func TestParseARN(t *testing.T) {
	const id = "1234abcd-12ab-34cd-56ef-1234567890ab"
	valid := []struct {
		in   string
		want awskms.ARN
	}{
		{"arn:aws:kms:us-east-1:111122223333:key/" + id, awskms.ARN{"aws", "us-east-1", "111122223333", "key", id}},
		{"arn:aws:kms:us-west-2:111122223333:alias/test-key", awskms.ARN{"aws", "us-west-2", "111122223333", "alias", "test-key"}},
		{"arn:aws-cn:kms:cn-north-1:2222222222222:key/mrk-4321abcd12ab34cd56ef1234567890ab", awskms.ARN{"aws-cn", "cn-north-1", "2222222222222", "key", "mrk-4321abcd12ab34cd56ef1234567890ab"}},
		{"arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/" + id, awskms.ARN{"aws-us-gov", "us-gov-west-1", "111122223333", "key", id}},
		// Further slashes belong to the resource id.
		{"arn:aws:kms:us-east-1:111122223333:alias/team/app", awskms.ARN{"aws", "us-east-1", "111122223333", "alias", "team/app"}},
		{"arn:aws:kms:us-east-1:111122223333:key/a/b/", awskms.ARN{"aws", "us-east-1", "111122223333", "key", "a/b/"}},
	}
	for _, tt := range valid {
		t.Run(tt.in, func(t *testing.T) {
			got, err := awskms.ParseARN(tt.in)
			if err != nil {
				t.Fatalf("ParseARN(%q) err = %v, want nil", tt.in, err)
			}
			if *got != tt.want {
				t.Errorf("ParseARN(%q) = %+v, want %+v", tt.in, *got, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Errorf("ParseARN(%q).String() = %q, want the input", tt.in, s)
			}
		})
	}

	invalid := []struct{ name, in string }{
		{"empty", ""},
		{"bare key id", id},
		{"alias name", "alias/test-key"},
		{"only arn", "arn"},
		{"four parts", "arn:aws:kms:us-east-1"},
		{"five parts", "arn:aws:kms:us-east-1:111122223333"},
		{"five parts with resource", "arn:aws:kms:us-east-1:key/" + id},
		{"not arn", "urn:aws:kms:us-east-1:111122223333:key/" + id},
		{"upper-case ARN", "ARN:aws:kms:us-east-1:111122223333:key/" + id},
		{"empty partition", "arn::kms:us-east-1:111122223333:key/" + id},
		{"wrong service", "arn:aws:s3:us-east-1:111122223333:key/" + id},
		{"upper-case service", "arn:aws:KMS:us-east-1:111122223333:key/" + id},
		{"empty service", "arn:aws::us-east-1:111122223333:key/" + id},
		{"empty region", "arn:aws:kms::111122223333:key/" + id},
		{"empty account", "arn:aws:kms:us-east-1::key/" + id},
		{"empty resource", "arn:aws:kms:us-east-1:111122223333:"},
		{"resource type only", "arn:aws:kms:us-east-1:111122223333:key"},
		{"wrong resource type", "arn:aws:kms:us-east-1:111122223333:grant/" + id},
		{"plural resource type", "arn:aws:kms:us-east-1:111122223333:keys/" + id},
		{"upper-case resource type", "arn:aws:kms:us-east-1:111122223333:Key/" + id},
		{"empty resource type", "arn:aws:kms:us-east-1:111122223333:/" + id},
		{"no key id", "arn:aws:kms:us-east-1:111122223333:key/"},
		{"no alias name", "arn:aws:kms:us-east-1:111122223333:alias/"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := awskms.ParseARN(tt.in); err == nil {
				t.Errorf("ParseARN(%q) = %+v, nil; want an error", tt.in, *got)
			}
		})
	}
}

// The ESDK defines a valid ARN as "a string with 5 `:` that delimit 6
// parts"; its reference implementation (ParseAwsKmsArn in the Material
// Providers Library) splits on every ':' and requires 6 components.
func TestParseARNRefusesExtraColons(t *testing.T) {
	for _, in := range []string{
		"arn:aws:kms:us-east-1:111122223333:key/abc:def",
		"arn:aws:kms:us-east-1:111122223333:alias/a:b",
	} {
		if got, err := awskms.ParseARN(in); err == nil {
			t.Errorf("ParseARN(%q) = %+v, nil; want an error", in, *got)
		}
	}
}

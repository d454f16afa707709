package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms/policy"
)

// stmt is a valid key policy statement with one element replaced or added:
// stmt(`"Effect": "allow"`) or stmt(`"Action": "kms:Bogus"`).
func stmt(elems ...string) string {
	base := map[string]string{
		"Effect":    `"Effect": "Allow"`,
		"Principal": `"Principal": {"AWS": "arn:aws:iam::111122223333:user/app"}`,
		"Action":    `"Action": "kms:Decrypt"`,
		"Resource":  `"Resource": "*"`,
	}
	order := []string{"Effect", "Principal", "Action", "Resource"}
	var extra []string
	for _, e := range elems {
		name := strings.Trim(strings.SplitN(e, ":", 2)[0], `" `)
		if _, ok := base[name]; ok {
			base[name] = e
		} else {
			extra = append(extra, e)
		}
	}
	var parts []string
	for _, k := range order {
		if base[k] != "" {
			parts = append(parts, base[k])
		}
	}
	return "{" + strings.Join(append(parts, extra...), ", ") + "}"
}

// without is a valid statement lacking one element.
func without(name string) string {
	s := stmt()
	i := strings.Index(s, `"`+name+`"`)
	j := strings.Index(s[i:], `, "`)
	if j < 0 {
		return strings.TrimSuffix(s[:i], ", ") + "}"
	}
	return s[:i] + s[i+j+2:]
}

func cond(c string) string { return stmt(`"Condition": ` + c) }

func TestParseErrors(t *testing.T) {
	big := docOf(S(cond(`{"StringEquals": {"kms:EncryptionContext:pad": "` + strings.Repeat("x", policy.MaxKeyPolicySize) + `"}}`)))
	for _, c := range []struct {
		name, doc string
		kind      policy.Kind
		path      string
		reason    string
	}{
		// The document.
		{name: "empty", doc: "", reason: "the document is empty"},
		{name: "white space", doc: " \n\t", reason: "the document is empty"},
		{name: "a list", doc: "[]", reason: "a policy is a JSON object, not an array"},
		{name: "a string", doc: `"policy"`, reason: "a policy is a JSON object, not a string"},
		{name: "truncated", doc: `{"Version": "2012-10-17", "Statement": [`, reason: "not a complete JSON document"},
		{name: "a trailing comma", doc: `{"Version": "2012-10-17",}`, reason: "not valid JSON"},
		{name: "two documents", doc: docOf(S(stmt())) + "{}", reason: "more than one JSON value"},
		{name: "Version twice", doc: `{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": [` + stmt() + `]}`, path: "Version", reason: "appears twice"},
		{name: "Version unknown", doc: `{"Version": "2012-10-18", "Statement": [` + stmt() + `]}`, path: "Version", reason: `must be "2012-10-17"`},
		{name: "Version a number", doc: `{"Version": 2012, "Statement": [` + stmt() + `]}`, path: "Version", reason: `must be "2012-10-17"`},
		{name: "Id a number", doc: `{"Id": 1, "Statement": [` + stmt() + `]}`, path: "Id", reason: "must be a string"},
		{name: "unknown element", doc: `{"Statements": [` + stmt() + `]}`, path: "Statements", reason: `unknown element "Statements" (a policy holds Version, Id, Statement)`},
		{name: "element in the wrong case", doc: `{"statement": [` + stmt() + `]}`, path: "statement", reason: `did you mean "Statement"?`},
		{name: "no Statement", doc: `{"Version": "2012-10-17"}`, reason: "the policy has no Statement"},
		{name: "no statements", doc: `{"Statement": []}`, path: "Statement", reason: "has no statement"},
		{name: "Statement a string", doc: `{"Statement": "allow"}`, path: "Statement", reason: "must be a statement (an object) or a list of them"},
		{name: "a statement that is no object", doc: `{"Statement": [1]}`, path: "Statement[0]", reason: "a statement is a JSON object, not a number"},
		{name: "a character beyond Latin-1", doc: docOf(S(stmt(`"Sid": "☃"`))), reason: "character U+2603 at byte"},
		{name: "an escaped character beyond Latin-1", doc: docOf(S(stmt(`"Sid": "\u2603"`))), path: "Statement[0].Sid", reason: "holds character U+2603"},
		{name: "an escaped NUL", doc: docOf(S(stmt(`"Sid": "a\u0000"`))), path: "Statement[0].Sid", reason: "holds character U+0000"},
		{name: "a control character", doc: docOf(S(stmt("\"Sid\": \"a\x01\""))), reason: "character U+0001 at byte"},
		{name: "not UTF-8", doc: docOf(S(stmt("\"Sid\": \"a\xff\""))), reason: "is not UTF-8"},
		{name: "nested too deep", doc: docOf(S(cond(`{"StringEquals": {"kms:EncryptionContext:a": [[[[[[["x"]]]]]]]}}`))), path: "Statement[0].Condition.StringEquals.kms:EncryptionContext:a[0][0][0][0]", reason: "nested more than 8 deep"},
		{name: "a key policy over 32 KiB", doc: big, reason: "over the limit of 32768"},
		{name: "an identity policy over 6144 characters", kind: policy.IdentityPolicy, doc: `{"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-west-2:111122223333:key/` + strings.Repeat("k", 6144) + `"}]}`, reason: "over the limit of 6144"},

		// Statements.
		{name: "Sid a number", doc: docOf(S(stmt(`"Sid": 1`))), path: "Statement[0].Sid", reason: "must be a string"},
		{name: "an identity policy's Sid with a space", kind: policy.IdentityPolicy, doc: `{"Statement": [{"Sid": "Use key", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}`, path: "Statement[0].Sid", reason: "only letters and digits"},
		{name: "an identity policy's Sid twice", kind: policy.IdentityPolicy, doc: `{"Statement": [{"Sid": "A", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}, {"Sid": "A", "Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"}]}`, path: "Statement[1].Sid", reason: "Sids are unique"},
		{name: "Effect allow", doc: docOf(S(stmt(`"Effect": "allow"`))), path: "Statement[0].Effect", reason: `must be "Allow" or "Deny"`},
		{name: "Effect twice", doc: docOf(S(stmt(`"Effect": "Allow", "Effect": "Deny"`))), path: "Statement[0].Effect", reason: "appears twice"},
		{name: "no Effect", doc: docOf(S(without("Effect"))), path: "Statement[0]", reason: "has no Effect"},
		{name: "no Action", doc: docOf(S(without("Action"))), path: "Statement[0]", reason: "has no Action (or NotAction)"},
		{name: "no Resource", doc: docOf(S(without("Resource"))), path: "Statement[0]", reason: "has no Resource (or NotResource)"},
		{name: "no Principal in a key policy", doc: docOf(S(without("Principal"))), path: "Statement[0]", reason: "has no Principal (or NotPrincipal)"},
		{name: "a statement as one object", doc: `{"Statement": ` + stmt(`"Effect": "Maybe"`) + `}`, path: "Statement.Effect", reason: `must be "Allow" or "Deny"`},
		{name: "the second statement", doc: docOf(S(stmt(), stmt(`"Action": "kms:Nope"`))), path: "Statement[1].Action", reason: `"kms:Nope" matches no KMS action`},
		{name: "Principal and NotPrincipal", doc: docOf(S(stmt(`"NotPrincipal": "*"`))), path: "Statement[0].NotPrincipal", reason: "Principal or NotPrincipal, not both"},
		{name: "Action and NotAction", doc: docOf(S(stmt(`"NotAction": "kms:Encrypt"`))), path: "Statement[0].NotAction", reason: "Action or NotAction, not both"},
		{name: "Resource and NotResource", doc: docOf(S(stmt(`"NotResource": "*"`))), path: "Statement[0].NotResource", reason: "Resource or NotResource, not both"},
		{name: "an unknown statement element", doc: docOf(S(stmt(`"Actions": "kms:Decrypt"`))), path: "Statement[0].Actions", reason: `unknown element "Actions" (a statement holds Sid, Effect, Principal`},
		{name: "a statement element in the wrong case", doc: docOf(S(stmt(`"condition": {}`))), path: "Statement[0].condition", reason: `did you mean "Condition"?`},

		// Principals.
		{name: "a Principal in an identity policy", kind: policy.IdentityPolicy, doc: docOf(S(stmt())), path: "Statement[0].Principal", reason: "an identity policy names no principal"},
		{name: "Principal a name", doc: docOf(S(stmt(`"Principal": "app"`))), path: "Statement[0].Principal", reason: `must be "*" or a map`},
		{name: "Principal a list", doc: docOf(S(stmt(`"Principal": ["*"]`))), path: "Statement[0].Principal", reason: `must be "*" or a map such as {"AWS": "arn:aws:iam::111122223333:user/name"}, not an array`},
		{name: "Principal empty", doc: docOf(S(stmt(`"Principal": {}`))), path: "Statement[0].Principal", reason: "names no principal"},
		{name: "AWS an empty list", doc: docOf(S(stmt(`"Principal": {"AWS": []}`))), path: "Statement[0].Principal.AWS", reason: "is an empty list"},
		{name: "AWS a number", doc: docOf(S(stmt(`"Principal": {"AWS": 111122223333}`))), path: "Statement[0].Principal.AWS", reason: "must be a string or a list of strings, not a number"},
		{name: "AWS a number in a list", doc: docOf(S(stmt(`"Principal": {"AWS": ["*", 1]}`))), path: "Statement[0].Principal.AWS[1]", reason: "must be a string, not a number"},
		{name: "a principal with a wildcard", doc: docOf(S(stmt(`"Principal": {"AWS": "arn:aws:iam::111122223333:user/*"}`))), path: "Statement[0].Principal.AWS", reason: "a principal cannot hold wildcards"},
		{name: "a group as principal", doc: docOf(S(stmt(`"Principal": {"AWS": "arn:aws:iam::111122223333:group/devs"}`))), path: "Statement[0].Principal.AWS", reason: "a user group cannot be a principal"},
		{name: "a principal that is a bare name", doc: docOf(S(stmt(`"Principal": {"AWS": "bob"}`))), path: "Statement[0].Principal.AWS", reason: `"bob" is not a principal`},
		{name: "an account id of 11 digits", doc: docOf(S(stmt(`"Principal": {"AWS": "arn:aws:iam::11112222333:root"}`))), path: "Statement[0].Principal.AWS", reason: "is not a principal"},
		{name: "a principal of another service", doc: docOf(S(stmt(`"Principal": {"AWS": "arn:aws:s3:::bucket"}`))), path: "Statement[0].Principal.AWS", reason: "is not a principal"},
		{name: "a user with a bad name", doc: docOf(S(stmt(`"Principal": {"AWS": "arn:aws:iam::111122223333:user/a b"}`))), path: "Statement[0].Principal.AWS", reason: "is not a principal"},
		{name: "an assumed role without a session", doc: docOf(S(stmt(`"Principal": {"AWS": "arn:aws:sts::111122223333:assumed-role/KeyAdmin"}`))), path: "Statement[0].Principal.AWS", reason: "is not a principal"},
		{name: "a Federated principal", doc: docOf(S(stmt(`"Principal": {"Federated": "cognito-identity.amazonaws.com"}`))), path: "Statement[0].Principal.Federated", reason: "not Federated ones"},
		{name: "a CanonicalUser principal", doc: docOf(S(stmt(`"Principal": {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}`))), path: "Statement[0].Principal.CanonicalUser", reason: "not CanonicalUser ones"},
		{name: "a principal type in the wrong case", doc: docOf(S(stmt(`"Principal": {"aws": "*"}`))), path: "Statement[0].Principal.aws", reason: `did you mean "AWS"?`},
		{name: "an unknown principal type", doc: docOf(S(stmt(`"Principal": {"User": "bob"}`))), path: "Statement[0].Principal.User", reason: `unknown element "User" (a Principal holds AWS, Service)`},
		{name: "an empty Service principal", doc: docOf(S(stmt(`"Principal": {"Service": ""}`))), path: "Statement[0].Principal.Service", reason: "is not a service principal"},

		// Actions.
		{name: "an action without its service", doc: docOf(S(stmt(`"Action": "Decrypt"`))), path: "Statement[0].Action", reason: `"Decrypt" is not an action`},
		{name: "another service's action", doc: docOf(S(stmt(`"Action": "s3:GetObject"`))), path: "Statement[0].Action", reason: "is not a KMS action"},
		{name: "a misspelt action", doc: docOf(S(stmt(`"Action": "kms:Decrpyt"`))), path: "Statement[0].Action", reason: `"kms:Decrpyt" matches no KMS action`},
		{name: "a misspelt pattern", doc: docOf(S(stmt(`"Action": "kms:Decrpyt*"`))), path: "Statement[0].Action", reason: "matches no KMS action"},
		{name: "kms:ReEncrypt", doc: docOf(S(stmt(`"Action": "kms:ReEncrypt"`))), path: "Statement[0].Action", reason: `"kms:ReEncrypt*" for both`},
		{name: "a wildcard in the service", doc: docOf(S(stmt(`"Action": "k*s:Decrypt"`))), path: "Statement[0].Action", reason: "the service prefix cannot hold wildcards"},
		{name: "no action name", doc: docOf(S(stmt(`"Action": "kms:"`))), path: "Statement[0].Action", reason: "names no action"},
		{name: "a bad character in an action", doc: docOf(S(stmt(`"Action": "kms:De-crypt"`))), path: "Statement[0].Action", reason: "only letters, digits and the wildcards"},
		{name: "Action an empty list", doc: docOf(S(stmt(`"Action": []`))), path: "Statement[0].Action", reason: "is an empty list"},
		{name: "Action an object", doc: docOf(S(stmt(`"Action": {}`))), path: "Statement[0].Action", reason: "must be a string or a list of strings, not an object"},
		{name: "the second action", doc: docOf(S(stmt(`"Action": ["kms:Decrypt", "kms:Bogus"]`))), path: "Statement[0].Action[1]", reason: `"kms:Bogus" matches no KMS action`},
		{name: "a NotAction", doc: docOf(S(without("Action")[:len(without("Action"))-1] + `, "NotAction": "s3:*"}`)), path: "Statement[0].NotAction", reason: "is not a KMS action"},

		// Resources.
		{name: "a resource that is no ARN", doc: docOf(S(stmt(`"Resource": "key/*"`))), path: "Statement[0].Resource", reason: `"key/*" is not an ARN`},
		{name: "a resource ARN with too few parts", doc: docOf(S(stmt(`"Resource": "arn:aws:kms:*"`))), path: "Statement[0].Resource", reason: "is not an ARN"},
		{name: "a wildcard in the resource's service", doc: docOf(S(stmt(`"Resource": "arn:aws:*:us-east-1:111122223333:key/*"`))), path: "Statement[0].Resource", reason: "the service part of a resource ARN cannot hold wildcards"},
		{name: "another service's resource", doc: docOf(S(stmt(`"Resource": "arn:aws:s3:::bucket/*"`))), path: "Statement[0].Resource", reason: "is not a KMS resource"},
		{name: "a variable before the resource part", doc: docOf(S(stmt(`"Resource": "arn:aws:kms:${aws:RequestedRegion}:111122223333:key/*"`))), path: "Statement[0].Resource", reason: "only in the resource part"},
		{name: "an unknown key in a resource variable", doc: docOf(S(stmt(`"Resource": "arn:aws:kms:us-east-1:111122223333:key/${aws:nosuch}"`))), path: "Statement[0].Resource", reason: `unknown condition key "aws:nosuch" in policy variable`},
		{name: "an unclosed resource variable", doc: docOf(S(stmt(`"Resource": "arn:aws:kms:us-east-1:111122223333:alias/${aws:username"`))), path: "Statement[0].Resource", reason: `has no closing "}"`},
		{name: "the second resource", doc: docOf(S(stmt(`"Resource": ["*", "arn"]`))), path: "Statement[0].Resource[1]", reason: `"arn" is not an ARN`},

		// Conditions.
		{name: "Condition a string", doc: docOf(S(cond(`"x"`))), path: "Statement[0].Condition", reason: "must be a map of operators"},
		{name: "an operator with no map", doc: docOf(S(cond(`{"StringEquals": "x"}`))), path: "Statement[0].Condition.StringEquals", reason: "must be a map of condition keys to values"},
		{name: "an unknown operator", doc: docOf(S(cond(`{"StringEqual": {"kms:KeySpec": "x"}}`))), path: "Statement[0].Condition.StringEqual", reason: `unknown condition operator "StringEqual"`},
		{name: "an operator in the wrong case", doc: docOf(S(cond(`{"stringequals": {"kms:KeySpec": "x"}}`))), path: "Statement[0].Condition.stringequals", reason: `did you mean "StringEquals"?`},
		{name: "an IfExists operator in the wrong case", doc: docOf(S(cond(`{"StringEqualsIfexists": {"kms:KeySpec": "x"}}`))), path: "Statement[0].Condition.StringEqualsIfexists", reason: `unknown condition operator "StringEqualsIfexists"`},
		{name: "a set qualifier in the wrong case", doc: docOf(S(cond(`{"forAnyValue:StringEquals": {"kms:EncryptionContextKeys": "x"}}`))), path: "Statement[0].Condition.forAnyValue:StringEquals", reason: `the set qualifier is spelt "ForAnyValue:"`},
		{name: "BinaryEquals", doc: docOf(S(cond(`{"BinaryEquals": {"kms:KeySpec": "QmluYXJ5"}}`))), path: "Statement[0].Condition.BinaryEquals", reason: "no KMS condition key holds binary data"},
		{name: "NullIfExists", doc: docOf(S(cond(`{"NullIfExists": {"kms:KeySpec": "true"}}`))), path: "Statement[0].Condition.NullIfExists", reason: "Null takes no IfExists"},
		{name: "ForAnyValue:Null", doc: docOf(S(cond(`{"ForAnyValue:Null": {"kms:KeySpec": "true"}}`))), path: "Statement[0].Condition.ForAnyValue:Null", reason: "Null takes no set qualifier"},
		{name: "an operator twice", doc: docOf(S(cond(`{"StringEquals": {"kms:KeySpec": "a"}, "StringEquals": {"kms:KeyUsage": "b"}}`))), path: "Statement[0].Condition.StringEquals", reason: "appears twice"},
		{name: "a key twice", doc: docOf(S(cond(`{"StringEquals": {"kms:KeySpec": "a", "kms:KeySpec": "b"}}`))), path: "Statement[0].Condition.StringEquals.kms:KeySpec", reason: "appears twice"},
		{name: "an unknown condition key", doc: docOf(S(cond(`{"StringEquals": {"kms:EncryptionContex:tenant": "a"}}`))), path: "Statement[0].Condition.StringEquals.kms:EncryptionContex:tenant", reason: `unknown condition key "kms:EncryptionContex:tenant"`},
		{name: "kms:EncryptionContext: with no key", doc: docOf(S(cond(`{"StringEquals": {"kms:EncryptionContext:": "a"}}`))), path: "Statement[0].Condition.StringEquals.kms:EncryptionContext:", reason: "names no key after the prefix"},
		{name: "kms:EncryptionContext", doc: docOf(S(cond(`{"StringEquals": {"kms:EncryptionContext": "a"}}`))), path: "Statement[0].Condition.StringEquals.kms:EncryptionContext", reason: "write kms:EncryptionContext:KEY"},
		{name: "a multi-valued key without a set qualifier", doc: docOf(S(cond(`{"StringEquals": {"kms:EncryptionContextKeys": "a"}}`))), path: "Statement[0].Condition.StringEquals.kms:EncryptionContextKeys", reason: "is multi-valued: qualify the operator with ForAnyValue:"},
		{name: "IfExists on a multi-valued key without a set qualifier", doc: docOf(S(cond(`{"StringLikeIfExists": {"kms:ResourceAliases": "alias/*"}}`))), path: "Statement[0].Condition.StringLikeIfExists.kms:ResourceAliases", reason: "is multi-valued"},
		{name: "ForAllValues on kms:EncryptionContext:KEY", doc: docOf(S(cond(`{"ForAllValues:StringEquals": {"kms:EncryptionContext:Department": "IT"}}`))), path: "Statement[0].Condition.ForAllValues:StringEquals.kms:EncryptionContext:Department", reason: "OverlyPermissiveCondition"},
		{name: "ForAllValues on aws:RequestTag/KEY", doc: docOf(S(cond(`{"ForAllValues:StringEquals": {"aws:RequestTag/team": "blue"}}`))), path: "Statement[0].Condition.ForAllValues:StringEquals.aws:RequestTag/team", reason: "OverlyPermissiveCondition"},
		{name: "no value", doc: docOf(S(cond(`{"StringEquals": {"kms:KeySpec": []}}`))), path: "Statement[0].Condition.StringEquals.kms:KeySpec", reason: "has no value"},
		{name: "a null value", doc: docOf(S(cond(`{"StringEquals": {"kms:KeySpec": null}}`))), path: "Statement[0].Condition.StringEquals.kms:KeySpec", reason: "not null"},
		{name: "an object value", doc: docOf(S(cond(`{"StringEquals": {"kms:KeySpec": {}}}`))), path: "Statement[0].Condition.StringEquals.kms:KeySpec", reason: "not an object"},
		{name: "an object in the values", doc: docOf(S(cond(`{"StringEquals": {"kms:KeySpec": ["a", {"b": 1}]}}`))), path: "Statement[0].Condition.StringEquals.kms:KeySpec[1]", reason: "not an object"},
		{name: "a number that is no number", doc: docOf(S(cond(`{"NumericEquals": {"kms:RotationPeriodInDays": "ten"}}`))), path: "Statement[0].Condition.NumericEquals.kms:RotationPeriodInDays", reason: `"ten" is not a number`},
		{name: "a hexadecimal number", doc: docOf(S(cond(`{"NumericEquals": {"kms:RotationPeriodInDays": "0x10"}}`))), path: "Statement[0].Condition.NumericEquals.kms:RotationPeriodInDays", reason: "is not a number"},
		{name: "NaN", doc: docOf(S(cond(`{"NumericLessThan": {"kms:RotationPeriodInDays": ["1", "NaN"]}}`))), path: "Statement[0].Condition.NumericLessThan.kms:RotationPeriodInDays[1]", reason: `"NaN" is not a number`},
		{name: "an infinite number", doc: docOf(S(cond(`{"NumericLessThan": {"kms:RotationPeriodInDays": 1e999}}`))), path: "Statement[0].Condition.NumericLessThan.kms:RotationPeriodInDays", reason: "is not a number"},
		{name: "a date that is no date", doc: docOf(S(cond(`{"DateLessThan": {"aws:CurrentTime": "tomorrow"}}`))), path: "Statement[0].Condition.DateLessThan.aws:CurrentTime", reason: "want an ISO 8601 date"},
		{name: "a year alone", doc: docOf(S(cond(`{"DateLessThan": {"aws:CurrentTime": "2020"}}`))), path: "Statement[0].Condition.DateLessThan.aws:CurrentTime", reason: `"2020": ambiguous (a year, or epoch seconds?)`},
		{name: "a date out of range", doc: docOf(S(cond(`{"DateLessThan": {"aws:CurrentTime": "2020-13-01"}}`))), path: "Statement[0].Condition.DateLessThan.aws:CurrentTime", reason: "want an ISO 8601 date"},
		{name: "a boolean that is no boolean", doc: docOf(S(cond(`{"Bool": {"aws:SecureTransport": "yes"}}`))), path: "Statement[0].Condition.Bool.aws:SecureTransport", reason: `"yes" is not "true" or "false"`},
		{name: "a Null value that is no boolean", doc: docOf(S(cond(`{"Null": {"kms:KeySpec": 1}}`))), path: "Statement[0].Condition.Null.kms:KeySpec", reason: `"1" is not "true" or "false"`},
		{name: "a CIDR block too long", doc: docOf(S(cond(`{"IpAddress": {"aws:SourceIp": "203.0.113.0/33"}}`))), path: "Statement[0].Condition.IpAddress.aws:SourceIp", reason: "is not an IP address or CIDR block"},
		{name: "an address that is no address", doc: docOf(S(cond(`{"IpAddress": {"aws:SourceIp": "localhost"}}`))), path: "Statement[0].Condition.IpAddress.aws:SourceIp", reason: "is not an IP address or CIDR block"},
		{name: "an address with a zone", doc: docOf(S(cond(`{"NotIpAddress": {"aws:SourceIp": "fe80::1%eth0"}}`))), path: "Statement[0].Condition.NotIpAddress.aws:SourceIp", reason: "is not an IP address"},
		{name: "an ARN value that is no ARN", doc: docOf(S(cond(`{"ArnLike": {"aws:PrincipalArn": "role/*"}}`))), path: "Statement[0].Condition.ArnLike.aws:PrincipalArn", reason: "is not an ARN"},
		{name: "a variable with a numeric operator", doc: docOf(S(cond(`{"NumericEquals": {"kms:RotationPeriodInDays": "${aws:username}"}}`))), path: "Statement[0].Condition.NumericEquals.kms:RotationPeriodInDays", reason: "policy variables work only with the String and Arn operators"},
		{name: "a variable with IpAddress", doc: docOf(S(cond(`{"IpAddress": {"aws:SourceIp": "${aws:VpcSourceIp}"}}`))), path: "Statement[0].Condition.IpAddress.aws:SourceIp", reason: "policy variables work only with the String and Arn operators"},
		{name: "a variable with an unknown key", doc: docOf(S(cond(`{"StringEquals": {"kms:EncryptionContext:user": "${aws:nosuch}"}}`))), path: "Statement[0].Condition.StringEquals.kms:EncryptionContext:user", reason: `unknown condition key "aws:nosuch" in policy variable`},
		{name: "a variable with a multi-valued key", doc: docOf(S(cond(`{"StringEquals": {"kms:EncryptionContext:user": "${kms:EncryptionContextKeys}"}}`))), path: "Statement[0].Condition.StringEquals.kms:EncryptionContext:user", reason: "is multi-valued and cannot be a policy variable"},
		{name: "an unclosed variable", doc: docOf(S(cond(`{"StringEquals": {"kms:EncryptionContext:user": "${aws:username"}}`))), path: "Statement[0].Condition.StringEquals.kms:EncryptionContext:user", reason: `has no closing "}"`},
		{name: "a default without quotes", doc: docOf(S(cond(`{"StringEquals": {"kms:EncryptionContext:user": "${aws:username, nobody}"}}`))), path: "Statement[0].Condition.StringEquals.kms:EncryptionContext:user", reason: "written ${key, 'default'}"},
		{name: "a key name with a dot is quoted in the path", doc: docOf(S(cond(`{"NumericEquals": {"kms:EncryptionContext:a.b": "x"}}`))), path: `Statement[0].Condition.NumericEquals."kms:EncryptionContext:a.b"`, reason: "is not a number"},
	} {
		t.Run(c.name, func(t *testing.T) {
			kind := c.kind
			if kind == 0 {
				kind = policy.KeyPolicy
			}
			p, err := policy.Parse(c.doc, kind)
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, %v; want a *policy.Error\n%s", p, err, c.doc)
			}
			if pe.Path != c.path || !strings.Contains(pe.Reason, c.reason) {
				t.Errorf("Parse = %v\nwant path %q and a reason containing %q", err, c.path, c.reason)
			}
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Errorf("error %q does not begin with the package's name", err)
			}
			if tooLarge := strings.Contains(c.reason, "over the limit"); errors.Is(err, policy.ErrTooLarge) != tooLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v", err, !tooLarge)
			}
		})
	}
}

func TestParseUnknownKind(t *testing.T) {
	if _, err := policy.Parse(docOf(S(stmt())), 0); err == nil {
		t.Error("Parse with kind 0 succeeded")
	}
}

// Documents from AWS's documentation, which Parse must accept.
func TestParseAWSDocuments(t *testing.T) {
	for _, c := range []struct {
		name, cite, doc string
		kind            policy.Kind
	}{
		{"the console's default key policy", cKMSDef, `{
  "Id": "key-consolepolicy-3",
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
      "Action": "kms:*",
      "Resource": "*"
    },
    {
      "Sid": "Allow access for Key Administrators",
      "Effect": "Allow",
      "Principal": {"AWS": ["arn:aws:iam::111122223333:user/KMSAdminUser", "arn:aws:iam::111122223333:role/KMSAdminRole"]},
      "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
                 "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
                 "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"],
      "Resource": "*"
    },
    {
      "Sid": "Allow use of the key",
      "Effect": "Allow",
      "Principal": {"AWS": ["arn:aws:iam::111122223333:user/ExampleUser", "arn:aws:iam::111122223333:role/ExampleRole", "arn:aws:iam::444455556666:root"]},
      "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
      "Resource": "*"
    },
    {
      "Sid": "Allow attachment of persistent resources",
      "Effect": "Allow",
      "Principal": {"AWS": ["arn:aws:iam::111122223333:user/ExampleUser", "arn:aws:iam::111122223333:role/ExampleRole", "arn:aws:iam::444455556666:root"]},
      "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
      "Resource": "*",
      "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    }
  ]
}`, policy.KeyPolicy},
		{"an AWS managed key's policy (kms:ViaService, kms:CallerAccount)", cKMSCond, `{
  "Version": "2012-10-17",
  "Id": "auto-ebs-2",
  "Statement": [
    {
      "Sid": "Allow access through EBS for all principals in the account that are authorized to use EBS",
      "Effect": "Allow",
      "Principal": {"AWS": "*"},
      "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
      "Resource": "*",
      "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333", "kms:ViaService": "ec2.us-west-2.amazonaws.com"}}
    },
    {
      "Sid": "Allow direct access to key metadata to the account",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
      "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
      "Resource": "*"
    }
  ]
}`, policy.KeyPolicy},
		{"a CloudTrail key policy (a Service principal)", cPrincipal, `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "Allow CloudTrail to encrypt logs",
      "Effect": "Allow",
      "Principal": {"Service": "cloudtrail.amazonaws.com"},
      "Action": "kms:GenerateDataKey*",
      "Resource": "*",
      "Condition": {
        "StringEquals": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-2:111122223333:trail/trail-name"},
        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": "arn:aws:cloudtrail:*:111122223333:trail/*"}
      }
    }
  ]
}`, policy.KeyPolicy},
		{"an identity policy with kms:ResourceAliases", cKMSCond, `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "AliasBasedIAMPolicy",
      "Effect": "Allow",
      "Action": ["kms:EnableKey", "kms:DisableKey"],
      "Resource": "arn:aws:kms:*:111122223333:key/*",
      "Condition": {
        "ForAllValues:StringLike": {"kms:ResourceAliases": ["alias/*Test*"]},
        "ForAnyValue:StringLike": {"kms:ResourceAliases": ["alias/*Test*"]}
      }
    }
  ]
}`, policy.IdentityPolicy},
		{"an identity policy with the date operators", cDates, `{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {
                "DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"},
                "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}
            }
        }
    ]
}`, policy.IdentityPolicy},
		{"the deny-by-IP policy", cDenyIP, `{
    "Version": "2012-10-17",
    "Statement": {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]},
            "Bool": {"aws:ViaAWSService": "false"}
        }
    }
}`, policy.IdentityPolicy},
		{"an empty Condition and an empty operator", cCond, docOf(S(cond(`{}`), cond(`{"StringEquals": {}}`))), policy.KeyPolicy},
		{"Latin-1 characters", cKMSDef, docOf(S(stmt(`"Sid": "Clé de l'équipe"`))), policy.KeyPolicy},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := policy.Parse(c.doc, c.kind); err != nil {
				t.Errorf("Parse = %v (%s)", err, c.cite)
			}
		})
	}
}

// The size limits are AWS's: 32768 bytes for a key policy (white space
// counts), 6144 characters other than white space for an identity policy.
func TestParseSizeLimits(t *testing.T) {
	base := docOf(S(stmt(`"Sid": ""`)))
	pad := policy.MaxKeyPolicySize - len(base)
	atLimit := strings.Replace(base, `"Sid": ""`, `"Sid": "`+strings.Repeat("s", pad)+`"`, 1)
	if len(atLimit) != policy.MaxKeyPolicySize {
		t.Fatalf("test document is %d bytes", len(atLimit))
	}
	if _, err := policy.Parse(atLimit, policy.KeyPolicy); err != nil {
		t.Errorf("a key policy of exactly %d bytes: %v", policy.MaxKeyPolicySize, err)
	}
	if _, err := policy.Parse(atLimit+" ", policy.KeyPolicy); !errors.Is(err, policy.ErrTooLarge) {
		t.Errorf("a key policy one byte over: %v", err)
	}

	ident := `{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Sid":"S"}]}`
	ident = strings.Replace(ident, `"Sid":"S"`, `"Sid":"`+strings.Repeat("S", policy.MaxIdentityPolicySize-len(ident)+1)+`"`, 1)
	spaced := strings.ReplaceAll(ident, ",", ",\n\t  ")
	if _, err := policy.Parse(spaced, policy.IdentityPolicy); err != nil {
		t.Errorf("an identity policy of %d characters and white space: %v", policy.MaxIdentityPolicySize, err)
	}
	if _, err := policy.Parse(strings.Replace(ident, `"S`, `"SS`, 1), policy.IdentityPolicy); !errors.Is(err, policy.ErrTooLarge) {
		t.Errorf("an identity policy one character over: %v", err)
	}
}

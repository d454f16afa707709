// Package policy reads IAM JSON policy documents (key policies and identity
// policies) and decides requests against them as AWS KMS does. It is pure:
// no I/O, no clock (a request carries its time), nothing global that
// changes.
//
// [Parse] checks and compiles a document once; [Policy.Evaluate] then
// decides each request without allocating (for the usual keys), so that a
// server can cache a key's parsed policy and ask it on every request.
//
//	p, err := policy.Parse(doc, policy.KeyPolicy)
//	d := p.Evaluate(&policy.Request{
//		Principal: "arn:aws:iam::111122223333:user/app",
//		Action:    "kms:Decrypt",
//		Resource:  keyARN,
//		Context:   policy.Context{EncryptionContext: ec, Time: now},
//	})
//	// d.Effect is Allow, Deny (explicit) or ImplicitDeny; d.Statement and
//	// d.Sid name the statement that decided.
//
// # Grammar
//
// A document is a JSON object with Version ("2012-10-17" or "2008-10-17";
// policy variables need the former), an optional Id, and Statement: one
// statement or a non-empty list of them. A statement has an optional Sid;
// Effect "Allow" or "Deny"; Principal or NotPrincipal (key policies, where
// it is required; identity policies have none); Action or NotAction;
// Resource or NotResource; and an optional Condition. Element names and
// the words Allow and Deny are case-sensitive; an element may not appear
// twice. A list may be written as a single string.
//
//   - Principal: "*", or {"AWS": …} with "*", account ids
//     ("111122223333"), account ARNs (arn:aws:iam::111122223333:root), and
//     the ARNs of users, roles (with paths), role sessions and federated
//     users. {"Service": …} principals are accepted (CloudTrail's key
//     policies use them) but never match a caller of this KMS.
//   - Action: "*" or "kms:NAME", NAME with the wildcards * and ?, matched
//     ignoring case; it must match some KMS permission.
//   - Resource: "*" or a KMS ARN whose parts may hold * and ? (the
//     service part may not), matched part by part as IAM does; policy
//     variables in the part after the fifth colon.
//   - Condition: {"OPERATOR": {"KEY": VALUE or [VALUES]}}; the operators are
//     ANDed, so are the keys under one operator, and a key's values are
//     ORed (NORed for a negated operator). Values are strings, numbers or
//     booleans.
//
// Operators: StringEquals, StringNotEquals, StringEqualsIgnoreCase,
// StringNotEqualsIgnoreCase, StringLike, StringNotLike (* and ? anywhere);
// NumericEquals, NumericNotEquals, NumericLessThan(Equals),
// NumericGreaterThan(Equals); DateEquals, DateNotEquals,
// DateLessThan(Equals), DateGreaterThan(Equals) (ISO 8601 dates or epoch
// seconds); Bool ("true", "false"); IpAddress, NotIpAddress (IPv4 and IPv6
// CIDR blocks, or one address); ArnEquals, ArnLike, ArnNotEquals,
// ArnNotLike (part by part, with wildcards); Null ("true": the key is
// absent). Any but Null takes the IfExists suffix (an absent key passes)
// and the ForAnyValue: or ForAllValues: qualifier (a multi-valued key: some
// value, or every value, must pass; an absent or empty key fails
// ForAnyValue and passes ForAllValues).
//
// Condition keys are AWS KMS's (kms:EncryptionContext:KEY,
// kms:EncryptionContextKeys, kms:CallerAccount, kms:KeySpec, kms:KeyUsage,
// kms:EncryptionAlgorithm, kms:GrantOperations, kms:GrantIsForAWSResource,
// kms:RequestAlias, kms:ResourceAliases, kms:ViaService, …) and AWS's global
// ones (aws:SourceIp, aws:PrincipalArn, aws:PrincipalAccount, aws:username,
// aws:CurrentTime, aws:EpochTime, aws:ResourceTag/KEY, …); their names
// ignore case. The KEY of kms:EncryptionContext:KEY ignores case too, as
// AWS documents; kms:EncryptionContextKeys compares keys with the
// operator's case rule.
//
// Policy variables (Version 2012-10-17): ${KEY} and ${KEY, 'default'} with
// a single-valued key, in the values of the String and Arn operators and
// in a Resource's last part; ${*}, ${?} and ${$} stand for those
// characters. A variable the request lacks (without a default) matches
// nothing.
//
// # What Parse refuses
//
// Everything AWS refuses, and everything this evaluator would otherwise
// have to ignore, with an [*Error] naming the element
// ("Statement[2].Condition.StringEquals.kms:EncryptionContext:tenant"):
// malformed JSON, a member given twice, unknown elements, operators or
// condition keys; a statement missing Effect, Action, Resource or (in a key
// policy) Principal, which AWS accepts and then ignores; characters other
// than tab, line feed, carriage return and U+0020 to U+00FF; Federated and
// CanonicalUser principals; principals with wildcards or naming user
// groups; actions and resources of other services (they could never match
// here); an action matching no KMS permission ("kms:Decrpyt"); a condition
// on a multi-valued key without ForAnyValue or ForAllValues (AWS says
// they require one); ForAllValues with kms:EncryptionContext:KEY or
// aws:RequestTag/KEY (AWS KMS refuses it as OverlyPermissiveCondition);
// Null with IfExists or a set qualifier; values an operator cannot read
// (numbers, dates, booleans, addresses); policy variables outside String
// and Arn values; BinaryEquals (no KMS key holds binary data). Key
// policies are limited to [MaxKeyPolicySize] bytes, identity policies to
// [MaxIdentityPolicySize] characters other than white space; over the
// limit, the error wraps [ErrTooLarge].
//
// # Decisions
//
// An explicit Deny wins; else an Allow; else ImplicitDeny. In a key
// policy, a Principal that names the caller's account (its root ARN or
// bare id) allows the account's root itself, and lets the account's
// identity policies decide for its users and roles: the Decision then has
// ViaAccount set, and the caller needs an identity policy that allows the
// request too. A Deny naming the account denies all of it. A NotPrincipal
// exempts the identities it names (and the account's root when it names
// the account); naming an account does not exempt the account's users.
//
// A request may leave a condition undecided: an encryption context with
// two keys equal but for case (both match kms:EncryptionContext:KEY) whose
// values disagree, or a value an operator cannot read (a NumericLessThan
// on a context value "ten"). Such a condition never lets an Allow
// statement apply and never keeps a Deny statement from applying.
package policy

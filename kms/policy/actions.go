package policy

import (
	"strconv"
	"strings"
)

// kmsActions are the permissions of AWS KMS (the developer guide's "AWS KMS
// permissions" reference and the operations of the KMS service model),
// lower-cased. An action pattern in a policy must match at least one of
// them: a misspelt action is an error, not a statement that never applies.
var kmsActions = lowerAll([]string{
	"CancelKeyDeletion", "ConnectCustomKeyStore", "CreateAlias", "CreateCustomKeyStore",
	"CreateGrant", "CreateKey", "Decapsulate", "Decrypt", "DeleteAlias", "DeleteCustomKeyStore",
	"DeleteImportedKeyMaterial", "DeriveSharedSecret", "DescribeCustomKeyStores", "DescribeKey",
	"DisableKey", "DisableKeyRotation", "DisconnectCustomKeyStore", "EnableKey",
	"EnableKeyRotation", "Encapsulate", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair",
	"GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "GenerateMac",
	"GenerateRandom", "GetKeyLastUsage", "GetKeyPolicy", "GetKeyRotationStatus",
	"GetParametersForImport", "GetPublicKey", "ImportKeyMaterial", "ListAliases", "ListGrants",
	"ListKeyPolicies", "ListKeyRotations", "ListKeys", "ListResourceTags", "ListRetirableGrants",
	"PutKeyPolicy", "ReEncryptFrom", "ReEncryptTo", "ReplicateKey", "RetireGrant", "RevokeGrant",
	"RotateKeyOnDemand", "ScheduleKeyDeletion", "Sign", "SynchronizeMultiRegionKey",
	"TagResource", "UntagResource", "UpdateAlias", "UpdateCustomKeyStore", "UpdateKeyDescription",
	"UpdatePrimaryRegion", "Verify", "VerifyMac",
})

func lowerAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToLower(v)
	}
	return out
}

// actionPattern is an Action or NotAction entry: "*", or "kms:" and a name
// that may hold the wildcards * and ?, matched case-insensitively.
type actionPattern struct {
	lower string // the whole pattern, lower-cased ("kms:generatedatakey*")
	kind  actionKind
}

type actionKind uint8

const (
	actionAny    actionKind = iota // "*"
	actionKMSAny                   // "kms:*"
	actionExact                    // no wildcard
	actionWild                     // wildcards elsewhere
)

// compileAction checks an action pattern: "*", or "kms:NAME" where NAME
// holds letters, digits and wildcards and matches some KMS permission.
func compileAction(p *path, a string) (actionPattern, error) {
	if a == "*" {
		return actionPattern{lower: "*", kind: actionAny}, nil
	}
	service, name, ok := strings.Cut(a, ":")
	switch {
	case !ok || service == "":
		return actionPattern{}, errAt(p, quote(a)+` is not an action: write "kms:NAME" (such as "kms:Decrypt") or "*"`)
	case strings.ContainsAny(service, "*?"):
		return actionPattern{}, errAt(p, quote(a)+`: the service prefix cannot hold wildcards (write "kms:…" or "*")`)
	case !strings.EqualFold(service, "kms"):
		return actionPattern{}, errAt(p, quote(a)+` is not a KMS action: only "kms:" actions (and "*") mean anything to this KMS`)
	case name == "":
		return actionPattern{}, errAt(p, quote(a)+` names no action: write "kms:NAME" or "kms:*"`)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '*' || r == '?') {
			return actionPattern{}, errAt(p, quote(a)+": an action name holds only letters, digits and the wildcards * and ?")
		}
	}
	ap := actionPattern{lower: "kms:" + strings.ToLower(name), kind: actionWild}
	switch {
	case name == "*":
		ap.kind = actionKMSAny
	case !strings.ContainsAny(name, "*?"):
		ap.kind = actionExact
	}
	for _, k := range kmsActions {
		if wildMatch(ap.lower[len("kms:"):], k, true) {
			return ap, nil
		}
	}
	if strings.EqualFold(name, "ReEncrypt") {
		return actionPattern{}, errAt(p, quote(a)+` is no KMS permission: ReEncrypt needs "kms:ReEncryptFrom" (on the source key) and "kms:ReEncryptTo" (on the destination key), or "kms:ReEncrypt*" for both`)
	}
	return actionPattern{}, errAt(p, quote(a)+" matches no KMS action")
}

// match reports whether the pattern matches action, ignoring ASCII case
// (action names are ASCII).
func (ap *actionPattern) match(action string) bool {
	switch ap.kind {
	case actionAny:
		return true
	case actionKMSAny:
		return len(action) >= 4 && strings.EqualFold(action[:4], "kms:")
	case actionExact:
		return len(ap.lower) == len(action) && strings.EqualFold(ap.lower, action)
	}
	return wildMatch(ap.lower, action, true)
}

func quote(s string) string { return strconv.Quote(s) }

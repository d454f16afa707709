package policy

import "strings"

// keySource says where a condition key's value comes from in a [Request].
type keySource uint8

const (
	srcValues                keySource = iota // Context.Values
	srcPrincipalArn                           // Request.Principal
	srcPrincipalAccount                       // the account in Request.Principal
	srcUsername                               // the user name in Request.Principal
	srcCurrentTime                            // Context.Time
	srcEpochTime                              // Context.Time, in seconds
	srcSourceIP                               // Context.SourceIP
	srcEncryptionContext                      // Context.EncryptionContext[suffix]
	srcEncryptionContextKeys                  // the keys of Context.EncryptionContext
)

// keyDef is a condition key the evaluator knows.
type keyDef struct {
	name  string // as AWS spells it; for a prefix, with its trailing ":" or "/"
	multi bool   // multi-valued: conditions on it need ForAnyValue or ForAllValues
	src   keySource
	// prefix keys take a suffix: kms:EncryptionContext:KEY, aws:ResourceTag/KEY.
	prefix bool
	// noForAll: ForAllValues is refused, as KMS refuses it
	// (OverlyPermissiveCondition).
	noForAll bool
}

// keyDefs are the condition keys a policy may use: AWS KMS's (the developer
// guide's "AWS KMS condition keys") and AWS's global ones (the IAM user
// guide's "AWS global condition context keys"). A request carries the
// values it has; a key it does not carry is absent, as in AWS for a request
// that lacks it. A key not listed here is refused, so that a misspelt key
// is an error rather than a condition that never holds.
var keyDefs = []keyDef{
	{name: "kms:BypassPolicyLockoutSafetyCheck"},
	{name: "kms:CallerAccount", src: srcPrincipalAccount},
	{name: "kms:CustomerMasterKeySpec"},
	{name: "kms:CustomerMasterKeyUsage"},
	{name: "kms:DataKeyPairSpec"},
	{name: "kms:EncryptionAlgorithm"},
	{name: "kms:EncryptionContext:", prefix: true, src: srcEncryptionContext, noForAll: true},
	{name: "kms:EncryptionContextKeys", multi: true, src: srcEncryptionContextKeys},
	{name: "kms:ExpirationModel"},
	{name: "kms:GrantConstraintType"},
	{name: "kms:GrantIsForAWSResource"},
	{name: "kms:GrantOperations", multi: true},
	{name: "kms:GranteePrincipal"},
	{name: "kms:KeyAgreementAlgorithm"},
	{name: "kms:KeyOrigin"},
	{name: "kms:KeySpec"},
	{name: "kms:KeyUsage"},
	{name: "kms:MacAlgorithm"},
	{name: "kms:MessageType"},
	{name: "kms:MultiRegion"},
	{name: "kms:MultiRegionKeyType"},
	{name: "kms:PrimaryRegion"},
	{name: "kms:ReEncryptOnSameKey"},
	{name: "kms:RecipientAttestation:", prefix: true},
	{name: "kms:ReplicaRegion"},
	{name: "kms:RequestAlias"},
	{name: "kms:ResourceAliases", multi: true},
	{name: "kms:RetiringPrincipal"},
	{name: "kms:RotationPeriodInDays"},
	{name: "kms:ScheduleKeyDeletionPendingWindowInDays"},
	{name: "kms:SigningAlgorithm"},
	{name: "kms:ValidTo"},
	{name: "kms:ViaService"},
	{name: "kms:WrappingAlgorithm"},
	{name: "kms:WrappingKeySpec"},

	{name: "aws:CalledVia", multi: true},
	{name: "aws:CalledViaFirst"},
	{name: "aws:CalledViaLast"},
	{name: "aws:CurrentTime", src: srcCurrentTime},
	{name: "aws:Ec2InstanceSourcePrivateIPv4"},
	{name: "aws:Ec2InstanceSourceVpc"},
	{name: "aws:EpochTime", src: srcEpochTime},
	{name: "aws:FederatedProvider"},
	{name: "aws:MultiFactorAuthAge"},
	{name: "aws:MultiFactorAuthPresent"},
	{name: "aws:PrincipalAccount", src: srcPrincipalAccount},
	{name: "aws:PrincipalArn", src: srcPrincipalArn},
	{name: "aws:PrincipalIsAWSService"},
	{name: "aws:PrincipalOrgID"},
	{name: "aws:PrincipalOrgPaths", multi: true},
	{name: "aws:PrincipalServiceName"},
	{name: "aws:PrincipalServiceNamesList", multi: true},
	{name: "aws:PrincipalTag/", prefix: true},
	{name: "aws:PrincipalType"},
	{name: "aws:referer"},
	{name: "aws:RequestedRegion"},
	{name: "aws:RequestTag/", prefix: true, noForAll: true},
	{name: "aws:ResourceAccount"},
	{name: "aws:ResourceOrgID"},
	{name: "aws:ResourceOrgPaths", multi: true},
	{name: "aws:ResourceTag/", prefix: true},
	{name: "aws:SecureTransport"},
	{name: "aws:SourceAccount"},
	{name: "aws:SourceArn"},
	{name: "aws:SourceIdentity"},
	{name: "aws:SourceIp", src: srcSourceIP},
	{name: "aws:SourceOrgID"},
	{name: "aws:SourceOrgPaths", multi: true},
	{name: "aws:SourceVpc"},
	{name: "aws:SourceVpce"},
	{name: "aws:TagKeys", multi: true},
	{name: "aws:TokenIssueTime"},
	{name: "aws:UserAgent"},
	{name: "aws:userid"},
	{name: "aws:username", src: srcUsername},
	{name: "aws:ViaAWSService"},
	{name: "aws:VpcSourceIp"},
}

// keysByName (lower-case name → key) and keysByPrefix index keyDefs; like
// it, they never change.
var keysByName, keysByPrefix = indexKeys()

func indexKeys() (map[string]*keyDef, []*keyDef) {
	byName := map[string]*keyDef{}
	var byPrefix []*keyDef
	for i := range keyDefs {
		k := &keyDefs[i]
		if k.prefix {
			byPrefix = append(byPrefix, k)
		} else {
			byName[strings.ToLower(k.name)] = k
		}
	}
	return byName, byPrefix
}

// keyRef is a condition key as a policy names it.
type keyRef struct {
	def *keyDef
	// name is the key as written, lower-cased: condition key names are
	// case-insensitive, and Context.Values are matched with EqualFold.
	name string
	// suffix is a prefix key's part after the prefix, as written (the
	// encryption context key of kms:EncryptionContext:KEY).
	suffix string
}

// lookupKey resolves a condition key name, case-insensitively as IAM does.
func lookupKey(name string) (keyRef, bool) {
	lower := strings.ToLower(name)
	if k, ok := keysByName[lower]; ok {
		return keyRef{def: k, name: lower}, true
	}
	for _, k := range keysByPrefix {
		if len(name) > len(k.name) && strings.EqualFold(name[:len(k.name)], k.name) {
			return keyRef{def: k, name: lower, suffix: name[len(k.name):]}, true
		}
	}
	return keyRef{}, false
}

// isDerived reports whether a key's value comes from a Request field other
// than Context.Values.
func (k *keyDef) isDerived() bool { return k.src != srcValues }

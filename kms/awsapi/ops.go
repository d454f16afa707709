package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/envelopekms/envelope/kms"
)

// operation is one entry of the dispatch table: how to decode, authorize,
// call and audit one KMS operation.
type operation struct {
	name string
	// index numbers the operation for per-operation state (metrics);
	// unknownOperation is 0.
	index int
	// call decodes the JSON body, runs the operation and appends its JSON
	// answer to dst. A nil check allows everything (the root principal).
	// Permissions on keys are not check's: the KMS asks the kms.Authorizer
	// ctx carries for each key it resolves.
	call func(ctx context.Context, api kms.API, body []byte, check authorizer, dst []byte) (opResult, error)
}

// unknownOperation stands for requests that name no operation.
var unknownOperation = operation{name: "Unknown"}

// opResult is what an operation returns: the answer's JSON, and what the
// audit log records.
type opResult struct {
	body  []byte
	audit auditInfo
}

// authorizer checks that the caller may perform action on a resource the
// server checks itself, where the KMS resolves no key: an alias as a
// resource of its own (CreateAlias, UpdateAlias and DeleteAlias need
// permission on the alias and, checked by the KMS, on the keys involved),
// or, for alias "", no key at all ("*": CreateKey, ListKeys, ListAliases
// without KeyId, GenerateRandom).
type authorizer func(action, alias string) error

// auditInfo is what the audit log records of a request besides who and
// when.
type auditInfo struct {
	keyARN string
	ecKeys []string
}

// spec describes an operation generically: its input type, the key it
// acts on, the permissions the server checks itself, its encryption
// context, and the key ARN its output reports.
type spec[In, Out any] struct {
	fn func(kms.API) func(context.Context, *In) (*Out, error)
	// keyRef, set for operations on keys, returns the key reference the
	// request gives (for the audit log, when the KMS resolves none). The
	// KMS checks the permissions on the keys it resolves.
	keyRef func(*In) string
	// checks lists the permissions the server checks itself (on aliases
	// as resources, or on "*"). With neither keyRef nor checks, the
	// operation acts on no key and needs its action on "*".
	checks func(*In) []actionOn
	ec     func(*In) map[string]string
	outKey func(*Out) string
	// decode, when set, decodes the common shapes of the input faster
	// than encoding/json, to the same result; it returns false for
	// anything else, which encoding/json then decodes.
	decode func(body []byte, in *In) bool
	// encode, when set, appends the output's JSON exactly as
	// encoding/json would.
	encode func(dst []byte, out *Out) []byte
}

// actionOn pairs an action with the alias it needs permission on ("": on
// "*").
type actionOn struct {
	action string
	alias  string
}

// errEncode is an answer encoding/json could not encode.
var errEncode = &kms.Error{Code: kms.CodeInternal, Message: "could not encode the answer"}

func (s spec[In, Out]) op(name string) operation {
	action := "kms:" + name
	return operation{name: name, call: func(ctx context.Context, api kms.API, body []byte, check authorizer, dst []byte) (opResult, error) {
		in := new(In)
		var res opResult
		if len(body) > 0 && (s.decode == nil || !s.decode(body, in)) {
			*in = *new(In) // whatever the fast decoder had set
			if err := json.Unmarshal(body, in); err != nil {
				return res, &kms.Error{Code: "SerializationException", Message: "the request body is not valid JSON for " + name + ": " + jsonErrorText(err)}
			}
			if err := checkMemberNames(body, in); err != nil {
				return res, err
			}
		}
		if s.ec != nil {
			if ec := s.ec(in); len(ec) > 0 {
				keys := make([]string, 0, len(ec))
				for k := range ec {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				res.audit.ecKeys = keys
			}
		}
		if s.keyRef != nil {
			res.audit.keyARN = s.keyRef(in)
		}
		var acts []actionOn
		switch {
		case s.checks != nil:
			acts = s.checks(in)
		case s.keyRef == nil:
			acts = []actionOn{{action: action}}
		}
		if check != nil {
			for _, a := range acts {
				if err := check(a.action, a.alias); err != nil {
					return res, err
				}
			}
		}
		out, err := s.fn(api)(ctx, in)
		if err != nil {
			return res, err
		}
		if s.outKey != nil {
			res.audit.keyARN = s.outKey(out)
		}
		if s.encode != nil {
			res.body = s.encode(dst, out)
		} else {
			b, err := json.Marshal(out)
			if err != nil {
				return res, errEncode
			}
			res.body = append(dst, b...)
		}
		return res, nil
	}}
}

// memberNames caches, per input type, its JSON member names by their lower
// case.
var memberNames sync.Map // reflect.Type → map[string]string

// checkMemberNames refuses members whose names match a field only when case
// is ignored: encoding/json would take {"keyid": …} for KeyId, where AWS
// matches member names exactly.
func checkMemberNames(body []byte, in any) error {
	t := reflect.TypeOf(in).Elem()
	v, ok := memberNames.Load(t)
	if !ok {
		m := map[string]string{}
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name == "" {
				name = t.Field(i).Name
			}
			m[strings.ToLower(name)] = name
		}
		v, _ = memberNames.LoadOrStore(t, m)
	}
	names := v.(map[string]string)
	for _, k := range topLevelKeys(body) {
		if exact, ok := names[strings.ToLower(k)]; ok && exact != k {
			return &kms.Error{Code: kms.CodeValidation, Message: fmt.Sprintf("unknown member %q: member names are case-sensitive (did you mean %s?)", k, exact)}
		}
	}
	return nil
}

// topLevelKeys returns the member names of a JSON object without decoding
// its values (the body is already known to be valid JSON), unescaped as
// encoding/json reads them.
func topLevelKeys(b []byte) []string {
	var keys []string
	depth := 0
	expectKey := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{':
			depth++
			expectKey = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		case '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if expectKey && depth == 1 && j <= len(b) {
				raw := b[i+1 : min(j, len(b))]
				name := string(raw)
				if bytes.IndexByte(raw, '\\') >= 0 {
					// "\u006beyId" is the member keyId to encoding/json.
					if json.Unmarshal(b[i:min(j+1, len(b))], &name) != nil {
						name = string(raw)
					}
				}
				keys = append(keys, name)
			}
			expectKey = false
			i = j
		}
	}
	return keys
}

// jsonErrorText keeps decode errors short and free of request content.
func jsonErrorText(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return "field " + e.Field + " has the wrong type"
	case *json.SyntaxError:
		return "syntax error"
	}
	return "cannot decode"
}

// operations is the explicit dispatch table, X-Amz-Target "TrentService."
// + name → operation. Nothing else is reachable.
var operations = func() map[string]operation {
	ops := []operation{
		spec[kms.CreateKeyInput, kms.CreateKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.CreateKeyInput) (*kms.CreateKeyOutput, error) {
			return a.CreateKey
		},
			outKey: func(o *kms.CreateKeyOutput) string { return o.KeyMetadata.Arn }}.op("CreateKey"),
		spec[kms.DescribeKeyInput, kms.DescribeKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.DescribeKeyInput) (*kms.DescribeKeyOutput, error) {
			return a.DescribeKey
		},
			keyRef: func(in *kms.DescribeKeyInput) string { return in.KeyId },
			outKey: func(o *kms.DescribeKeyOutput) string { return o.KeyMetadata.Arn }}.op("DescribeKey"),
		spec[kms.ListKeysInput, kms.ListKeysOutput]{fn: func(a kms.API) func(context.Context, *kms.ListKeysInput) (*kms.ListKeysOutput, error) {
			return a.ListKeys
		}}.op("ListKeys"),
		spec[kms.UpdateKeyDescriptionInput, kms.UpdateKeyDescriptionOutput]{fn: func(a kms.API) func(context.Context, *kms.UpdateKeyDescriptionInput) (*kms.UpdateKeyDescriptionOutput, error) {
			return a.UpdateKeyDescription
		}, keyRef: func(in *kms.UpdateKeyDescriptionInput) string { return in.KeyId }}.op("UpdateKeyDescription"),
		spec[kms.EnableKeyInput, kms.EnableKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.EnableKeyInput) (*kms.EnableKeyOutput, error) {
			return a.EnableKey
		},
			keyRef: func(in *kms.EnableKeyInput) string { return in.KeyId }}.op("EnableKey"),
		spec[kms.DisableKeyInput, kms.DisableKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.DisableKeyInput) (*kms.DisableKeyOutput, error) {
			return a.DisableKey
		},
			keyRef: func(in *kms.DisableKeyInput) string { return in.KeyId }}.op("DisableKey"),
		spec[kms.ScheduleKeyDeletionInput, kms.ScheduleKeyDeletionOutput]{fn: func(a kms.API) func(context.Context, *kms.ScheduleKeyDeletionInput) (*kms.ScheduleKeyDeletionOutput, error) {
			return a.ScheduleKeyDeletion
		}, keyRef: func(in *kms.ScheduleKeyDeletionInput) string { return in.KeyId },
			outKey: func(o *kms.ScheduleKeyDeletionOutput) string { return o.KeyId }}.op("ScheduleKeyDeletion"),
		spec[kms.CancelKeyDeletionInput, kms.CancelKeyDeletionOutput]{fn: func(a kms.API) func(context.Context, *kms.CancelKeyDeletionInput) (*kms.CancelKeyDeletionOutput, error) {
			return a.CancelKeyDeletion
		}, keyRef: func(in *kms.CancelKeyDeletionInput) string { return in.KeyId },
			outKey: func(o *kms.CancelKeyDeletionOutput) string { return o.KeyId }}.op("CancelKeyDeletion"),

		spec[kms.CreateAliasInput, kms.CreateAliasOutput]{fn: func(a kms.API) func(context.Context, *kms.CreateAliasInput) (*kms.CreateAliasOutput, error) {
			return a.CreateAlias
		},
			keyRef: func(in *kms.CreateAliasInput) string { return in.TargetKeyId },
			checks: func(in *kms.CreateAliasInput) []actionOn { return []actionOn{{"kms:CreateAlias", in.AliasName}} }}.op("CreateAlias"),
		spec[kms.UpdateAliasInput, kms.UpdateAliasOutput]{fn: func(a kms.API) func(context.Context, *kms.UpdateAliasInput) (*kms.UpdateAliasOutput, error) {
			return a.UpdateAlias
		},
			keyRef: func(in *kms.UpdateAliasInput) string { return in.TargetKeyId },
			checks: func(in *kms.UpdateAliasInput) []actionOn { return []actionOn{{"kms:UpdateAlias", in.AliasName}} }}.op("UpdateAlias"),
		spec[kms.DeleteAliasInput, kms.DeleteAliasOutput]{fn: func(a kms.API) func(context.Context, *kms.DeleteAliasInput) (*kms.DeleteAliasOutput, error) {
			return a.DeleteAlias
		},
			keyRef: func(in *kms.DeleteAliasInput) string { return in.AliasName },
			checks: func(in *kms.DeleteAliasInput) []actionOn { return []actionOn{{"kms:DeleteAlias", in.AliasName}} }}.op("DeleteAlias"),
		spec[kms.ListAliasesInput, kms.ListAliasesOutput]{fn: func(a kms.API) func(context.Context, *kms.ListAliasesInput) (*kms.ListAliasesOutput, error) {
			return a.ListAliases
		},
			keyRef: func(in *kms.ListAliasesInput) string { return in.KeyId },
			checks: func(in *kms.ListAliasesInput) []actionOn {
				if in.KeyId == "" {
					return []actionOn{{action: "kms:ListAliases"}} // on no key
				}
				return nil
			}}.op("ListAliases"),

		spec[kms.TagResourceInput, kms.TagResourceOutput]{fn: func(a kms.API) func(context.Context, *kms.TagResourceInput) (*kms.TagResourceOutput, error) {
			return a.TagResource
		},
			keyRef: func(in *kms.TagResourceInput) string { return in.KeyId }}.op("TagResource"),
		spec[kms.UntagResourceInput, kms.UntagResourceOutput]{fn: func(a kms.API) func(context.Context, *kms.UntagResourceInput) (*kms.UntagResourceOutput, error) {
			return a.UntagResource
		},
			keyRef: func(in *kms.UntagResourceInput) string { return in.KeyId }}.op("UntagResource"),
		spec[kms.ListResourceTagsInput, kms.ListResourceTagsOutput]{fn: func(a kms.API) func(context.Context, *kms.ListResourceTagsInput) (*kms.ListResourceTagsOutput, error) {
			return a.ListResourceTags
		}, keyRef: func(in *kms.ListResourceTagsInput) string { return in.KeyId }}.op("ListResourceTags"),

		spec[kms.EnableKeyRotationInput, kms.EnableKeyRotationOutput]{fn: func(a kms.API) func(context.Context, *kms.EnableKeyRotationInput) (*kms.EnableKeyRotationOutput, error) {
			return a.EnableKeyRotation
		}, keyRef: func(in *kms.EnableKeyRotationInput) string { return in.KeyId }}.op("EnableKeyRotation"),
		spec[kms.DisableKeyRotationInput, kms.DisableKeyRotationOutput]{fn: func(a kms.API) func(context.Context, *kms.DisableKeyRotationInput) (*kms.DisableKeyRotationOutput, error) {
			return a.DisableKeyRotation
		}, keyRef: func(in *kms.DisableKeyRotationInput) string { return in.KeyId }}.op("DisableKeyRotation"),
		spec[kms.GetKeyRotationStatusInput, kms.GetKeyRotationStatusOutput]{fn: func(a kms.API) func(context.Context, *kms.GetKeyRotationStatusInput) (*kms.GetKeyRotationStatusOutput, error) {
			return a.GetKeyRotationStatus
		}, keyRef: func(in *kms.GetKeyRotationStatusInput) string { return in.KeyId },
			outKey: func(o *kms.GetKeyRotationStatusOutput) string { return o.KeyId }}.op("GetKeyRotationStatus"),
		spec[kms.RotateKeyOnDemandInput, kms.RotateKeyOnDemandOutput]{fn: func(a kms.API) func(context.Context, *kms.RotateKeyOnDemandInput) (*kms.RotateKeyOnDemandOutput, error) {
			return a.RotateKeyOnDemand
		}, keyRef: func(in *kms.RotateKeyOnDemandInput) string { return in.KeyId },
			outKey: func(o *kms.RotateKeyOnDemandOutput) string { return o.KeyId }}.op("RotateKeyOnDemand"),
		spec[kms.ListKeyRotationsInput, kms.ListKeyRotationsOutput]{fn: func(a kms.API) func(context.Context, *kms.ListKeyRotationsInput) (*kms.ListKeyRotationsOutput, error) {
			return a.ListKeyRotations
		}, keyRef: func(in *kms.ListKeyRotationsInput) string { return in.KeyId }}.op("ListKeyRotations"),

		spec[kms.EncryptInput, kms.EncryptOutput]{fn: func(a kms.API) func(context.Context, *kms.EncryptInput) (*kms.EncryptOutput, error) { return a.Encrypt },
			keyRef: func(in *kms.EncryptInput) string { return in.KeyId },
			ec:     func(in *kms.EncryptInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.EncryptOutput) string { return o.KeyId },
			decode: decodeEncrypt, encode: encodeEncrypt}.op("Encrypt"),
		spec[kms.DecryptInput, kms.DecryptOutput]{fn: func(a kms.API) func(context.Context, *kms.DecryptInput) (*kms.DecryptOutput, error) { return a.Decrypt },
			keyRef: func(in *kms.DecryptInput) string { return in.KeyId },
			ec:     func(in *kms.DecryptInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.DecryptOutput) string { return o.KeyId },
			decode: decodeDecrypt, encode: encodeDecrypt}.op("Decrypt"),
		spec[kms.ReEncryptInput, kms.ReEncryptOutput]{fn: func(a kms.API) func(context.Context, *kms.ReEncryptInput) (*kms.ReEncryptOutput, error) {
			return a.ReEncrypt
		},
			keyRef: func(in *kms.ReEncryptInput) string { return in.SourceKeyId },
			ec:     func(in *kms.ReEncryptInput) map[string]string { return in.DestinationEncryptionContext },
			outKey: func(o *kms.ReEncryptOutput) string { return o.KeyId }}.op("ReEncrypt"),
		spec[kms.GenerateDataKeyInput, kms.GenerateDataKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error) {
			return a.GenerateDataKey
		}, keyRef: func(in *kms.GenerateDataKeyInput) string { return in.KeyId },
			ec:     func(in *kms.GenerateDataKeyInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.GenerateDataKeyOutput) string { return o.KeyId },
			decode: decodeGenerateDataKey, encode: encodeGenerateDataKey}.op("GenerateDataKey"),
		spec[kms.GenerateDataKeyWithoutPlaintextInput, kms.GenerateDataKeyWithoutPlaintextOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateDataKeyWithoutPlaintextInput) (*kms.GenerateDataKeyWithoutPlaintextOutput, error) {
			return a.GenerateDataKeyWithoutPlaintext
		}, keyRef: func(in *kms.GenerateDataKeyWithoutPlaintextInput) string { return in.KeyId },
			ec:     func(in *kms.GenerateDataKeyWithoutPlaintextInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.GenerateDataKeyWithoutPlaintextOutput) string { return o.KeyId }}.op("GenerateDataKeyWithoutPlaintext"),
		spec[kms.GenerateDataKeyPairInput, kms.GenerateDataKeyPairOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateDataKeyPairInput) (*kms.GenerateDataKeyPairOutput, error) {
			return a.GenerateDataKeyPair
		}, keyRef: func(in *kms.GenerateDataKeyPairInput) string { return in.KeyId },
			ec:     func(in *kms.GenerateDataKeyPairInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.GenerateDataKeyPairOutput) string { return o.KeyId }}.op("GenerateDataKeyPair"),
		spec[kms.GenerateDataKeyPairWithoutPlaintextInput, kms.GenerateDataKeyPairWithoutPlaintextOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateDataKeyPairWithoutPlaintextInput) (*kms.GenerateDataKeyPairWithoutPlaintextOutput, error) {
			return a.GenerateDataKeyPairWithoutPlaintext
		}, keyRef: func(in *kms.GenerateDataKeyPairWithoutPlaintextInput) string { return in.KeyId },
			ec:     func(in *kms.GenerateDataKeyPairWithoutPlaintextInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.GenerateDataKeyPairWithoutPlaintextOutput) string { return o.KeyId }}.op("GenerateDataKeyPairWithoutPlaintext"),
		spec[kms.GenerateRandomInput, kms.GenerateRandomOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateRandomInput) (*kms.GenerateRandomOutput, error) {
			return a.GenerateRandom
		}}.op("GenerateRandom"),
		spec[kms.GetPublicKeyInput, kms.GetPublicKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
			return a.GetPublicKey
		},
			keyRef: func(in *kms.GetPublicKeyInput) string { return in.KeyId },
			outKey: func(o *kms.GetPublicKeyOutput) string { return o.KeyId }}.op("GetPublicKey"),

		spec[kms.GetKeyPolicyInput, kms.GetKeyPolicyOutput]{fn: func(a kms.API) func(context.Context, *kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error) {
			return a.GetKeyPolicy
		},
			keyRef: func(in *kms.GetKeyPolicyInput) string { return in.KeyId }}.op("GetKeyPolicy"),
		spec[kms.PutKeyPolicyInput, kms.PutKeyPolicyOutput]{fn: func(a kms.API) func(context.Context, *kms.PutKeyPolicyInput) (*kms.PutKeyPolicyOutput, error) {
			return a.PutKeyPolicy
		},
			keyRef: func(in *kms.PutKeyPolicyInput) string { return in.KeyId }}.op("PutKeyPolicy"),
		spec[kms.ListKeyPoliciesInput, kms.ListKeyPoliciesOutput]{fn: func(a kms.API) func(context.Context, *kms.ListKeyPoliciesInput) (*kms.ListKeyPoliciesOutput, error) {
			return a.ListKeyPolicies
		}, keyRef: func(in *kms.ListKeyPoliciesInput) string { return in.KeyId }}.op("ListKeyPolicies"),
	}
	m := make(map[string]operation, len(ops))
	for i, o := range ops {
		o.index = i + 1
		m[o.name] = o
	}
	return m
}()

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

// authorizer checks that the caller may perform action on the key a
// request names ("" for operations on no key; a ciphertext for Decrypt
// and ReEncrypt without a key).
type authorizer func(action string, ref resourceRef) error

// resourceRef is what a request acts on: a key (named by id, ARN, alias
// name or alias ARN, or found inside a ciphertext), or an alias itself
// (CreateAlias, UpdateAlias and DeleteAlias need permission on the alias
// and, separately, on the keys involved).
type resourceRef struct {
	keyID      string // as given: key id, ARN, alias name or alias ARN
	ciphertext []byte // when the key comes from a ciphertext
	alias      string // an alias as a resource of its own
}

// auditInfo is what the audit log records of a request besides who and
// when.
type auditInfo struct {
	keyARN string
	ecKeys []string
}

// spec describes an operation generically: its input type, the key it
// acts on, its encryption context, and the key ARN its output reports.
type spec[In, Out any] struct {
	fn      func(kms.API) func(context.Context, *In) (*Out, error)
	actions func(*In) []actionOn
	ec      func(*In) map[string]string
	outKey  func(*Out) string
	// decode, when set, decodes the common shapes of the input faster
	// than encoding/json, to the same result; it returns false for
	// anything else, which encoding/json then decodes.
	decode func(body []byte, in *In) bool
	// encode, when set, appends the output's JSON exactly as
	// encoding/json would.
	encode func(dst []byte, out *Out) []byte
}

// actionOn pairs an action with the resource it needs permission on.
type actionOn struct {
	action string
	ref    resourceRef
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
		var acts []actionOn
		if s.actions != nil {
			acts = s.actions(in)
		} else {
			acts = []actionOn{{action: action}}
		}
		if check != nil {
			for _, a := range acts {
				if err := check(a.action, a.ref); err != nil {
					if res.audit.keyARN == "" {
						res.audit.keyARN = a.ref.keyID
					}
					return res, err
				}
			}
		}
		out, err := s.fn(api)(ctx, in)
		if err != nil {
			if len(acts) > 0 {
				res.audit.keyARN = acts[0].ref.keyID
			}
			return res, err
		}
		if s.outKey != nil {
			res.audit.keyARN = s.outKey(out)
		} else if len(acts) > 0 {
			res.audit.keyARN = acts[0].ref.keyID
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

func key(action, id string) []actionOn {
	return []actionOn{{action: action, ref: resourceRef{keyID: id}}}
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
			actions: func(in *kms.DescribeKeyInput) []actionOn { return key("kms:DescribeKey", in.KeyId) },
			outKey:  func(o *kms.DescribeKeyOutput) string { return o.KeyMetadata.Arn }}.op("DescribeKey"),
		spec[kms.ListKeysInput, kms.ListKeysOutput]{fn: func(a kms.API) func(context.Context, *kms.ListKeysInput) (*kms.ListKeysOutput, error) {
			return a.ListKeys
		}}.op("ListKeys"),
		spec[kms.UpdateKeyDescriptionInput, kms.UpdateKeyDescriptionOutput]{fn: func(a kms.API) func(context.Context, *kms.UpdateKeyDescriptionInput) (*kms.UpdateKeyDescriptionOutput, error) {
			return a.UpdateKeyDescription
		}, actions: func(in *kms.UpdateKeyDescriptionInput) []actionOn { return key("kms:UpdateKeyDescription", in.KeyId) }}.op("UpdateKeyDescription"),
		spec[kms.EnableKeyInput, kms.EnableKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.EnableKeyInput) (*kms.EnableKeyOutput, error) {
			return a.EnableKey
		},
			actions: func(in *kms.EnableKeyInput) []actionOn { return key("kms:EnableKey", in.KeyId) }}.op("EnableKey"),
		spec[kms.DisableKeyInput, kms.DisableKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.DisableKeyInput) (*kms.DisableKeyOutput, error) {
			return a.DisableKey
		},
			actions: func(in *kms.DisableKeyInput) []actionOn { return key("kms:DisableKey", in.KeyId) }}.op("DisableKey"),
		spec[kms.ScheduleKeyDeletionInput, kms.ScheduleKeyDeletionOutput]{fn: func(a kms.API) func(context.Context, *kms.ScheduleKeyDeletionInput) (*kms.ScheduleKeyDeletionOutput, error) {
			return a.ScheduleKeyDeletion
		}, actions: func(in *kms.ScheduleKeyDeletionInput) []actionOn { return key("kms:ScheduleKeyDeletion", in.KeyId) },
			outKey: func(o *kms.ScheduleKeyDeletionOutput) string { return o.KeyId }}.op("ScheduleKeyDeletion"),
		spec[kms.CancelKeyDeletionInput, kms.CancelKeyDeletionOutput]{fn: func(a kms.API) func(context.Context, *kms.CancelKeyDeletionInput) (*kms.CancelKeyDeletionOutput, error) {
			return a.CancelKeyDeletion
		}, actions: func(in *kms.CancelKeyDeletionInput) []actionOn { return key("kms:CancelKeyDeletion", in.KeyId) },
			outKey: func(o *kms.CancelKeyDeletionOutput) string { return o.KeyId }}.op("CancelKeyDeletion"),

		spec[kms.CreateAliasInput, kms.CreateAliasOutput]{fn: func(a kms.API) func(context.Context, *kms.CreateAliasInput) (*kms.CreateAliasOutput, error) {
			return a.CreateAlias
		},
			actions: func(in *kms.CreateAliasInput) []actionOn {
				return []actionOn{{"kms:CreateAlias", resourceRef{alias: in.AliasName}},
					{"kms:CreateAlias", resourceRef{keyID: in.TargetKeyId}}}
			}}.op("CreateAlias"),
		spec[kms.UpdateAliasInput, kms.UpdateAliasOutput]{fn: func(a kms.API) func(context.Context, *kms.UpdateAliasInput) (*kms.UpdateAliasOutput, error) {
			return a.UpdateAlias
		},
			actions: func(in *kms.UpdateAliasInput) []actionOn {
				return []actionOn{{"kms:UpdateAlias", resourceRef{alias: in.AliasName}},
					{"kms:UpdateAlias", resourceRef{keyID: in.TargetKeyId}},
					{"kms:UpdateAlias", resourceRef{keyID: in.AliasName}}} // the key it points to now
			}}.op("UpdateAlias"),
		spec[kms.DeleteAliasInput, kms.DeleteAliasOutput]{fn: func(a kms.API) func(context.Context, *kms.DeleteAliasInput) (*kms.DeleteAliasOutput, error) {
			return a.DeleteAlias
		},
			actions: func(in *kms.DeleteAliasInput) []actionOn {
				return []actionOn{{"kms:DeleteAlias", resourceRef{alias: in.AliasName}},
					{"kms:DeleteAlias", resourceRef{keyID: in.AliasName}}}
			}}.op("DeleteAlias"),
		spec[kms.ListAliasesInput, kms.ListAliasesOutput]{fn: func(a kms.API) func(context.Context, *kms.ListAliasesInput) (*kms.ListAliasesOutput, error) {
			return a.ListAliases
		},
			actions: func(in *kms.ListAliasesInput) []actionOn { return key("kms:ListAliases", in.KeyId) }}.op("ListAliases"),

		spec[kms.TagResourceInput, kms.TagResourceOutput]{fn: func(a kms.API) func(context.Context, *kms.TagResourceInput) (*kms.TagResourceOutput, error) {
			return a.TagResource
		},
			actions: func(in *kms.TagResourceInput) []actionOn { return key("kms:TagResource", in.KeyId) }}.op("TagResource"),
		spec[kms.UntagResourceInput, kms.UntagResourceOutput]{fn: func(a kms.API) func(context.Context, *kms.UntagResourceInput) (*kms.UntagResourceOutput, error) {
			return a.UntagResource
		},
			actions: func(in *kms.UntagResourceInput) []actionOn { return key("kms:UntagResource", in.KeyId) }}.op("UntagResource"),
		spec[kms.ListResourceTagsInput, kms.ListResourceTagsOutput]{fn: func(a kms.API) func(context.Context, *kms.ListResourceTagsInput) (*kms.ListResourceTagsOutput, error) {
			return a.ListResourceTags
		}, actions: func(in *kms.ListResourceTagsInput) []actionOn { return key("kms:ListResourceTags", in.KeyId) }}.op("ListResourceTags"),

		spec[kms.EnableKeyRotationInput, kms.EnableKeyRotationOutput]{fn: func(a kms.API) func(context.Context, *kms.EnableKeyRotationInput) (*kms.EnableKeyRotationOutput, error) {
			return a.EnableKeyRotation
		}, actions: func(in *kms.EnableKeyRotationInput) []actionOn { return key("kms:EnableKeyRotation", in.KeyId) }}.op("EnableKeyRotation"),
		spec[kms.DisableKeyRotationInput, kms.DisableKeyRotationOutput]{fn: func(a kms.API) func(context.Context, *kms.DisableKeyRotationInput) (*kms.DisableKeyRotationOutput, error) {
			return a.DisableKeyRotation
		}, actions: func(in *kms.DisableKeyRotationInput) []actionOn { return key("kms:DisableKeyRotation", in.KeyId) }}.op("DisableKeyRotation"),
		spec[kms.GetKeyRotationStatusInput, kms.GetKeyRotationStatusOutput]{fn: func(a kms.API) func(context.Context, *kms.GetKeyRotationStatusInput) (*kms.GetKeyRotationStatusOutput, error) {
			return a.GetKeyRotationStatus
		}, actions: func(in *kms.GetKeyRotationStatusInput) []actionOn { return key("kms:GetKeyRotationStatus", in.KeyId) },
			outKey: func(o *kms.GetKeyRotationStatusOutput) string { return o.KeyId }}.op("GetKeyRotationStatus"),
		spec[kms.RotateKeyOnDemandInput, kms.RotateKeyOnDemandOutput]{fn: func(a kms.API) func(context.Context, *kms.RotateKeyOnDemandInput) (*kms.RotateKeyOnDemandOutput, error) {
			return a.RotateKeyOnDemand
		}, actions: func(in *kms.RotateKeyOnDemandInput) []actionOn { return key("kms:RotateKeyOnDemand", in.KeyId) },
			outKey: func(o *kms.RotateKeyOnDemandOutput) string { return o.KeyId }}.op("RotateKeyOnDemand"),
		spec[kms.ListKeyRotationsInput, kms.ListKeyRotationsOutput]{fn: func(a kms.API) func(context.Context, *kms.ListKeyRotationsInput) (*kms.ListKeyRotationsOutput, error) {
			return a.ListKeyRotations
		}, actions: func(in *kms.ListKeyRotationsInput) []actionOn { return key("kms:ListKeyRotations", in.KeyId) }}.op("ListKeyRotations"),

		spec[kms.EncryptInput, kms.EncryptOutput]{fn: func(a kms.API) func(context.Context, *kms.EncryptInput) (*kms.EncryptOutput, error) { return a.Encrypt },
			actions: func(in *kms.EncryptInput) []actionOn { return key("kms:Encrypt", in.KeyId) },
			ec:      func(in *kms.EncryptInput) map[string]string { return in.EncryptionContext },
			outKey:  func(o *kms.EncryptOutput) string { return o.KeyId },
			decode:  decodeEncrypt, encode: encodeEncrypt}.op("Encrypt"),
		spec[kms.DecryptInput, kms.DecryptOutput]{fn: func(a kms.API) func(context.Context, *kms.DecryptInput) (*kms.DecryptOutput, error) { return a.Decrypt },
			actions: func(in *kms.DecryptInput) []actionOn {
				return []actionOn{{"kms:Decrypt", resourceRef{keyID: in.KeyId, ciphertext: in.CiphertextBlob}}}
			},
			ec:     func(in *kms.DecryptInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.DecryptOutput) string { return o.KeyId },
			decode: decodeDecrypt, encode: encodeDecrypt}.op("Decrypt"),
		spec[kms.ReEncryptInput, kms.ReEncryptOutput]{fn: func(a kms.API) func(context.Context, *kms.ReEncryptInput) (*kms.ReEncryptOutput, error) {
			return a.ReEncrypt
		},
			actions: func(in *kms.ReEncryptInput) []actionOn {
				return []actionOn{{"kms:ReEncryptFrom", resourceRef{keyID: in.SourceKeyId, ciphertext: in.CiphertextBlob}},
					{"kms:ReEncryptTo", resourceRef{keyID: in.DestinationKeyId}}}
			},
			ec:     func(in *kms.ReEncryptInput) map[string]string { return in.DestinationEncryptionContext },
			outKey: func(o *kms.ReEncryptOutput) string { return o.KeyId }}.op("ReEncrypt"),
		spec[kms.GenerateDataKeyInput, kms.GenerateDataKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error) {
			return a.GenerateDataKey
		}, actions: func(in *kms.GenerateDataKeyInput) []actionOn { return key("kms:GenerateDataKey", in.KeyId) },
			ec:     func(in *kms.GenerateDataKeyInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.GenerateDataKeyOutput) string { return o.KeyId },
			decode: decodeGenerateDataKey, encode: encodeGenerateDataKey}.op("GenerateDataKey"),
		spec[kms.GenerateDataKeyWithoutPlaintextInput, kms.GenerateDataKeyWithoutPlaintextOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateDataKeyWithoutPlaintextInput) (*kms.GenerateDataKeyWithoutPlaintextOutput, error) {
			return a.GenerateDataKeyWithoutPlaintext
		}, actions: func(in *kms.GenerateDataKeyWithoutPlaintextInput) []actionOn {
			return key("kms:GenerateDataKeyWithoutPlaintext", in.KeyId)
		},
			ec:     func(in *kms.GenerateDataKeyWithoutPlaintextInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.GenerateDataKeyWithoutPlaintextOutput) string { return o.KeyId }}.op("GenerateDataKeyWithoutPlaintext"),
		spec[kms.GenerateDataKeyPairInput, kms.GenerateDataKeyPairOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateDataKeyPairInput) (*kms.GenerateDataKeyPairOutput, error) {
			return a.GenerateDataKeyPair
		}, actions: func(in *kms.GenerateDataKeyPairInput) []actionOn { return key("kms:GenerateDataKeyPair", in.KeyId) },
			ec:     func(in *kms.GenerateDataKeyPairInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.GenerateDataKeyPairOutput) string { return o.KeyId }}.op("GenerateDataKeyPair"),
		spec[kms.GenerateDataKeyPairWithoutPlaintextInput, kms.GenerateDataKeyPairWithoutPlaintextOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateDataKeyPairWithoutPlaintextInput) (*kms.GenerateDataKeyPairWithoutPlaintextOutput, error) {
			return a.GenerateDataKeyPairWithoutPlaintext
		}, actions: func(in *kms.GenerateDataKeyPairWithoutPlaintextInput) []actionOn {
			return key("kms:GenerateDataKeyPairWithoutPlaintext", in.KeyId)
		},
			ec:     func(in *kms.GenerateDataKeyPairWithoutPlaintextInput) map[string]string { return in.EncryptionContext },
			outKey: func(o *kms.GenerateDataKeyPairWithoutPlaintextOutput) string { return o.KeyId }}.op("GenerateDataKeyPairWithoutPlaintext"),
		spec[kms.GenerateRandomInput, kms.GenerateRandomOutput]{fn: func(a kms.API) func(context.Context, *kms.GenerateRandomInput) (*kms.GenerateRandomOutput, error) {
			return a.GenerateRandom
		}}.op("GenerateRandom"),
		spec[kms.GetPublicKeyInput, kms.GetPublicKeyOutput]{fn: func(a kms.API) func(context.Context, *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
			return a.GetPublicKey
		},
			actions: func(in *kms.GetPublicKeyInput) []actionOn { return key("kms:GetPublicKey", in.KeyId) },
			outKey:  func(o *kms.GetPublicKeyOutput) string { return o.KeyId }}.op("GetPublicKey"),

		spec[kms.GetKeyPolicyInput, kms.GetKeyPolicyOutput]{fn: func(a kms.API) func(context.Context, *kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error) {
			return a.GetKeyPolicy
		},
			actions: func(in *kms.GetKeyPolicyInput) []actionOn { return key("kms:GetKeyPolicy", in.KeyId) }}.op("GetKeyPolicy"),
		spec[kms.PutKeyPolicyInput, kms.PutKeyPolicyOutput]{fn: func(a kms.API) func(context.Context, *kms.PutKeyPolicyInput) (*kms.PutKeyPolicyOutput, error) {
			return a.PutKeyPolicy
		},
			actions: func(in *kms.PutKeyPolicyInput) []actionOn { return key("kms:PutKeyPolicy", in.KeyId) }}.op("PutKeyPolicy"),
		spec[kms.ListKeyPoliciesInput, kms.ListKeyPoliciesOutput]{fn: func(a kms.API) func(context.Context, *kms.ListKeyPoliciesInput) (*kms.ListKeyPoliciesOutput, error) {
			return a.ListKeyPolicies
		}, actions: func(in *kms.ListKeyPoliciesInput) []actionOn { return key("kms:ListKeyPolicies", in.KeyId) }}.op("ListKeyPolicies"),
	}
	m := make(map[string]operation, len(ops))
	for i, o := range ops {
		o.index = i + 1
		m[o.name] = o
	}
	return m
}()

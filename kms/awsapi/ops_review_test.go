package awsapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestOperationFacts reviews, through the API, what each operation's
// entry in the table declares: what the server authorizes itself (the
// alias an operation changes, "*" for an operation on no key) and what it
// leaves to the KMS (the key the request names), and what the audit log
// records (the key as the request names it, the key ARN the answer
// reports, the encryption context's keys). A principal without grants
// sends every operation naming keys and aliases that do not exist, each
// by a member-named alias, so that the refusal and the audit line show
// which member each fact reads; root then runs the operations whose
// answers name another key than the one the request resolves first.
func TestOperationFacts(t *testing.T) {
	nobody := aws.Credentials{AccessKeyID: "AKIDNOBODY0000000001", SecretAccessKey: "nobodysecret"}
	e := newTestEnv(t, func(c *Config) {
		c.Principals = []*Principal{{Name: "nobody", AccessKeyID: nobody.AccessKeyID, SecretAccessKey: nobody.SecretAccessKey}}
	})
	app := e.createKey("alias/app")
	other := e.createKey("alias/other")
	blob := `"` + base64.StdEncoding.EncodeToString(e.encrypt(app, "x")) + `"`
	const ec = `"EncryptionContext":{"EncryptionContext":"v"}`
	type row struct {
		op, body string
		// on is the resource the refusal names; keyARN and ecKeys what
		// the audit line records.
		on, keyARN string
		ecKeys     []string
	}
	star := "resource *"
	for _, r := range []row{
		{"CreateKey", `{}`, star, "", nil},
		{"DescribeKey", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"ListKeys", `{}`, star, "", nil},
		{"UpdateKeyDescription", `{"KeyId":"alias/KeyId","Description":"d"}`, "alias/KeyId", "alias/KeyId", nil},
		{"EnableKey", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"DisableKey", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"ScheduleKeyDeletion", `{"KeyId":"alias/KeyId","PendingWindowInDays":7}`, "alias/KeyId", "alias/KeyId", nil},
		{"CancelKeyDeletion", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"CreateAlias", `{"AliasName":"alias/AliasName","TargetKeyId":"alias/TargetKeyId"}`, "alias/AliasName", "alias/TargetKeyId", nil},
		{"UpdateAlias", `{"AliasName":"alias/AliasName","TargetKeyId":"alias/TargetKeyId"}`, "alias/AliasName", "alias/TargetKeyId", nil},
		{"DeleteAlias", `{"AliasName":"alias/AliasName"}`, "alias/AliasName", "alias/AliasName", nil},
		{"ListAliases", `{}`, star, "", nil},
		{"ListAliases", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"TagResource", `{"KeyId":"alias/KeyId","Tags":[{"TagKey":"a","TagValue":"b"}]}`, "alias/KeyId", "alias/KeyId", nil},
		{"UntagResource", `{"KeyId":"alias/KeyId","TagKeys":["a"]}`, "alias/KeyId", "alias/KeyId", nil},
		{"ListResourceTags", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"EnableKeyRotation", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"DisableKeyRotation", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"GetKeyRotationStatus", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"RotateKeyOnDemand", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"ListKeyRotations", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"Encrypt", `{"KeyId":"alias/KeyId","Plaintext":"eA==",` + ec + `}`, "alias/KeyId", "alias/KeyId", []string{"EncryptionContext"}},
		{"Decrypt", `{"CiphertextBlob":` + blob + `,"KeyId":"alias/KeyId",` + ec + `}`, "alias/KeyId", "alias/KeyId", []string{"EncryptionContext"}},
		{"Decrypt", `{"CiphertextBlob":` + blob + `,` + ec + `}`, app, e.ks.KeyARN(app), []string{"EncryptionContext"}},
		{"ReEncrypt", `{"CiphertextBlob":` + blob + `,"SourceKeyId":"alias/SourceKeyId","DestinationKeyId":"alias/DestinationKeyId",` +
			`"SourceEncryptionContext":{"SourceEncryptionContext":"v"},"DestinationEncryptionContext":{"DestinationEncryptionContext":"v"}}`,
			"alias/SourceKeyId", "alias/SourceKeyId", []string{"DestinationEncryptionContext"}},
		{"GenerateDataKey", `{"KeyId":"alias/KeyId","NumberOfBytes":32,` + ec + `}`, "alias/KeyId", "alias/KeyId", []string{"EncryptionContext"}},
		{"GenerateDataKeyWithoutPlaintext", `{"KeyId":"alias/KeyId","KeySpec":"AES_256",` + ec + `}`, "alias/KeyId", "alias/KeyId", []string{"EncryptionContext"}},
		{"GenerateDataKeyPair", `{"KeyId":"alias/KeyId","KeyPairSpec":"ECC_NIST_P256",` + ec + `}`, "alias/KeyId", "alias/KeyId", []string{"EncryptionContext"}},
		{"GenerateDataKeyPairWithoutPlaintext", `{"KeyId":"alias/KeyId","KeyPairSpec":"ECC_NIST_P256",` + ec + `}`, "alias/KeyId", "alias/KeyId", []string{"EncryptionContext"}},
		{"GenerateRandom", `{"NumberOfBytes":16}`, star, "", nil},
		{"GetPublicKey", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"GetKeyPolicy", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
		{"PutKeyPolicy", `{"KeyId":"alias/KeyId","Policy":"{}"}`, "alias/KeyId", "alias/KeyId", nil},
		{"ListKeyPolicies", `{"KeyId":"alias/KeyId"}`, "alias/KeyId", "alias/KeyId", nil},
	} {
		t.Run(r.op, func(t *testing.T) {
			resp := e.call(r.op, r.body, signOpts{creds: &nobody})
			wantError(t, resp, CodeAccessDenied)
			on := "on resource: " + e.ks.KeyARN("")[:len(e.ks.KeyARN(""))-len("key/")] + strings.TrimPrefix(r.on, "resource ")
			if !strings.Contains(r.on, "/") && r.on != star {
				on = "on resource: " + e.ks.KeyARN(r.on)
			}
			if want := "kms:" + r.op + " " + on; !strings.Contains(string(resp.body), want) && !(r.op == "ReEncrypt" && strings.Contains(string(resp.body), "kms:ReEncryptFrom "+on)) {
				t.Errorf("%s %s: refused with %s, want a refusal of %s", r.op, r.body, resp.body, want)
			}
			ev := auditEventOf(t, e, resp)
			if ev.KeyARN != r.keyARN || !slices.Equal(ev.EncryptionContextKeys, r.ecKeys) {
				t.Errorf("%s %s: audit keyArn %q, encryption context keys %q; want %q, %q", r.op, r.body, ev.KeyARN, ev.EncryptionContextKeys, r.keyARN, r.ecKeys)
			}
		})
	}

	// The key ARN the answer reports is the one recorded, where it is not
	// the key the KMS resolved first, or the KMS resolved none.
	t.Run("root", func(t *testing.T) {
		resp := e.call("CreateKey", `{}`, signOpts{})
		var created struct{ KeyMetadata struct{ Arn string } }
		if resp.status != http.StatusOK || json.Unmarshal(resp.body, &created) != nil {
			t.Fatalf("CreateKey as root: %d %s", resp.status, resp.body)
		}
		if ev := auditEventOf(t, e, resp); ev.KeyARN != created.KeyMetadata.Arn || created.KeyMetadata.Arn == "" {
			t.Errorf("CreateKey: audit keyArn %q, want the new key's %q", ev.KeyARN, created.KeyMetadata.Arn)
		}
		resp = e.call("ReEncrypt", `{"CiphertextBlob":`+blob+`,"DestinationKeyId":"alias/other","DestinationEncryptionContext":{"d":"v"}}`, signOpts{})
		if resp.status != http.StatusOK {
			t.Fatalf("ReEncrypt as root: %d %s", resp.status, resp.body)
		}
		if ev := auditEventOf(t, e, resp); ev.KeyARN != e.ks.KeyARN(other) || !slices.Equal(ev.EncryptionContextKeys, []string{"d"}) {
			t.Errorf("ReEncrypt: audit keyArn %q, context keys %q; want the destination's %q, [d]", ev.KeyARN, ev.EncryptionContextKeys, e.ks.KeyARN(other))
		}
	})
}

// auditEventOf returns the audit event of the request resp answers.
func auditEventOf(t *testing.T, e *testEnv, resp *response) AuditEvent {
	t.Helper()
	id := resp.header.Get("x-amzn-RequestId")
	for _, ev := range readAuditEvents(t, e.auditPath) {
		if ev.RequestID == id {
			return ev
		}
	}
	t.Fatalf("request %s is not in the audit log", id)
	return AuditEvent{}
}

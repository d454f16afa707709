package awsapi

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
)

func writePolicy(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(file, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return file
}

const validPolicy = `{"principals": [
  {"name": "app", "accessKeyId": "AKIDAPP0000000000001", "secretAccessKey": "SECRETAPP1",
   "allow": [{"actions": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"], "keys": ["alias/app"]},
             {"actions": ["kms:ListKeys"], "keys": ["*"]}]},
  {"name": "ops", "accessKeyId": "AKIDOPS0000000000001", "secretAccessKey": "SECRETOPS2",
   "allow": [{"actions": ["kms:*"], "keys": ["*"]}]}]}`

func TestLoadPolicy(t *testing.T) {
	p, err := LoadPolicy(writePolicy(t, validPolicy, 0o600))
	if err != nil {
		t.Fatalf("LoadPolicy(valid) err = %v", err)
	}
	if len(p.Principals) != 2 {
		t.Fatalf("%d principals, want 2", len(p.Principals))
	}
	app := p.Principals[0]
	if app.Name != "app" || app.AccessKeyID != "AKIDAPP0000000000001" || app.SecretAccessKey != "SECRETAPP1" || app.Root ||
		len(app.Allow) != 2 || strings.Join(app.Allow[0].Actions, ",") != "kms:Encrypt,kms:Decrypt,kms:GenerateDataKey*" ||
		strings.Join(app.Allow[0].Keys, ",") != "alias/app" {
		t.Errorf("principal app = %+v", app)
	}
	if app.String() != "app" {
		t.Errorf("Principal.String() = %q, want the name only", app.String())
	}
	if _, err := LoadPolicy(writePolicy(t, `{"principals": []}`, 0o400)); err != nil {
		t.Errorf("LoadPolicy(mode 0400, no principals) err = %v, want nil", err)
	}
}

func TestLoadPolicyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		mode os.FileMode
		want string // in the error
	}{
		{"readable by others", validPolicy, 0o644, "chmod 600"},
		{"readable by the group", validPolicy, 0o640, "chmod 600"},
		{"unknown top-level field", `{"principals": [], "statements": []}`, 0o600, "statements"},
		{"unknown principal field", `{"principals": [{"name": "a", "accessKeyId": "K", "secretAccessKey": "SECRETVALUE", "role": "admin"}]}`, 0o600, "role"},
		{"unknown grant field", `{"principals": [{"name": "a", "accessKeyId": "K", "secretAccessKey": "SECRETVALUE", "allow": [{"actions": ["kms:Encrypt"], "keys": ["*"], "effect": "Deny"}]}]}`, 0o600, "effect"},
		{"root flag", `{"principals": [{"name": "a", "accessKeyId": "K", "secretAccessKey": "SECRETVALUE", "Root": true}]}`, 0o600, "Root"},
		{"missing secret", `{"principals": [{"name": "a", "accessKeyId": "K"}]}`, 0o600, "secretAccessKey"},
		{"missing access key", `{"principals": [{"name": "a", "secretAccessKey": "SECRETVALUE"}]}`, 0o600, "accessKeyId"},
		{"missing name", `{"principals": [{"accessKeyId": "K", "secretAccessKey": "SECRETVALUE"}]}`, 0o600, "name"},
		{"duplicate access key", `{"principals": [{"name": "a", "accessKeyId": "K", "secretAccessKey": "SECRETVALUE"}, {"name": "b", "accessKeyId": "K", "secretAccessKey": "SECRETVALUE2"}]}`, 0o600, "twice"},
		{"action without kms:", `{"principals": [{"name": "a", "accessKeyId": "K", "secretAccessKey": "SECRETVALUE", "allow": [{"actions": ["Encrypt"], "keys": ["*"]}]}]}`, 0o600, "kms:"},
		{"grant without keys", `{"principals": [{"name": "a", "accessKeyId": "K", "secretAccessKey": "SECRETVALUE", "allow": [{"actions": ["kms:Encrypt"]}]}]}`, 0o600, "keys"},
		{"not JSON", `principals: []`, 0o600, "policy file"},
		{"trailing data", `{"principals": []} {"principals": []}`, 0o600, "policy file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writePolicy(t, tc.text, tc.mode)
			_, err := LoadPolicy(file)
			if err == nil {
				if tc.name == "trailing data" {
					regression(t, "policy.go LoadPolicy decodes one JSON value and ignores what follows it")
				}
				t.Fatalf("LoadPolicy(%s) err = nil, want an error mentioning %q", tc.name, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadPolicy(%s) err = %v, want it to mention %q", tc.name, err, tc.want)
			}
			for _, secret := range []string{"SECRETVALUE", "SECRETAPP1", "SECRETOPS2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("LoadPolicy(%s) err = %v shows a secret", tc.name, err)
				}
			}
		})
	}
	if _, err := LoadPolicy(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Errorf("LoadPolicy(missing file) err = nil, want an error")
	}
}

// policyEnv is a server with two keys (alias/app → appKey, alias/other →
// otherKey) and the principals grants returns for them, each with secret
// "secret-" + name.
type policyEnv struct {
	*testEnv
	appKey, otherKey string
}

func newPolicyEnv(t *testing.T, grants func(appKey, otherKey string) map[string][]Grant) *policyEnv {
	t.Helper()
	var appKey, otherKey string
	e := newTestEnv(t, func(c *Config) {
		// The keys exist before the server, so that grants can name them.
		appKey = createKeyIn(t, c.Backend, "alias/app")
		otherKey = createKeyIn(t, c.Backend, "alias/other")
		for name, g := range grants(appKey, otherKey) {
			c.Principals = append(c.Principals, &Principal{Name: name, AccessKeyID: accessKey(name), SecretAccessKey: "secret-" + name, Allow: g})
		}
	})
	return &policyEnv{testEnv: e, appKey: appKey, otherKey: otherKey}
}

// staticGrants is for grants that name no key id.
func staticGrants(m map[string][]Grant) func(string, string) map[string][]Grant {
	return func(string, string) map[string][]Grant { return m }
}

// createKeyIn makes a symmetric key with an alias directly in the backend.
func createKeyIn(t *testing.T, b Backend, alias string) string {
	t.Helper()
	ctx := context.Background()
	out, err := b.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: alias, TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata.KeyId
}

func accessKey(name string) string {
	return "AKID" + strings.ToUpper(name) + strings.Repeat("0", 16-len(name))
}

// as calls op with body (a JSON-encodable value) as the principal name.
func (e *policyEnv) as(name, op string, in any) *response {
	e.t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		e.t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: accessKey(name), SecretAccessKey: "secret-" + name}
	return e.call(op, string(b), signOpts{creds: &creds})
}

// check is one authorization case: who does what, and the outcome
// ("Success" or an error name).
type check struct {
	name      string
	principal string
	op        string
	in        any
	want      string
}

func (e *policyEnv) run(t *testing.T, checks []check) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			resp := e.as(c.principal, c.op, c.in)
			got := "Success"
			if resp.status != http.StatusOK {
				got = errorCode(t, resp)
			}
			if got != c.want {
				t.Errorf("%s %s as %s = %s (%s), want %s", c.op, mustJSON(c.in), c.principal, got, resp.body, c.want)
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func pt() []byte { return []byte("plaintext") }

func TestPolicyKeyEntries(t *testing.T) {
	e := newPolicyEnv(t, func(appKey, _ string) map[string][]Grant {
		return map[string][]Grant{
			"byalias":    {{Actions: []string{"kms:Encrypt"}, Keys: []string{"alias/app"}}},
			"byid":       {{Actions: []string{"kms:Encrypt"}, Keys: []string{appKey}}},
			"byarn":      {{Actions: []string{"kms:Encrypt"}, Keys: []string{"arn:aws:kms:us-east-1:111122223333:key/" + appKey}}},
			"byaliasarn": {{Actions: []string{"kms:Encrypt"}, Keys: []string{"arn:aws:kms:us-east-1:111122223333:alias/app"}}},
			"star":       {{Actions: []string{"kms:Encrypt"}, Keys: []string{"*"}}},
		}
	})
	appKey := e.appKey
	appARN := e.ks.KeyARN(appKey)
	aliasARN := e.ks.AliasARN("alias/app")
	var checks []check
	for _, who := range []string{"byalias", "byid", "byarn", "byaliasarn", "star"} {
		for _, ref := range []string{"alias/app", appKey, appARN, aliasARN} {
			checks = append(checks, check{who + " encrypts with " + ref, who, "Encrypt", kms.EncryptInput{KeyId: ref, Plaintext: pt()}, "Success"})
		}
		other := "AccessDeniedException"
		if who == "star" {
			other = "Success"
		}
		checks = append(checks,
			check{who + " encrypts with alias/other", who, "Encrypt", kms.EncryptInput{KeyId: "alias/other", Plaintext: pt()}, other},
			check{who + " encrypts with the other key id", who, "Encrypt", kms.EncryptInput{KeyId: e.otherKey, Plaintext: pt()}, other},
			check{who + " decrypts", who, "Decrypt", kms.DecryptInput{CiphertextBlob: e.encrypt("alias/app", "x")}, "AccessDeniedException"},
		)
	}
	// A principal without a grant on a key learns nothing of it: a missing
	// key is refused the same way as an existing one.
	checks = append(checks,
		check{"byalias on a missing alias", "byalias", "Encrypt", kms.EncryptInput{KeyId: "alias/missing", Plaintext: pt()}, "AccessDeniedException"},
		check{"byalias on a missing key", "byalias", "Encrypt", kms.EncryptInput{KeyId: "1234abcd-12ab-34cd-56ef-1234567890ab", Plaintext: pt()}, "AccessDeniedException"},
		check{"star on a missing key", "star", "Encrypt", kms.EncryptInput{KeyId: "alias/missing", Plaintext: pt()}, "NotFoundException"},
	)
	e.run(t, checks)
}

// TestPolicyFileUnknownAction: an action that names no KMS permission
// ("kms:Describe", a prefix and no wildcard) is refused when the policy
// file is loaded into the server, naming the principal and the action,
// rather than kept as an entry that never matches.
func TestPolicyFileUnknownAction(t *testing.T) {
	ks, err := keystore.Open(t.Context(), t.TempDir(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	_, err = New(Config{Backend: ks, Region: ks.Region(), Root: RootCredentials{AccessKeyID: testRootID, SecretAccessKey: "s"},
		Principals: []*Principal{{Name: "nodesc", AccessKeyID: "AKIDNODESC", SecretAccessKey: "s",
			Allow: []Grant{{Actions: []string{"kms:Describe"}, Keys: []string{"*"}}}}}})
	if err == nil || !strings.Contains(err.Error(), `"nodesc"`) || !strings.Contains(err.Error(), `"kms:Describe" matches no KMS action`) {
		t.Fatalf("New with action kms:Describe: err = %v, want one naming the principal and the action", err)
	}
}

func TestPolicyActionWildcards(t *testing.T) {
	e := newPolicyEnv(t, staticGrants(map[string][]Grant{
		"gen":   {{Actions: []string{"kms:GenerateDataKey*"}, Keys: []string{"alias/app"}}},
		"all":   {{Actions: []string{"kms:*"}, Keys: []string{"alias/app"}}},
		"exact": {{Actions: []string{"kms:GenerateDataKey"}, Keys: []string{"alias/app"}}},
		"list":  {{Actions: []string{"kms:List*"}, Keys: []string{"*"}}},
	}))
	n := int32(32)
	gdk := kms.GenerateDataKeyInput{KeyId: "alias/app", NumberOfBytes: &n}
	e.run(t, []check{
		{"gen GenerateDataKey", "gen", "GenerateDataKey", gdk, "Success"},
		{"gen GenerateDataKeyWithoutPlaintext", "gen", "GenerateDataKeyWithoutPlaintext", gdk, "Success"},
		{"gen GenerateDataKeyPairWithoutPlaintext", "gen", "GenerateDataKeyPairWithoutPlaintext", kms.GenerateDataKeyPairInput{KeyId: "alias/app", KeyPairSpec: "ECC_NIST_P256"}, "Success"},
		{"gen Encrypt", "gen", "Encrypt", kms.EncryptInput{KeyId: "alias/app", Plaintext: pt()}, "AccessDeniedException"},
		{"gen GenerateRandom", "gen", "GenerateRandom", kms.GenerateRandomInput{NumberOfBytes: &n}, "AccessDeniedException"},
		{"gen on alias/other", "gen", "GenerateDataKey", kms.GenerateDataKeyInput{KeyId: "alias/other", NumberOfBytes: &n}, "AccessDeniedException"},
		{"all Encrypt", "all", "Encrypt", kms.EncryptInput{KeyId: "alias/app", Plaintext: pt()}, "Success"},
		{"all DescribeKey", "all", "DescribeKey", kms.DescribeKeyInput{KeyId: "alias/app"}, "Success"},
		{"all on the other key", "all", "DisableKeyRotation", kms.DisableKeyRotationInput{KeyId: e.otherKey}, "AccessDeniedException"},
		{"exact GenerateDataKey", "exact", "GenerateDataKey", gdk, "Success"},
		{"exact GenerateDataKeyWithoutPlaintext", "exact", "GenerateDataKeyWithoutPlaintext", gdk, "AccessDeniedException"},
		{"list ListKeys", "list", "ListKeys", kms.ListKeysInput{}, "Success"},
		{"list ListAliases", "list", "ListAliases", kms.ListAliasesInput{}, "Success"},
		{"list ListResourceTags", "list", "ListResourceTags", kms.ListResourceTagsInput{KeyId: e.appKey}, "Success"},
		{"list DescribeKey", "list", "DescribeKey", kms.DescribeKeyInput{KeyId: e.appKey}, "AccessDeniedException"},
	})
}

func TestPolicyNoKeyOperations(t *testing.T) {
	n := int32(16)
	e := newPolicyEnv(t, staticGrants(map[string][]Grant{
		"keyonly": {{Actions: []string{"kms:CreateKey", "kms:ListKeys", "kms:ListAliases", "kms:GenerateRandom"}, Keys: []string{"alias/app"}}},
		"star":    {{Actions: []string{"kms:CreateKey", "kms:ListKeys", "kms:ListAliases", "kms:GenerateRandom"}, Keys: []string{"*"}}},
	}))
	e.run(t, []check{
		{"CreateKey needs *", "keyonly", "CreateKey", kms.CreateKeyInput{}, "AccessDeniedException"},
		{"ListKeys needs *", "keyonly", "ListKeys", kms.ListKeysInput{}, "AccessDeniedException"},
		{"ListAliases needs *", "keyonly", "ListAliases", kms.ListAliasesInput{}, "AccessDeniedException"},
		{"GenerateRandom needs *", "keyonly", "GenerateRandom", kms.GenerateRandomInput{NumberOfBytes: &n}, "AccessDeniedException"},
		{"ListAliases of a granted key", "keyonly", "ListAliases", kms.ListAliasesInput{KeyId: e.appKey}, "Success"},
		{"CreateKey with *", "star", "CreateKey", kms.CreateKeyInput{}, "Success"},
		{"ListKeys with *", "star", "ListKeys", kms.ListKeysInput{}, "Success"},
		{"ListAliases with *", "star", "ListAliases", kms.ListAliasesInput{}, "Success"},
		{"GenerateRandom with *", "star", "GenerateRandom", kms.GenerateRandomInput{NumberOfBytes: &n}, "Success"},
	})
	// The refusal names the action and the resource.
	resp := e.as("keyonly", "ListKeys", kms.ListKeysInput{})
	if !strings.Contains(string(resp.body), "kms:ListKeys") || !strings.Contains(string(resp.body), "keyonly") {
		t.Errorf("AccessDenied message %s does not name the principal and action", resp.body)
	}
}

func TestPolicyDecryptByCiphertext(t *testing.T) {
	e := newPolicyEnv(t, staticGrants(map[string][]Grant{
		"dec": {{Actions: []string{"kms:Decrypt"}, Keys: []string{"alias/app"}}},
	}))
	appBlob := e.encrypt("alias/app", "app secret")
	otherBlob := e.encrypt("alias/other", "other secret")
	e.run(t, []check{
		{"no KeyId, blob of the granted key", "dec", "Decrypt", kms.DecryptInput{CiphertextBlob: appBlob}, "Success"},
		{"no KeyId, blob of another key", "dec", "Decrypt", kms.DecryptInput{CiphertextBlob: otherBlob}, "AccessDeniedException"},
		{"granted KeyId, blob of another key", "dec", "Decrypt", kms.DecryptInput{KeyId: "alias/app", CiphertextBlob: otherBlob}, "IncorrectKeyException"},
		{"other KeyId, blob of the granted key", "dec", "Decrypt", kms.DecryptInput{KeyId: "alias/other", CiphertextBlob: appBlob}, "AccessDeniedException"},
		{"no KeyId, garbage blob", "dec", "Decrypt", kms.DecryptInput{CiphertextBlob: []byte("not a ciphertext at all, not at all")}, "AccessDeniedException"},
	})
	resp := e.as("dec", "Decrypt", kms.DecryptInput{CiphertextBlob: appBlob})
	var out kms.DecryptOutput
	if err := json.Unmarshal(resp.body, &out); err != nil || string(out.Plaintext) != "app secret" || out.KeyId != e.ks.KeyARN(e.appKey) {
		t.Errorf("Decrypt answer %s, want the app plaintext and key ARN", resp.body)
	}
}

func TestPolicyReEncrypt(t *testing.T) {
	e := newPolicyEnv(t, staticGrants(map[string][]Grant{
		"mover": {{Actions: []string{"kms:ReEncryptFrom"}, Keys: []string{"alias/app"}},
			{Actions: []string{"kms:ReEncryptTo"}, Keys: []string{"alias/other"}}},
		"both": {{Actions: []string{"kms:ReEncrypt*"}, Keys: []string{"alias/app", "alias/other"}}},
		"dec":  {{Actions: []string{"kms:Decrypt", "kms:Encrypt"}, Keys: []string{"*"}}},
	}))
	appBlob := e.encrypt("alias/app", "x")
	otherBlob := e.encrypt("alias/other", "y")
	e.run(t, []check{
		{"from app to other", "mover", "ReEncrypt", kms.ReEncryptInput{CiphertextBlob: appBlob, DestinationKeyId: "alias/other"}, "Success"},
		{"from app to other, source named", "mover", "ReEncrypt", kms.ReEncryptInput{CiphertextBlob: appBlob, SourceKeyId: e.appKey, DestinationKeyId: e.otherKey}, "Success"},
		{"from other to app", "mover", "ReEncrypt", kms.ReEncryptInput{CiphertextBlob: otherBlob, DestinationKeyId: "alias/app"}, "AccessDeniedException"},
		{"from app to app", "mover", "ReEncrypt", kms.ReEncryptInput{CiphertextBlob: appBlob, DestinationKeyId: "alias/app"}, "AccessDeniedException"},
		{"from other to other", "mover", "ReEncrypt", kms.ReEncryptInput{CiphertextBlob: otherBlob, DestinationKeyId: "alias/other"}, "AccessDeniedException"},
		{"wildcard both ways", "both", "ReEncrypt", kms.ReEncryptInput{CiphertextBlob: otherBlob, DestinationKeyId: "alias/app"}, "Success"},
		{"Decrypt+Encrypt is not ReEncrypt", "dec", "ReEncrypt", kms.ReEncryptInput{CiphertextBlob: appBlob, DestinationKeyId: "alias/other"}, "AccessDeniedException"},
	})
}

func TestPolicyRootAndUnknownPrincipal(t *testing.T) {
	e := newPolicyEnv(t, staticGrants(map[string][]Grant{"none": nil}))
	n := int32(8)
	e.run(t, []check{
		{"no grants", "none", "GenerateRandom", kms.GenerateRandomInput{NumberOfBytes: &n}, "AccessDeniedException"},
		{"no grants on a key", "none", "DescribeKey", kms.DescribeKeyInput{KeyId: "alias/app"}, "AccessDeniedException"},
		{"unknown principal", "stranger", "GenerateRandom", kms.GenerateRandomInput{NumberOfBytes: &n}, "UnrecognizedClientException"},
	})
	// Root may do everything.
	e.root("ScheduleKeyDeletion", kms.ScheduleKeyDeletionInput{KeyId: e.otherKey}, nil)
}

// TestPolicyAliasManagement: AWS requires permission on the alias and on
// the key for CreateAlias, and on the alias, its current key and the new
// key for UpdateAlias. A principal that may manage its own alias must not
// be able to point it at a key it has no rights on — and then use its alias
// grants on that key.
func TestPolicyAliasManagement(t *testing.T) {
	e := newPolicyEnv(t, staticGrants(map[string][]Grant{
		"aliaser": {{Actions: []string{"kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:Decrypt"},
			Keys: []string{"alias/mine", "alias/mine2", "alias/app"}}},
		"keyonly": {{Actions: []string{"kms:CreateAlias", "kms:DeleteAlias"}, Keys: []string{"alias/app"}}},
	}))
	victimBlob := e.encrypt("alias/other", "the other key's secret")
	e.run(t, []check{
		{"alias on a granted key", "aliaser", "CreateAlias", kms.CreateAliasInput{AliasName: "alias/mine", TargetKeyId: e.appKey}, "Success"},
		{"delete own alias", "aliaser", "DeleteAlias", kms.DeleteAliasInput{AliasName: "alias/mine"}, "Success"},
	})
	t.Run("CreateAlias to a key without grant", func(t *testing.T) {
		resp := e.as("aliaser", "CreateAlias", kms.CreateAliasInput{AliasName: "alias/mine", TargetKeyId: e.otherKey})
		if resp.status == http.StatusOK {
			dec := e.as("aliaser", "Decrypt", kms.DecryptInput{KeyId: "alias/mine", CiphertextBlob: victimBlob})
			regression(t, "server.go authorize ORs the alias and the key of CreateAlias: kms:CreateAlias on alias/mine lets a principal point it at any key (here one it has no grant on); then Decrypt with KeyId alias/mine and that key's ciphertext answers %d %s", dec.status, dec.body)
		}
		wantError(t, resp, "AccessDeniedException")
	})
	t.Run("UpdateAlias to a key without grant", func(t *testing.T) {
		e.root("CreateAlias", kms.CreateAliasInput{AliasName: "alias/mine2", TargetKeyId: e.appKey}, nil)
		resp := e.as("aliaser", "UpdateAlias", kms.UpdateAliasInput{AliasName: "alias/mine2", TargetKeyId: e.otherKey})
		if resp.status == http.StatusOK {
			dec := e.as("aliaser", "Decrypt", kms.DecryptInput{KeyId: "alias/mine2", CiphertextBlob: victimBlob})
			regression(t, "server.go authorize: kms:UpdateAlias on alias/mine2 lets a principal repoint it to a key it has no grant on; Decrypt through the alias then answers %d %s", dec.status, dec.body)
		}
		wantError(t, resp, "AccessDeniedException")
	})
	t.Run("CreateAlias with a grant on the key only", func(t *testing.T) {
		resp := e.as("keyonly", "CreateAlias", kms.CreateAliasInput{AliasName: "alias/anything", TargetKeyId: e.appKey})
		if resp.status == http.StatusOK {
			regression(t, "server.go authorize: kms:CreateAlias granted on a key lets a principal create any alias name for it")
		}
		wantError(t, resp, "AccessDeniedException")
	})
	t.Run("DeleteAlias with a grant on the key only", func(t *testing.T) {
		e.root("CreateAlias", kms.CreateAliasInput{AliasName: "alias/third", TargetKeyId: e.appKey}, nil)
		resp := e.as("keyonly", "DeleteAlias", kms.DeleteAliasInput{AliasName: "alias/third"})
		if resp.status == http.StatusOK {
			regression(t, "server.go authorize: kms:DeleteAlias granted on alias/app (that is, on its key) deletes another alias, alias/third, of the same key")
		}
		wantError(t, resp, "AccessDeniedException")
	})
}

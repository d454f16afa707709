package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/envelopekms/envelope/kms"
)

// permPrincipals are the principals of TestPermissions: each an IAM user of
// account 111122223333 (batch a role) with the identity policies shown.
func permPrincipals() []*Principal {
	doc := func(s string) map[string]json.RawMessage { return map[string]json.RawMessage{"p": json.RawMessage(s)} }
	return []*Principal{
		{Name: "admin", AccessKeyID: "AKIDADMIN00000000001", SecretAccessKey: "admin-secret",
			Policies: doc(`{"Version":"2012-10-17","Statement":[{"Sid":"AdminAll","Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)},
		{Name: "app", AccessKeyID: "AKIDAPP0000000000001", SecretAccessKey: "app-secret"},
		{Name: "reader", AccessKeyID: "AKIDREADER0000000001", SecretAccessKey: "reader-secret",
			Policies: doc(`{"Version":"2012-10-17","Statement":[{"Sid":"TenantA","Effect":"Allow",
				"Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*",
				"Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"a"}}}]}`)},
		{Name: "denied", AccessKeyID: "AKIDDENIED0000000001", SecretAccessKey: "denied-secret",
			Policies: doc(`{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Action":"kms:*","Resource":"*"},
				{"Sid":"NoDecrypt","Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}`)},
		{Name: "batch", ARN: "arn:aws:iam::111122223333:role/batch", AccessKeyID: "AKIDBATCH00000000001", SecretAccessKey: "batch-secret"},
	}
}

func credsOf(p *Principal) aws.Credentials {
	return aws.Credentials{AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey}
}

// apiError returns the AWS error code and message of err ("" for nil).
func apiError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	if err != nil {
		return "?", err.Error()
	}
	return "", ""
}

// TestPermissions: requests by several principals through aws-sdk-go-v2,
// decided as AWS KMS decides them: the key policy alone, identity policies
// alone (under the default key policy, which delegates to the account),
// both needed, explicit denies of either kind, encryption context
// conditions (Decrypt, GenerateDataKey, and both sides of ReEncrypt),
// grants with constraints, grant tokens, retire and revoke, ListGrants as
// Ansible calls it, and PutKeyPolicy then GetKeyPolicy (the same document,
// and the one enforced). Refusals are worded as AWS words them and the
// audit log records what decided.
func TestPermissions(t *testing.T) {
	ps := permPrincipals()
	e := newTestEnv(t, func(c *Config) { c.Principals = ps })
	ctx := context.Background()
	cl := map[string]*awskms.Client{}
	for _, p := range ps {
		cl[p.Name] = e.sdk(credsOf(p))
	}
	root := e.sdk(rootCreds)
	arn := func(name string) string { return "arn:aws:iam::111122223333:user/" + name }
	ecA, ecB := map[string]string{"tenant": "a"}, map[string]string{"tenant": "b"}

	// check runs f and wants the AWS error code want ("" for success) and,
	// for a refusal, a message containing each of msgs.
	check := func(what string, err error, want string, msgs ...string) {
		t.Helper()
		code, msg := apiError(err)
		if code != want {
			t.Errorf("%s: error %q (%s), want %q", what, code, msg, want)
			return
		}
		for _, m := range msgs {
			if !strings.Contains(msg, m) {
				t.Errorf("%s: message %q, want it to contain %q", what, msg, m)
			}
		}
	}

	// K1: the default key policy (the account; identity policies decide).
	k1 := e.createKey("alias/k1")
	k1ARN := e.ks.KeyARN(k1)
	ct := func(key string, ec map[string]string) []byte {
		var out kms.EncryptOutput
		e.root("Encrypt", kms.EncryptInput{KeyId: key, Plaintext: []byte("secret"), EncryptionContext: ec}, &out)
		return out.CiphertextBlob
	}
	blobA, blobB := ct(k1, ecA), ct(k1, ecB)

	_, err := cl["admin"].Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/k1"), Plaintext: []byte("x")})
	check("identity policy alone: admin encrypts under the default key policy", err, "")
	_, err = cl["app"].Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(k1), Plaintext: []byte("x")})
	check("app without identity policies under the default key policy", err, CodeAccessDenied,
		"User: "+arn("app")+" is not authorized to perform: kms:Encrypt on resource: "+k1ARN+" because no identity-based policy allows the kms:Encrypt action")
	_, err = cl["reader"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobA, EncryptionContext: ecA})
	check("reader decrypts tenant a", err, "")
	_, err = cl["reader"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobB, EncryptionContext: ecB})
	check("reader decrypts tenant b", err, CodeAccessDenied, "kms:Decrypt on resource: "+k1ARN)
	_, err = cl["reader"].GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String(k1), KeySpec: types.DataKeySpecAes256, EncryptionContext: ecA})
	check("reader generates a data key for tenant a", err, "")
	_, err = cl["reader"].GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String(k1), KeySpec: types.DataKeySpecAes256, EncryptionContext: ecB})
	check("reader generates a data key for tenant b", err, CodeAccessDenied)
	_, err = cl["denied"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobA, EncryptionContext: ecA})
	check("an identity policy's explicit deny", err, CodeAccessDenied, "with an explicit deny in an identity-based policy")
	_, err = cl["denied"].Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(k1), Plaintext: []byte("x")})
	check("the same principal's other permissions", err, "")
	_, err = cl["app"].ListKeys(ctx, &awskms.ListKeysInput{})
	check("an operation on no key, by identity policies alone", err, CodeAccessDenied,
		"kms:ListKeys on resource: arn:aws:kms:us-east-1:111122223333:* because no identity-based policy allows")
	_, err = cl["admin"].ListKeys(ctx, &awskms.ListKeysInput{})
	check("admin lists keys", err, "")

	// K2: a key policy that allows app directly (the key policy alone),
	// delegates to the account, and denies admin Decrypt.
	k2Policy := `{"Version":"2012-10-17","Statement":[
		{"Sid":"Account","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Sid":"AppUse","Effect":"Allow","Principal":{"AWS":"` + arn("app") + `"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"},
		{"Sid":"NoAdminDecrypt","Effect":"Deny","Principal":{"AWS":"` + arn("admin") + `"},"Action":"kms:Decrypt","Resource":"*"}]}`
	var k2out kms.CreateKeyOutput
	e.root("CreateKey", kms.CreateKeyInput{Policy: k2Policy}, &k2out)
	k2 := k2out.KeyMetadata.KeyId
	enc, err := cl["app"].Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(k2), Plaintext: []byte("x")})
	check("the key policy alone: app encrypts", err, "")
	if err == nil {
		_, err = cl["app"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		check("the key policy alone: app decrypts", err, "")
		_, err = cl["admin"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		check("the key policy's explicit deny", err, CodeAccessDenied, "with an explicit deny in a resource-based policy")
	}
	_, err = cl["admin"].Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(k2), Plaintext: []byte("x")})
	check("both needed: the key policy delegates, admin's identity policy allows", err, "")

	// K3: a key policy that names app alone (set with the lockout check
	// bypassed): identity policies do not count.
	k3Policy := `{"Version":"2012-10-17","Statement":[
		{"Sid":"AppOnly","Effect":"Allow","Principal":{"AWS":"` + arn("app") + `"},"Action":"kms:*","Resource":"*"}]}`
	_, err = root.CreateKey(ctx, &awskms.CreateKeyInput{Policy: aws.String(k3Policy)})
	check("CreateKey with a policy that locks the caller out", err, kms.CodeMalformedPolicy, "will not allow you to update the key policy")
	k3out, err := root.CreateKey(ctx, &awskms.CreateKeyInput{Policy: aws.String(k3Policy), BypassPolicyLockoutSafetyCheck: true})
	check("CreateKey with the lockout check bypassed", err, "")
	if err == nil {
		k3 := aws.ToString(k3out.KeyMetadata.KeyId)
		_, err = cl["admin"].Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(k3), Plaintext: []byte("x")})
		check("an identity policy where the key policy does not delegate", err, CodeAccessDenied, "because no resource-based policy allows the kms:Encrypt action")
		_, err = cl["app"].Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(k3), Plaintext: []byte("x")})
		check("app under the key policy that names it alone", err, "")
	}

	// K4: ReEncrypt with conditions on both sides.
	k4Policy := `{"Version":"2012-10-17","Statement":[
		{"Sid":"Account","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
		{"Sid":"ReEncryptTenantA","Effect":"Allow","Principal":{"AWS":"` + arn("app") + `"},"Action":"kms:ReEncrypt*","Resource":"*",
		 "Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"a"}}}]}`
	var k4out kms.CreateKeyOutput
	e.root("CreateKey", kms.CreateKeyInput{Policy: k4Policy}, &k4out)
	k4 := k4out.KeyMetadata.KeyId
	src4A, src4B := ct(k4, ecA), ct(k4, ecB)
	_, err = cl["app"].ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: src4A, SourceEncryptionContext: ecA, DestinationKeyId: aws.String(k4), DestinationEncryptionContext: ecA})
	check("ReEncrypt with tenant a on both sides", err, "")
	_, err = cl["app"].ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: src4A, SourceEncryptionContext: ecA, DestinationKeyId: aws.String(k4), DestinationEncryptionContext: ecB})
	check("ReEncrypt to tenant b (the destination's condition)", err, CodeAccessDenied, "kms:ReEncryptTo")
	_, err = cl["app"].ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: src4B, SourceEncryptionContext: ecB, DestinationKeyId: aws.String(k4), DestinationEncryptionContext: ecA})
	check("ReEncrypt from tenant b (the source's condition)", err, CodeAccessDenied, "kms:ReEncryptFrom")

	// Grants: batch may decrypt with K1 when the context includes
	// job=nightly; app may retire the grant.
	nightly := map[string]string{"job": "nightly", "run": "1"}
	blobN := ct(k1, nightly)
	_, err = cl["batch"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobN, EncryptionContext: nightly})
	check("batch before any grant", err, CodeAccessDenied)
	g, err := root.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: aws.String(k1),
		GranteePrincipal: aws.String("arn:aws:iam::111122223333:role/batch"), RetiringPrincipal: aws.String(arn("app")),
		Operations:  []types.GrantOperation{types.GrantOperationDecrypt},
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"JOB": "nightly"}}, Name: aws.String("nightly")})
	check("CreateGrant", err, "")
	if err != nil {
		t.FailNow()
	}
	again, err := root.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: aws.String(k1),
		GranteePrincipal: aws.String("arn:aws:iam::111122223333:role/batch"), RetiringPrincipal: aws.String(arn("app")),
		Operations:  []types.GrantOperation{types.GrantOperationDecrypt},
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"JOB": "nightly"}}, Name: aws.String("nightly")})
	if err != nil || aws.ToString(again.GrantId) != aws.ToString(g.GrantId) || aws.ToString(again.GrantToken) == aws.ToString(g.GrantToken) {
		t.Errorf("CreateGrant again with the same name and fields = %v, %v; want the same grant id %s with a new token", again, err, aws.ToString(g.GrantId))
	}
	_, err = cl["batch"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobN, EncryptionContext: nightly, GrantTokens: []string{aws.ToString(g.GrantToken)}})
	check("batch decrypts under the grant (constraint key compared ignoring case), with its token", err, "")
	_, err = cl["batch"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobA, EncryptionContext: ecA})
	check("batch decrypts outside the grant's constraint", err, CodeAccessDenied)
	_, err = cl["batch"].Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(k1), Plaintext: []byte("x"), EncryptionContext: nightly})
	check("batch encrypts: not a grant operation", err, CodeAccessDenied)
	_, err = cl["batch"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobN, EncryptionContext: nightly, GrantTokens: []string{"not-a-token"}})
	check("a malformed grant token", err, kms.CodeInvalidGrantToken)

	// ListGrants as Ansible's kms_key calls it: by KeyId, paginated.
	var ids []string
	pager := awskms.NewListGrantsPaginator(root, &awskms.ListGrantsInput{KeyId: aws.String(k1), Limit: aws.Int32(1)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListGrants: %v", err)
		}
		for _, gr := range page.Grants {
			ids = append(ids, aws.ToString(gr.GrantId))
			if aws.ToString(gr.KeyId) != k1ARN || aws.ToString(gr.GranteePrincipal) != "arn:aws:iam::111122223333:role/batch" ||
				len(gr.Operations) != 1 || gr.Constraints == nil || gr.Constraints.EncryptionContextSubset["JOB"] != "nightly" {
				t.Errorf("ListGrants entry %+v", gr)
			}
		}
	}
	if len(ids) != 1 || ids[0] != aws.ToString(g.GrantId) {
		t.Errorf("ListGrants listed %v, want [%s]", ids, aws.ToString(g.GrantId))
	}
	rl, err := cl["admin"].ListRetirableGrants(ctx, &awskms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(arn("app"))})
	if err != nil || len(rl.Grants) != 1 {
		t.Errorf("ListRetirableGrants(app) = %v, %v; want the grant", rl, err)
	}
	_, err = cl["batch"].RetireGrant(ctx, &awskms.RetireGrantInput{KeyId: aws.String(k1), GrantId: g.GrantId})
	check("the grantee retires a grant that does not allow RetireGrant", err, CodeAccessDenied)
	_, err = cl["app"].RetireGrant(ctx, &awskms.RetireGrantInput{GrantToken: g.GrantToken})
	check("the retiring principal retires the grant by its token", err, "")
	_, err = cl["batch"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobN, EncryptionContext: nightly})
	check("batch after the grant is retired", err, CodeAccessDenied)
	_, err = cl["batch"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobN, EncryptionContext: nightly, GrantTokens: []string{aws.ToString(g.GrantToken)}})
	check("the retired grant's token", err, kms.CodeInvalidGrantToken)

	// Revoke: an equals constraint, revoked by admin (kms:RevokeGrant).
	g2, err := root.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: aws.String(k1),
		GranteePrincipal: aws.String("arn:aws:iam::111122223333:role/batch"), Operations: []types.GrantOperation{types.GrantOperationDecrypt},
		Constraints: &types.GrantConstraints{EncryptionContextEquals: nightly}})
	check("CreateGrant with EncryptionContextEquals", err, "")
	if err == nil {
		_, err = cl["batch"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobN, EncryptionContext: nightly})
		check("batch decrypts with exactly the context", err, "")
		blobN2 := ct(k1, map[string]string{"job": "nightly", "run": "1", "extra": "x"})
		_, err = cl["batch"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobN2, EncryptionContext: map[string]string{"job": "nightly", "run": "1", "extra": "x"}})
		check("batch decrypts with more than the context", err, CodeAccessDenied)
		_, err = cl["admin"].RevokeGrant(ctx, &awskms.RevokeGrantInput{KeyId: aws.String(k1), GrantId: g2.GrantId})
		check("RevokeGrant", err, "")
		_, err = cl["batch"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobN, EncryptionContext: nightly})
		check("batch after the grant is revoked", err, CodeAccessDenied)
		_, err = cl["admin"].RevokeGrant(ctx, &awskms.RevokeGrantInput{KeyId: aws.String(k1), GrantId: g2.GrantId})
		check("RevokeGrant of a revoked grant", err, kms.CodeNotFound)
	}

	// PutKeyPolicy, then GetKeyPolicy returns the same document, and it
	// is the one enforced.
	_, err = cl["app"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobA, EncryptionContext: ecA})
	check("app decrypts before the new key policy", err, CodeAccessDenied)
	newPolicy := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Sid\": \"Account\", \"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"arn:aws:iam::111122223333:root\"}, \"Action\": \"kms:*\", \"Resource\": \"*\"},\n" +
		"    {\"Sid\": \"AppDecryptsTenantA\", \"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"" + arn("app") + "\"}, \"Action\": \"kms:Decrypt\", \"Resource\": \"*\",\n" +
		"     \"Condition\": {\"StringEquals\": {\"kms:EncryptionContext:tenant\": \"a\"}}}\n  ]\n}\n"
	_, err = root.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: aws.String(k1), Policy: aws.String(newPolicy)})
	check("PutKeyPolicy", err, "")
	got, err := cl["admin"].GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: aws.String(k1)})
	if err != nil || aws.ToString(got.Policy) != newPolicy {
		t.Errorf("GetKeyPolicy = %q, %v; want exactly the document put", aws.ToString(got.Policy), err)
	}
	_, err = cl["app"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobA, EncryptionContext: ecA})
	check("app decrypts tenant a under the new key policy", err, "")
	_, err = cl["app"].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobB, EncryptionContext: ecB})
	check("app decrypts tenant b under the new key policy", err, CodeAccessDenied)
	resp := e.call("Decrypt", `{"CiphertextBlob":"`+b64(blobA)+`","EncryptionContext":{"tenant":"a"}}`, signOpts{creds: &aws.Credentials{AccessKeyID: "AKIDDENIED0000000001", SecretAccessKey: "denied-secret"}})
	wantError(t, resp, CodeAccessDenied)
	if ev := auditEventOf(t, e, resp); ev.DecidedBy != "deny: identity policy p" || ev.Sid != "NoDecrypt" || ev.KeyARN != k1ARN {
		t.Errorf("audit of a denial: decidedBy %q, sid %q, key %q; want \"deny: identity policy p\", \"NoDecrypt\", %s", ev.DecidedBy, ev.Sid, ev.KeyARN, k1ARN)
	}
	resp = e.call("Decrypt", `{"CiphertextBlob":"`+b64(blobA)+`","EncryptionContext":{"tenant":"a"}}`, signOpts{creds: &aws.Credentials{AccessKeyID: "AKIDAPP0000000000001", SecretAccessKey: "app-secret"}})
	if ev := auditEventOf(t, e, resp); ev.Result != "Success" || ev.DecidedBy != "allow: key policy" || ev.Sid != "AppDecryptsTenantA" {
		t.Errorf("audit of an allowed request: %+v; want decidedBy \"allow: key policy\", sid AppDecryptsTenantA", ev)
	}

	// Malformed key policies are refused naming the element; size limit.
	_, err = root.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: aws.String(k1), Policy: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrpyt","Resource":"*"}]}`)})
	check("a misspelt action", err, kms.CodeMalformedPolicy, "Statement[0].Action", "kms:Decrpyt")
	_, err = root.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: aws.String(k1), Policy: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + arn("nobody") + `"},"Action":"kms:*","Resource":"*"},` +
			`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`)})
	check("a principal that does not exist", err, kms.CodeMalformedPolicy, arn("nobody"))
	_, err = root.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: aws.String(k1), Policy: aws.String(`{"Version":"2012-10-17","Statement":[` +
		strings.Repeat(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},`, 400) + `{}]}`)})
	check("a key policy over 32 KiB", err, "LimitExceededException")
	if got, err := cl["admin"].GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: aws.String(k1)}); err != nil || aws.ToString(got.Policy) != newPolicy {
		t.Errorf("after refused PutKeyPolicy calls, GetKeyPolicy = %q, %v; want the policy in force", aws.ToString(got.Policy), err)
	}
}

func b64(b []byte) string {
	out, _ := json.Marshal(b)
	return strings.Trim(string(out), `"`)
}

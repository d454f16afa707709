package kms_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestCreateKeySymmetricDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		in   kms.CreateKeyInput
	}{
		{"no spec", kms.CreateKeyInput{Description: "first"}},
		{"KeySpec", kms.CreateKeyInput{KeySpec: kms.SpecSymmetricDefault, KeyUsage: kms.UsageEncryptDecrypt, Origin: "AWS_KMS"}},
		{"CustomerMasterKeySpec", kms.CreateKeyInput{CustomerMasterKeySpec: kms.SpecSymmetricDefault}},
		{"both specs agree", kms.CreateKeyInput{KeySpec: kms.SpecSymmetricDefault, CustomerMasterKeySpec: kms.SpecSymmetricDefault}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.svc.CreateKey(t.Context(), &tc.in)
			if err != nil {
				t.Fatalf("CreateKey(%+v) err = %v, want nil", tc.in, err)
			}
			m := out.KeyMetadata
			if !uuidRE.MatchString(m.KeyId) {
				t.Errorf("KeyId = %q, want a version 4 UUID", m.KeyId)
			}
			checks := []struct {
				field, got, want string
			}{
				{"Arn", m.Arn, "arn:aws:kms:us-east-1:111122223333:key/" + m.KeyId},
				{"AWSAccountId", m.AWSAccountId, kms.DefaultAccountID},
				{"Description", m.Description, tc.in.Description},
				{"KeyUsage", m.KeyUsage, "ENCRYPT_DECRYPT"},
				{"KeyState", m.KeyState, "Enabled"},
				{"Origin", m.Origin, "AWS_KMS"},
				{"KeyManager", m.KeyManager, "CUSTOMER"},
				{"KeySpec", m.KeySpec, "SYMMETRIC_DEFAULT"},
				{"CustomerMasterKeySpec", m.CustomerMasterKeySpec, "SYMMETRIC_DEFAULT"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("KeyMetadata.%s = %q, want %q", c.field, c.got, c.want)
				}
			}
			if !m.Enabled || m.MultiRegion || m.DeletionDate != nil || m.PendingDeletionWindowInDays != nil {
				t.Errorf("KeyMetadata = %+v, want Enabled, single-Region, no deletion date", m)
			}
			if m.CreationDate == nil || !m.CreationDate.Equal(epoch) {
				t.Errorf("CreationDate = %v, want %v", m.CreationDate, epoch)
			}
			if !slices.Equal(m.EncryptionAlgorithms, []string{"SYMMETRIC_DEFAULT"}) {
				t.Errorf("EncryptionAlgorithms = %q, want [SYMMETRIC_DEFAULT]", m.EncryptionAlgorithms)
			}
			if m.CurrentKeyMaterialId == "" {
				t.Error("CurrentKeyMaterialId is empty")
			}
			// DescribeKey sees what CreateKey returned.
			if d := e.describe(t, m.KeyId); d.Arn != m.Arn || d.CurrentKeyMaterialId != m.CurrentKeyMaterialId || d.KeyState != "Enabled" {
				t.Errorf("DescribeKey = %+v, want %+v", d, m)
			}
		})
	}
}

func TestCreateKeyTagsAndPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}`
	tags := []kms.Tag{{Key: "team", Value: "crypto"}, {Key: "env", Value: ""}}
	out, err := e.svc.CreateKey(t.Context(), &kms.CreateKeyInput{Policy: policy, Tags: tags})
	if err != nil {
		t.Fatalf("CreateKey() err = %v, want nil", err)
	}
	id := out.KeyMetadata.KeyId
	lt, err := e.svc.ListResourceTags(t.Context(), &kms.ListResourceTagsInput{KeyId: id})
	if err != nil {
		t.Fatalf("ListResourceTags() err = %v, want nil", err)
	}
	want := []kms.Tag{{Key: "env", Value: ""}, {Key: "team", Value: "crypto"}}
	if !slices.Equal(lt.Tags, want) || lt.Truncated {
		t.Errorf("ListResourceTags() = %+v, want %+v", lt, want)
	}
	gp, err := e.svc.GetKeyPolicy(t.Context(), &kms.GetKeyPolicyInput{KeyId: id})
	if err != nil || gp.Policy != policy || gp.PolicyName != "default" {
		t.Errorf("GetKeyPolicy() = %+v, %v, want the policy given to CreateKey", gp, err)
	}

	// Without a policy, the key gets the default one, which names the account.
	id2 := e.symKey(t)
	gp, err = e.svc.GetKeyPolicy(t.Context(), &kms.GetKeyPolicyInput{KeyId: id2, PolicyName: "default"})
	if err != nil {
		t.Fatalf("GetKeyPolicy() err = %v, want nil", err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(gp.Policy), &doc); err != nil {
		t.Errorf("default policy is not JSON: %v\n%s", err, gp.Policy)
	}
	if !strings.Contains(gp.Policy, "arn:aws:iam::111122223333:root") {
		t.Errorf("default policy does not name the account root:\n%s", gp.Policy)
	}
}

func TestCreateKeyRSA(t *testing.T) {
	t.Parallel()
	e, shared := sharedRSA(t)
	for _, tc := range []struct {
		spec string
		bits int
	}{
		{kms.SpecRSA2048, 2048},
		{kms.SpecRSA3072, 3072},
		{kms.SpecRSA4096, 4096},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			t.Parallel()
			id := shared
			if tc.spec != kms.SpecRSA2048 {
				// Each of these is created once, in its own service.
				e := newEnv(t)
				out, err := e.svc.CreateKey(t.Context(), &kms.CreateKeyInput{KeySpec: tc.spec, KeyUsage: "ENCRYPT_DECRYPT"})
				if err != nil {
					t.Fatalf("CreateKey(%s) err = %v, want nil", tc.spec, err)
				}
				checkRSAKey(t, e, out.KeyMetadata.KeyId, tc.spec, tc.bits)
				return
			}
			checkRSAKey(t, e, id, tc.spec, tc.bits)
		})
	}
}

// checkRSAKey checks an RSA key's metadata, its public key, and that a
// message encrypted locally with the public key decrypts in the service.
func checkRSAKey(t *testing.T, e *env, id, spec string, bits int) {
	t.Helper()
	m := e.describe(t, id)
	if m.KeySpec != spec || m.CustomerMasterKeySpec != spec || m.KeyUsage != "ENCRYPT_DECRYPT" || m.KeyState != "Enabled" {
		t.Errorf("DescribeKey = %+v, want an enabled %s ENCRYPT_DECRYPT key", m, spec)
	}
	if want := []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}; !slices.Equal(m.EncryptionAlgorithms, want) {
		t.Errorf("EncryptionAlgorithms = %q, want %q", m.EncryptionAlgorithms, want)
	}
	pk, err := e.svc.GetPublicKey(t.Context(), &kms.GetPublicKeyInput{KeyId: id})
	if err != nil {
		t.Fatalf("GetPublicKey() err = %v, want nil", err)
	}
	pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
	if err != nil {
		t.Fatalf("GetPublicKey().PublicKey does not parse as SPKI: %v", err)
	}
	rpub, ok := pub.(*rsa.PublicKey)
	if !ok || rpub.N.BitLen() != bits {
		t.Fatalf("public key is %T of %d bits, want *rsa.PublicKey of %d", pub, rpub.N.BitLen(), bits)
	}
	if pk.KeySpec != spec || pk.CustomerMasterKeySpec != spec || pk.KeyUsage != "ENCRYPT_DECRYPT" || pk.KeyId != e.keyARN(id) {
		t.Errorf("GetPublicKey() = %+v", pk)
	}
	msg := []byte("encrypted outside the service")
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rpub, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := e.svc.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: ct, KeyId: id, EncryptionAlgorithm: kms.AlgRSAOAEPSHA256})
	if err != nil || string(dec.Plaintext) != string(msg) {
		t.Fatalf("Decrypt(local RSAES_OAEP_SHA_256 ciphertext) = %v, %v, want %q", dec, err, msg)
	}
}

func TestDescribeKeyForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	e.alias(t, "alias/describe-me", id)
	for _, ref := range []string{
		id,
		e.keyARN(id),
		"alias/describe-me",
		e.svc.AliasARN("alias/describe-me"),
		"arn:aws:kms:us-east-1:111122223333:alias/describe-me",
	} {
		t.Run(ref, func(t *testing.T) {
			if got := e.describe(t, ref); got.KeyId != id {
				t.Errorf("DescribeKey(%q).KeyId = %q, want %q", ref, got.KeyId, id)
			}
		})
	}
}

func TestListKeysPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var want []string
	for range 7 {
		want = append(want, e.symKey(t))
	}
	slices.Sort(want)

	all, err := e.svc.ListKeys(t.Context(), &kms.ListKeysInput{})
	if err != nil {
		t.Fatalf("ListKeys() err = %v, want nil", err)
	}
	if all.Truncated || all.NextMarker != "" || len(all.Keys) != 7 {
		t.Errorf("ListKeys() = %+v, want 7 keys, not truncated", all)
	}
	for _, k := range all.Keys {
		if k.KeyArn != e.keyARN(k.KeyId) {
			t.Errorf("ListKeys entry %+v: KeyArn is not the key's ARN", k)
		}
	}

	for _, limit := range []int32{1, 3, 6, 7, 1000} {
		var got []string
		var pages []int
		marker := ""
		for {
			out, err := e.svc.ListKeys(t.Context(), &kms.ListKeysInput{Limit: i32(limit), Marker: marker})
			if err != nil {
				t.Fatalf("ListKeys(Limit %d, Marker %q) err = %v, want nil", limit, marker, err)
			}
			pages = append(pages, len(out.Keys))
			if len(out.Keys) > int(limit) {
				t.Fatalf("ListKeys(Limit %d) returned %d keys", limit, len(out.Keys))
			}
			for _, k := range out.Keys {
				got = append(got, k.KeyId)
			}
			if !out.Truncated {
				if out.NextMarker != "" {
					t.Errorf("ListKeys(Limit %d) not truncated but NextMarker = %q", limit, out.NextMarker)
				}
				break
			}
			if out.NextMarker == "" {
				t.Fatalf("ListKeys(Limit %d) truncated without NextMarker", limit)
			}
			marker = out.NextMarker
			if len(pages) > 10 {
				t.Fatal("ListKeys does not terminate")
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("ListKeys(Limit %d) pages %v listed %q, want %q", limit, pages, got, want)
		}
	}
}

func TestUpdateKeyDescription(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	for _, d := range []string{"new description", "", strings.Repeat("d", 8192)} {
		if _, err := e.svc.UpdateKeyDescription(t.Context(), &kms.UpdateKeyDescriptionInput{KeyId: e.keyARN(id), Description: d}); err != nil {
			t.Fatalf("UpdateKeyDescription(%d chars) err = %v, want nil", len(d), err)
		}
		if got := e.describe(t, id).Description; got != d {
			t.Errorf("Description = %q, want %q", got, d)
		}
	}
}

func TestEnableDisableKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	for _, step := range []struct {
		name    string
		call    func() error
		state   string
		enabled bool
	}{
		{"DisableKey", func() error {
			_, err := e.svc.DisableKey(t.Context(), &kms.DisableKeyInput{KeyId: id})
			return err
		}, "Disabled", false},
		{"DisableKey again", func() error {
			_, err := e.svc.DisableKey(t.Context(), &kms.DisableKeyInput{KeyId: id})
			return err
		}, "Disabled", false},
		{"EnableKey", func() error {
			_, err := e.svc.EnableKey(t.Context(), &kms.EnableKeyInput{KeyId: e.keyARN(id)})
			return err
		}, "Enabled", true},
		{"EnableKey again", func() error {
			_, err := e.svc.EnableKey(t.Context(), &kms.EnableKeyInput{KeyId: id})
			return err
		}, "Enabled", true},
	} {
		if err := step.call(); err != nil {
			t.Fatalf("%s err = %v, want nil", step.name, err)
		}
		if m := e.describe(t, id); m.KeyState != step.state || m.Enabled != step.enabled {
			t.Errorf("after %s: KeyState %q, Enabled %v; want %q, %v", step.name, m.KeyState, m.Enabled, step.state, step.enabled)
		}
	}
}

func TestScheduleAndCancelKeyDeletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		window *int32
		days   int
	}{
		{"default window", nil, 30},
		{"7 days", i32(7), 7},
		{"30 days", i32(30), 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.symKey(t)
			out, err := e.svc.ScheduleKeyDeletion(t.Context(), &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: tc.window})
			if err != nil {
				t.Fatalf("ScheduleKeyDeletion() err = %v, want nil", err)
			}
			wantDate := e.clock.Now().AddDate(0, 0, tc.days)
			if out.KeyId != e.keyARN(id) || out.KeyState != "PendingDeletion" || out.PendingWindowInDays != int32(tc.days) ||
				out.DeletionDate == nil || !out.DeletionDate.Equal(wantDate) {
				t.Errorf("ScheduleKeyDeletion() = %+v, want KeyId %s, PendingDeletion, %d days, DeletionDate %v", out, e.keyARN(id), tc.days, wantDate)
			}
			m := e.describe(t, id)
			if m.KeyState != "PendingDeletion" || m.Enabled || m.DeletionDate == nil || !m.DeletionDate.Equal(wantDate) ||
				m.PendingDeletionWindowInDays == nil || *m.PendingDeletionWindowInDays != int32(tc.days) {
				t.Errorf("DescribeKey() = %+v, want PendingDeletion until %v", m, wantDate)
			}

			c, err := e.svc.CancelKeyDeletion(t.Context(), &kms.CancelKeyDeletionInput{KeyId: e.keyARN(id)})
			if err != nil {
				t.Fatalf("CancelKeyDeletion() err = %v, want nil", err)
			}
			if c.KeyId != e.keyARN(id) {
				t.Errorf("CancelKeyDeletion().KeyId = %q, want %q", c.KeyId, e.keyARN(id))
			}
			// The key comes back Disabled, as in AWS, until EnableKey.
			m = e.describe(t, id)
			if m.KeyState != "Disabled" || m.Enabled || m.DeletionDate != nil || m.PendingDeletionWindowInDays != nil {
				t.Errorf("after CancelKeyDeletion: %+v, want Disabled without deletion date", m)
			}
			if _, err := e.svc.EnableKey(t.Context(), &kms.EnableKeyInput{KeyId: id}); err != nil {
				t.Fatalf("EnableKey() err = %v, want nil", err)
			}
			e.encrypt(t, id, []byte("usable again"), nil)
		})
	}
}

func TestAliases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k1, k2 := e.symKey(t), e.symKey(t)
	ctx := t.Context()

	e.alias(t, "alias/app", k1)
	e.alias(t, "alias/app/db", e.keyARN(k1)) // TargetKeyId as a key ARN
	e.alias(t, "alias/Other_Name-2:x", k2)

	list := func(in *kms.ListAliasesInput) *kms.ListAliasesOutput {
		t.Helper()
		out, err := e.svc.ListAliases(ctx, in)
		if err != nil {
			t.Fatalf("ListAliases(%+v) err = %v, want nil", in, err)
		}
		return out
	}
	names := func(out *kms.ListAliasesOutput) []string {
		var n []string
		for _, a := range out.Aliases {
			n = append(n, a.AliasName)
		}
		return n
	}

	out := list(&kms.ListAliasesInput{})
	if got, want := names(out), []string{"alias/Other_Name-2:x", "alias/app", "alias/app/db"}; !slices.Equal(got, want) || out.Truncated {
		t.Fatalf("ListAliases() = %q (truncated %v), want %q", got, out.Truncated, want)
	}
	for _, a := range out.Aliases {
		wantKey := k1
		if a.AliasName == "alias/Other_Name-2:x" {
			wantKey = k2
		}
		if a.AliasArn != "arn:aws:kms:us-east-1:111122223333:"+a.AliasName || a.TargetKeyId != wantKey ||
			a.CreationDate == nil || !a.CreationDate.Equal(epoch) || a.LastUpdatedDate == nil || !a.LastUpdatedDate.Equal(epoch) {
			t.Errorf("alias entry %+v, want ARN, target %s and dates %v", a, wantKey, epoch)
		}
	}

	// KeyId filter, by key ID and by key ARN.
	for _, ref := range []string{k1, e.keyARN(k1)} {
		if got, want := names(list(&kms.ListAliasesInput{KeyId: ref})), []string{"alias/app", "alias/app/db"}; !slices.Equal(got, want) {
			t.Errorf("ListAliases(KeyId %s) = %q, want %q", ref, got, want)
		}
	}
	if got := list(&kms.ListAliasesInput{KeyId: e.symKey(t)}); len(got.Aliases) != 0 || got.Truncated {
		t.Errorf("ListAliases(KeyId of a key without aliases) = %+v, want none", got)
	}

	// UpdateAlias moves the alias; DescribeKey and Encrypt follow it.
	e.clock.Advance(time.Hour)
	if _, err := e.svc.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: "alias/app", TargetKeyId: k2}); err != nil {
		t.Fatalf("UpdateAlias() err = %v, want nil", err)
	}
	if got := e.describe(t, "alias/app").KeyId; got != k2 {
		t.Errorf("DescribeKey(alias/app) = %s after UpdateAlias, want %s", got, k2)
	}
	if out, err := e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: "alias/app", Plaintext: []byte("x")}); err != nil || out.KeyId != e.keyARN(k2) {
		t.Errorf("Encrypt(alias/app) = %+v, %v, want KeyId %s", out, err, e.keyARN(k2))
	}
	for _, a := range list(&kms.ListAliasesInput{KeyId: k2}).Aliases {
		if a.AliasName == "alias/app" && (!a.CreationDate.Equal(epoch) || !a.LastUpdatedDate.Equal(epoch.Add(time.Hour))) {
			t.Errorf("updated alias %+v: CreationDate should stay %v, LastUpdatedDate become %v", a, epoch, epoch.Add(time.Hour))
		}
	}

	// DeleteAlias.
	if _, err := e.svc.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: "alias/app"}); err != nil {
		t.Fatalf("DeleteAlias() err = %v, want nil", err)
	}
	_, err := e.svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "alias/app"})
	wantCode(t, "DescribeKey(deleted alias)", err, kms.CodeNotFound)
	// The name is free again.
	e.alias(t, "alias/app", k1)

	// Pagination over ListAliases.
	for i := range 5 {
		e.alias(t, "alias/page-"+string(rune('a'+i)), k2)
	}
	all := names(list(&kms.ListAliasesInput{}))
	if len(all) != 8 {
		t.Fatalf("ListAliases() = %q, want 8 aliases", all)
	}
	for _, limit := range []int32{1, 2, 3, 100} {
		var got []string
		marker := ""
		for i := 0; ; i++ {
			out := list(&kms.ListAliasesInput{Limit: i32(limit), Marker: marker})
			if len(out.Aliases) > int(limit) {
				t.Fatalf("ListAliases(Limit %d) returned %d", limit, len(out.Aliases))
			}
			got = append(got, names(out)...)
			if !out.Truncated {
				break
			}
			if out.NextMarker == "" || i > 10 {
				t.Fatalf("ListAliases(Limit %d): truncated page with NextMarker %q", limit, out.NextMarker)
			}
			marker = out.NextMarker
		}
		if !slices.Equal(got, all) {
			t.Errorf("ListAliases(Limit %d) pages = %q, want %q", limit, got, all)
		}
	}
	// Pagination with the KeyId filter.
	var got []string
	marker := ""
	for {
		out := list(&kms.ListAliasesInput{KeyId: k2, Limit: i32(2), Marker: marker})
		got = append(got, names(out)...)
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	if want := []string{"alias/Other_Name-2:x", "alias/page-a", "alias/page-b", "alias/page-c", "alias/page-d", "alias/page-e"}; !slices.Equal(got, want) {
		t.Errorf("ListAliases(KeyId, Limit 2) pages = %q, want %q", got, want)
	}
}

func TestTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	ctx := t.Context()
	tag := func(tags ...kms.Tag) {
		t.Helper()
		if _, err := e.svc.TagResource(ctx, &kms.TagResourceInput{KeyId: id, Tags: tags}); err != nil {
			t.Fatalf("TagResource(%+v) err = %v, want nil", tags, err)
		}
	}
	list := func(in *kms.ListResourceTagsInput) *kms.ListResourceTagsOutput {
		t.Helper()
		in.KeyId = id
		out, err := e.svc.ListResourceTags(ctx, in)
		if err != nil {
			t.Fatalf("ListResourceTags(%+v) err = %v, want nil", in, err)
		}
		return out
	}

	tag(kms.Tag{Key: "b", Value: "1"}, kms.Tag{Key: "a", Value: "2"}, kms.Tag{Key: "c", Value: ""})
	tag(kms.Tag{Key: "b", Value: "overwritten"}, kms.Tag{Key: strings.Repeat("k", 128), Value: strings.Repeat("v", 256)})
	want := []kms.Tag{{Key: "a", Value: "2"}, {Key: "b", Value: "overwritten"}, {Key: "c", Value: ""}, {Key: strings.Repeat("k", 128), Value: strings.Repeat("v", 256)}}
	if got := list(&kms.ListResourceTagsInput{Limit: i32(50)}); !slices.Equal(got.Tags, want) || got.Truncated {
		t.Fatalf("ListResourceTags() = %+v, want %+v", got, want)
	}

	// Pagination.
	var got []kms.Tag
	marker := ""
	for i := 0; ; i++ {
		out := list(&kms.ListResourceTagsInput{Limit: i32(3), Marker: marker})
		got = append(got, out.Tags...)
		if !out.Truncated {
			break
		}
		if out.NextMarker == "" || i > 5 {
			t.Fatalf("ListResourceTags: truncated page with NextMarker %q", out.NextMarker)
		}
		marker = out.NextMarker
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListResourceTags(Limit 3) pages = %+v, want %+v", got, want)
	}

	if _, err := e.svc.UntagResource(ctx, &kms.UntagResourceInput{KeyId: e.keyARN(id), TagKeys: []string{"b", "absent"}}); err != nil {
		t.Fatalf("UntagResource() err = %v, want nil", err)
	}
	want = slices.Delete(want, 1, 2)
	if got := list(&kms.ListResourceTagsInput{}); !slices.Equal(got.Tags, want) {
		t.Errorf("after UntagResource: %+v, want %+v", got.Tags, want)
	}

	// 50 tags are allowed; the 51st is over the quota.
	var many []kms.Tag
	for i := range 47 {
		many = append(many, kms.Tag{Key: "t" + string(rune('A'+i)), Value: "v"})
	}
	tag(many...)
	if got := list(&kms.ListResourceTagsInput{}); len(got.Tags) != 50 || got.Truncated {
		t.Errorf("ListResourceTags() with 50 tags: %d tags, truncated %v", len(got.Tags), got.Truncated)
	}
	_, err := e.svc.TagResource(ctx, &kms.TagResourceInput{KeyId: id, Tags: []kms.Tag{{Key: "one-too-many", Value: ""}}})
	wantCode(t, "TagResource(51st tag)", err, kms.CodeLimitExceeded)
}

func TestKeyRotationSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	ctx := t.Context()
	status := func() *kms.GetKeyRotationStatusOutput {
		t.Helper()
		out, err := e.svc.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: id})
		if err != nil {
			t.Fatalf("GetKeyRotationStatus() err = %v, want nil", err)
		}
		if out.KeyId != e.keyARN(id) {
			t.Errorf("GetKeyRotationStatus().KeyId = %q, want %q", out.KeyId, e.keyARN(id))
		}
		return out
	}
	if s := status(); s.KeyRotationEnabled || s.RotationPeriodInDays != nil || s.NextRotationDate != nil {
		t.Errorf("new key: rotation status %+v, want disabled", s)
	}
	for _, tc := range []struct {
		period *int32
		days   int
	}{{nil, 365}, {i32(90), 90}, {i32(2560), 2560}, {i32(400), 400}} {
		if _, err := e.svc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: tc.period}); err != nil {
			t.Fatalf("EnableKeyRotation(%d days) err = %v, want nil", tc.days, err)
		}
		want := e.clock.Now().AddDate(0, 0, tc.days)
		if s := status(); !s.KeyRotationEnabled || s.RotationPeriodInDays == nil || *s.RotationPeriodInDays != int32(tc.days) ||
			s.NextRotationDate == nil || !s.NextRotationDate.Equal(want) {
			t.Errorf("after EnableKeyRotation(%d days): %+v, want next rotation %v", tc.days, s, want)
		}
	}
	if _, err := e.svc.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: e.keyARN(id)}); err != nil {
		t.Fatalf("DisableKeyRotation() err = %v, want nil", err)
	}
	if s := status(); s.KeyRotationEnabled || s.NextRotationDate != nil {
		t.Errorf("after DisableKeyRotation: %+v, want disabled", s)
	}

	// On-demand rotations are listed, newest last, with pagination.
	rot, err := e.svc.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id})
	if err != nil || len(rot.Rotations) != 0 || rot.Truncated {
		t.Fatalf("ListKeyRotations(new key) = %+v, %v, want none", rot, err)
	}
	var ids []string
	for i := range 3 {
		e.clock.Advance(time.Minute)
		out, err := e.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id})
		if err != nil {
			t.Fatalf("RotateKeyOnDemand() #%d err = %v, want nil", i+1, err)
		}
		if out.KeyId != e.keyARN(id) {
			t.Errorf("RotateKeyOnDemand().KeyId = %q, want %q", out.KeyId, e.keyARN(id))
		}
		ids = append(ids, e.describe(t, id).CurrentKeyMaterialId)
	}
	var got []kms.RotationsListEntry
	marker := ""
	for {
		out, err := e.svc.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id, Limit: i32(2), Marker: marker})
		if err != nil {
			t.Fatalf("ListKeyRotations(Marker %q) err = %v, want nil", marker, err)
		}
		got = append(got, out.Rotations...)
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	if len(got) != 3 {
		t.Fatalf("ListKeyRotations() listed %d rotations, want 3: %+v", len(got), got)
	}
	for i, r := range got {
		if r.RotationType != "ON_DEMAND" || r.KeyMaterialId != ids[i] || r.KeyId != e.keyARN(id) ||
			r.RotationDate == nil || !r.RotationDate.Equal(epoch.Add(time.Duration(i+1)*time.Minute)) {
			t.Errorf("rotation %d = %+v, want ON_DEMAND with material %s", i, r, ids[i])
		}
	}
}

func TestKeyPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	ctx := t.Context()
	lp, err := e.svc.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: id, Limit: i32(1)})
	if err != nil || !slices.Equal(lp.PolicyNames, []string{"default"}) || lp.Truncated {
		t.Errorf("ListKeyPolicies() = %+v, %v, want [default]", lp, err)
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	if _, err := e.svc.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: e.keyARN(id), Policy: policy}); err != nil {
		t.Fatalf("PutKeyPolicy() err = %v, want nil", err)
	}
	if _, err := e.svc.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, PolicyName: "default", Policy: policy}); err != nil {
		t.Fatalf("PutKeyPolicy(PolicyName default) err = %v, want nil", err)
	}
	gp, err := e.svc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: e.keyARN(id)})
	if err != nil || gp.Policy != policy || gp.PolicyName != "default" {
		t.Errorf("GetKeyPolicy() = %+v, %v, want %s", gp, err, policy)
	}
	_, err = e.svc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: id, PolicyName: "other"})
	wantCode(t, "GetKeyPolicy(PolicyName other)", err, kms.CodeNotFound)
}

// TestListKeysSkipsDeleted: keys whose deletion date has passed are not
// listed, even before anything removes them, and pages stay full.
func TestListKeysSkipsDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var live []string
	for i := range 9 {
		id := e.symKey(t)
		if i%3 == 1 {
			if _, err := e.svc.ScheduleKeyDeletion(t.Context(), &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: i32(7)}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		live = append(live, id)
	}
	// Pending deletion keys are listed until their date.
	all, err := e.svc.ListKeys(t.Context(), &kms.ListKeysInput{})
	if err != nil || len(all.Keys) != 9 {
		t.Fatalf("ListKeys() before the deletion date = %d keys, %v; want 9", len(all.Keys), err)
	}
	e.clock.AdvanceDays(7)
	var got []string
	marker := ""
	for {
		out, err := e.svc.ListKeys(t.Context(), &kms.ListKeysInput{Limit: i32(2), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		if out.Truncated && len(out.Keys) != 2 {
			t.Errorf("truncated page of %d keys, want 2", len(out.Keys))
		}
		for _, k := range out.Keys {
			got = append(got, k.KeyId)
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	slices.Sort(got)
	slices.Sort(live)
	if !slices.Equal(got, live) {
		t.Errorf("ListKeys() after the deletion date = %q, want %q", got, live)
	}
}

func TestResolveKeyAndCiphertextKeyID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	e.alias(t, "alias/resolve", id)
	for _, ref := range []string{id, e.keyARN(id), "alias/resolve", e.svc.AliasARN("alias/resolve")} {
		got, err := e.svc.ResolveKey(t.Context(), ref)
		if err != nil || got != id {
			t.Errorf("ResolveKey(%q) = %q, %v; want %q", ref, got, err, id)
		}
	}
	_, err := e.svc.ResolveKey(t.Context(), "alias/none")
	wantCode(t, "ResolveKey(alias/none)", err, kms.CodeNotFound)

	blob := e.encrypt(t, id, []byte("x"), nil)
	if got, ok := kms.CiphertextKeyID(blob); !ok || got != id {
		t.Errorf("CiphertextKeyID() = %q, %v; want %q", got, ok, id)
	}
	if _, ok := kms.CiphertextKeyID([]byte("not a blob")); ok {
		t.Error("CiphertextKeyID(garbage) ok = true")
	}
	if e.svc.Region() != kms.DefaultRegion || e.svc.AccountID() != kms.DefaultAccountID {
		t.Errorf("Region(), AccountID() = %q, %q; want the defaults", e.svc.Region(), e.svc.AccountID())
	}
}

// TestNewChecksRootKey: a service refuses a store sealed under another root
// key, before writing anything into it.
func TestNewChecksRootKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	blob := e.encrypt(t, id, []byte("sealed"), nil)

	other, err := kms.NewAESRootKey(randBytes(32))
	if err != nil {
		t.Fatal(err)
	}
	_, err = kms.New(t.Context(), e.store, other, kms.Options{})
	if !errors.Is(err, kms.ErrWrongRootKey) {
		t.Fatalf("kms.New(other root key) err = %v, want ErrWrongRootKey", err)
	}
	// The original service is unaffected.
	e.decrypt(t, blob, nil)

	for _, n := range []int{0, 16, 31, 33} {
		if _, err := kms.NewAESRootKey(make([]byte, n)); err == nil {
			t.Errorf("NewAESRootKey(%d bytes) err = nil, want an error", n)
		}
	}
	// Sealed values are bound to where they belong.
	root, _ := kms.NewAESRootKey(randBytes(32))
	sealed, err := root.Seal([]byte("material"), []byte("material:a:1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Open(sealed, []byte("material:a:2")); !errors.Is(err, kms.ErrWrongRootKey) {
		t.Errorf("Open(other aad) err = %v, want ErrWrongRootKey", err)
	}
	if _, err := root.Open(sealed[:27], []byte("material:a:1")); !errors.Is(err, kms.ErrWrongRootKey) {
		t.Errorf("Open(truncated) err = %v, want ErrWrongRootKey", err)
	}
	if pt, err := root.Open(sealed, []byte("material:a:1")); err != nil || string(pt) != "material" {
		t.Errorf("Open() = %q, %v", pt, err)
	}
}

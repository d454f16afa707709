package awsclient_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi"
	"github.com/envelopekms/envelope/kms/awsclient"
	"github.com/envelopekms/envelope/kms/keystore"
)

// newEnvelopeServer runs envelope's real AWS-KMS-API server over a fresh
// embedded keystore, and returns the keystore (the KMS in process) and a
// Client of the server over the same keys.
func newEnvelopeServer(t testing.TB) (local kms.API, remote *awsclient.Client) {
	t.Helper()
	isolate(t)
	ks, err := keystore.Open(t.Context(), t.TempDir(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	root := awsapi.NewRootCredentials()
	srv, err := awsapi.New(awsapi.Config{Backend: ks, Region: kms.DefaultRegion, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	remote, err = awsclient.NewEndpoint(t.Context(), hs.URL, awsclient.WithCredentials(root.AccessKeyID, root.SecretAccessKey), noRetries)
	if err != nil {
		t.Fatal(err)
	}
	return ks, remote
}

// sameJSON reports whether a and b encode to the same JSON, numbers within
// 2 ms (timestamps cross the wire in milliseconds, and the SDK truncates).
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	var da, db any
	for _, p := range []struct {
		v   any
		out *any
	}{{a, &da}, {b, &db}} {
		buf, err := json.Marshal(p.v)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(buf, p.out); err != nil {
			t.Fatal(err)
		}
	}
	return nearlyEqual(da, db)
}

func nearlyEqual(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && math.Abs(a-b) <= 0.002
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if w, ok := b[k]; !ok || !nearlyEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !nearlyEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// TestEnvelopeServer runs the client against envelope's real server and
// checks that every answer, and every error, is what the same call on the
// in-process KMS gives.
func TestEnvelopeServer(t *testing.T) {
	local, remote := newEnvelopeServer(t)
	ctx := t.Context()
	// must(t)(call) fails t if call fails.
	must := func(t *testing.T) func(any, error) {
		return func(_ any, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
		}
	}

	created, err := remote.CreateKey(ctx, &kms.CreateKeyInput{Description: "app key", Tags: []kms.Tag{{Key: "team", Value: "crypto"}, {Key: "empty", Value: ""}}})
	if err != nil {
		t.Fatalf("CreateKey err = %v, want nil", err)
	}
	id, arn := created.KeyMetadata.KeyId, created.KeyMetadata.Arn
	described, err := local.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	if err != nil || !sameJSON(t, created.KeyMetadata, described.KeyMetadata) {
		t.Errorf("remote CreateKey metadata %+v, local DescribeKey %+v, %v", created.KeyMetadata, described.KeyMetadata, err)
	}
	must(t)(remote.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/app", TargetKeyId: id}))
	rsa, err := remote.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT"})
	if err != nil {
		t.Fatalf("CreateKey RSA_2048 err = %v, want nil", err)
	}
	rsaID := rsa.KeyMetadata.KeyId
	must(t)(remote.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}))
	must(t)(remote.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: aws.Int32(90)}))
	must(t)(remote.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: id, Description: "renamed"}))
	must(t)(remote.UntagResource(ctx, &kms.UntagResourceInput{KeyId: id, TagKeys: []string{"team"}}))
	must(t)(remote.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, Policy: `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`}))

	ec := map[string]string{"purpose": "test"}
	blob := func(t *testing.T) []byte {
		out, err := local.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("hello"), EncryptionContext: ec})
		if err != nil {
			t.Fatal(err)
		}
		return out.CiphertextBlob
	}(t)

	// Calls that give the same answer, or the same error, both ways.
	same := []struct {
		name string
		call func(kms.API) (any, error)
	}{
		{"DescribeKey alias", func(a kms.API) (any, error) { return a.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "alias/app"}) }},
		{"DescribeKey RSA", func(a kms.API) (any, error) { return a.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: rsaID}) }},
		{"ListKeys", func(a kms.API) (any, error) { return a.ListKeys(ctx, &kms.ListKeysInput{}) }},
		{"ListKeys page", func(a kms.API) (any, error) { return a.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1)}) }},
		{"ListAliases", func(a kms.API) (any, error) { return a.ListAliases(ctx, &kms.ListAliasesInput{}) }},
		{"ListAliases of a key", func(a kms.API) (any, error) { return a.ListAliases(ctx, &kms.ListAliasesInput{KeyId: id}) }},
		{"ListResourceTags", func(a kms.API) (any, error) { return a.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: id}) }},
		{"GetKeyRotationStatus", func(a kms.API) (any, error) {
			return a.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: arn})
		}},
		{"ListKeyRotations", func(a kms.API) (any, error) { return a.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id}) }},
		{"GetKeyPolicy", func(a kms.API) (any, error) { return a.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: id}) }},
		{"ListKeyPolicies", func(a kms.API) (any, error) { return a.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: id}) }},
		{"GetPublicKey", func(a kms.API) (any, error) { return a.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: rsaID}) }},
		{"Decrypt", func(a kms.API) (any, error) {
			return a.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
		}},

		{"not found", func(a kms.API) (any, error) { return a.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "alias/missing"}) }},
		{"invalid ARN", func(a kms.API) (any, error) {
			return a.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "arn:aws:s3:::bucket"})
		}},
		{"wrong context", func(a kms.API) (any, error) {
			return a.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"purpose": "other"}})
		}},
		{"incorrect key", func(a kms.API) (any, error) {
			return a.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, KeyId: rsaID})
		}},
		{"garbage ciphertext", func(a kms.API) (any, error) {
			return a.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("not a ciphertext")})
		}},
		{"empty plaintext", func(a kms.API) (any, error) {
			return a.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte{}})
		}},
		{"plaintext too long", func(a kms.API) (any, error) {
			return a.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: bytes.Repeat([]byte{1}, 4097)})
		}},
		{"KeySpec and NumberOfBytes", func(a kms.API) (any, error) {
			return a.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256", NumberOfBytes: aws.Int32(32)})
		}},
		{"alias exists", func(a kms.API) (any, error) {
			return a.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/app", TargetKeyId: rsaID})
		}},
		{"reserved alias", func(a kms.API) (any, error) {
			return a.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/aws/app", TargetKeyId: id})
		}},
		{"pending window", func(a kms.API) (any, error) {
			return a.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(3)})
		}},
		{"limit", func(a kms.API) (any, error) { return a.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(0)}) }},
		{"bad marker", func(a kms.API) (any, error) {
			return a.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id, Marker: "x"})
		}},
		{"dry run", func(a kms.API) (any, error) {
			return a.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x"), DryRun: true})
		}},
		{"RSA key for GenerateDataKey", func(a kms.API) (any, error) {
			return a.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: rsaID, KeySpec: "AES_256"})
		}},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			lo, lerr := tt.call(local)
			ro, rerr := tt.call(remote)
			if lerr != nil || rerr != nil {
				le, re := fmt.Sprint(lerr), fmt.Sprint(rerr)
				if kms.CodeOf(lerr) != kms.CodeOf(rerr) || le != re {
					t.Errorf("local err = %v\nremote err = %v", lerr, rerr)
				}
				// The key an error is about crosses the wire in its message.
				var lk, rk *kms.Error
				if errors.As(lerr, &lk) && errors.As(rerr, &rk) && strings.Contains(lk.Message, lk.KeyARN) && rk.KeyARN != lk.KeyARN {
					t.Errorf("local err's KeyARN %q, remote %q", lk.KeyARN, rk.KeyARN)
				}
				return
			}
			if !sameJSON(t, lo, ro) {
				lj, _ := json.Marshal(lo)
				rj, _ := json.Marshal(ro)
				t.Errorf("local  %s\nremote %s", lj, rj)
			}
		})
	}

	t.Run("crypto round trips", func(t *testing.T) {
		dk, err := remote.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "alias/app", KeySpec: "AES_256", EncryptionContext: ec})
		if err != nil || len(dk.Plaintext) != 32 || dk.KeyId != arn {
			t.Fatalf("GenerateDataKey = %+v, %v", dk, err)
		}
		pt, err := local.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
		if err != nil || !bytes.Equal(pt.Plaintext, dk.Plaintext) {
			t.Errorf("local Decrypt of a remote data key = %v, %v", pt, err)
		}
		re, err := remote.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: ec, DestinationKeyId: rsaID,
			DestinationEncryptionAlgorithm: "RSAES_OAEP_SHA_256"})
		if err != nil || re.SourceKeyId != arn || re.DestinationEncryptionAlgorithm != "RSAES_OAEP_SHA_256" {
			t.Fatalf("ReEncrypt = %+v, %v", re, err)
		}
		pt, err = local.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, KeyId: rsaID, EncryptionAlgorithm: "RSAES_OAEP_SHA_256"})
		if err != nil || string(pt.Plaintext) != "hello" {
			t.Errorf("local Decrypt after remote ReEncrypt = %v, %v", pt, err)
		}
		r, err := remote.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(17)})
		if err != nil || len(r.Plaintext) != 17 {
			t.Errorf("GenerateRandom = %v, %v", r, err)
		}
		pair, err := remote.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: id, KeyPairSpec: "ECC_NIST_P256", EncryptionContext: ec})
		if err != nil || pair.KeyPairSpec != "ECC_NIST_P256" || pair.KeyId != arn || len(pair.PublicKey) == 0 || len(pair.PrivateKeyPlaintext) == 0 {
			t.Fatalf("GenerateDataKeyPair = %+v, %v", pair, err)
		}
		pt, err = local.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: ec})
		if err != nil || !bytes.Equal(pt.Plaintext, pair.PrivateKeyPlaintext) {
			t.Errorf("local Decrypt of a remote data key pair's private key = %v, %v", pt, err)
		}
	})

	t.Run("state changes", func(t *testing.T) {
		must(t)(remote.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id}))
		_, err := remote.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
		if !errors.Is(err, kms.ErrDisabled) {
			t.Errorf("Encrypt with a disabled key err = %v, want DisabledException", err)
		}
		must(t)(remote.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id}))
		sched, err := remote.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)})
		if err != nil || sched.KeyState != kms.StatePendingDeletion || sched.PendingWindowInDays != 7 || sched.DeletionDate == nil || sched.KeyId != arn {
			t.Fatalf("ScheduleKeyDeletion = %+v, %v", sched, err)
		}
		d, err := local.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
		if err != nil || !sameJSON(t, d.KeyMetadata.DeletionDate, sched.DeletionDate) {
			t.Errorf("local DeletionDate %v, remote %v", d.KeyMetadata.DeletionDate, sched.DeletionDate)
		}
		_, err = remote.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
		if kms.CodeOf(err) != kms.CodeInvalidState {
			t.Errorf("Decrypt with a key pending deletion err = %v, want KMSInvalidStateException", err)
		}
		must(t)(remote.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: id}))
		other, err := remote.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		must(t)(remote.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: "alias/app", TargetKeyId: other.KeyMetadata.KeyId}))
		d, err = local.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "alias/app"})
		if err != nil || d.KeyMetadata.KeyId != other.KeyMetadata.KeyId {
			t.Errorf("after UpdateAlias, alias/app is %v, %v; want key %s", d, err, other.KeyMetadata.KeyId)
		}
		must(t)(remote.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: "alias/app"}))
		_, err = local.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "alias/app"})
		if kms.CodeOf(err) != kms.CodeNotFound {
			t.Errorf("DescribeKey of a deleted alias err = %v, want NotFoundException", err)
		}
	})
}

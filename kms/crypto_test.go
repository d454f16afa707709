package kms_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
)

func TestEncryptDecrypt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	e.alias(t, "alias/enc", id)
	matID := e.describe(t, id).CurrentKeyMaterialId
	arn := e.keyARN(id)

	refs := []string{id, arn, "alias/enc", e.svc.AliasARN("alias/enc")}
	contexts := []struct {
		name string
		ec   map[string]string
	}{
		{"nil context", nil},
		{"empty context", map[string]string{}},
		{"one pair", map[string]string{"purpose": "test"}},
		{"several pairs", map[string]string{"a": "1", "b": "", "ünïcødé": "välüe", "": "empty key"}},
	}
	sizes := []int{1, 31, 4096}
	for i, ref := range refs {
		for _, c := range contexts {
			size := sizes[i%len(sizes)]
			t.Run(fmt.Sprintf("%s/%s/%d bytes", ref, c.name, size), func(t *testing.T) {
				pt := randBytes(size)
				out, err := e.svc.Encrypt(t.Context(), &kms.EncryptInput{KeyId: ref, Plaintext: pt, EncryptionContext: c.ec})
				if err != nil {
					t.Fatalf("Encrypt(%q) err = %v, want nil", ref, err)
				}
				if out.KeyId != arn || out.EncryptionAlgorithm != "SYMMETRIC_DEFAULT" {
					t.Errorf("Encrypt() = KeyId %q, algorithm %q; want %q, SYMMETRIC_DEFAULT", out.KeyId, out.EncryptionAlgorithm, arn)
				}
				if bytes.Contains(out.CiphertextBlob, pt) && size > 8 {
					t.Errorf("the ciphertext contains the plaintext")
				}
				if len(out.CiphertextBlob) > 6144 {
					t.Errorf("ciphertext of %d bytes is over the 6144 that Decrypt accepts", len(out.CiphertextBlob))
				}
				// Decrypt without KeyId (the blob names its key) and with
				// every form of KeyId.
				for _, dref := range append([]string{""}, refs...) {
					dec, err := e.svc.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: c.ec, KeyId: dref})
					if err != nil {
						t.Fatalf("Decrypt(KeyId %q) err = %v, want nil", dref, err)
					}
					if !bytes.Equal(dec.Plaintext, pt) || dec.KeyId != arn || dec.EncryptionAlgorithm != "SYMMETRIC_DEFAULT" || dec.KeyMaterialId != matID {
						t.Errorf("Decrypt(KeyId %q) = KeyId %q, alg %q, material %q; want the plaintext, %q, SYMMETRIC_DEFAULT, %q",
							dref, dec.KeyId, dec.EncryptionAlgorithm, dec.KeyMaterialId, arn, matID)
					}
				}
			})
		}
	}

	t.Run("nil and empty contexts are the same", func(t *testing.T) {
		blob := e.encrypt(t, id, []byte("x"), nil)
		e.decrypt(t, blob, map[string]string{})
		blob = e.encrypt(t, id, []byte("x"), map[string]string{})
		e.decrypt(t, blob, nil)
	})

	t.Run("two encryptions differ", func(t *testing.T) {
		a, b := e.encrypt(t, id, []byte("same"), nil), e.encrypt(t, id, []byte("same"), nil)
		if bytes.Equal(a, b) {
			t.Error("two encryptions of the same plaintext are equal")
		}
	})
}

func TestEncryptionContextIsBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	ec := map[string]string{"ab": "c", "tenant": "42"}
	blob := e.encrypt(t, id, []byte("bound to its context"), ec)
	e.decrypt(t, blob, map[string]string{"tenant": "42", "ab": "c"})
	for _, tc := range []struct {
		name string
		ec   map[string]string
	}{
		{"none", nil},
		{"empty", map[string]string{}},
		{"subset", map[string]string{"ab": "c"}},
		{"superset", map[string]string{"ab": "c", "tenant": "42", "extra": ""}},
		{"other value", map[string]string{"ab": "c", "tenant": "43"}},
		{"shifted boundary", map[string]string{"a": "bc", "tenant": "42"}},
		{"key case", map[string]string{"AB": "c", "tenant": "42"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: tc.ec})
			wantCode(t, "Decrypt(wrong context)", err, kms.CodeInvalidCiphertext)
			if !strings.Contains(err.Error(), "context") {
				t.Logf("error does not mention the context: %v", err)
			}
		})
	}
	// And the other way round: a blob without context does not decrypt with one.
	blob = e.encrypt(t, id, []byte("no context"), nil)
	_, err := e.svc.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "b"}})
	wantCode(t, "Decrypt(context where none was given)", err, kms.CodeInvalidCiphertext)
}

func TestReEncrypt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src, dst := e.symKey(t), e.symKey(t)
	e.alias(t, "alias/dst", dst)
	ctx := t.Context()
	pt := []byte("moved between keys")
	srcEC := map[string]string{"stage": "source"}
	oldMat := e.describe(t, src).CurrentKeyMaterialId
	blob := e.encrypt(t, src, pt, srcEC)

	t.Run("newest version of the same key", func(t *testing.T) {
		if _, err := e.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: src}); err != nil {
			t.Fatalf("RotateKeyOnDemand() err = %v, want nil", err)
		}
		newMat := e.describe(t, src).CurrentKeyMaterialId
		if newMat == oldMat {
			t.Fatal("rotation did not change CurrentKeyMaterialId")
		}
		out, err := e.svc.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: srcEC,
			DestinationKeyId: src, DestinationEncryptionContext: srcEC})
		if err != nil {
			t.Fatalf("ReEncrypt() err = %v, want nil", err)
		}
		if out.SourceKeyId != e.keyARN(src) || out.KeyId != e.keyARN(src) || out.SourceKeyMaterialId != oldMat || out.DestinationKeyMaterialId != newMat ||
			out.SourceEncryptionAlgorithm != "SYMMETRIC_DEFAULT" || out.DestinationEncryptionAlgorithm != "SYMMETRIC_DEFAULT" {
			t.Errorf("ReEncrypt() = %+v, want source material %s, destination material %s", out, oldMat, newMat)
		}
		dec := e.decrypt(t, out.CiphertextBlob, srcEC)
		if !bytes.Equal(dec.Plaintext, pt) || dec.KeyMaterialId != newMat {
			t.Errorf("Decrypt(re-encrypted) = %q with material %s, want %q with %s", dec.Plaintext, dec.KeyMaterialId, pt, newMat)
		}
	})

	t.Run("another key and another context", func(t *testing.T) {
		dstEC := map[string]string{"stage": "destination"}
		out, err := e.svc.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: srcEC, SourceKeyId: e.keyARN(src),
			DestinationKeyId: "alias/dst", DestinationEncryptionContext: dstEC})
		if err != nil {
			t.Fatalf("ReEncrypt() err = %v, want nil", err)
		}
		if out.SourceKeyId != e.keyARN(src) || out.KeyId != e.keyARN(dst) || out.DestinationKeyMaterialId != e.describe(t, dst).CurrentKeyMaterialId {
			t.Errorf("ReEncrypt() = %+v, want from %s to %s", out, src, dst)
		}
		dec := e.decrypt(t, out.CiphertextBlob, dstEC)
		if !bytes.Equal(dec.Plaintext, pt) || dec.KeyId != e.keyARN(dst) {
			t.Errorf("Decrypt(re-encrypted) = %+v, want %q under %s", dec, pt, dst)
		}
		_, err = e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: srcEC})
		wantCode(t, "Decrypt(re-encrypted blob, old context)", err, kms.CodeInvalidCiphertext)
		_, err = e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: dstEC, KeyId: src})
		wantCode(t, "Decrypt(re-encrypted blob, KeyId of the source)", err, kms.CodeIncorrectKey)
		// The source blob is unchanged and still decrypts.
		e.decrypt(t, blob, srcEC)
	})

	t.Run("context dropped", func(t *testing.T) {
		out, err := e.svc.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: srcEC, DestinationKeyId: dst})
		if err != nil {
			t.Fatalf("ReEncrypt() err = %v, want nil", err)
		}
		e.decrypt(t, out.CiphertextBlob, nil)
	})
}

func TestGenerateDataKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	ec := map[string]string{"file": "a.txt"}
	mat := e.describe(t, id).CurrentKeyMaterialId
	for _, tc := range []struct {
		name string
		n    *int32
		spec string
		want int
	}{
		{"NumberOfBytes 1", i32(1), "", 1},
		{"NumberOfBytes 64", i32(64), "", 64},
		{"NumberOfBytes 1024", i32(1024), "", 1024},
		{"AES_128", nil, "AES_128", 16},
		{"AES_256", nil, "AES_256", 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.svc.GenerateDataKey(t.Context(), &kms.GenerateDataKeyInput{KeyId: id, NumberOfBytes: tc.n, KeySpec: tc.spec, EncryptionContext: ec})
			if err != nil {
				t.Fatalf("GenerateDataKey() err = %v, want nil", err)
			}
			if len(out.Plaintext) != tc.want || out.KeyId != e.keyARN(id) || out.KeyMaterialId != mat {
				t.Errorf("GenerateDataKey() = %d bytes, KeyId %q, material %q; want %d, %q, %q", len(out.Plaintext), out.KeyId, out.KeyMaterialId, tc.want, e.keyARN(id), mat)
			}
			if tc.want >= 16 && bytes.Equal(out.Plaintext, make([]byte, tc.want)) {
				t.Error("the data key is all zeros")
			}
			if dec := e.decrypt(t, out.CiphertextBlob, ec); !bytes.Equal(dec.Plaintext, out.Plaintext) {
				t.Errorf("Decrypt(CiphertextBlob) = %x, want the data key %x", dec.Plaintext, out.Plaintext)
			}

			wo, err := e.svc.GenerateDataKeyWithoutPlaintext(t.Context(), &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: id, NumberOfBytes: tc.n, KeySpec: tc.spec, EncryptionContext: ec})
			if err != nil {
				t.Fatalf("GenerateDataKeyWithoutPlaintext() err = %v, want nil", err)
			}
			if wo.KeyId != e.keyARN(id) || wo.KeyMaterialId != mat {
				t.Errorf("GenerateDataKeyWithoutPlaintext() = %+v", wo)
			}
			if dec := e.decrypt(t, wo.CiphertextBlob, ec); len(dec.Plaintext) != tc.want {
				t.Errorf("Decrypt(GenerateDataKeyWithoutPlaintext blob) = %d bytes, want %d", len(dec.Plaintext), tc.want)
			}
		})
	}
}

func TestGenerateDataKeyPair(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	ec := map[string]string{"pair": "yes"}
	for _, spec := range []string{"RSA_2048", "ECC_NIST_P256"} {
		t.Run(spec, func(t *testing.T) {
			t.Parallel()
			out, err := e.svc.GenerateDataKeyPair(t.Context(), &kms.GenerateDataKeyPairInput{KeyId: id, KeyPairSpec: spec, EncryptionContext: ec})
			if err != nil {
				t.Fatalf("GenerateDataKeyPair(%s) err = %v, want nil", spec, err)
			}
			if out.KeyId != e.keyARN(id) || out.KeyPairSpec != spec || out.KeyMaterialId == "" {
				t.Errorf("GenerateDataKeyPair() = KeyId %q, spec %q, material %q", out.KeyId, out.KeyPairSpec, out.KeyMaterialId)
			}
			checkKeyPair(t, spec, out.PrivateKeyPlaintext, out.PublicKey)
			dec := e.decrypt(t, out.PrivateKeyCiphertextBlob, ec)
			if !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
				t.Error("PrivateKeyCiphertextBlob does not decrypt to PrivateKeyPlaintext")
			}

			wo, err := e.svc.GenerateDataKeyPairWithoutPlaintext(t.Context(), &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: id, KeyPairSpec: spec, EncryptionContext: ec})
			if err != nil {
				t.Fatalf("GenerateDataKeyPairWithoutPlaintext(%s) err = %v, want nil", spec, err)
			}
			if wo.KeyId != e.keyARN(id) || wo.KeyPairSpec != spec {
				t.Errorf("GenerateDataKeyPairWithoutPlaintext() = KeyId %q, spec %q", wo.KeyId, wo.KeyPairSpec)
			}
			dec = e.decrypt(t, wo.PrivateKeyCiphertextBlob, ec)
			checkKeyPair(t, spec, dec.Plaintext, wo.PublicKey)
		})
	}
}

// checkKeyPair checks that priv is a PKCS #8 private key of the spec whose
// public half is the SPKI pub.
func checkKeyPair(t *testing.T, spec string, priv, pub []byte) {
	t.Helper()
	key, err := x509.ParsePKCS8PrivateKey(priv)
	if err != nil {
		t.Fatalf("private key does not parse as PKCS #8: %v", err)
	}
	pk, err := x509.ParsePKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("public key does not parse as SPKI: %v", err)
	}
	switch spec {
	case "RSA_2048":
		k, ok := key.(*rsa.PrivateKey)
		if !ok || k.N.BitLen() != 2048 || !k.PublicKey.Equal(pk) {
			t.Errorf("RSA_2048 pair: private %T, public %T do not match", key, pk)
		}
	case "ECC_NIST_P256":
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k.Curve != elliptic.P256() || !k.PublicKey.Equal(pk) {
			t.Errorf("ECC_NIST_P256 pair: private %T, public %T do not match", key, pk)
		}
	}
}

func TestGenerateRandom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seen := map[string]bool{}
	for _, n := range []int32{1, 16, 32, 1024, 1024} {
		out, err := e.svc.GenerateRandom(t.Context(), &kms.GenerateRandomInput{NumberOfBytes: i32(n)})
		if err != nil {
			t.Fatalf("GenerateRandom(%d) err = %v, want nil", n, err)
		}
		if len(out.Plaintext) != int(n) {
			t.Errorf("GenerateRandom(%d) returned %d bytes", n, len(out.Plaintext))
		}
		if n >= 16 {
			if seen[string(out.Plaintext)] {
				t.Errorf("GenerateRandom(%d) repeated itself", n)
			}
			seen[string(out.Plaintext)] = true
		}
	}
}

func TestRSAEncryptDecrypt(t *testing.T) {
	t.Parallel()
	e, id := sharedRSA(t)
	pk, err := e.svc.GetPublicKey(t.Context(), &kms.GetPublicKeyInput{KeyId: e.keyARN(id)})
	if err != nil {
		t.Fatalf("GetPublicKey() err = %v, want nil", err)
	}
	pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg   string
		h     func() hash.Hash
		max   int
		other string
	}{
		{kms.AlgRSAOAEPSHA1, sha1.New, 256 - 2*20 - 2, kms.AlgRSAOAEPSHA256},
		{kms.AlgRSAOAEPSHA256, sha256.New, 256 - 2*32 - 2, kms.AlgRSAOAEPSHA1},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			for _, n := range []int{1, tc.max} {
				pt := randBytes(n)
				out, err := e.svc.Encrypt(t.Context(), &kms.EncryptInput{KeyId: id, Plaintext: pt, EncryptionAlgorithm: tc.alg})
				if err != nil {
					t.Fatalf("Encrypt(%d bytes, %s) err = %v, want nil", n, tc.alg, err)
				}
				if out.EncryptionAlgorithm != tc.alg || out.KeyId != e.keyARN(id) || len(out.CiphertextBlob) != 256 {
					t.Errorf("Encrypt() = alg %q, KeyId %q, %d bytes", out.EncryptionAlgorithm, out.KeyId, len(out.CiphertextBlob))
				}
				dec, err := e.svc.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, KeyId: id, EncryptionAlgorithm: tc.alg})
				if err != nil {
					t.Fatalf("Decrypt(%s) err = %v, want nil", tc.alg, err)
				}
				if !bytes.Equal(dec.Plaintext, pt) || dec.EncryptionAlgorithm != tc.alg || dec.KeyId != e.keyARN(id) {
					t.Errorf("Decrypt() = %+v, want the plaintext with %s", dec, tc.alg)
				}
				_, err = e.svc.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, KeyId: id, EncryptionAlgorithm: tc.other})
				wantCode(t, "Decrypt(other OAEP hash)", err, kms.CodeInvalidCiphertext)
			}
			// A ciphertext made with the public key outside the service.
			ct, err := rsa.EncryptOAEP(tc.h(), rand.Reader, pub.(*rsa.PublicKey), []byte("local"), nil)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := e.svc.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: ct, KeyId: "", EncryptionAlgorithm: tc.alg})
			if err == nil {
				t.Errorf("Decrypt(RSA ciphertext without KeyId) = %q, want an error", dec.Plaintext)
			}
			dec, err = e.svc.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: ct, KeyId: id, EncryptionAlgorithm: tc.alg})
			if err != nil || string(dec.Plaintext) != "local" {
				t.Errorf("Decrypt(local ciphertext) = %v, %v", dec, err)
			}
		})
	}
}

func TestJSONEncoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.clock.Advance(1500 * time.Millisecond) // a fractional timestamp
	id := e.symKey(t)
	e.alias(t, "alias/json", id)
	ctx := t.Context()

	// shape marshals v and decodes it generically, numbers kept as written.
	shape := func(v any) map[string]any {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T) err = %v", v, err)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		return m
	}
	wantNumber := func(what string, v any, want string) {
		t.Helper()
		n, ok := v.(json.Number)
		if !ok || n.String() != want {
			t.Errorf("%s = %#v (%T), want the number %s", what, v, v, want)
		}
	}
	wantBase64 := func(what string, v any, want []byte) {
		t.Helper()
		s, ok := v.(string)
		if !ok {
			t.Fatalf("%s = %#v (%T), want a base64 string", what, v, v)
		}
		got, err := base64.StdEncoding.DecodeString(s)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s = %q, want the standard base64 of the bytes", what, s)
		}
	}
	created := fmt.Sprintf("%d.5", epoch.Unix()+1)

	d, err := e.svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	km := shape(d)["KeyMetadata"].(map[string]any)
	wantNumber("KeyMetadata.CreationDate", km["CreationDate"], created)
	if _, ok := km["DeletionDate"]; ok {
		t.Errorf("KeyMetadata of an enabled key has a DeletionDate: %v", km)
	}
	for _, f := range []string{"AWSAccountId", "KeyId", "Arn", "Enabled", "Description", "KeyUsage", "KeyState", "Origin", "KeyManager", "KeySpec", "CustomerMasterKeySpec", "EncryptionAlgorithms"} {
		if _, ok := km[f]; !ok {
			t.Errorf("KeyMetadata JSON lacks %s: %v", f, km)
		}
	}
	if km["Enabled"] != true {
		t.Errorf("KeyMetadata.Enabled = %#v, want true", km["Enabled"])
	}

	// The output decodes back to the same time.
	b, _ := json.Marshal(d)
	var back kms.DescribeKeyOutput
	if err := json.Unmarshal(b, &back); err != nil || !back.KeyMetadata.CreationDate.Equal(d.KeyMetadata.CreationDate.Time) {
		t.Errorf("DescribeKeyOutput does not round-trip: %v, %v vs %v", err, back.KeyMetadata.CreationDate, d.KeyMetadata.CreationDate)
	}

	pt := []byte("json")
	enc, err := e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: pt})
	if err != nil {
		t.Fatal(err)
	}
	m := shape(enc)
	wantBase64("Encrypt CiphertextBlob", m["CiphertextBlob"], enc.CiphertextBlob)
	if m["KeyId"] != e.keyARN(id) || m["EncryptionAlgorithm"] != "SYMMETRIC_DEFAULT" {
		t.Errorf("EncryptOutput JSON = %v", m)
	}
	dec := e.decrypt(t, enc.CiphertextBlob, nil)
	wantBase64("Decrypt Plaintext", shape(dec)["Plaintext"], pt)

	gdk, err := e.svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256"})
	if err != nil {
		t.Fatal(err)
	}
	m = shape(gdk)
	wantBase64("GenerateDataKey Plaintext", m["Plaintext"], gdk.Plaintext)
	wantBase64("GenerateDataKey CiphertextBlob", m["CiphertextBlob"], gdk.CiphertextBlob)

	// The input side decodes base64 blobs too, as a server would.
	var din kms.DecryptInput
	if err := json.Unmarshal([]byte(`{"CiphertextBlob":"`+base64.StdEncoding.EncodeToString(enc.CiphertextBlob)+`"}`), &din); err != nil {
		t.Fatal(err)
	}
	if got := e.decrypt(t, din.CiphertextBlob, nil); !bytes.Equal(got.Plaintext, pt) {
		t.Errorf("Decrypt(JSON-decoded input) = %q, want %q", got.Plaintext, pt)
	}

	la, err := e.svc.ListAliases(ctx, &kms.ListAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	alias := shape(la)["Aliases"].([]any)[0].(map[string]any)
	wantNumber("AliasListEntry.CreationDate", alias["CreationDate"], created)
	wantNumber("AliasListEntry.LastUpdatedDate", alias["LastUpdatedDate"], created)
	if shape(la)["Truncated"] != false {
		t.Errorf("ListAliasesOutput.Truncated JSON = %v, want false", shape(la)["Truncated"])
	}

	if _, err := e.svc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: i32(90)}); err != nil {
		t.Fatal(err)
	}
	rs, err := e.svc.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	m = shape(rs)
	wantNumber("NextRotationDate", m["NextRotationDate"], fmt.Sprintf("%d.5", epoch.AddDate(0, 0, 90).Unix()+1))
	wantNumber("RotationPeriodInDays", m["RotationPeriodInDays"], "90")

	sk, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: i32(7)})
	if err != nil {
		t.Fatal(err)
	}
	m = shape(sk)
	deletion := fmt.Sprintf("%d.5", epoch.AddDate(0, 0, 7).Unix()+1)
	wantNumber("ScheduleKeyDeletion DeletionDate", m["DeletionDate"], deletion)
	wantNumber("ScheduleKeyDeletion PendingWindowInDays", m["PendingWindowInDays"], "7")
	d, err = e.svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	km = shape(d)["KeyMetadata"].(map[string]any)
	wantNumber("KeyMetadata.DeletionDate", km["DeletionDate"], deletion)
	wantNumber("KeyMetadata.PendingDeletionWindowInDays", km["PendingDeletionWindowInDays"], "7")

	lk, err := e.svc.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	if keys, ok := shape(lk)["Keys"].([]any); !ok || len(keys) != 1 {
		t.Errorf("ListKeysOutput JSON Keys = %v", shape(lk)["Keys"])
	}
	// Empty lists encode as [] rather than null, as AWS sends them.
	lr, err := e.svc.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: e.symKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := shape(lr)["Rotations"].([]any); !ok || len(r) != 0 {
		t.Errorf("ListKeyRotationsOutput JSON Rotations = %#v, want []", shape(lr)["Rotations"])
	}
}

// TestReEncryptRSA moves ciphertexts between a symmetric key and an RSA key,
// both ways.
func TestReEncryptRSA(t *testing.T) {
	t.Parallel()
	e, rsaID := sharedRSA(t)
	ctx := t.Context()
	out, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{Description: "symmetric beside the shared RSA key"})
	if err != nil {
		t.Fatal(err)
	}
	sym := out.KeyMetadata.KeyId
	pt := []byte("between key types")
	ec := map[string]string{"a": "b"}
	blob := e.encrypt(t, sym, pt, ec)

	toRSA, err := e.svc.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: ec,
		DestinationKeyId: rsaID, DestinationEncryptionAlgorithm: kms.AlgRSAOAEPSHA256})
	if err != nil {
		t.Fatalf("ReEncrypt(symmetric -> RSA) err = %v, want nil", err)
	}
	if toRSA.KeyId != e.keyARN(rsaID) || toRSA.SourceEncryptionAlgorithm != "SYMMETRIC_DEFAULT" || toRSA.DestinationEncryptionAlgorithm != kms.AlgRSAOAEPSHA256 {
		t.Errorf("ReEncrypt(symmetric -> RSA) = %+v", toRSA)
	}
	back, err := e.svc.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: toRSA.CiphertextBlob, SourceKeyId: rsaID,
		SourceEncryptionAlgorithm: kms.AlgRSAOAEPSHA256, DestinationKeyId: sym, DestinationEncryptionContext: ec})
	if err != nil {
		t.Fatalf("ReEncrypt(RSA -> symmetric) err = %v, want nil", err)
	}
	if back.SourceKeyId != e.keyARN(rsaID) || back.KeyId != e.keyARN(sym) || back.SourceEncryptionAlgorithm != kms.AlgRSAOAEPSHA256 {
		t.Errorf("ReEncrypt(RSA -> symmetric) = %+v", back)
	}
	if got := e.decrypt(t, back.CiphertextBlob, ec); !bytes.Equal(got.Plaintext, pt) {
		t.Errorf("round trip through RSA = %q, want %q", got.Plaintext, pt)
	}
	// An RSA destination without an RSA algorithm is refused.
	_, err = e.svc.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: ec, DestinationKeyId: rsaID})
	wantCode(t, "ReEncrypt(to RSA without an algorithm)", err, kms.CodeInvalidKeyUsage)

	// An alias keeps its key type: it cannot move from a symmetric key to
	// an RSA key.
	typed := "alias/typed-" + sym[:8] // the RSA env is shared across -count runs
	if _, err := e.svc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: typed, TargetKeyId: sym}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: typed, TargetKeyId: rsaID}); err == nil {
		t.Error("UpdateAlias(symmetric alias -> RSA key) err = nil, want an error")
	}
	if got := e.describe(t, typed).KeyId; got != sym {
		t.Errorf("alias/typed points to %s after a refused UpdateAlias, want %s", got, sym)
	}
}

// FuzzDecrypt feeds Decrypt damaged versions of real blobs: it must never
// panic, and nothing but the original blob may decrypt (the blob format is
// not malleable).
func FuzzDecrypt(f *testing.F) {
	e := newEnv(f)
	id, err := e.svc.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		f.Fatal(err)
	}
	ec := map[string]string{"fuzz": "yes"}
	var originals [][]byte
	for _, pt := range [][]byte{{0}, []byte("a small plaintext"), bytes.Repeat([]byte("x"), 4096)} {
		out, err := e.svc.Encrypt(context.Background(), &kms.EncryptInput{KeyId: id.KeyMetadata.KeyId, Plaintext: pt, EncryptionContext: ec})
		if err != nil {
			f.Fatal(err)
		}
		originals = append(originals, out.CiphertextBlob)
		f.Add(out.CiphertextBlob)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, blob []byte) {
		out, err := e.svc.Decrypt(context.Background(), &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
		if err == nil {
			for _, o := range originals {
				if bytes.Equal(o, blob) {
					return
				}
			}
			t.Fatalf("a blob that was never issued decrypts to %q", out.Plaintext)
		}
		switch kms.CodeOf(err) {
		case kms.CodeInvalidCiphertext, kms.CodeValidation, kms.CodeNotFound:
		default:
			t.Fatalf("Decrypt(damaged blob) err = %v, want InvalidCiphertextException", err)
		}
	})
}

package kms_test

import (
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// BenchmarkHotKey measures the cryptographic operations on a key the cache
// holds (the hot path of a server: no store transaction), by key id and by
// alias.
func BenchmarkHotKey(b *testing.B) {
	e := newEnv(b)
	id := e.symKey(b)
	e.alias(b, "alias/bench", id)
	ctx := b.Context()
	ec := map[string]string{"purpose": "bench"}
	n := int32(32)
	blob := e.encrypt(b, id, []byte("a data key of thirty-two bytes.."), ec)
	for _, ref := range []struct{ name, keyID string }{{"id", id}, {"alias", "alias/bench"}} {
		b.Run("op=GenerateDataKey/ref="+ref.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ref.keyID, NumberOfBytes: &n, EncryptionContext: ec}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("op=Decrypt/ref="+ref.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: ref.keyID, EncryptionContext: ec}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("op=DescribeKey", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHotRSAKey measures Decrypt under an RSA key the cache holds
// (its parsed private key included).
func BenchmarkHotRSAKey(b *testing.B) {
	e, id := sharedRSA(b)
	ctx := b.Context()
	enc, err := e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("secret"), EncryptionAlgorithm: kms.AlgRSAOAEPSHA256})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: id, EncryptionAlgorithm: kms.AlgRSAOAEPSHA256}); err != nil {
			b.Fatal(err)
		}
	}
}

package kms_test

import (
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// benchSpecs are the signing specs the Sign and Verify benchmarks measure,
// with the algorithm and message type of each.
var benchSpecs = []struct{ spec, alg string }{
	{kms.SpecECCNISTP256, kms.AlgECDSASHA256},
	{kms.SpecECCNISTP384, kms.AlgECDSASHA384},
	{kms.SpecECCNISTP521, kms.AlgECDSASHA512},
	{kms.SpecECCSECGP256K1, kms.AlgECDSASHA256},
	{kms.SpecECCNISTEdwards25519, kms.AlgEd25519SHA512},
	{kms.SpecRSA2048, kms.AlgRSAPSSSHA256},
	{kms.SpecRSA3072, kms.AlgRSAPSSSHA256},
	{kms.SpecRSA4096, kms.AlgRSAPSSSHA256},
	{kms.SpecMLDSA44, kms.AlgMLDSASHAKE256},
	{kms.SpecMLDSA65, kms.AlgMLDSASHAKE256},
	{kms.SpecMLDSA87, kms.AlgMLDSASHAKE256},
}

// BenchmarkSign and BenchmarkVerify measure Sign and Verify in process on
// a hot key (its parsed private key in the key cache), of a 32-byte
// message (RAW). bench/signing compares them with openssl speed.
func BenchmarkSign(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	msg := []byte("a message of thirty-two bytes...")
	for _, c := range benchSpecs {
		ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: kms.UsageSignVerify})
		if err != nil {
			b.Fatal(err)
		}
		in := &kms.SignInput{KeyId: ck.KeyMetadata.KeyId, Message: msg, SigningAlgorithm: c.alg}
		b.Run("spec="+c.spec, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.Sign(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	msg := []byte("a message of thirty-two bytes...")
	for _, c := range benchSpecs {
		ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: kms.UsageSignVerify})
		if err != nil {
			b.Fatal(err)
		}
		out, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: ck.KeyMetadata.KeyId, Message: msg, SigningAlgorithm: c.alg})
		if err != nil {
			b.Fatal(err)
		}
		in := &kms.VerifyInput{KeyId: ck.KeyMetadata.KeyId, Message: msg, Signature: out.Signature, SigningAlgorithm: c.alg}
		b.Run("spec="+c.spec, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.Verify(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

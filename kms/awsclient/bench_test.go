package awsclient_test

import (
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// BenchmarkServerSign and BenchmarkServerVerify measure Sign and Verify
// through aws-sdk-go-v2 and envelope's server on loopback (one client, one
// request at a time: the latency of a call, whose inverse is the calls per
// second of one connection).
func BenchmarkServerSign(b *testing.B) { benchServer(b, false) }

func BenchmarkServerVerify(b *testing.B) { benchServer(b, true) }

func benchServer(b *testing.B, verify bool) {
	_, remote := newEnvelopeServer(b)
	ctx := b.Context()
	msg := []byte("a message of thirty-two bytes...")
	for _, c := range []struct{ spec, alg string }{
		{kms.SpecECCNISTP256, kms.AlgECDSASHA256},
		{kms.SpecECCSECGP256K1, kms.AlgECDSASHA256},
		{kms.SpecECCNISTEdwards25519, kms.AlgEd25519SHA512},
		{kms.SpecRSA2048, kms.AlgRSAPSSSHA256},
		{kms.SpecMLDSA65, kms.AlgMLDSASHAKE256},
	} {
		ck, err := remote.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: kms.UsageSignVerify})
		if err != nil {
			b.Fatal(err)
		}
		id := ck.KeyMetadata.KeyId
		sig, err := remote.Sign(ctx, &kms.SignInput{KeyId: id, Message: msg, SigningAlgorithm: c.alg})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("spec="+c.spec, func(b *testing.B) {
			for b.Loop() {
				if verify {
					_, err = remote.Verify(ctx, &kms.VerifyInput{KeyId: id, Message: msg, Signature: sig.Signature, SigningAlgorithm: c.alg})
				} else {
					_, err = remote.Sign(ctx, &kms.SignInput{KeyId: id, Message: msg, SigningAlgorithm: c.alg})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

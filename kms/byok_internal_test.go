package kms

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// fuzzWrapping is one RSA-2048 wrapping key and root key shared by the
// fuzzers (RSA key generation is slow).
var fuzzWrapping = sync.OnceValues(func() (*rsa.PrivateKey, *Service) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	root, err := NewAESRootKey(key)
	if err != nil {
		panic(err)
	}
	return priv, &Service{root: root, region: DefaultRegion, account: DefaultAccountID, now: time.Now}
})

const fuzzKeyID = "0b7a6f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"

// FuzzImportToken: whatever ImportKeyMaterial is given as an import token
// is refused with InvalidImportTokenException, or opens as the token this
// service sealed; and the parser of an opened token's payload takes any
// bytes without panicking.
func FuzzImportToken(f *testing.F) {
	priv, s := fuzzWrapping()
	for _, alg := range wrappingAlgorithms {
		tok, err := s.sealImportToken(fuzzKeyID, &importParams{alg: alg, bits: 2048, notAfter: time.Now().Add(time.Hour).Truncate(time.Second), priv: priv})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok, false)
	}
	f.Add([]byte{1}, false)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0x30, 0x82}, true)
	f.Fuzz(func(t *testing.T, b []byte, payload bool) {
		if payload {
			if p, err := parseImportToken(b); err == nil && (p.priv == nil || p.alg == nil || p.priv.N.BitLen() != p.bits) {
				t.Fatalf("parseImportToken accepted %x as %+v", b, p)
			}
			return
		}
		p, err := s.openImportToken(fuzzKeyID, b)
		if err != nil {
			if CodeOf(err) != CodeInvalidImportToken && CodeOf(err) != CodeExpiredImportToken {
				t.Fatalf("openImportToken err = %v", err)
			}
			return
		}
		if p.priv.N.Cmp(priv.N) != 0 {
			t.Fatal("a token opened with a wrapping key this service never sealed")
		}
		// Not for another key.
		if _, err := s.openImportToken("1b7a6f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b", b); CodeOf(err) != CodeInvalidImportToken {
			t.Fatalf("a token of one key opened for another: %v", err)
		}
	})
}

// FuzzUnwrapKeyMaterial: EncryptedKeyMaterial of any bytes, for each
// wrapping algorithm, unwraps or fails without panicking; what RSA_AES_KEY_WRAP
// accepts carries a wrapped key of the right size.
func FuzzUnwrapKeyMaterial(f *testing.F) {
	priv, _ := fuzzWrapping()
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	for i, alg := range wrappingAlgorithms {
		w, err := WrapKeyMaterial(pub, alg.name, bytes.Repeat([]byte{byte(i)}, 32))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), w)
		f.Add(uint8(i), w[:len(w)-8])
	}
	f.Fuzz(func(t *testing.T, a uint8, wrapped []byte) {
		alg := wrappingAlgorithms[int(a)%len(wrappingAlgorithms)]
		m, err := unwrapKeyMaterial(&importParams{alg: alg, bits: 2048, priv: priv}, wrapped)
		if err != nil {
			if m != nil {
				t.Fatal("material returned with an error")
			}
			return
		}
		if alg.aesWrap && len(wrapped) < priv.Size()+16 {
			t.Fatalf("%s accepted %d bytes", alg.name, len(wrapped))
		}
	})
}

// FuzzCheckMaterial: material of any bytes for each spec is taken or
// refused without panicking, and what is taken has a 64-digit id that
// depends on the key it is for.
func FuzzCheckMaterial(f *testing.F) {
	specs := slices.Sorted(maps.Keys(keySpecs))
	for i, name := range specs {
		if name == SpecRSA3072 || name == SpecRSA4096 {
			continue // slow to make; RSA_2048 stands for them
		}
		m, err := keySpecs[name].generate()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), m)
	}
	f.Fuzz(func(t *testing.T, i uint8, m []byte) {
		ks := keySpecs[specs[int(i)%len(specs)]]
		got, err := checkMaterial(ks, fuzzKeyID, m)
		if err != nil {
			return
		}
		if len(got.id) != 64 || !bytes.Equal(got.data, m) {
			t.Fatalf("checkMaterial(%s) = %+v", ks.name, got)
		}
		other, err := checkMaterial(ks, "1b7a6f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b", m)
		if err != nil || other.id == got.id {
			t.Fatalf("the same material for another key: %v, id %s", err, other.id)
		}
	})
}

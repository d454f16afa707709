package kms

import (
	"bytes"
	"testing"
)

// FuzzSecp256k1Encodings: the secp256k1 PKCS #8 and SPKI parsers (which
// crypto/x509 does not provide for this curve) never panic, and what they
// accept is a key whose own encoding they accept again, to the same key.
func FuzzSecp256k1Encodings(f *testing.F) {
	for range 3 {
		der, err := generateSecp256k1()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
		k, err := parseSecp256k1PKCS8(der)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(k.spki)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		if k, err := parseSecp256k1PKCS8(der); err == nil {
			again, err := parseSecp256k1PKCS8(marshalSecp256k1PKCS8(k.priv))
			if err != nil || !bytes.Equal(again.spki, k.spki) {
				t.Fatalf("a parsed key does not survive its own encoding: %v", err)
			}
			pub, err := parseSecp256k1SPKI(k.spki)
			if err != nil || !pub.IsEqual(k.pub) {
				t.Fatalf("the SPKI of a parsed key does not parse back to its public key: %v", err)
			}
		}
		if pub, err := parseSecp256k1SPKI(der); err == nil && !pub.IsOnCurve() {
			t.Fatal("a point off the curve parsed")
		}
	})
}

// TestSecp256k1Encodings: the forms of the private key other tools write
// parse (curve parameters and public key optional), and wrong ones do not.
func TestSecp256k1Encodings(t *testing.T) {
	der, err := generateSecp256k1()
	if err != nil {
		t.Fatal(err)
	}
	k, err := parseSecp256k1PKCS8(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseSecp256k1PKCS8(append(bytes.Clone(der), 0)); err == nil {
		t.Error("trailing data accepted")
	}
	if _, err := parseSecp256k1PKCS8(der[:len(der)-1]); err == nil {
		t.Error("a truncated key accepted")
	}
	other, _ := generateSecp256k1()
	o, _ := parseSecp256k1PKCS8(other)
	// The same scalar with another key's public key: refused.
	mixed := bytes.Clone(der)
	pubAt := bytes.Index(mixed, k.pub.SerializeUncompressed())
	copy(mixed[pubAt:], o.pub.SerializeUncompressed())
	if _, err := parseSecp256k1PKCS8(mixed); err == nil {
		t.Error("a private key with another key's public key accepted")
	}
}

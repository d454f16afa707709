package ecdhwire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/internal/format"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCounterKDFNIST checks the KDF's PRF construction against NIST CAVP
// vectors for SP 800-108 KDF in counter mode with HMAC-SHA384 (counter
// before the fixed input, 32 bits).
func TestCounterKDFNIST(t *testing.T) {
	tests := []struct{ key, fixed, want string }{
		{
			"822c764a1b117085c10f0e689814d2bfbd9b43287f1a8c75d795a9831a286184c8586f3577b6e5bbce1637925e04fc47",
			"af346110b941b11d2189316c9fc2b9f4213775a5d7368d35412678a28fcd03b07f0549666efdf30c80f0ab5563720a56ef616a13bb8f7780036fc08e",
			"e0ae235cb82380527be76934a69622396d90e7bfa7e2d295e4375bcee0d1b101",
		},
		{
			"340e212d758e83cc5b89e4b56a86ee8c9631ae4e4bbaec15ac095ea4407bc7b634ad630dd0be85a91c08a8c7e1e1030b",
			"3cd5561ad12fadfce408e04180afcee38b83156b9e4be0779c4f0db9e26bfe5ccd43e15921977cd26b1db8288b80089eb7d1bbd7f59e1011b3e18b51",
			"05fa577b7081210e7c9de69db03d7c2026cf4469a90bfa29f1c2c10818d463e0",
		},
		{
			"4f3d744d3e449e0627bf4498743828f86e638f60620a7ed4a7c9b5b073691c9ec94728c58822e827f0f6ccf86dbc1cae",
			"301feeb25e6ca8503ecd821f1d3787aebfb3d0ec518bb31174f5209b2ac1f28ed3e698736bad10a18e3cbdb5dc27bbd12d058b36db0892f9cfd08300",
			"85ef9505b230565eccf2a64ab3de53e5a91c7b51",
		},
	}
	for _, tt := range tests {
		want := unhex(t, tt.want)
		if got := counterKDF(unhex(t, tt.key), unhex(t, tt.fixed), len(want)); !bytes.Equal(got, want) {
			t.Errorf("counterKDF = %x, want %x", got, want)
		}
	}
	// 64 bytes take two blocks: the second block's counter is 2.
	key, fixed := unhex(t, tests[0].key), unhex(t, tests[0].fixed)
	long := counterKDF(key, fixed, 64)
	if !bytes.Equal(long[:32], unhex(t, tests[0].want)) || bytes.Equal(long[:32], long[32:]) {
		t.Errorf("counterKDF(64) = %x: the first block must be the 32-byte answer and the second another", long)
	}
}

// TestFixedInfo pins FixedInfo's layout byte for byte.
func TestFixedInfo(t *testing.T) {
	p := ProviderInfo{Curve: P256, Sender: bytes.Repeat([]byte{0xaa}, 33), Recipient: bytes.Repeat([]byte{0xbb}, 33)}
	ec := []byte{0, 1, 0, 1, 'k', 0, 1, 'v'}
	want := "ecdh-key-derivation\x00p256\x00HMAC_SHA384\x00" + strings.Repeat("\xaa", 33) + strings.Repeat("\xbb", 33) + "\x00\x01\x00" + string(ec)
	if got := fixedInfo(p, ec); string(got) != want {
		t.Errorf("fixedInfo = %q,\nwant %q", got, want)
	}
	for c, name := range map[Curve]string{P384: "p384", P521: "p521"} {
		q := p
		q.Curve = c
		if got := fixedInfo(q, nil); !bytes.Contains(got, []byte("\x00"+name+"\x00")) {
			t.Errorf("fixedInfo(%s) = %q, want the curve named %q", c, got, name)
		}
	}
}

// officialVector is an entry of testdata/golden/ecdh/manifest.json.
type officialVector struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	Writer  struct {
		Type, Curve, Private, Recipient string
	} `json:"writer"`
}

const goldenDir = "../../../testdata/golden/ecdh"

func readKey(t testing.TB, path string) any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, path))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	if b.Type == "PUBLIC KEY" {
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecdhPriv(t testing.TB, path string) *ecdh.PrivateKey {
	t.Helper()
	k, err := readKey(t, path).(interface {
		ECDH() (*ecdh.PrivateKey, error)
	}).ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecdhPub(t testing.TB, path string) *ecdh.PublicKey {
	t.Helper()
	k, err := readKey(t, path).(interface {
		ECDH() (*ecdh.PublicKey, error)
	}).ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestOfficialVectorsByteForByte takes the encrypted data keys that the
// official AWS Encryption SDK for Go wrote (testdata/golden/ecdh), unwraps
// each with the recipient's private key, and wraps the data key again with
// the SDK's salt: the provider info and the ciphertext must come out the
// same, byte for byte (the wrap is deterministic once the salt is fixed:
// the IV is zero).
func TestOfficialVectorsByteForByte(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(goldenDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []officialVector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	seen := map[Curve]int{}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join(goldenDir, v.Message))
			if err != nil {
				t.Fatal(err)
			}
			h, err := format.ReadHeader(bytes.NewReader(msg), format.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(h.EDKs) != 1 || h.EDKs[0].ProviderID != RawProviderID {
				t.Fatalf("EDKs = %+v, want one raw-ecdh key", h.EDKs)
			}
			edk := h.EDKs[0]
			p, err := ParseProviderInfo(edk.ProviderInfo)
			if err != nil {
				t.Fatalf("ParseProviderInfo: %v", err)
			}
			if c, _ := ParseCurve(v.Writer.Curve); p.Curve != c {
				t.Errorf("curve %s, want %s", p.Curve, c)
			}
			seen[p.Curve]++
			if got := p.Marshal(); !bytes.Equal(got, edk.ProviderInfo) {
				t.Errorf("Marshal = %x, want %x", got, edk.ProviderInfo)
			}
			recipient := ecdhPub(t, v.Writer.Recipient)
			if !bytes.Equal(p.Recipient, Compress(recipient)) {
				t.Errorf("recipient %x, want %x", p.Recipient, Compress(recipient))
			}
			if v.Writer.Type == "raw-static" {
				sender := ecdhPriv(t, v.Writer.Private).PublicKey()
				if !bytes.Equal(p.Sender, Compress(sender)) {
					t.Errorf("sender %x, want %x", p.Sender, Compress(sender))
				}
			}
			priv := ecdhPriv(t, strings.TrimSuffix(v.Writer.Recipient, ".pub.pem")+".pem")
			sender, err := Decompress(p.Curve, p.Sender)
			if err != nil {
				t.Fatalf("Decompress(sender): %v", err)
			}
			z, err := priv.ECDH(sender)
			if err != nil {
				t.Fatal(err)
			}
			dk, err := Unwrap(z, p, h.Context, edk.Ciphertext, h.Suite.KeyLength)
			if err != nil {
				t.Fatalf("Unwrap: %v", err)
			}
			again, err := wrapWithSalt(z, p, h.Context, dk, edk.Ciphertext[:SaltLen])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, edk.Ciphertext) {
				t.Errorf("wrap with the SDK's salt = %x,\nwant %x", again, edk.Ciphertext)
			}
		})
	}
	for _, c := range Curves {
		if seen[c] == 0 {
			t.Errorf("no official vector on %s", c)
		}
	}
}

func TestCompressDecompress(t *testing.T) {
	for _, c := range Curves {
		for range 20 {
			k, err := c.ECDH().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			b := Compress(k.PublicKey())
			if len(b) != c.CompressedLen() || b[0] != 2 && b[0] != 3 {
				t.Fatalf("Compress = %x", b)
			}
			pub, err := Decompress(c, b)
			if err != nil {
				t.Fatalf("Decompress(%x): %v", b, err)
			}
			if !pub.Equal(k.PublicKey()) {
				t.Fatalf("Decompress(Compress(k)) != k on %s", c)
			}
		}
		k, _ := c.ECDH().GenerateKey(rand.Reader)
		good := Compress(k.PublicKey())
		var notOnCurve []byte
		for i := byte(0); notOnCurve == nil; i++ { // about half of all x have no y
			b := append([]byte(nil), good...)
			b[len(b)-1] ^= i
			if _, err := Decompress(c, b); err != nil {
				notOnCurve = b
			}
		}
		bad := map[string][]byte{
			"empty":        nil,
			"short":        good[:len(good)-1],
			"long":         append(append([]byte(nil), good...), 0),
			"prefix 04":    append([]byte{4}, good[1:]...),
			"prefix 00":    append([]byte{0}, good[1:]...),
			"x not on it":  notOnCurve,
			"x all ones":   append([]byte{2}, bytes.Repeat([]byte{0xff}, len(good)-1)...),
			"uncompressed": k.PublicKey().Bytes(),
		}
		for name, b := range bad {
			if pub, err := Decompress(c, b); err == nil {
				t.Errorf("%s: Decompress(%s %x) = %x, want an error", c, name, b, pub.Bytes())
			}
		}
	}
}

func TestParseProviderInfo(t *testing.T) {
	for _, c := range Curves {
		a, _ := c.ECDH().GenerateKey(rand.Reader)
		b, _ := c.ECDH().GenerateKey(rand.Reader)
		p := NewProviderInfo(c, a.PublicKey(), b.PublicKey())
		raw := p.Marshal()
		if want := map[Curve]int{P256: 75, P384: 107, P521: 143}[c]; len(raw) != want {
			t.Errorf("%s provider info is %d bytes, want %d", c, len(raw), want)
		}
		q, err := ParseProviderInfo(raw)
		if err != nil || q.Curve != c || !bytes.Equal(q.Sender, p.Sender) || !bytes.Equal(q.Recipient, p.Recipient) {
			t.Fatalf("ParseProviderInfo(Marshal(p)) = %+v, %v; want %+v", q, err, p)
		}
		// The recipient comes first.
		if !bytes.Equal(raw[5:5+c.CompressedLen()], p.Recipient) {
			t.Errorf("%s: recipient not first in %x", c, raw)
		}
	}
	good := NewProviderInfo(P256, mustKey(t).PublicKey(), mustKey(t).PublicKey()).Marshal()
	set := func(b []byte, at int, v uint32) []byte {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint32(b[at:], v)
		return b
	}
	bad := map[string][]byte{
		"empty":                    nil,
		"version only":             {1},
		"version 2":                append([]byte{2}, good[1:]...),
		"version 0":                append([]byte{0}, good[1:]...),
		"truncated":                good[:len(good)-1],
		"trailing byte":            append(append([]byte(nil), good...), 0),
		"recipient length 32":      set(good, 1, 32),
		"recipient length huge":    set(good, 1, 0xffffffff),
		"sender length 49":         set(good, 5+33, 49),
		"sender length 0":          set(good, 5+33, 0),
		"P-384 length, P-256 keys": set(good, 1, 49),
	}
	for name, b := range bad {
		if p, err := ParseProviderInfo(b); err == nil {
			t.Errorf("ParseProviderInfo(%s) = %+v, want an error", name, p)
		}
	}
}

func mustKey(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestUnwrapRefuses: every part of the wrap is bound: the salt, the
// commitment key, the wrapped key and tag, the shared secret, both public
// keys and the encryption context.
func TestUnwrapRefuses(t *testing.T) {
	a, b, c := mustKey(t), mustKey(t), mustKey(t)
	p := NewProviderInfo(P256, a.PublicKey(), b.PublicKey())
	z, _ := a.ECDH(b.PublicKey())
	ec := map[string]string{"purpose": "test"}
	dk := bytes.Repeat([]byte{7}, 32)
	ct, err := Wrap(z, p, ec, dk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Unwrap(z, p, ec, ct, 32); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Unwrap = %x, %v; want the data key", got, err)
	}
	if len(ct) != SaltLen+CommitmentLen+32+TagLen {
		t.Fatalf("ciphertext is %d bytes", len(ct))
	}
	again, _ := Wrap(z, p, ec, dk)
	if bytes.Equal(again[:SaltLen], ct[:SaltLen]) || bytes.Equal(again, ct) {
		t.Error("two wraps share a salt: the salt must be random")
	}
	flip := func(i int) []byte {
		x := append([]byte(nil), ct...)
		x[i] ^= 1
		return x
	}
	zc, _ := c.ECDH(b.PublicKey())
	swapped := ProviderInfo{Curve: P256, Sender: p.Recipient, Recipient: p.Sender}
	other := NewProviderInfo(P256, c.PublicKey(), b.PublicKey())
	tests := []struct {
		name    string
		z       []byte
		p       ProviderInfo
		ec      map[string]string
		ct      []byte
		keyLen  int
		wantErr error
	}{
		{"salt", z, p, ec, flip(0), 32, ErrCommitment},
		{"commitment", z, p, ec, flip(SaltLen + 3), 32, ErrCommitment},
		{"wrapped key", z, p, ec, flip(SaltLen + CommitmentLen), 32, ErrOpen},
		{"tag", z, p, ec, flip(len(ct) - 1), 32, ErrOpen},
		{"shared secret", zc, p, ec, ct, 32, ErrCommitment},
		{"keys swapped", z, swapped, ec, ct, 32, ErrCommitment},
		{"another sender key", z, other, ec, ct, 32, ErrCommitment},
		{"context", z, p, map[string]string{"purpose": "other"}, ct, 32, ErrCommitment},
		{"no context", z, p, nil, ct, 32, ErrCommitment},
		{"key length", z, p, ec, ct, 16, nil},
		{"truncated", z, p, ec, ct[:len(ct)-1], 32, nil},
		{"short secret", z[:31], p, ec, ct, 32, nil},
	}
	for _, tt := range tests {
		got, err := Unwrap(tt.z, tt.p, tt.ec, tt.ct, tt.keyLen)
		if err == nil || got != nil {
			t.Errorf("%s: Unwrap = %x, %v; want an error and no key", tt.name, got, err)
			continue
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Unwrap err = %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestParseCurve(t *testing.T) {
	for in, want := range map[string]Curve{
		"P-256": P256, "p-384": P384, "ECC_NIST_P521": P521, "p256": P256, "ecc_nist_p384": P384,
	} {
		if got, err := ParseCurve(in); err != nil || got != want {
			t.Errorf("ParseCurve(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P-224", "secp256k1", "ECC_SECG_P256K1", "X25519", "SM2"} {
		if got, err := ParseCurve(in); err == nil {
			t.Errorf("ParseCurve(%q) = %v, want an error", in, got)
		}
	}
	if _, ok := CurveOf(ecdh.X25519()); ok {
		t.Error("CurveOf(X25519) is allowed")
	}
}

// FuzzECDHProviderInfo: parsing any bytes never panics, and what parses
// serializes back to the same bytes (one encoding per provider info).
func FuzzECDHProviderInfo(f *testing.F) {
	for _, c := range Curves {
		a, _ := c.ECDH().GenerateKey(rand.Reader)
		b, _ := c.ECDH().GenerateKey(rand.Reader)
		f.Add(NewProviderInfo(c, a.PublicKey(), b.PublicKey()).Marshal())
	}
	f.Add([]byte{1, 0, 0, 0, 33})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProviderInfo(b)
		if err != nil {
			return
		}
		if got := p.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("Marshal(ParseProviderInfo(%x)) = %x", b, got)
		}
		for _, k := range [][]byte{p.Sender, p.Recipient} {
			if pub, err := Decompress(p.Curve, k); err == nil && !bytes.Equal(Compress(pub), k) {
				t.Fatalf("Compress(Decompress(%x)) = %x", k, Compress(pub))
			}
		}
		_ = p.Describe()
	})
}

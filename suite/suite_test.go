package suite

import (
	"crypto"
	"crypto/elliptic"
	"strings"
	"testing"
)

// want is the table of the ESDK suites, written out independently of the
// package's own table (see the notes' suite table and the ESDK spec's
// algorithm-suites.md).
var want = []struct {
	id         ID
	hex        string
	name       string
	version    int
	keyLen     int
	kdf        crypto.Hash
	sigHash    crypto.Hash
	curve      elliptic.Curve
	committing bool
}{
	{0x0014, "0x0014", "AES_128_GCM_IV12_TAG16_NO_KDF", 1, 16, 0, 0, nil, false},
	{0x0046, "0x0046", "AES_192_GCM_IV12_TAG16_NO_KDF", 1, 24, 0, 0, nil, false},
	{0x0078, "0x0078", "AES_256_GCM_IV12_TAG16_NO_KDF", 1, 32, 0, 0, nil, false},
	{0x0114, "0x0114", "AES_128_GCM_IV12_TAG16_HKDF_SHA256", 1, 16, crypto.SHA256, 0, nil, false},
	{0x0146, "0x0146", "AES_192_GCM_IV12_TAG16_HKDF_SHA256", 1, 24, crypto.SHA256, 0, nil, false},
	{0x0178, "0x0178", "AES_256_GCM_IV12_TAG16_HKDF_SHA256", 1, 32, crypto.SHA256, 0, nil, false},
	{0x0214, "0x0214", "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", 1, 16, crypto.SHA256, crypto.SHA256, elliptic.P256(), false},
	{0x0346, "0x0346", "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 24, crypto.SHA384, crypto.SHA384, elliptic.P384(), false},
	{0x0378, "0x0378", "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 32, crypto.SHA384, crypto.SHA384, elliptic.P384(), false},
	{0x0478, "0x0478", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 2, 32, crypto.SHA512, 0, nil, true},
	{0x0578, "0x0578", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", 2, 32, crypto.SHA512, crypto.SHA384, elliptic.P384(), true},
}

func mustByID(t *testing.T, id ID) *Suite {
	t.Helper()
	s, ok := ByID(id)
	if !ok {
		t.Fatalf("ByID(%s) ok = false, want true", id)
	}
	return s
}

func TestByID(t *testing.T) {
	for _, w := range want {
		t.Run(w.hex, func(t *testing.T) {
			s := mustByID(t, w.id)
			if s.ID != w.id {
				t.Errorf("ByID(%s).ID = %s", w.id, s.ID)
			}
			if s.Name != w.name {
				t.Errorf("ByID(%s).Name = %q, want %q", w.id, s.Name, w.name)
			}
			if s.MessageVersion != w.version {
				t.Errorf("ByID(%s).MessageVersion = %d, want %d", w.id, s.MessageVersion, w.version)
			}
			if s.KeyLength != w.keyLen {
				t.Errorf("ByID(%s).KeyLength = %d, want %d", w.id, s.KeyLength, w.keyLen)
			}
			if s.KDF != w.kdf {
				t.Errorf("ByID(%s).KDF = %v, want %v", w.id, s.KDF, w.kdf)
			}
			if s.SignatureHash != w.sigHash {
				t.Errorf("ByID(%s).SignatureHash = %v, want %v", w.id, s.SignatureHash, w.sigHash)
			}
			if got := s.Signed(); got != (w.sigHash != 0) {
				t.Errorf("ByID(%s).Signed() = %v, want %v", w.id, got, w.sigHash != 0)
			}
			if got := s.Curve(); got != w.curve {
				t.Errorf("ByID(%s).Curve() = %v, want %v", w.id, got, w.curve)
			}
			if s.Committing != w.committing {
				t.Errorf("ByID(%s).Committing = %v, want %v", w.id, s.Committing, w.committing)
			}
			// Committing suites and only they use header version 2.
			if s.Committing != (s.MessageVersion == 2) {
				t.Errorf("ByID(%s): Committing = %v but MessageVersion = %d", w.id, s.Committing, s.MessageVersion)
			}
		})
	}
}

func TestByIDUnknown(t *testing.T) {
	for _, id := range []ID{0, 0x0001, 0x0015, 0x0278, 0x0446, 0x0678, 0xFFFF} {
		if s, ok := ByID(id); ok || s != nil {
			t.Errorf("ByID(%s) = %v, %v; want nil, false", id, s, ok)
		}
	}
}

func TestAll(t *testing.T) {
	all := All()
	if len(all) != len(want) {
		t.Fatalf("len(All()) = %d, want %d", len(all), len(want))
	}
	for i, s := range all {
		if s.ID != want[i].id {
			t.Errorf("All()[%d].ID = %s, want %s (identifier order)", i, s.ID, want[i].id)
		}
	}
	// All returns a copy: changing the slice does not change the package's table.
	all[0] = nil
	if again := All(); again[0] == nil || again[0].ID != want[0].id {
		t.Errorf("All()[0] after modifying an earlier result = %v, want suite %s", again[0], want[0].id)
	}
}

func TestParse(t *testing.T) {
	type parseTest struct {
		in   string
		want ID
	}
	tests := []parseTest{
		{"0x0478", 0x0478},
		{"0478", 0x0478},
		{"0X0478", 0x0478},
		{"0x0578", 0x0578},
		{"0x0014", 0x0014},
		{"0046", 0x0046},
		{" 0x0378 ", 0x0378},
		{"AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 0x0478},
		{"aes_256_gcm_hkdf_sha512_commit_key", 0x0478},
		{"Aes_256_Gcm_Hkdf_Sha512_Commit_Key_Ecdsa_P384", 0x0578},
		{"AES_128_GCM_IV12_TAG16_NO_KDF", 0x0014},
		{"aes_128_gcm_iv12_tag16_hkdf_sha256_ecdsa_p256", 0x0214},
	}
	for _, w := range want {
		tests = append(tests, parseTest{w.hex, w.id}, parseTest{w.name, w.id}, parseTest{strings.ToLower(w.name), w.id})
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) err = %v, want nil", tt.in, err)
			}
			if s.ID != tt.want {
				t.Errorf("Parse(%q) = %s, want %s", tt.in, s.ID, tt.want)
			}
			if byID, _ := ByID(tt.want); s != byID {
				t.Errorf("Parse(%q) = %p, not the suite ByID returns (%p)", tt.in, s, byID)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"garbage",
		"0x",
		"478",     // three digits
		"0x478",   // three digits
		"00478",   // five digits
		"0x00478", // five digits
		"0x0479",  // well-formed, no such suite
		"0xFFFF",
		"0x10478",
		"0xZZZZ",
		"-478",
		"+478",
		"1144", // 0x0478 in decimal
		"0x 0478",
		"AES_256_GCM_HKDF_SHA512_COMMIT",
		"AES_256_GCM_HKDF_SHA512_COMMIT_KEY_",
		"AES-256-GCM-HKDF-SHA512-COMMIT-KEY",
	} {
		t.Run(in, func(t *testing.T) {
			s, err := Parse(in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", in, s)
			}
			if s != nil {
				t.Errorf("Parse(%q) returned suite %v with its error", in, s)
			}
			if !strings.Contains(err.Error(), "unknown algorithm suite") || !strings.Contains(err.Error(), "0x0578") {
				t.Errorf("Parse(%q) err = %q, want it to say the suite is unknown and give an example", in, err)
			}
		})
	}
}

// TestParseDoublePrefix: only one hex prefix is accepted.
func TestParseDoublePrefix(t *testing.T) {
	if s, err := Parse("0x0X0478"); err == nil {
		t.Errorf("Parse(%q) = %v, want an error (two hex prefixes)", "0x0X0478", s)
	}
}

func TestString(t *testing.T) {
	for _, w := range want {
		s := mustByID(t, w.id)
		if got := w.id.String(); got != w.hex {
			t.Errorf("ID(%d).String() = %q, want %q", uint16(w.id), got, w.hex)
		}
		if got, wantStr := s.String(), w.hex+" "+w.name; got != wantStr {
			t.Errorf("Suite.String() = %q, want %q", got, wantStr)
		}
		// The two forms a person sees parse back to the same suite.
		for _, in := range []string{w.id.String(), s.Name} {
			if p, err := Parse(in); err != nil || p != s {
				t.Errorf("Parse(%q) = %v, %v; want %v, nil", in, p, err, s)
			}
		}
	}
	if got := ID(0xABCD).String(); got != "0xABCD" {
		t.Errorf("ID(0xABCD).String() = %q, want %q", got, "0xABCD")
	}
	if got := ID(0).String(); got != "0x0000" {
		t.Errorf("ID(0).String() = %q, want %q", got, "0x0000")
	}
}

func TestConstants(t *testing.T) {
	if IVLength != 12 || TagLength != 16 {
		t.Errorf("IVLength, TagLength = %d, %d; want 12, 16", IVLength, TagLength)
	}
}

var policies = []struct {
	p          CommitmentPolicy
	cli, esdk  string
	defaultID  ID
	encCommit  bool // may write committing suites
	encLegacy  bool // may write non-committing suites
	decLegacy  bool // may read non-committing suites
	decCommits bool // may read committing suites
}{
	{RequireEncryptRequireDecrypt, "require-encrypt-require-decrypt", "REQUIRE_ENCRYPT_REQUIRE_DECRYPT", 0x0578, true, false, false, true},
	{RequireEncryptAllowDecrypt, "require-encrypt-allow-decrypt", "REQUIRE_ENCRYPT_ALLOW_DECRYPT", 0x0578, true, false, true, true},
	{ForbidEncryptAllowDecrypt, "forbid-encrypt-allow-decrypt", "FORBID_ENCRYPT_ALLOW_DECRYPT", 0x0378, false, true, true, true},
}

func TestCommitmentPolicyZeroValue(t *testing.T) {
	var p CommitmentPolicy
	if p != RequireEncryptRequireDecrypt {
		t.Errorf("zero CommitmentPolicy = %v, want %v", p, RequireEncryptRequireDecrypt)
	}
}

func TestCommitmentPolicyString(t *testing.T) {
	for _, tt := range policies {
		if got := tt.p.String(); got != tt.cli {
			t.Errorf("CommitmentPolicy(%d).String() = %q, want %q", int(tt.p), got, tt.cli)
		}
	}
	for _, p := range []CommitmentPolicy{-1, 3, 100} {
		want := "CommitmentPolicy(" + map[CommitmentPolicy]string{-1: "-1", 3: "3", 100: "100"}[p] + ")"
		if got := p.String(); got != want {
			t.Errorf("CommitmentPolicy(%d).String() = %q, want %q", int(p), got, want)
		}
	}
}

func TestParseCommitmentPolicy(t *testing.T) {
	for _, tt := range policies {
		for _, in := range []string{tt.cli, tt.esdk} {
			t.Run(in, func(t *testing.T) {
				p, err := ParseCommitmentPolicy(in)
				if err != nil {
					t.Fatalf("ParseCommitmentPolicy(%q) err = %v, want nil", in, err)
				}
				if p != tt.p {
					t.Errorf("ParseCommitmentPolicy(%q) = %v, want %v", in, p, tt.p)
				}
			})
		}
		// String and Parse round trip.
		if p, err := ParseCommitmentPolicy(tt.p.String()); err != nil || p != tt.p {
			t.Errorf("ParseCommitmentPolicy(%q) = %v, %v; want %v, nil", tt.p.String(), p, err, tt.p)
		}
	}
	for _, in := range []string{
		"",
		"garbage",
		"require",
		"require_encrypt_require_decrypt", // neither spelling
		"REQUIRE-ENCRYPT-REQUIRE-DECRYPT",
		"require-encrypt-require-decrypt ",
		"CommitmentPolicy(0)",
		"0",
	} {
		t.Run("reject/"+in, func(t *testing.T) {
			p, err := ParseCommitmentPolicy(in)
			if err == nil {
				t.Fatalf("ParseCommitmentPolicy(%q) = %v, want an error", in, p)
			}
			if !strings.Contains(err.Error(), "unknown commitment policy") || !strings.Contains(err.Error(), "require-encrypt-allow-decrypt") {
				t.Errorf("ParseCommitmentPolicy(%q) err = %q, want it to name the valid policies", in, err)
			}
		})
	}
}

func TestDefaultSuite(t *testing.T) {
	for _, tt := range policies {
		s := tt.p.DefaultSuite()
		if s == nil || s.ID != tt.defaultID {
			t.Errorf("%v.DefaultSuite() = %v, want %s", tt.p, s, tt.defaultID)
			continue
		}
		if !tt.p.AllowsEncrypt(s) {
			t.Errorf("%v.AllowsEncrypt(%v.DefaultSuite()) = false, want true", tt.p, tt.p)
		}
		if !tt.p.AllowsDecrypt(s) {
			t.Errorf("%v.AllowsDecrypt(%v.DefaultSuite()) = false, want true", tt.p, tt.p)
		}
		if !s.Signed() {
			t.Errorf("%v.DefaultSuite() = %v, want a signed suite", tt.p, s)
		}
	}
}

func TestPolicyMatrix(t *testing.T) {
	for _, tt := range policies {
		for _, w := range want {
			t.Run(tt.cli+"/"+w.hex, func(t *testing.T) {
				s := mustByID(t, w.id)
				wantEnc := tt.encLegacy
				wantDec := tt.decLegacy
				if w.committing {
					wantEnc, wantDec = tt.encCommit, tt.decCommits
				}
				if got := tt.p.AllowsEncrypt(s); got != wantEnc {
					t.Errorf("%v.AllowsEncrypt(%s) = %v, want %v", tt.p, s, got, wantEnc)
				}
				if got := tt.p.AllowsDecrypt(s); got != wantDec {
					t.Errorf("%v.AllowsDecrypt(%s) = %v, want %v", tt.p, s, got, wantDec)
				}
			})
		}
	}
}

func TestCommitmentPolicyValid(t *testing.T) {
	for _, tt := range policies {
		if !tt.p.Valid() {
			t.Errorf("%v.Valid() = false, want true", tt.p)
		}
	}
	for _, p := range []CommitmentPolicy{-1, 3, 4, 1 << 20} {
		if p.Valid() {
			t.Errorf("CommitmentPolicy(%d).Valid() = true, want false", int(p))
		}
	}
}

package suite

import "fmt"

// CommitmentPolicy decides which suites may be written and read. The zero
// value is [RequireEncryptRequireDecrypt], the ESDK's default.
type CommitmentPolicy int

const (
	// RequireEncryptRequireDecrypt writes and reads only committing suites.
	RequireEncryptRequireDecrypt CommitmentPolicy = iota
	// RequireEncryptAllowDecrypt writes committing suites and reads any suite,
	// for reading messages written before key commitment existed.
	RequireEncryptAllowDecrypt
	// ForbidEncryptAllowDecrypt writes only non-committing (version 1) suites
	// and reads any suite, for peers that cannot read version 2 messages.
	ForbidEncryptAllowDecrypt
)

var policyNames = [...]string{
	RequireEncryptRequireDecrypt: "require-encrypt-require-decrypt",
	RequireEncryptAllowDecrypt:   "require-encrypt-allow-decrypt",
	ForbidEncryptAllowDecrypt:    "forbid-encrypt-allow-decrypt",
}

// String returns the policy's name in the CLI's spelling,
// "require-encrypt-require-decrypt".
func (p CommitmentPolicy) String() string {
	if p < 0 || int(p) >= len(policyNames) {
		return fmt.Sprintf("CommitmentPolicy(%d)", int(p))
	}
	return policyNames[p]
}

// ParseCommitmentPolicy parses a policy name, in the CLI's spelling
// ("require-encrypt-allow-decrypt") or the ESDK's
// ("REQUIRE_ENCRYPT_ALLOW_DECRYPT").
func ParseCommitmentPolicy(s string) (CommitmentPolicy, error) {
	for p, name := range policyNames {
		if s == name || s == esdkName(name) {
			return CommitmentPolicy(p), nil
		}
	}
	return 0, fmt.Errorf("suite: unknown commitment policy %q (want require-encrypt-require-decrypt, require-encrypt-allow-decrypt or forbid-encrypt-allow-decrypt)", s)
}

func esdkName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// DefaultSuite returns the suite written when the caller names none:
// 0x0578 when the policy requires commitment, 0x0378 when it forbids it.
func (p CommitmentPolicy) DefaultSuite() *Suite {
	id := defaultCommitting
	if p == ForbidEncryptAllowDecrypt {
		id = defaultNonCommitting
	}
	s, _ := ByID(id)
	return s
}

// AllowsEncrypt reports whether the policy lets a message be written with s.
func (p CommitmentPolicy) AllowsEncrypt(s *Suite) bool {
	if !p.Valid() {
		return false
	}
	if p == ForbidEncryptAllowDecrypt {
		return !s.Committing
	}
	return s.Committing
}

// AllowsDecrypt reports whether the policy lets a message written with s be
// read.
func (p CommitmentPolicy) AllowsDecrypt(s *Suite) bool {
	return p.Valid() && (p != RequireEncryptRequireDecrypt || s.Committing)
}

// Valid reports whether p is one of the three defined policies.
func (p CommitmentPolicy) Valid() bool { return p >= 0 && int(p) < len(policyNames) }

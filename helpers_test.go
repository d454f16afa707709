package envelope_test

import (
	"github.com/envelopekms/envelope/keyring"
)

// fixedKey is a test wrapping key; tests that need a secret one make their own.
var fixedKey = []byte("0123456789abcdef0123456789abcdef")

func fixedKeyring() keyring.Keyring {
	kr, err := keyring.NewRawAES("envelope-test", "fixed", fixedKey)
	if err != nil {
		panic(err)
	}
	return kr
}

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/envelopekms/envelope/keyring"
)

const keyFormsHelp = "Key forms (-k):\n" + keyring.SpecHelp + `  Several -k: on encrypt, each wraps the data key and any one can decrypt;
  on decrypt, they are tried in order.
`

// unwrapPathError keeps the OS's reason and the path, without Go's
// "open" operation prefix.
func unwrapPathError(err error, path string) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%q: %v", path, pe.Err)
	}
	return err
}

// buildKeyring turns the -k values into one keyring.
func buildKeyring(specs []string, forDecrypt bool) (keyring.Keyring, error) {
	if len(specs) == 0 {
		verb := "encrypt"
		if forDecrypt {
			verb = "decrypt"
		}
		return nil, usageErrorf("no key given: pass -k KEY (for example -k aes:file=key.bin,namespace=myapp,name=key1); see \"envelope %s --help\"", verb)
	}
	var krs []keyring.Keyring
	for _, s := range specs {
		kr, err := keyring.FromSpec(s, forDecrypt)
		var se *keyring.SpecError
		if errors.As(err, &se) {
			return nil, &exitError{code: 2, err: err}
		}
		if err != nil {
			return nil, err
		}
		krs = append(krs, kr)
	}
	if len(krs) == 1 {
		return krs[0], nil
	}
	return keyring.NewMulti(krs[0], krs[1:]...), nil
}

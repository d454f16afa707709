package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/envelopekms/envelope/keyring"
)

const keyFormsHelp = `Key forms (-k):
  alias/NAME, a key id, or a key ARN
      a key in the embedded keystore ($ENVELOPE_HOME, default
      ~/.local/share/envelope; "envelope keys" manages it), or with --kms URL
      (or $ENVELOPE_KMS) in an envelope server or AWS KMS. A symmetric key
      wraps through KMS; an RSA key wraps offline with its public key
      (unsigned suite 0x0478, chosen automatically) and unwraps through KMS.
` + keyring.SpecHelp + `  Several -k: on encrypt, each wraps the data key and any one can decrypt;
  on decrypt, they are tried in order. No -k: encrypt uses alias/default
  (created with the keystore on first use); decrypt uses whichever keystore
  key the message names.
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

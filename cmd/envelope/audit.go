package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/envelopekms/envelope/kms/awsapi"
	"github.com/envelopekms/envelope/kms/keystore"
)

const auditHelp = `Usage: envelope audit verify [--key FILE] [LOG]

Check the chain of a server's audit log: each line carries an HMAC-SHA256
over the line before it, under the server's audit key, so an edited, inserted
or deleted line breaks the chain. Prints the number of lines when the chain
holds; otherwise names the first line that breaks it and exits 1.

LOG defaults to audit.log in the keystore directory ($ENVELOPE_HOME), and
the key to audit.key beside it.

Flags:
%s
Example:
  envelope audit verify /var/lib/envelope/audit.log
`

func (c *cli) audit(args []string) error {
	var keyFile string
	fs := c.newFlagSet("audit")
	fs.StringVar(&keyFile, "key", "", "the audit key `FILE` (default: audit.key beside the log, else in the keystore directory)")
	if ok, err := c.parse(fs, args, auditHelp); !ok {
		return err
	}
	args = fs.Args()
	if len(args) == 0 || args[0] != "verify" || len(args) > 2 {
		return usageErrorf("usage: envelope audit verify [--key FILE] [LOG]")
	}
	logFile := ""
	if len(args) == 2 {
		logFile = args[1]
	} else {
		dir, err := keystore.Dir()
		if err != nil {
			return err
		}
		logFile = filepath.Join(dir, "audit.log")
	}
	if keyFile == "" {
		keyFile = filepath.Join(filepath.Dir(logFile), "audit.key")
		if _, err := os.Stat(keyFile); err != nil {
			if dir, derr := keystore.Dir(); derr == nil {
				keyFile = filepath.Join(dir, "audit.key")
			}
		}
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return &hintError{fmt.Errorf("reading the audit key: %w", unwrapPathError(err, keyFile)), "give the server's audit key with --key"}
	}
	f, err := os.Open(logFile)
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", unwrapPathError(err, logFile))
	}
	defer f.Close()
	n, err := awsapi.VerifyAudit(f, key)
	var ce *awsapi.ChainError
	if errors.As(err, &ce) {
		return fmt.Errorf("audit log %s: the chain breaks at %v", logFile, ce)
	}
	if err != nil {
		return fmt.Errorf("audit log %s: %v", logFile, err)
	}
	fmt.Fprintf(c.stdout, "%s: %d lines, chain intact\n", logFile, n)
	return nil
}

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/envelopekms/envelope/kms/awsapi"
	"github.com/envelopekms/envelope/kms/keystore"
)

const auditHelp = `Usage: envelope audit verify [--store STORE] [--key FILE] [LOG]

Check a server's audit log. Each line carries an HMAC-SHA256 over the line
before it, under the server's audit key, so an edited, inserted or deleted
line breaks the chain; and the keystore keeps the log's high-water mark (the
last line the server had on disk, raised every second and at shutdown), so
lines cut from the end are found too, as are the lines a restarted server
found cut (its start record says so).

Prints the number of lines when the chain holds and no line is missing, with
what was checked; otherwise names the first line that breaks the chain, or
the lines missing, and exits 1.

The audit key and the marks come from the keystore (--store, default
$ENVELOPE_STORE, else $ENVELOPE_HOME), opened with its root key (the root
key flags, or ENVELOPE_PASSPHRASE for a passphrase keystore). --key checks
the chain with a key exported earlier instead (such as the audit.key file
older versions kept beside the log); the marks are then still read from the
keystore if it opens. LOG defaults to audit.log in the keystore directory
(a store that is not a directory needs LOG); "-" reads standard input.

A log whose file was moved away (rotated) goes on in a new file that
continues its chain: the new file alone shows the earlier lines missing;
check the files together, in order: cat audit.log.1 audit.log | envelope
audit verify -

Flags:
%s
Examples:
  envelope audit verify
  envelope audit verify --store /var/lib/envelope /var/log/envelope/audit.log
`

func (c *cli) audit(args []string) error {
	var keyFile string
	fs := c.newFlagSet("audit")
	c.store.register(fs)
	fs.StringVar(&keyFile, "key", "", "check the chain with the audit key in `FILE` (exported earlier) instead of the keystore's")
	if ok, err := c.parse(fs, args, auditHelp); !ok {
		return err
	}
	args = fs.Args()
	if len(args) == 0 || args[0] != "verify" || len(args) > 2 {
		return usageErrorf("usage: envelope audit verify [--store STORE] [--key FILE] [LOG]")
	}
	loc, err := c.location(c.store.store)
	if err != nil {
		return err
	}
	dir := loc.dir
	logFile := filepath.Join(dir, "audit.log")
	switch {
	case len(args) == 2:
		logFile = args[1]
	case dir == "":
		return usageErrorf("audit verify needs the LOG of a server of %s, a store that is not a keystore directory", loc.name)
	}
	ctx := c.ctx

	// The keystore first: its marks must be read before the log, which a
	// running server goes on writing.
	opts := keystore.Options{MustExist: true}
	if err := c.rootOptions(ctx, c.store.root, "", &opts); err != nil {
		return err
	}
	ks, ksErr := c.openKeystore(ctx, loc, opts)
	var marks []awsapi.AuditMark
	if ksErr == nil {
		defer ks.Close()
		ms, err := ks.AuditMarks(ctx)
		if err != nil {
			return fmt.Errorf("reading the audit logs' high-water marks: %w", err)
		}
		marks = make([]awsapi.AuditMark, 0, len(ms))
		for _, m := range ms {
			marks = append(marks, awsapi.AuditMark{LogID: m.ID, Seq: m.Seq, MAC: m.MAC})
		}
	}
	var notes []string
	var key []byte
	switch {
	case keyFile != "":
		if key, err = readAuditKeyFile(keyFile); err != nil {
			return err
		}
		if ksErr != nil {
			notes = append(notes, fmt.Sprintf("without the keystore (%v), lines cut from the end of the log cannot be detected", ksErr))
		}
	case ksErr == nil:
		key, err = ks.StoredAuditKey(ctx)
		if errors.Is(err, keystore.ErrNoAuditKey) {
			// A log of a server before the key moved into the keystore.
			if key, err = legacyAuditKey(logFile, dir); key == nil && err == nil {
				return &hintError{fmt.Errorf("keystore %s holds no audit key: no server has started on it yet", loc.name), "give the key the log was written with: --key FILE"}
			}
		}
		if err != nil {
			return fmt.Errorf("the audit key: %w", err)
		}
	default:
		key, err = legacyAuditKey(logFile, dir)
		if err != nil {
			return err
		}
		if key == nil {
			return &hintError{fmt.Errorf("opening the keystore for the audit key: %w", ksErr), "give the keystore with --store STORE, or the audit key with --key FILE"}
		}
		notes = append(notes, fmt.Sprintf("without the keystore (%v), lines cut from the end of the log cannot be detected", ksErr))
	}
	defer clear(key)

	// Read through an input that the end of ctx stops (files.go).
	var in *input
	if logFile == "-" {
		logFile = "standard input"
		in, err = c.openInput(nil)
	} else {
		in, err = c.openFile(logFile)
		if errors.Is(err, errIsDirectory) {
			return fmt.Errorf("opening the audit log: %q is a directory", logFile)
		}
		if err != nil {
			return fmt.Errorf("opening the audit log: %w", unwrapPathError(err, logFile))
		}
	}
	if err != nil {
		return err
	}
	defer in.Close()
	rep, err := awsapi.VerifyAuditLog(in.r, key, marks)
	var ce *awsapi.ChainError
	if errors.As(err, &ce) {
		return fmt.Errorf("audit log %s: the chain breaks at %v", logFile, ce)
	}
	if err != nil {
		return fmt.Errorf("audit log %s: %v", logFile, err)
	}
	if problems := rep.Problems(); len(problems) > 0 {
		return fmt.Errorf("audit log %s: %d lines; the chain holds, but lines are missing:\n  - %s", logFile, rep.Lines, strings.Join(problems, "\n  - "))
	}
	fmt.Fprintf(c.stdout, "%s: %d lines, chain intact\n", logFile, rep.Lines)
	for _, n := range append(rep.Notes(), notes...) {
		fmt.Fprintf(c.stdout, "  %s\n", n)
	}
	return nil
}

// readAuditKeyFile reads a 32-byte audit key file.
func readAuditKeyFile(file string) ([]byte, error) {
	key, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the audit key: %w", unwrapPathError(err, file))
	}
	if len(key) != 32 {
		clear(key)
		return nil, fmt.Errorf("audit key %s is %d bytes, want 32", file, len(key))
	}
	return key, nil
}

// legacyAuditKey reads the audit.key file that versions before the key
// moved into the keystore kept beside the log (or in the keystore
// directory dir, if there is one); nil, nil if there is none.
func legacyAuditKey(logFile, dir string) ([]byte, error) {
	var files []string
	if dir != "" {
		files = append(files, filepath.Join(dir, keystore.AuditKeyFileName))
	}
	if logFile != "-" {
		files = append([]string{filepath.Join(filepath.Dir(logFile), keystore.AuditKeyFileName)}, files...)
	}
	for _, file := range files {
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return readAuditKeyFile(file)
	}
	return nil, nil
}

// Command envelope encrypts and decrypts files and pipes with envelope
// encryption, in the AWS Encryption SDK message format, and manages and
// serves the keys of its KMS.
//
//	envelope encrypt [-k KEY]... [-c name=value]... [--suite ID] [--frame-size N] [-o OUT] [FILE]
//	envelope decrypt [-k KEY]... [-c name=value]... [-o OUT] [FILE]
//	envelope encrypt|decrypt [flags] [--suffix S] [--output-dir DIR] [--cache-max-age D] FILE...
//	envelope inspect [FILE]
//	envelope rewrap -k NEWKEY... [-o OUT] FILE
//	envelope keys COMMAND [flags] [ARGS]
//	envelope keygen aes|rsa|root [-o PATH]
//	envelope sign -k KEY [-o SIG] [FILE] | verify -k KEY --signature SIG [FILE]
//	envelope mac -k KEY [-o MAC] [FILE] | verify-mac -k KEY --mac MAC [FILE]
//	envelope serve [--addr HOST:PORT] [--store STORE] [flags]
//	envelope audit verify [LOG]
//	envelope keystore copy|backup [flags]
//	envelope policy check --principal ARN --action ACTION [--key KEY] [flags]
//
// Run "envelope help" or "envelope COMMAND --help" for the details.
//
// Each command has its file (crypt.go for encrypt and decrypt); what they
// share has its own: flags.go (flag sets, sizes), cryptflags.go (the flags
// of the message commands), files.go (inputs, outputs, signals), jobs.go
// (several FILEs), keyrings.go (-k), kms.go (the KMS connection), store.go
// (--store and the root key flags; the one place a store is opened),
// hints.go and report.go (errors as the user sees them).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

const usage = `envelope encrypts data under a fresh data key and stores that key, wrapped by
your master keys, inside the message (AWS Encryption SDK message format).

Usage:
  envelope encrypt  [-k KEY]... [-c name=value]... [--suite ID] [--frame-size N] [-o OUT] [FILE]
  envelope decrypt  [-k KEY]... [-c name=value]... [-o OUT] [FILE]
  envelope encrypt|decrypt [flags] [--suffix S] [--output-dir DIR] FILE...
  envelope inspect  [FILE]
  envelope rewrap   -k NEWKEY... [-o OUT] FILE
  envelope keys     create|list|describe|enable|disable|rotate|rotation|
                    schedule-deletion|cancel-deletion|alias|public-key|tag|untag|tags|
                    policy get|put|grant create|list|retire|revoke
  envelope keygen   aes|rsa|root [--bits N] [-o PATH] [--public-out PATH]
  envelope sign     -k KEY [--algorithm A] [--digest] [-o SIG] [--base64] [FILE]
  envelope verify   -k KEY --signature SIG [--algorithm A] [--digest] [--base64] [FILE]
  envelope mac      -k KEY [--algorithm A] [-o MAC] [--base64] [FILE]
  envelope verify-mac -k KEY --mac MAC [--algorithm A] [--base64] [FILE]
  envelope serve    [--addr HOST:PORT] [--store STORE] [--policy FILE] ...
  envelope audit    verify [LOG]
  envelope keystore copy --from STORE --to STORE [--dry-run] | backup -o DIR
  envelope policy   check --principal ARN --action ACTION [--key KEY] [-c name=value]... [--policy FILE]
  envelope help     [COMMAND]
  envelope version

FILE is read from standard input when absent or "-"; output goes to standard
output unless -o names a file, which is written atomically: it appears only
once the whole operation has succeeded, and an interrupted or killed command
leaves nothing behind. An existing file is replaced and keeps its mode
(--no-clobber refuses instead); a device, FIFO or socket is written into,
never replaced; a symbolic link is followed and its target written. An
output that is the input is refused. SIGINT or SIGTERM stops a command,
which then exits with status 130 or 143.

With no -k, encrypt uses the key alias/default of the embedded keystore
($ENVELOPE_HOME, default ~/.local/share/envelope), creating both on first
use, and decrypt finds the keystore key the message names. Every command
that opens the keystore takes --store STORE (a directory, sqlite:DIR or
postgres://…; default $ENVELOPE_STORE) and the root key flags
--root-key-file, --root-kms and --root-key-id (or ENVELOPE_PASSPHRASE).

Run "envelope COMMAND --help" for a command's flags and examples.
`

// cli holds a command's standard streams, so that tests can run it in process.
type cli struct {
	// ctx ends when the command is to stop: SIGINT or SIGTERM (see run).
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	// stderrTTY reports whether stderr is a terminal (for progress bars).
	stderrTTY bool
	// kms is the KMS connection, opened on first need.
	kms *kmsConn
	// kmsFlag is the --kms flag of the command, if it has one.
	kmsFlag string
	// store is where the keystore is and its root key source: the flags
	// of the command, if it has them (store.go).
	store storeFlags
	// secrets are those of the stores the command named (a password in a
	// URL): report scrubs them from what it prints.
	secrets []string
	// noClobber is the --no-clobber flag: outputs never replace a file.
	noClobber bool
}

func main() { os.Exit(run(os.Args[1:])) }

// run runs the command args under a context that SIGINT and SIGTERM
// cancel, and returns its exit status. Only main exits the process.
func run(args []string) int {
	c := &cli{ctx: context.Background(), stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stderrTTY: isTerminal(os.Stderr)}
	if len(args) > 0 && args[0] == "serve" {
		return c.main(args) // serve shuts down gracefully on signals itself
	}
	// SIGINT and SIGTERM cancel the context: the command stops reading,
	// discards its outputs (files.go) and returns, and main reports it.
	// Once one has come, the next has its default effect, so that a second
	// Ctrl-C ends a command that is slow to stop.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	c.ctx = ctx
	return c.main(args)
}

// interruption names the signal that ended ctx and gives the exit status
// for it: 128 + its number, as a shell reports a process it ended (130 for
// SIGINT, 143 for SIGTERM).
func interruption(ctx context.Context) (string, int) {
	cause := context.Cause(ctx)
	for _, s := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGINT, "SIGINT"}, {syscall.SIGTERM, "SIGTERM"}} {
		// signal.NotifyContext's cause reads "<signal> signal received".
		if cause != nil && strings.HasPrefix(cause.Error(), s.sig.String()+" ") {
			return s.name, 128 + int(s.sig)
		}
	}
	return "a signal", 130
}

// main runs one command and returns the exit status.
func (c *cli) main(args []string) int {
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	err := c.dispatch(args)
	if err != nil && c.kms != nil && c.kms.ks != nil {
		// A change the keystore's disk or file system refused: say so
		// plainly, whichever operation it was.
		if h := keystoreFSHint(err, c.kms.dir, false); h != nil {
			err = h
		}
	}
	c.closeKMS()
	if err == nil {
		return 0
	}
	if c.ctx.Err() != nil {
		// Whatever failed, failed because the command was stopped.
		sig, code := interruption(c.ctx)
		fmt.Fprintf(c.stderr, "envelope: interrupted by %s; the command stopped and wrote no output file\n", sig)
		return code
	}
	c.report(err)
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}

// dispatch runs the command args names.
func (c *cli) dispatch(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return &exitError{code: 2, err: errSilent}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "encrypt":
		return c.encrypt(rest)
	case "decrypt":
		return c.decrypt(rest)
	case "inspect":
		return c.inspect(rest)
	case "keygen":
		return c.keygen(rest)
	case "keys":
		return c.keys(rest)
	case "rewrap":
		return c.rewrap(rest)
	case "serve":
		return c.serve(rest)
	case "audit":
		return c.audit(rest)
	case "keystore":
		return c.keystore(rest)
	case "sign":
		return c.sign(rest)
	case "verify":
		return c.verify(rest)
	case "mac":
		return c.mac(rest)
	case "verify-mac":
		return c.verifyMac(rest)
	case "policy":
		return c.policy(rest)
	case "version", "--version":
		if len(rest) > 0 {
			return usageErrorf("version takes no arguments")
		}
		fmt.Fprintln(c.stdout, "envelope", version())
		return nil
	case "help", "-h", "--help":
		if len(rest) > 1 {
			return usageErrorf("help takes at most one command name")
		}
		if len(rest) > 0 && rest[0] != "help" {
			return c.dispatch([]string{rest[0], "--help"})
		}
		fmt.Fprint(c.stdout, usage)
		return nil
	}
	return usageErrorf("unknown command %q; run \"envelope help\" for the list", cmd)
}

// version returns the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

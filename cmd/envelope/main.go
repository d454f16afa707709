// Command envelope encrypts and decrypts files and pipes with envelope
// encryption, in the AWS Encryption SDK message format.
//
//	envelope encrypt [-k KEY]... [-c name=value]... [--suite ID] [--frame-size N] [-o OUT] [FILE]
//	envelope decrypt [-k KEY]... [-c name=value]... [-o OUT] [FILE]
//	envelope encrypt|decrypt [flags] [--suffix S] [--output-dir DIR] [--cache-max-age D] FILE...
//	envelope inspect [FILE]
//	envelope keygen aes|rsa [-o PATH]
//
// Run "envelope help" or "envelope COMMAND --help" for the details.
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
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
                    schedule-deletion|cancel-deletion|alias|public-key|tag|untag|tags
  envelope keygen   aes|rsa [--bits N] [-o PATH] [--public-out PATH]
  envelope serve    [--addr HOST:PORT] [--store DIR] [--policy FILE] ...
  envelope audit    verify [LOG]
  envelope help     [COMMAND]
  envelope version

FILE is read from standard input when absent or "-"; output goes to standard
output unless -o names a file, which is written atomically: it appears only
once the whole operation has succeeded.

With no -k, encrypt uses the key alias/default of the embedded keystore
($ENVELOPE_HOME, default ~/.local/share/envelope), creating both on first
use, and decrypt finds the keystore key the message names.

Run "envelope COMMAND --help" for a command's flags and examples.
`

// cli holds a command's standard streams, so that tests can run it in process.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// stderrTTY reports whether stderr is a terminal (for progress bars).
	stderrTTY bool
	// kms is the KMS connection, opened on first need.
	kms *kmsConn
	// kmsFlag is the --kms flag of the command, if it has one.
	kmsFlag string
}

// exitError carries an exit status other than 1 (usage errors exit 2).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stderrTTY: isTerminal(os.Stderr)}
	if len(args) > 0 && args[0] == "serve" {
		return c.main(args) // serve shuts down gracefully on signals itself
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		removeTemporaries()
		fmt.Fprintf(os.Stderr, "envelope: interrupted (%v); unfinished outputs were removed\n", s)
		os.Exit(130)
	}()
	return c.main(args)
}

// main runs one command and returns the exit status.
func (c *cli) main(args []string) int {
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
	c.report(err)
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}

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

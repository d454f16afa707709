//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestInterruptEveryCommand sends SIGINT to the commands that TestInterrupt
// (encrypt) does not cover, each while it waits or works: it must stop at
// once, exit with status 130, say so in one line, and leave no file behind.
// (serve shuts down on signals by itself: TestServe.)
func TestInterruptEveryCommand(t *testing.T) {
	e := newProcEnv(t)
	auditKey := filepath.Join(e.dir, "audit.key")
	if err := os.WriteFile(auditKey, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		// busy: the command computes when the signal comes (else it waits
		// for standard input, a pipe that stays silent).
		busy bool
	}{
		// A 16384-bit RSA key takes minutes to generate.
		{"keygen rsa", []string{"keygen", "rsa", "--bits", "16384", "-o", "new.pem", "--public-out", "new.pub.pem"}, true},
		{"audit verify", []string{"audit", "verify", "--key", auditKey, "-"}, false},
		{"inspect", []string{"inspect"}, false},
		{"decrypt", []string{"decrypt", "-k", e.key}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			cmd := e.command(tc.args...)
			cmd.Dir = out
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			if tc.busy {
				// Well past the start (which takes a few milliseconds of
				// CPU): inside the work.
				pollUntil(t, "envelope has computed for 300 ms", func() bool { return cpuTicks(pid) >= 30 })
			} else {
				// Every thread asleep and no CPU used across three polls:
				// it waits for its input.
				last, still := int64(-1), 0
				pollUntil(t, "envelope waits for its input", func() bool {
					ticks := cpuTicks(pid)
					if ticks == last && asleep(pid) {
						still++
					} else {
						still = 0
					}
					last = ticks
					return still >= 3
				})
			}
			cmd.Process.Signal(syscall.SIGINT)
			err = waitBounded(t, cmd, nil)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("after SIGINT: %v, want exit status 130; stderr:\n%s", err, stderr.String())
			}
			const want = "envelope: interrupted by SIGINT; the command stopped and wrote no output file\n"
			if stderr.String() != want {
				t.Errorf("stderr is %q; want the one line %q", stderr.String(), want)
			}
			if stdout.Len() > 0 {
				t.Errorf("the interrupted command printed %q", stdout.String())
			}
			if names := listDir(t, out); len(names) > 0 {
				t.Errorf("the interrupted command left %q in its directory", names)
			}
		})
	}
}

// cpuTicks returns the CPU time process pid has used, user and system, in
// clock ticks (a hundredth of a second), or -1.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th of them.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return u + s
}

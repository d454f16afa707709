package storetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
)

// The suite runs the test binary again as a second process, selected by
// these variables: the scenario, the keystore's address, the worker's name
// and how many times it works.
const (
	childEnv  = "ENVELOPE_STORETEST_CHILD"
	addrEnv   = "ENVELOPE_STORETEST_ADDR"
	workerEnv = "ENVELOPE_STORETEST_WORKER"
	countEnv  = "ENVELOPE_STORETEST_N"
)

// childTimeout bounds each step of a child process: starting, and its
// work once started.
const childTimeout = 60 * time.Second

// Child runs the child process the suite asked for, if this process is one:
// it returns the process's exit status and true; otherwise 0 and false, at
// once. Call it first thing in TestMain, with the Open of the [Backend]
// given to [Run].
//
// The child opens the keystore (after the start signal for the scenario
// "open", before it for the others), prints "ready", waits for a line on its
// standard input, runs its scenario and prints "ok ITEM" for each thing it
// committed.
func Child(open func(addr string) (kms.Store, error)) (code int, ok bool) {
	scenario := os.Getenv(childEnv)
	if scenario == "" {
		return 0, false
	}
	run, found := scenarios[scenario]
	n, err := strconv.Atoi(os.Getenv(countEnv))
	if !found || err != nil {
		fmt.Fprintf(os.Stderr, "storetest child: unknown scenario %q or count %q\n", scenario, os.Getenv(countEnv))
		return 2, true
	}
	addr, worker := os.Getenv(addrEnv), os.Getenv(workerEnv)
	var s kms.Store
	openStore := func() bool {
		s, err = open(addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "storetest child:", err)
			return false
		}
		return true
	}
	if scenario != "open" && !openStore() {
		return 2, true
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "storetest child: no start signal:", err)
		return 2, true
	}
	if scenario == "open" && !openStore() {
		return 2, true
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	done, err := run(ctx, s, worker, n)
	for _, item := range done {
		fmt.Println("ok", item)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "storetest child:", err)
		return 1, true
	}
	return 0, true
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // its standard output, line by line
	stderr bytes.Buffer
}

// startChild starts this test binary as a child process running scenario
// on the keystore at addr, and waits until it is ready. The process is
// killed if the test ends first.
func startChild(t *testing.T, scenario, addr, worker string, n int) *child {
	t.Helper()
	c := &child{lines: make(chan string, 1024)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+scenario, addrEnv+"="+addr, workerEnv+"="+worker, countEnv+"="+strconv.Itoa(n))
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting a child process: %v", err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	select {
	case line, ok := <-c.lines:
		if !ok || line != "ready" {
			c.cmd.Wait()
			t.Fatalf("child process (%s): %q instead of ready; stderr:\n%s", scenario, line, c.stderr.Bytes())
		}
	case <-time.After(childTimeout):
		t.Fatalf("child process (%s) not ready within %v; stderr:\n%s", scenario, childTimeout, c.stderr.Bytes())
	}
	return c
}

// start tells the child to run its scenario.
func (c *child) start(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatalf("starting the child's work: %v", err)
	}
	c.stdin.Close()
}

// wait waits for the child to end and returns what it committed; the test
// fails if it does not end well in time.
func (c *child) wait(t *testing.T) []string {
	t.Helper()
	var done []string
	timeout := time.After(childTimeout)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				err := c.cmd.Wait()
				if err != nil {
					t.Errorf("child process: %v; stderr:\n%s", err, c.stderr.Bytes())
				}
				return done
			}
			if item, ok := strings.CutPrefix(line, "ok "); ok {
				done = append(done, item)
			}
		case <-timeout:
			t.Fatalf("child process did not end within %v; stderr:\n%s", childTimeout, c.stderr.Bytes())
		}
	}
}

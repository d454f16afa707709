package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProtectProcess runs protectProcess in a child process (this test
// binary again) and has it report, from inside, what the kernel says:
// not dumpable, core file size limit 0.
func TestProtectProcess(t *testing.T) {
	if os.Getenv("ENVELOPE_TEST_PROTECT_CHILD") == "1" {
		// Allow core dumps first (as far as this process may), so that
		// the limit protectProcess sets is its own doing.
		var lim unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_CORE, &lim) == nil && unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}) != nil {
			unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: lim.Max, Max: lim.Max})
		}
		fmt.Println("before:", protectionState())
		if err := protectProcess(); err != nil {
			fmt.Println("protectProcess:", err)
			os.Exit(1)
		}
		fmt.Println("after:", protectionState())
		os.Exit(0)
	}
	// This process has not called protectProcess: the check can tell.
	if got := protectionState(); strings.HasPrefix(got, "dumpable=0") {
		t.Fatalf("the test process is already %s", got)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProtectProcess$")
	cmd.Env = append(os.Environ(), "ENVELOPE_TEST_PROTECT_CHILD=1")
	out, err := cmd.CombinedOutput()
	before, after, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil || after != "after: dumpable=0 core=0/0" {
		t.Errorf("after protectProcess the process reports %q (%v), want \"dumpable=0 core=0/0\"", out, err)
	}
	if before == "before: dumpable=0 core=0/0" {
		t.Errorf("the child could not allow core dumps before the check (%q): the check cannot tell", before)
	}
	t.Logf("%s; %s", before, after)
}

// protectionState reports the process's dumpable flag and core limit.
func protectionState() string {
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return "prctl: " + err.Error()
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		return "getrlimit: " + err.Error()
	}
	return fmt.Sprintf("dumpable=%d core=%d/%d", d, lim.Cur, lim.Max)
}

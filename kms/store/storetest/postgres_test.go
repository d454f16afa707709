package storetest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms/store/storetest"
)

// TestPostgresURLWithoutServer checks that a test needing PostgreSQL, with
// no server answering, skips saying how to run it — and fails under CI.
func TestPostgresURLWithoutServer(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPostgresURL$", "-test.v")
		cmd.Env = append(os.Environ(), storetest.PostgresEnv+"=postgres://nobody:pw@127.0.0.1:1/test", "CI="+ci)
		out, err := cmd.CombinedOutput()
		text := string(out)
		for _, want := range []string{"no test PostgreSQL at postgres://nobody:xxxxx@127.0.0.1:1/test", storetest.PostgresEnv, "pg_ctlcluster"} {
			if !strings.Contains(text, want) {
				t.Errorf("CI=%q: output lacks %q:\n%s", ci, want, text)
			}
		}
		if strings.Contains(text, ":pw@") {
			t.Errorf("CI=%q: output holds the password:\n%s", ci, text)
		}
		switch ci {
		case "":
			if err != nil || !strings.Contains(text, "--- SKIP: TestPostgresURL") {
				t.Errorf("without CI: err = %v, want the test skipped:\n%s", err, text)
			}
		default:
			if err == nil || !strings.Contains(text, "--- FAIL: TestPostgresURL") {
				t.Errorf("with CI=true: err = %v, want the test failed:\n%s", err, text)
			}
		}
	}
}

// TestPostgresURL checks that each call gives a new, empty, working
// database.
func TestPostgresURL(t *testing.T) {
	a, b := storetest.PostgresURL(t), storetest.PostgresURL(t)
	if a == b {
		t.Errorf("two calls gave the same database %s", a)
	}
}

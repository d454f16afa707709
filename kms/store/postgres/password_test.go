package postgres_test

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms/store/postgres"
)

// TestOpenWrongPassword runs a PostgreSQL server of its own that asks for
// passwords (SCRAM; the machine's test server trusts everyone), as the
// system's postgres user, in the test's directory, and checks that a wrong
// password fails Open with one line naming the user — and neither password.
func TestOpenWrongPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: creates and starts a PostgreSQL cluster")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	pg, err := user.Lookup("postgres")
	if len(bins) == 0 || err != nil || os.Geteuid() != 0 {
		msg := "this test runs a PostgreSQL cluster of its own: it needs PostgreSQL's initdb and pg_ctl (/usr/lib/postgresql/*/bin), the system user postgres, and root to run them as that user"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin := filepath.Dir(bins[len(bins)-1])
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)

	dir := t.TempDir()
	// The postgres user must reach the cluster's directory.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	const password, wrong = "Right-pa55word", "Wrong-pa55word"
	pwfile := filepath.Join(dir, "pw")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{data, pwfile} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	asPostgres := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	asPostgres("initdb", "-D", data, "-U", "envelope", "--auth=scram-sha-256", "--pwfile="+pwfile, "-E", "UTF8", "--no-sync", "--no-instructions")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	asPostgres("pg_ctl", "-D", data, "-w", "-l", filepath.Join(data, "log"),
		"-o", "-p "+port+" -k "+data+" -c listen_addresses=127.0.0.1 -c fsync=off", "start")
	t.Cleanup(func() { asPostgres("pg_ctl", "-D", data, "-w", "-m", "immediate", "stop") })

	url := func(pw string) string { return "postgres://envelope:" + pw + "@127.0.0.1:" + port + "/postgres" }
	s, err := postgres.Open(t.Context(), url(password))
	if err != nil {
		t.Fatalf("Open() with the right password err = %v, want nil", err)
	}
	s.Close()
	_, err = postgres.Open(t.Context(), url(wrong))
	if err == nil {
		t.Fatalf("Open() with a wrong password err = nil, want an error")
	}
	t.Logf("Open() err = %v", err)
	wantOneLine(t, err, wrong)
	for _, want := range []string{`password authentication failed for user "envelope"`, "envelope:xxxxx@127.0.0.1:" + port} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open() err = %q, want it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("Open() err = %q holds the right password", err)
	}
}

package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/storetest"
)

// The fixtures of the shared store suite, under the names the tests of
// this package use.
var (
	testKey   = storetest.Key
	testAlias = storetest.Alias
	putAll    = storetest.PutAll
	keyIDs    = storetest.KeyIDs
)

func update(t *testing.T, s *Store, fn func(kms.Tx) error) { t.Helper(); storetest.Update(t, s, fn) }
func view(t *testing.T, s *Store, fn func(kms.Tx) error)   { t.Helper(); storetest.View(t, s, fn) }

// backend is the SQLite store for the shared suite: a database file in a
// temporary directory.
var backend = storetest.Backend{
	New:  func(t testing.TB) string { return filepath.Join(t.TempDir(), "keystore.db") },
	Open: func(path string) (kms.Store, error) { return Open(path) },
}

// TestStore runs the shared store suite: the kms.Store contract and its
// guarantees under concurrency, from goroutines and from two processes.
func TestStore(t *testing.T) {
	storetest.Run(t, backend)
}

// TestReaderConnectionsRefuseWrites checks that the connections View uses
// refuse writes themselves, whatever the Tx says.
func TestReaderConnectionsRefuseWrites(t *testing.T) {
	s, _ := openTemp(t)
	update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
	if _, err := s.r.Exec(`DELETE FROM keys`); err == nil {
		t.Errorf("DELETE on a reader connection err = nil, want an error")
	}
	if got := storetest.Present(t, s, "k1"); slices.Contains(got, false) {
		t.Errorf("records after a write on a reader connection: present = %v, want all", got)
	}
}

// openTemp opens a new store in a temporary directory, closed when the test
// ends.
func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keystore.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) err = %v, want nil", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() err = %v, want nil", err)
		}
	})
	return s, path
}

// TestPathEscaping checks that a path with characters URIs treat specially
// is used as it is.
func TestPathEscaping(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%41 d&e=f")
	path := filepath.Join(dir, "key store?.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) err = %v", path, err)
	}
	update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
	if err := s.Close(); err != nil {
		t.Fatalf("Close() err = %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("Stat(%q) = %v, %v; want a non-empty database file", path, fi, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("temporary directory holds %d entries, want only %q", len(entries), filepath.Base(dir))
	}
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("Lstat(%q) err = %v", path, err)
	}
	return fi.Mode().Perm()
}

func TestPermissions(t *testing.T) {
	old, ok := setUmask(0)
	if !ok {
		t.Skip("no umask on " + runtime.GOOS)
	}
	t.Cleanup(func() { setUmask(old) })

	check := func(t *testing.T, path string, want fs.FileMode) {
		t.Helper()
		if got := mode(t, path); got != want {
			t.Errorf("mode of %q = %#o, want %#o", path, got, want)
		}
	}

	t.Run("new directories", func(t *testing.T) {
		base := t.TempDir()
		path := filepath.Join(base, "a", "b", "keystore.db")
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) err = %v", path, err)
		}
		update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
		check(t, filepath.Join(base, "a"), 0o700)
		check(t, filepath.Join(base, "a", "b"), 0o700)
		check(t, path, 0o600)
		check(t, path+"-wal", 0o600)
		check(t, path+"-shm", 0o600)
		if err := s.Close(); err != nil {
			t.Fatalf("Close() err = %v", err)
		}

		// Reopened, the sidecar files are created again with the same mode.
		s, err = Open(path)
		if err != nil {
			t.Fatalf("Open(%q) again err = %v", path, err)
		}
		defer s.Close()
		update(t, s, func(tx kms.Tx) error { return putAll(tx, "k2") })
		check(t, path, 0o600)
		check(t, path+"-wal", 0o600)
		check(t, path+"-shm", 0o600)
	})

	t.Run("existing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "keystore.db")
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) err = %v", path, err)
		}
		defer s.Close()
		check(t, dir, 0o755) // not ours: left alone
		check(t, path, 0o600)
		check(t, path+"-wal", 0o600)
		check(t, path+"-shm", 0o600)
	})

	t.Run("wide sidecar files", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keystore.db")
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) err = %v", path, err)
		}
		update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
		// Keep the sidecars alive past Close with a second store, and
		// widen them, as an older envelope or another tool might have.
		s2, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) second store err = %v", path, err)
		}
		for _, p := range []string{path + "-wal", path + "-shm"} {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s3, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) third store err = %v", path, err)
		}
		check(t, path+"-wal", 0o600)
		check(t, path+"-shm", 0o600)
		for _, s := range []*Store{s, s2, s3} {
			if err := s.Close(); err != nil {
				t.Errorf("Close() err = %v", err)
			}
		}
	})
}

// rawExec runs statements on the SQLite file at path without this package.
func rawExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestRefuse(t *testing.T) {
	random := make([]byte, 4096)
	rand.Read(random)

	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error
		wantMsg string
	}{
		{
			name: "other application's database",
			prepare: func(t *testing.T, path string) {
				rawExec(t, path, `CREATE TABLE notes (body TEXT)`, `INSERT INTO notes VALUES ('hello')`)
			},
			want:    ErrNotKeystore,
			wantMsg: "not an envelope keystore (an SQLite database of another application)",
		},
		{
			name: "database with another application id",
			prepare: func(t *testing.T, path string) {
				rawExec(t, path, `PRAGMA application_id = 1234`)
			},
			want:    ErrNotKeystore,
			wantMsg: "application id 0x4d2",
		},
		{
			name: "random bytes",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, random, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want:    ErrNotKeystore,
			wantMsg: "not an envelope keystore (not an SQLite database)",
		},
		{
			name: "short text file",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte("hello, world\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want:    ErrNotKeystore,
			wantMsg: "not an SQLite database",
		},
		{
			name: "newer schema",
			prepare: func(t *testing.T, path string) {
				s, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
				s.Close()
				rawExec(t, path, fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion+1))
			},
			want:    ErrSchemaTooNew,
			wantMsg: "upgrade envelope",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keystore.db")
			tt.prepare(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) err = nil, want %v", path, tt.want)
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Open(%q) err = %v, want %v mentioning %q", path, err, tt.want, tt.wantMsg)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("Open(%q) err = %v, want it to name the file", path, err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("Open(%q) changed the file it refused", path)
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		path := t.TempDir()
		if s, err := Open(path); err == nil {
			s.Close()
			t.Errorf("Open(%q) of a directory err = nil, want an error", path)
		}
	})
	t.Run("parent is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(file, "keystore.db")
		s, err := Open(path)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Open(%q) err = %v, want \"not a directory\"", path, err)
		}
	})
	t.Run("empty path", func(t *testing.T) {
		if s, err := Open(""); err == nil {
			s.Close()
			t.Errorf(`Open("") err = nil, want an error`)
		}
	})
}

// TestEmptyFile checks that an empty file, which an Open interrupted right
// after creating it leaves behind, becomes a keystore.
func TestEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keystore.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) of an empty file err = %v, want nil", path, err)
	}
	defer s.Close()
	update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
}

// The crash test runs this test binary again as a child process that
// writes to the keystore until it is killed.
const (
	crashDBEnv     = "ENVELOPE_SQLITE_CRASH_DB"
	crashPrefixEnv = "ENVELOPE_SQLITE_CRASH_PREFIX"
)

// helperProcess is the child process of TestCrash: it opens the store
// named by $ENVELOPE_SQLITE_CRASH_DB and commits keys in a loop, printing
// "ack ID" once each Update has returned nil.
// TestMain runs the crash helper instead of the tests when the crash test
// re-executes this binary.
func TestMain(m *testing.M) {
	if code, ok := storetest.Child(backend.Open); ok {
		os.Exit(code)
	}
	if os.Getenv(crashDBEnv) != "" {
		helperProcess()
		os.Exit(0)
	}
	for env, child := range children {
		if os.Getenv(env) != "" {
			os.Exit(child())
		}
	}
	os.Exit(m.Run())
}

// children are the other child processes tests re-execute this binary as,
// by the environment variable that selects each (registered by the files
// that need them); a child returns its exit status.
var children = map[string]func() int{}

func helperProcess() {
	path := os.Getenv(crashDBEnv)
	prefix := os.Getenv(crashPrefixEnv)
	s, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%06d", prefix, i)
		err := s.Update(context.Background(), func(tx kms.Tx) error {
			if err := putKeyCounted(tx, id); err != nil {
				return err
			}
			if i%5 == 0 {
				return tx.PutAlias(testAlias("alias/"+id, id))
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(3)
		}
		// os.Stdout is unbuffered: one write(2) per acknowledgment, in the
		// pipe once it returns, whenever the process dies afterwards.
		fmt.Fprintf(os.Stdout, "ack %s\n", id)
	}
}

// putKeyCounted writes a key with its material and counts it in the
// "count" meta value, so a partial transaction would show.
func putKeyCounted(tx kms.Tx, id string) error {
	n := 0
	b, err := tx.GetMeta("count")
	if err == nil {
		n, err = strconv.Atoi(string(b))
	}
	if err != nil && !errors.Is(err, kms.ErrNoRecord) {
		return err
	}
	if err := tx.PutKey(testKey(id)); err != nil {
		return err
	}
	if err := tx.PutMaterial(id, 1, []byte("sealed "+id)); err != nil {
		return err
	}
	return tx.PutMeta("count", []byte(strconv.Itoa(n+1)))
}

// TestCrash kills a writing process at random moments and checks that
// every transaction it saw committed survives, that none is half applied,
// and that the store opens cleanly each time.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kills child processes")
	}
	const rounds = 24
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, seed>>32))

	path := filepath.Join(t.TempDir(), "ks", "keystore.db")
	var acked []string
	totalAcks := 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDBEnv+"="+path, fmt.Sprintf("%s=r%02d", crashPrefixEnv, round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan string, 1024)
		go func() {
			defer close(acks)
			r := bufio.NewReader(stdout)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					// A line without its newline was not acknowledged.
					return
				}
				if id, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ack "); ok {
					acks <- id
				}
			}
		}()

		// Odd rounds kill at any moment from the start, Open included;
		// even rounds wait for the first acknowledgment, then kill in
		// the middle of the write loop.
		var got []string
		if round%2 == 0 {
			select {
			case id, ok := <-acks:
				if ok {
					got = append(got, id)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("round %d: no acknowledgment in 20s; stderr:\n%s", round, stderr.Bytes())
			}
			time.Sleep(time.Duration(rng.IntN(80_000)) * time.Microsecond)
		} else {
			time.Sleep(time.Duration(rng.IntN(150_000)) * time.Microsecond)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("round %d: kill: %v", round, err)
		}
		for id := range acks {
			got = append(got, id)
		}
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != -1 {
			t.Fatalf("round %d: child exited with code %d before it was killed; stderr:\n%s", round, code, stderr.Bytes())
		}
		acked = append(acked, got...)
		totalAcks += len(got)

		// The store opens cleanly and holds every acknowledged key, each
		// whole.
		s, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		var check string
		if err := s.w.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Errorf("round %d: integrity_check = %q, %v; want ok", round, check, err)
		}
		err = s.View(context.Background(), func(tx kms.Tx) error {
			for _, id := range acked {
				if _, err := tx.GetKey(id); err != nil {
					t.Errorf("round %d: acknowledged key %q: %v", round, id, err)
				}
			}
			keys, err := tx.ListKeys("", 0)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if _, err := tx.GetMaterial(k.ID, 1); err != nil {
					t.Errorf("round %d: key %q without its material: %v", round, k.ID, err)
				}
			}
			n := 0
			if b, err := tx.GetMeta("count"); err == nil {
				n, _ = strconv.Atoi(string(b))
			} else if !errors.Is(err, kms.ErrNoRecord) {
				return err
			}
			if n != len(keys) {
				t.Errorf("round %d: count = %d, keys = %d; a transaction was half applied", round, n, len(keys))
			}
			if len(keys) < len(acked) {
				t.Errorf("round %d: %d keys, fewer than the %d acknowledged", round, len(keys), len(acked))
			}
			return nil
		})
		if err != nil {
			t.Errorf("round %d: View: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	if totalAcks < rounds {
		t.Errorf("%d acknowledged transactions in %d rounds; the test exercised too little", totalAcks, rounds)
	}
	t.Logf("%d rounds, %d acknowledged transactions", rounds, totalAcks)
}

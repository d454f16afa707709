package kms_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/postgres"
	"github.com/envelopekms/envelope/kms/store/sqlite"
	"github.com/envelopekms/envelope/kms/store/storetest"
)

// backend is a kind of store the service's tests run on.
type backend struct {
	name string
	// location makes a new keystore and returns a function that opens a
	// store on it (closed when t ends), once per server.
	location func(t testing.TB) func() kms.Store
}

// backends are the stores the tests that care run on: SQLite, and
// PostgreSQL (skipped when there is no test server, failed under CI).
var backends = []backend{
	{"sqlite", func(t testing.TB) func() kms.Store {
		path := filepath.Join(t.TempDir(), "keystore.db")
		return func() kms.Store {
			s, err := sqlite.Open(path)
			return closing(t, s, err)
		}
	}},
	{"postgres", func(t testing.TB) func() kms.Store {
		url := storetest.PostgresURL(t)
		return func() kms.Store {
			s, err := postgres.Open(t.Context(), url)
			return closing(t, s, err)
		}
	}},
}

// closing fails t on err, and closes s when t ends.
func closing[S kms.Store](t testing.TB, s S, err error) kms.Store {
	t.Helper()
	if err != nil {
		t.Fatalf("opening a store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	return s
}

// env returns a service over a new keystore of b.
func (b backend) env(t testing.TB) *env {
	return newEnvOn(t, b.location(t)(), testRoot())
}

// servers returns n services over one new keystore of b, each with a store
// of its own, as n servers on one database would have.
func (b backend) servers(t testing.TB, n int) []*env {
	open := b.location(t)
	root := testRoot()
	var envs []*env
	for range n {
		envs = append(envs, newEnvOn(t, open(), root))
	}
	return envs
}

// onServers runs fn(server, worker) on perServer goroutines for each
// server, all at once, and reports the errors fn returns.
func onServers(t *testing.T, servers []*env, perServer int, fn func(e *env, worker string) error) {
	t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(servers)*perServer)
	for i, e := range servers {
		for g := range perServer {
			worker := fmt.Sprintf("s%d-g%d", i, g)
			wg.Go(func() {
				<-start
				if err := fn(e, worker); err != nil {
					errs <- fmt.Errorf("%s: %w", worker, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestServersRotateOneKey: two servers rotating the same key at once make
// exactly one new version each call, in order.
func TestServersRotateOneKey(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			servers := b.servers(t, 2)
			id := servers[0].symKey(t)
			const perServer, calls = 3, 4 // 24 rotations: under the quota of 25
			onServers(t, servers, perServer, func(e *env, worker string) error {
				for range calls {
					if _, err := e.svc.RotateKeyOnDemand(t.Context(), &kms.RotateKeyOnDemandInput{KeyId: id}); err != nil {
						return err
					}
				}
				return nil
			})
			if t.Failed() {
				return
			}
			total := 2 * perServer * calls
			n, err := kms.VersionsForTest(servers[1].svc, id)
			if err != nil || n != total+1 {
				t.Errorf("the key has %d versions (%v) after %d rotations, want %d: one each", n, err, total, total+1)
			}
			rots := servers[1].rotations(t, id)
			seen := map[string]bool{}
			for i, r := range rots {
				if r.RotationType != "ON_DEMAND" || seen[r.KeyMaterialId] {
					t.Errorf("rotation %d = %+v: want ON_DEMAND, material unique", i, r)
				}
				seen[r.KeyMaterialId] = true
			}
			if len(rots) != total {
				t.Errorf("ListKeyRotations = %d rotations, want %d", len(rots), total)
			}
			for v := 1; v <= n; v++ {
				if _, err := kms.MaterialForTest(servers[0].svc, id, v); err != nil {
					t.Errorf("version %d: %v", v, err)
				}
			}
			// Both servers encrypt under the last version and decrypt each
			// other's ciphertexts.
			for i, e := range servers {
				blob := e.encrypt(t, id, []byte("x"), nil)
				out := servers[1-i].decrypt(t, blob, nil)
				if want := rots[len(rots)-1].KeyMaterialId; out.KeyMaterialId != want {
					t.Errorf("server %d encrypted under material %s, want the last rotation's %s", i, out.KeyMaterialId, want)
				}
			}
			// Past the quota: refused on both.
			_, err = servers[0].svc.RotateKeyOnDemand(t.Context(), &kms.RotateKeyOnDemandInput{KeyId: id})
			if err != nil {
				t.Fatalf("the 25th rotation err = %v, want nil", err)
			}
			for i, e := range servers {
				_, err := e.svc.RotateKeyOnDemand(t.Context(), &kms.RotateKeyOnDemandInput{KeyId: id})
				wantCode(t, fmt.Sprintf("server %d: the 26th rotation", i), err, kms.CodeLimitExceeded)
			}
		})
	}
}

// TestServersCreateOneAlias: servers creating the same alias at once give
// one success, and AlreadyExistsException to every other.
func TestServersCreateOneAlias(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			servers := b.servers(t, 2)
			keys := []string{servers[0].symKey(t), servers[1].symKey(t)}
			const perServer, names = 3, 15
			var mu sync.Mutex
			winners := map[string][]string{}
			onServers(t, servers, perServer, func(e *env, worker string) error {
				key := keys[0]
				if worker[1] == '1' {
					key = keys[1]
				}
				for i := range names {
					name := fmt.Sprintf("alias/race-%02d", i)
					_, err := e.svc.CreateAlias(t.Context(), &kms.CreateAliasInput{AliasName: name, TargetKeyId: key})
					switch {
					case err == nil:
						mu.Lock()
						winners[name] = append(winners[name], worker+" "+key)
						mu.Unlock()
					case kms.CodeOf(err) == kms.CodeAlreadyExists:
					default:
						return fmt.Errorf("CreateAlias(%s) err = %v, want success or AlreadyExistsException", name, err)
					}
				}
				return nil
			})
			for i := range names {
				name := fmt.Sprintf("alias/race-%02d", i)
				if len(winners[name]) != 1 {
					t.Errorf("%s created by %d calls (%q), want exactly one", name, len(winners[name]), winners[name])
					continue
				}
				for j, e := range servers {
					if got := e.describe(t, name).KeyId; !slices.Contains(keys, got) || winners[name][0][len(winners[name][0])-len(got):] != got {
						t.Errorf("server %d: %s names %s, want the winner's (%s)", j, name, got, winners[name][0])
					}
				}
			}
		})
	}
}

// TestServersModifyOneKey: servers changing one key's tags, description
// and state at once lose no update.
func TestServersModifyOneKey(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			servers := b.servers(t, 2)
			id := servers[0].symKey(t)
			const perServer, calls = 4, 5 // 40 tags: under the limit of 50
			onServers(t, servers, perServer, func(e *env, worker string) error {
				for i := range calls {
					tag := kms.Tag{Key: fmt.Sprintf("%s-%d", worker, i), Value: worker}
					if _, err := e.svc.TagResource(t.Context(), &kms.TagResourceInput{KeyId: id, Tags: []kms.Tag{tag}}); err != nil {
						return err
					}
					if _, err := e.svc.UpdateKeyDescription(t.Context(), &kms.UpdateKeyDescriptionInput{KeyId: id, Description: tag.Key}); err != nil {
						return err
					}
					if _, err := e.svc.DisableKey(t.Context(), &kms.DisableKeyInput{KeyId: id}); err != nil {
						return err
					}
					if _, err := e.svc.EnableKey(t.Context(), &kms.EnableKeyInput{KeyId: id}); err != nil {
						return err
					}
				}
				return nil
			})
			if t.Failed() {
				return
			}
			for j, e := range servers {
				out, err := e.svc.ListResourceTags(t.Context(), &kms.ListResourceTagsInput{KeyId: id})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.Tags) != 2*perServer*calls {
					t.Errorf("server %d: %d tags, want %d: updates were lost", j, len(out.Tags), 2*perServer*calls)
				}
				if m := e.describe(t, id); m.KeyState != kms.StateEnabled {
					t.Errorf("server %d: state %s after each worker's last EnableKey, want Enabled", j, m.KeyState)
				}
			}
		})
	}
}

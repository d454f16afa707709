package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
)

// The tests of concurrent use: snapshots, many goroutines, several stores
// on one keystore, and the guarantees kms relies on from two processes.

// testReadersSeeSnapshots checks that a View completes while an Update is
// under way and sees the store as it was before it, and that a View keeps
// seeing the snapshot of its first read after Updates commit.
func testReadersSeeSnapshots(t *testing.T, b Backend) {
	s, _ := open(t, b)
	Update(t, s, func(tx kms.Tx) error { return PutAll(tx, "k1") })

	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(context.Background(), func(tx kms.Tx) error {
			if err := PutAll(tx, "k2"); err != nil {
				return err
			}
			select {
			case <-inside: // a second run of fn: the first was rolled back
			default:
				close(inside)
			}
			<-release
			return nil
		})
	}()
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.View(ctx, func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		if got := KeyIDs(keys); err != nil || !slices.Equal(got, []string{"k1"}) {
			t.Errorf("ListKeys during an Update = %q, %v; want [k1]", got, err)
		}
		return err
	})
	if err != nil {
		t.Errorf("View() during an Update err = %v, want nil", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Update() err = %v", err)
	}
	if got := Present(t, s, "k2"); slices.Contains(got, false) {
		t.Errorf("records after the Update: present = %v, want all", got)
	}

	// A View reads one snapshot from its first read to its end, whatever
	// commits meanwhile.
	View(t, s, func(tx kms.Tx) error {
		if _, err := tx.GetKey("k1"); err != nil {
			t.Fatalf("GetKey(k1) err = %v", err)
		}
		Update(t, s, func(tx kms.Tx) error {
			if err := tx.DeleteKey("k1"); err != nil {
				return err
			}
			return PutAll(tx, "k3")
		})
		if _, err := tx.GetKey("k1"); err != nil {
			t.Errorf("GetKey(k1) in a View begun before its deletion: err = %v, want the key", err)
		}
		if _, err := tx.GetMaterial("k1", 1); err != nil {
			t.Errorf("GetMaterial(k1) in a View begun before its deletion: err = %v, want it", err)
		}
		keys, err := tx.ListKeys("", 0)
		if got := KeyIDs(keys); err != nil || !slices.Equal(got, []string{"k1", "k2"}) {
			t.Errorf("ListKeys in a View begun before an Update = %q, %v; want [k1 k2]", got, err)
		}
		return nil
	})
	View(t, s, func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		if got := KeyIDs(keys); err != nil || !slices.Equal(got, []string{"k2", "k3"}) {
			t.Errorf("ListKeys in a new View = %q, %v; want [k2 k3]", got, err)
		}
		return nil
	})
}

// testConcurrency runs many goroutines on one store, half of them reading
// and half read-modify-writing one counter, and checks that no update is
// lost and every reader sees the updates of its goroutine.
func testConcurrency(t *testing.T, b Backend) {
	s, _ := open(t, b)
	const (
		goroutines = 16
		ops        = 60
	)
	ctx := context.Background()
	counter := func(tx kms.Tx) (int, error) {
		b, err := tx.GetMeta("counter")
		if errors.Is(err, kms.ErrNoRecord) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(string(b))
	}

	// Half the operations read, half write.
	isView := func(j int) bool { return j%2 == 0 }
	var wantKeys, wantAliases int
	for j := range ops {
		if !isView(j) {
			wantKeys++
			if j%3 == 1 {
				wantAliases++
			}
		}
	}
	wantKeys *= goroutines
	wantAliases *= goroutines

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			updates, last := 0, "" // this goroutine's committed updates
			for j := range ops {
				id := fmt.Sprintf("g%02d-%03d", g, j)
				var err error
				if isView(j) {
					// A reader sees every update this goroutine made.
					err = s.View(ctx, func(tx kms.Tx) error {
						c, err := counter(tx)
						if err != nil {
							return err
						}
						if c < updates {
							return fmt.Errorf("counter = %d after %d updates of one goroutine", c, updates)
						}
						if last != "" {
							if _, err := tx.GetKey(last); err != nil {
								return err
							}
							if _, err := tx.GetMaterial(last, 1); err != nil {
								return err
							}
						}
						_, err = tx.ListAliases(fmt.Sprintf("g%02d-%03d", g, 1), "", 10)
						return err
					})
				} else {
					err = s.Update(ctx, func(tx kms.Tx) error {
						c, err := counter(tx)
						if err != nil {
							return err
						}
						if err := tx.PutMeta("counter", []byte(strconv.Itoa(c+1))); err != nil {
							return err
						}
						if err := tx.PutKey(Key(id)); err != nil {
							return err
						}
						if err := tx.PutMaterial(id, 1, []byte(id)); err != nil {
							return err
						}
						if j%3 == 1 {
							return tx.PutAlias(Alias("alias/"+id, id))
						}
						return nil
					})
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d op %d: %w", g, j, err)
					return
				}
				if !isView(j) {
					updates, last = updates+1, id
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	View(t, s, func(tx kms.Tx) error {
		c, err := counter(tx)
		if err != nil || c != wantKeys {
			t.Errorf("counter = %d, %v; want %d (one per Update, none lost)", c, err, wantKeys)
		}
		keys, err := tx.ListKeys("", 0)
		if err != nil || len(keys) != wantKeys {
			t.Errorf("ListKeys = %d keys, %v; want %d", len(keys), err, wantKeys)
		}
		aliases, err := tx.ListAliases("", "", 0)
		if err != nil || len(aliases) != wantAliases {
			t.Errorf("ListAliases = %d aliases, %v; want %d", len(aliases), err, wantAliases)
		}
		for _, k := range keys {
			if _, err := tx.GetMaterial(k.ID, 1); err != nil {
				t.Errorf("GetMaterial(%q, 1) err = %v", k.ID, err)
			}
		}
		return nil
	})
}

// putKeyCounted writes a key with its material and counts it in the
// "count" meta value, so that a partial or lost transaction would show.
func putKeyCounted(tx kms.Tx, id string) error {
	n := 0
	b, err := tx.GetMeta("count")
	if err == nil {
		n, err = strconv.Atoi(string(b))
	}
	if err != nil && !errors.Is(err, kms.ErrNoRecord) {
		return err
	}
	if err := tx.PutKey(Key(id)); err != nil {
		return err
	}
	if err := tx.PutMaterial(id, 1, []byte("sealed "+id)); err != nil {
		return err
	}
	return tx.PutMeta("count", []byte(strconv.Itoa(n+1)))
}

// testStoresShare checks that two stores on one keystore, as two processes
// would have, write at once without deadlock or lost update.
func testStoresShare(t *testing.T, b Backend) {
	s1, addr := open(t, b)
	s2 := openAt(t, b, addr)

	const perGoroutine = 25
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		s := []kms.Store{s1, s2}[g%2]
		wg.Go(func() {
			for i := range perGoroutine {
				id := fmt.Sprintf("g%d-%02d", g, i)
				if err := s.Update(context.Background(), func(tx kms.Tx) error { return putKeyCounted(tx, id) }); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	View(t, s1, func(tx kms.Tx) error {
		b, err := tx.GetMeta("count")
		if err != nil || string(b) != strconv.Itoa(8*perGoroutine) {
			t.Errorf("count = %q, %v; want %d", b, err, 8*perGoroutine)
		}
		return nil
	})
}

// testConcurrentOpen checks that goroutines and processes opening a new
// location at once all end up with the one keystore (a database's schema
// created once, a file's once).
func testConcurrentOpen(t *testing.T, b Backend) {
	addr := b.New(t)
	const goroutines, processes = 4, 4
	var children []*child
	for i := range processes {
		children = append(children, startChild(t, "open", addr, fmt.Sprint("p", i), 1))
	}
	stores := make([]kms.Store, goroutines)
	errs := make([]error, goroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			<-start
			s, err := b.Open(addr)
			if err != nil {
				errs[i] = err
				return
			}
			stores[i] = s
			errs[i] = s.Update(context.Background(), func(tx kms.Tx) error { return PutAll(tx, fmt.Sprint("g", i)) })
		})
	}
	for _, c := range children {
		c.start(t)
	}
	close(start)
	wg.Wait()
	want := []string{}
	for i := range goroutines {
		if stores[i] != nil {
			defer stores[i].Close()
		}
		if errs[i] != nil {
			t.Errorf("goroutine %d: concurrent Open(%q) and Update: err = %v", i, addr, errs[i])
		}
		want = append(want, fmt.Sprint("g", i))
	}
	for i, c := range children {
		if got := c.wait(t); !slices.Equal(got, []string{fmt.Sprint("p", i)}) {
			t.Errorf("process %d reported %q, want [p%d]", i, got, i)
		}
		want = append(want, fmt.Sprint("p", i))
	}
	if t.Failed() {
		return
	}
	slices.Sort(want)
	s := openAt(t, b, addr)
	View(t, s, func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		if got := KeyIDs(keys); err != nil || !slices.Equal(got, want) {
			t.Errorf("ListKeys = %q, %v; want %q", got, err, want)
		}
		return nil
	})
}

// The guarantees under concurrency, each a scenario that goroutines of the
// test and a child process (see Child) run at once on one keystore.

const (
	rotKey  = "rotated"
	metaKey = "modified"
)

// scenarios are what workers run: each returns what it committed, in the
// order it committed them.
var scenarios = map[string]func(ctx context.Context, s kms.Store, worker string, n int) ([]string, error){
	"rotate": rotate,
	"alias":  raceAliases,
	"modify": modify,
	"open": func(ctx context.Context, s kms.Store, worker string, n int) ([]string, error) {
		err := s.Update(ctx, func(tx kms.Tx) error { return PutAll(tx, worker) })
		if err != nil {
			return nil, err
		}
		return []string{worker}, nil
	},
}

// rotate rotates rotKey n times as kms does: each Update reads the key,
// writes the material of version len(Versions)+1, appends the version and
// writes the key. It returns the material ids of its versions.
func rotate(ctx context.Context, s kms.Store, worker string, n int) ([]string, error) {
	var done []string
	for i := range n {
		mid := fmt.Sprintf("%s-%03d", worker, i)
		err := s.Update(ctx, func(tx kms.Tx) error {
			k, err := tx.GetKey(rotKey)
			if err != nil {
				return err
			}
			v := len(k.Versions) + 1
			if err := tx.PutMaterial(rotKey, v, []byte(mid)); err != nil {
				return err
			}
			k.Versions = append(k.Versions, kms.KeyVersion{Version: v, MaterialID: mid, Created: t0})
			return tx.PutKey(k)
		})
		if err != nil {
			return done, fmt.Errorf("rotation %d: %w", i, err)
		}
		done = append(done, mid)
	}
	return done, nil
}

// raceName is the i-th alias of the alias race.
func raceName(i int) string { return fmt.Sprintf("alias/race-%03d", i) }

// raceAliases tries to create n aliases as kms's CreateAlias does — each
// only if it does not exist — pointing to the worker's key "key-WORKER".
// It returns those it created.
func raceAliases(ctx context.Context, s kms.Store, worker string, n int) ([]string, error) {
	var won []string
	for i := range n {
		name := raceName(i)
		created := false
		err := s.Update(ctx, func(tx kms.Tx) error {
			created = false // fn may run more than once
			_, err := tx.GetAlias(name)
			if err == nil {
				return nil // lost the race
			}
			if !errors.Is(err, kms.ErrNoRecord) {
				return err
			}
			if err := tx.PutAlias(Alias(name, "key-"+worker)); err != nil {
				return err
			}
			created = true
			return nil
		})
		if err != nil {
			return won, fmt.Errorf("alias %s: %w", name, err)
		}
		if created {
			won = append(won, name)
		}
	}
	return won, nil
}

// modify changes metaKey's metadata n times as kms's modifications do
// (read the record, change it, write it): a tag of its own each time, the
// description and the state. It returns the tags it added.
func modify(ctx context.Context, s kms.Store, worker string, n int) ([]string, error) {
	var tags []string
	for i := range n {
		tag := fmt.Sprintf("%s-%03d", worker, i)
		err := s.Update(ctx, func(tx kms.Tx) error {
			k, err := tx.GetKey(metaKey)
			if err != nil {
				return err
			}
			k.Tags = append(k.Tags, kms.Tag{Key: tag, Value: worker})
			k.Description = "changed by " + tag
			if k.State == "Enabled" {
				k.State = "Disabled"
			} else {
				k.State = "Enabled"
			}
			return tx.PutKey(k)
		})
		if err != nil {
			return tags, fmt.Errorf("modification %d: %w", i, err)
		}
		tags = append(tags, tag)
	}
	return tags, nil
}

// race runs scenario on the keystore at addr with the given number of
// goroutines, spread over two stores, and one child process, each worker
// n times, all starting at once. It returns what each worker committed,
// by worker name ("g0", "g1"… and "p0" for the process).
func race(t *testing.T, b Backend, addr, scenario string, goroutines, n int) map[string][]string {
	t.Helper()
	stores := []kms.Store{openAt(t, b, addr), openAt(t, b, addr)}
	c := startChild(t, scenario, addr, "p0", n)
	results := make([][]string, goroutines)
	errs := make([]error, goroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			<-start
			results[g], errs[g] = scenarios[scenario](context.Background(), stores[g%2], fmt.Sprint("g", g), n)
		})
	}
	c.start(t)
	close(start)
	wg.Wait()
	out := map[string][]string{"p0": c.wait(t)}
	for g := range goroutines {
		if errs[g] != nil {
			t.Errorf("goroutine %d: %v", g, errs[g])
		}
		out[fmt.Sprint("g", g)] = results[g]
	}
	return out
}

// testConcurrentRotation: goroutines on two stores and a second process
// rotate one key at once; every rotation makes exactly one new version,
// numbered after the last: versions 1..N with no gap, no duplicate and
// none lost, each with its own material, each worker's in the order it
// made them.
func testConcurrentRotation(t *testing.T, b Backend) {
	s, addr := open(t, b)
	k := Key(rotKey)
	k.Versions = nil
	Update(t, s, func(tx kms.Tx) error { return tx.PutKey(k) })
	const goroutines, n = 6, 12
	results := race(t, b, addr, "rotate", goroutines, n)
	if t.Failed() {
		return
	}
	total := 0
	owner := map[string]string{} // material id → worker
	for w, mids := range results {
		if len(mids) != n {
			t.Errorf("worker %s made %d rotations, want %d", w, len(mids), n)
		}
		total += len(mids)
		for _, mid := range mids {
			owner[mid] = w
		}
	}
	View(t, s, func(tx kms.Tx) error {
		k, err := tx.GetKey(rotKey)
		if err != nil {
			t.Fatalf("GetKey err = %v", err)
		}
		if len(k.Versions) != total {
			t.Errorf("the key has %d versions after %d rotations, want one each", len(k.Versions), total)
		}
		seen := map[string]int{} // worker → its last rotation's index
		for i, v := range k.Versions {
			if v.Version != i+1 {
				t.Errorf("version %d is numbered %d: want 1..N with no gap or duplicate", i+1, v.Version)
			}
			m, err := tx.GetMaterial(rotKey, i+1)
			if err != nil || string(m) != v.MaterialID {
				t.Errorf("material of version %d = %q, %v; want %q (its rotation's)", i+1, m, err, v.MaterialID)
			}
			w, ok := owner[v.MaterialID]
			if !ok {
				t.Errorf("version %d (%s) is no acknowledged rotation's", i+1, v.MaterialID)
				continue
			}
			delete(owner, v.MaterialID)
			idx, _ := strconv.Atoi(v.MaterialID[strings.LastIndexByte(v.MaterialID, '-')+1:])
			if last, ok := seen[w]; ok && idx <= last {
				t.Errorf("worker %s's rotation %d comes after its rotation %d", w, idx, last)
			}
			seen[w] = idx
		}
		if _, err := tx.GetMaterial(rotKey, len(k.Versions)+1); !errors.Is(err, kms.ErrNoRecord) {
			t.Errorf("material past the last version: err = %v, want ErrNoRecord", err)
		}
		for mid, w := range owner {
			t.Errorf("rotation %s acknowledged to worker %s is lost", mid, w)
		}
		return nil
	})
}

// testAliasRace: goroutines on two stores and a second process create the
// same aliases, each only if it does not exist: each alias is created by
// exactly one of them, and points to that one's key.
func testAliasRace(t *testing.T, b Backend) {
	s, addr := open(t, b)
	const goroutines, n = 6, 25
	Update(t, s, func(tx kms.Tx) error {
		for _, w := range append([]string{"p0"}, workers(goroutines)...) {
			k := Key("key-" + w)
			if err := tx.PutKey(k); err != nil {
				return err
			}
		}
		return nil
	})
	results := race(t, b, addr, "alias", goroutines, n)
	if t.Failed() {
		return
	}
	winners := map[string][]string{}
	for w, names := range results {
		for _, name := range names {
			winners[name] = append(winners[name], w)
		}
	}
	View(t, s, func(tx kms.Tx) error {
		for i := range n {
			name := raceName(i)
			ws := winners[name]
			if len(ws) != 1 {
				t.Errorf("%s was created by %d workers (%q), want exactly one", name, len(ws), ws)
				continue
			}
			a, err := tx.GetAlias(name)
			if err != nil || a.KeyID != "key-"+ws[0] {
				t.Errorf("GetAlias(%q) = %+v, %v; want it pointing to the winner's key-%s", name, a, err, ws[0])
			}
		}
		return nil
	})
}

// testConcurrentMetadata: goroutines on two stores and a second process
// change one key's metadata at once, each read-modify-write adding a tag:
// every tag acknowledged is there (no lost update).
func testConcurrentMetadata(t *testing.T, b Backend) {
	s, addr := open(t, b)
	Update(t, s, func(tx kms.Tx) error { return tx.PutKey(Key(metaKey)) })
	const goroutines, n = 6, 12
	results := race(t, b, addr, "modify", goroutines, n)
	if t.Failed() {
		return
	}
	want := map[string]string{"team": "crypto"} // Key's own tag
	for w, tags := range results {
		for _, tag := range tags {
			want[tag] = w
		}
	}
	View(t, s, func(tx kms.Tx) error {
		k, err := tx.GetKey(metaKey)
		if err != nil {
			t.Fatalf("GetKey err = %v", err)
		}
		got := map[string]string{}
		for _, tag := range k.Tags {
			if _, dup := got[tag.Key]; dup {
				t.Errorf("tag %q appears twice", tag.Key)
			}
			got[tag.Key] = tag.Value
		}
		for tag, w := range want {
			if got[tag] != w {
				t.Errorf("tag %q = %q, want %q: an acknowledged update was lost", tag, got[tag], w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("the key has %d tags, want %d", len(got), len(want))
		}
		// The state toggled once per modification.
		wantState := "Enabled"
		if (len(want)-1)%2 == 1 {
			wantState = "Disabled"
		}
		if k.State != wantState {
			t.Errorf("state after %d toggles = %s, want %s", len(want)-1, k.State, wantState)
		}
		return nil
	})
}

func workers(goroutines int) []string {
	var ws []string
	for g := range goroutines {
		ws = append(ws, fmt.Sprint("g", g))
	}
	return ws
}

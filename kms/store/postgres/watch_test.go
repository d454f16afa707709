package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/storetest"
	"github.com/jackc/pgx/v5"
)

// changes collects what a Watch reports.
type changes struct {
	mu  sync.Mutex
	got []kms.Change
}

func (c *changes) add(ch kms.Change) {
	c.mu.Lock()
	c.got = append(c.got, ch)
	c.mu.Unlock()
}

// waitFor polls, until a deadline, for a change matching ok among those
// reported from index from on, and returns the index after it.
func (c *changes) waitFor(t *testing.T, from int, what string, ok func(kms.Change) bool) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		for i := from; i < len(c.got); i++ {
			if ok(c.got[i]) {
				c.mu.Unlock()
				return i + 1
			}
		}
		n := len(c.got)
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no change %s reported within 10s; reported: %+v", what, c.snapshot()[from:n])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *changes) snapshot() []kms.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// watch starts s's Watch into a changes, ended when t ends.
func watch(t *testing.T, w kms.Watcher) *changes {
	t.Helper()
	c := &changes{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Watch(ctx, c.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch() err = %v, want nil once its context ended", err)
		}
	})
	return c
}

func isAll(ch kms.Change) bool { return ch.All }

func TestWatch(t *testing.T) {
	url := storetest.PostgresURL(t)
	writer, watcher := openStore(t, url), openStore(t, url)
	c := watch(t, watcher)
	next := c.waitFor(t, 0, "{All} when Watch starts", isAll)

	// A write through the other store is reported, naming what changed.
	storetest.Update(t, writer, func(tx kms.Tx) error { return storetest.PutAll(tx, "k1") })
	next = c.waitFor(t, next, "naming k1 and alias/k1", func(ch kms.Change) bool {
		return !ch.All && slices.Equal(ch.KeyIDs, []string{"k1"}) && slices.Equal(ch.Aliases, []string{"alias/k1"})
	})

	// The watcher's own writes, meta values, and rolled-back updates are
	// not reported: the next report is the writer's next change.
	storetest.Update(t, watcher, func(tx kms.Tx) error { return storetest.PutAll(tx, "own") })
	storetest.Update(t, writer, func(tx kms.Tx) error { return tx.PutMeta("m", []byte("v")) })
	writer.Update(t.Context(), func(tx kms.Tx) error {
		if err := tx.PutKey(storetest.Key("rolled-back")); err != nil {
			return err
		}
		return fmt.Errorf("roll back")
	})
	storetest.Update(t, writer, func(tx kms.Tx) error {
		if err := tx.DeleteAlias("alias/k1"); err != nil {
			return err
		}
		return tx.DeleteKey("k1")
	})
	next = c.waitFor(t, next, "of the deletion of k1", func(ch kms.Change) bool { return len(ch.KeyIDs) > 0 || ch.All })
	if got := c.snapshot()[next-1]; got.All || !slices.Equal(got.KeyIDs, []string{"k1"}) || !slices.Equal(got.Aliases, []string{"alias/k1"}) {
		t.Errorf("the report after the watcher's own write, a meta write and a rollback = %+v, want only the deletion of k1", got)
	}

	// A change too large for one notification is reported as All.
	storetest.Update(t, writer, func(tx kms.Tx) error {
		for i := range 300 {
			if err := tx.PutKey(storetest.Key(fmt.Sprintf("a-rather-long-key-id-%04d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	next = c.waitFor(t, next, "{All} for 300 keys", isAll)

	// Losing the connection: Watch reconnects, reports All, and reports
	// changes again.
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	err = admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminating the listener's connection: %d terminated, %v; want 1", killed, err)
	}
	next = c.waitFor(t, next, "{All} after the listener's connection was lost", isAll)
	storetest.Update(t, writer, func(tx kms.Tx) error { return storetest.PutAll(tx, "k2") })
	c.waitFor(t, next, "naming k2 after reconnecting", func(ch kms.Change) bool { return slices.Equal(ch.KeyIDs, []string{"k2"}) })
}

// TestWatchInvalidates checks the whole path: a key disabled through one
// service is refused by another, which had it cached for an hour, as soon
// as the notification arrives.
func TestWatchInvalidates(t *testing.T) {
	url := storetest.PostgresURL(t)
	root := testRoot(t)
	svc1 := newService(t, openStore(t, url), root, time.Hour)
	store2 := openStore(t, url)
	svc2 := newService(t, store2, root, time.Hour)
	ctx := t.Context()
	out, err := svc1.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := out.KeyMetadata.KeyId

	started := make(chan struct{})
	var once sync.Once
	c := watch(t, kms.Watcher(watcherFunc(func(ctx context.Context, fn func(kms.Change)) error {
		return store2.Watch(ctx, func(ch kms.Change) {
			svc2.Invalidate(ch)
			fn(ch)
			once.Do(func() { close(started) })
		})
	})))
	<-started
	if _, err := svc2.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")}); err != nil {
		t.Fatalf("Encrypt() on server 2 err = %v", err)
	}
	if _, err := svc1.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, 1, "naming the disabled key", func(ch kms.Change) bool { return slices.Contains(ch.KeyIDs, id) })
	_, err = svc2.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
	if kms.CodeOf(err) != kms.CodeDisabled {
		t.Errorf("Encrypt() on server 2 after the notification err = %v, want DisabledException", err)
	}
}

type watcherFunc func(ctx context.Context, fn func(kms.Change)) error

func (f watcherFunc) Watch(ctx context.Context, fn func(kms.Change)) error { return f(ctx, fn) }

// TestWatchCannotStart checks that Watch fails at once, with a clear error,
// when it cannot listen when it starts.
func TestWatchCannotStart(t *testing.T) {
	url := storetest.PostgresURL(t)
	s := openStore(t, url)
	rawExec(t, adminURL(t, url), fmt.Sprintf(`DROP DATABASE %s WITH (FORCE)`, pgx.Identifier{dbName(t, url)}.Sanitize()))
	err := s.Watch(t.Context(), func(kms.Change) { t.Errorf("Watch called fn without a connection") })
	if err == nil || !strings.HasPrefix(err.Error(), "postgres: watch ") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Watch() on a dropped database err = %v, want a postgres: watch error saying it does not exist", err)
	}
}

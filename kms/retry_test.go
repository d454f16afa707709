package kms_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// retryingStore is a real store whose Update runs fn twice, as a store
// that retries transactions on conflicts (kms/store/postgres) does when the
// first run loses one: the first run's transaction is rolled back after fn
// returns, and fn runs again in a new one.
type retryingStore struct {
	kms.Store
	reruns atomic.Int64
}

var errLostConflict = errors.New("test: the transaction lost a conflict")

func (s *retryingStore) Update(ctx context.Context, fn func(kms.Tx) error) error {
	err := s.Store.Update(ctx, func(tx kms.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errLostConflict
	})
	if !errors.Is(err, errLostConflict) {
		return err
	}
	s.reruns.Add(1)
	return s.Store.Update(ctx, fn)
}

// TestUpdateRunTwice checks that every write of the service is safe to run
// again after a rolled-back run, as kms.Store allows Update to do: the
// outcome is that of one run.
func TestUpdateRunTwice(t *testing.T) {
	t.Parallel()
	inner, err := sqlite.Open(filepath.Join(t.TempDir(), "keystore.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	store := &retryingStore{Store: inner}
	e := newEnvOn(t, store, testRoot())
	ctx := t.Context()

	// versions checks that key id has n versions, each with its material.
	versions := func(id string, n int) {
		t.Helper()
		got, err := kms.VersionsForTest(e.svc, id)
		if err != nil || got != n {
			t.Errorf("key %s has %d versions (%v), want %d", id, got, err, n)
		}
		for v := 1; v <= got; v++ {
			if _, err := kms.MaterialForTest(e.svc, id, v); err != nil {
				t.Errorf("key %s version %d: material: %v", id, v, err)
			}
		}
	}

	id := e.symKey(t)
	versions(id, 1)
	out, err := e.svc.CreateKeyWithAlias(ctx, &kms.CreateKeyInput{Description: "with alias"}, "alias/twice")
	if err != nil {
		t.Fatalf("CreateKeyWithAlias() err = %v", err)
	}
	other := out.KeyMetadata.KeyId
	versions(other, 1)
	if got := e.describe(t, "alias/twice"); got.KeyId != other {
		t.Errorf("alias/twice names %s, want %s", got.KeyId, other)
	}
	if _, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecRSA2048}); err != nil {
		t.Fatalf("CreateKey(RSA_2048) err = %v", err)
	}

	e.alias(t, "alias/a", id)
	if _, err := e.svc.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: "alias/a", TargetKeyId: other}); err != nil {
		t.Fatalf("UpdateAlias() err = %v", err)
	}
	if got := e.describe(t, "alias/a"); got.KeyId != other {
		t.Errorf("alias/a names %s after UpdateAlias, want %s", got.KeyId, other)
	}
	if _, err := e.svc.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: "alias/a"}); err != nil {
		t.Fatalf("DeleteAlias() err = %v", err)
	}

	for range 3 {
		if _, err := e.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}); err != nil {
			t.Fatalf("RotateKeyOnDemand() err = %v", err)
		}
	}
	versions(id, 4)
	if _, err := e.svc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: i32(90)}); err != nil {
		t.Fatalf("EnableKeyRotation() err = %v", err)
	}
	e.clock.AdvanceDays(91)
	e.describe(t, id) // the automatic rotation, due, is done in a write transaction
	versions(id, 5)

	if _, err := e.svc.TagResource(ctx, &kms.TagResourceInput{KeyId: id, Tags: []kms.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}}); err != nil {
		t.Fatalf("TagResource() err = %v", err)
	}
	if _, err := e.svc.UntagResource(ctx, &kms.UntagResourceInput{KeyId: id, TagKeys: []string{"a"}}); err != nil {
		t.Fatalf("UntagResource() err = %v", err)
	}
	tags, err := e.svc.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: id})
	if err != nil || !slices.Equal(tags.Tags, []kms.Tag{{Key: "b", Value: "2"}}) {
		t.Errorf("ListResourceTags() = %+v, %v; want b=2", tags, err)
	}
	if _, err := e.svc.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: id, Description: "new"}); err != nil {
		t.Fatalf("UpdateKeyDescription() err = %v", err)
	}
	if _, err := e.svc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id}); err != nil {
		t.Fatalf("DisableKey() err = %v", err)
	}
	if _, err := e.svc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id}); err != nil {
		t.Fatalf("EnableKey() err = %v", err)
	}
	if m := e.describe(t, id); m.Description != "new" || m.KeyState != kms.StateEnabled {
		t.Errorf("DescribeKey() = %q, %s; want new, Enabled", m.Description, m.KeyState)
	}
	blob := e.encrypt(t, id, []byte("secret"), nil)
	if got := e.decrypt(t, blob, nil); string(got.Plaintext) != "secret" {
		t.Errorf("Decrypt() = %q, want secret", got.Plaintext)
	}

	if _, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: other, PendingWindowInDays: i32(7)}); err != nil {
		t.Fatalf("ScheduleKeyDeletion() err = %v", err)
	}
	if _, err := e.svc.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: other}); err != nil {
		t.Fatalf("CancelKeyDeletion() err = %v", err)
	}
	if _, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: other, PendingWindowInDays: i32(7)}); err != nil {
		t.Fatalf("ScheduleKeyDeletion() err = %v", err)
	}
	e.clock.AdvanceDays(8)
	if err := e.svc.Sweep(ctx); err != nil {
		t.Fatalf("Sweep() err = %v", err)
	}
	if _, err := e.svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: other}); kms.CodeOf(err) != kms.CodeNotFound {
		t.Errorf("DescribeKey(deleted key) err = %v, want NotFoundException", err)
	}
	if n := store.reruns.Load(); n < 15 {
		t.Errorf("only %d Updates ran twice; the test exercised too little", n)
	}
}

package kms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
)

// issued is a blob and what it must decrypt to.
type issued struct {
	blob     []byte
	ec       map[string]string
	pt       []byte
	material string // KeyMaterialId it was made with
}

func (e *env) checkIssued(t *testing.T, all []issued) {
	t.Helper()
	for i, b := range all {
		dec := e.decrypt(t, b.blob, b.ec)
		if !bytes.Equal(dec.Plaintext, b.pt) || dec.KeyMaterialId != b.material {
			t.Errorf("blob %d decrypts to %x with material %s, want %x with %s", i, dec.Plaintext, dec.KeyMaterialId, b.pt, b.material)
		}
	}
}

func (e *env) issue(t *testing.T, id string, n int) issued {
	t.Helper()
	out, err := e.svc.GenerateDataKey(t.Context(), &kms.GenerateDataKeyInput{KeyId: id, NumberOfBytes: i32(32), EncryptionContext: map[string]string{"n": fmt.Sprint(n)}})
	if err != nil {
		t.Fatalf("GenerateDataKey() err = %v, want nil", err)
	}
	return issued{blob: out.CiphertextBlob, ec: map[string]string{"n": fmt.Sprint(n)}, pt: out.Plaintext, material: out.KeyMaterialId}
}

func (e *env) rotations(t *testing.T, id string) []kms.RotationsListEntry {
	t.Helper()
	out, err := e.svc.ListKeyRotations(t.Context(), &kms.ListKeyRotationsInput{KeyId: id})
	if err != nil {
		t.Fatalf("ListKeyRotations() err = %v, want nil", err)
	}
	return out.Rotations
}

func TestRotateOnDemand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.symKey(t)
	var all []issued
	materials := []string{e.describe(t, id).CurrentKeyMaterialId}
	for r := range 6 {
		b := e.issue(t, id, r)
		if b.material != materials[len(materials)-1] {
			t.Fatalf("after %d rotations, GenerateDataKey used material %s, want the newest %s", r, b.material, materials[len(materials)-1])
		}
		all = append(all, b)
		// Decrypt reports the material the blob was made with.
		if got := e.decrypt(t, b.blob, b.ec).KeyMaterialId; got != b.material {
			t.Fatalf("Decrypt().KeyMaterialId = %s, want %s", got, b.material)
		}
		if r == 5 {
			break
		}
		if _, err := e.svc.RotateKeyOnDemand(t.Context(), &kms.RotateKeyOnDemandInput{KeyId: e.keyARN(id)}); err != nil {
			t.Fatalf("RotateKeyOnDemand() err = %v, want nil", err)
		}
		cur := e.describe(t, id).CurrentKeyMaterialId
		if slices.Contains(materials, cur) {
			t.Fatalf("rotation %d reused material id %s", r+1, cur)
		}
		materials = append(materials, cur)
	}
	// Every old blob still decrypts, with its own material.
	e.checkIssued(t, all)

	rot := e.rotations(t, id)
	if len(rot) != 5 {
		t.Fatalf("ListKeyRotations() = %d entries, want 5", len(rot))
	}
	for i, r := range rot {
		if r.RotationType != "ON_DEMAND" || r.KeyMaterialId != materials[i+1] {
			t.Errorf("rotation %d = %+v, want ON_DEMAND to %s", i, r, materials[i+1])
		}
	}

	// ReEncrypt moves each old blob to the newest material.
	newest := materials[len(materials)-1]
	for i, b := range all {
		out, err := e.svc.ReEncrypt(t.Context(), &kms.ReEncryptInput{CiphertextBlob: b.blob, SourceEncryptionContext: b.ec,
			DestinationKeyId: id, DestinationEncryptionContext: b.ec})
		if err != nil {
			t.Fatalf("ReEncrypt(blob %d) err = %v, want nil", i, err)
		}
		if out.SourceKeyMaterialId != b.material || out.DestinationKeyMaterialId != newest {
			t.Errorf("ReEncrypt(blob %d): material %s -> %s, want %s -> %s", i, out.SourceKeyMaterialId, out.DestinationKeyMaterialId, b.material, newest)
		}
		if dec := e.decrypt(t, out.CiphertextBlob, b.ec); !bytes.Equal(dec.Plaintext, b.pt) || dec.KeyMaterialId != newest {
			t.Errorf("Decrypt(re-encrypted blob %d) = material %s, want %s", i, dec.KeyMaterialId, newest)
		}
	}
}

func TestAutomaticRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	id := e.symKey(t)
	if _, err := e.svc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	first := epoch.AddDate(0, 0, 365)
	old := e.issue(t, id, 0)

	// A day before the rotation date nothing happens.
	e.clock.AdvanceDays(364)
	if r := e.rotations(t, id); len(r) != 0 {
		t.Fatalf("rotations before the rotation date: %+v", r)
	}
	if b := e.issue(t, id, 1); b.material != old.material {
		t.Fatalf("material changed before the rotation date")
	}

	// Past the date, the key has rotated once, automatically, on that date.
	e.clock.AdvanceDays(2)
	st, err := e.svc.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	if !st.KeyRotationEnabled || st.NextRotationDate == nil || !st.NextRotationDate.Equal(first.AddDate(0, 0, 365)) {
		t.Errorf("GetKeyRotationStatus() after a rotation = %+v, want next rotation %v", st, first.AddDate(0, 0, 365))
	}
	rot := e.rotations(t, id)
	if len(rot) != 1 || rot[0].RotationType != "AUTOMATIC" || rot[0].RotationDate == nil || !rot[0].RotationDate.Equal(first) {
		t.Fatalf("ListKeyRotations() = %+v, want one AUTOMATIC rotation on %v", rot, first)
	}
	cur := e.describe(t, id).CurrentKeyMaterialId
	if cur != rot[0].KeyMaterialId || cur == old.material {
		t.Errorf("CurrentKeyMaterialId = %s, want the rotated material %s", cur, rot[0].KeyMaterialId)
	}
	newer := e.issue(t, id, 2)
	if newer.material != cur {
		t.Errorf("GenerateDataKey after rotation used %s, want %s", newer.material, cur)
	}
	e.checkIssued(t, []issued{old, newer})

	out, err := e.svc.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: old.blob, SourceEncryptionContext: old.ec, DestinationKeyId: id, DestinationEncryptionContext: old.ec})
	if err != nil || out.SourceKeyMaterialId != old.material || out.DestinationKeyMaterialId != cur {
		t.Errorf("ReEncrypt(old blob) = %+v, %v; want %s -> %s", out, err, old.material, cur)
	}

	// Two more periods: two more rotations, each on its date.
	e.clock.AdvanceDays(2 * 365)
	rot = e.rotations(t, id)
	if len(rot) != 3 {
		t.Fatalf("ListKeyRotations() after three periods = %d rotations, want 3", len(rot))
	}
	for i, r := range rot {
		if want := first.AddDate(0, 0, 365*i); r.RotationType != "AUTOMATIC" || !r.RotationDate.Equal(want) {
			t.Errorf("rotation %d = %+v, want AUTOMATIC on %v", i, r, want)
		}
	}
	e.checkIssued(t, []issued{old, newer})

	// With rotation disabled, time passes without rotations.
	if _, err := e.svc.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	e.clock.AdvanceDays(1000)
	if r := e.rotations(t, id); len(r) != 3 {
		t.Errorf("rotations with rotation disabled = %d, want still 3", len(r))
	}
}

// TestAutomaticRotationBySweep checks that Sweep performs due rotations
// without any other call meeting the key.
func TestAutomaticRotationBySweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for range 3 {
		id := e.symKey(t)
		if _, err := e.svc.EnableKeyRotation(t.Context(), &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: i32(90)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	e.clock.AdvanceDays(91)
	if err := e.svc.Sweep(t.Context()); err != nil {
		t.Fatalf("Sweep() err = %v, want nil", err)
	}
	for _, id := range ids {
		// Read the store directly: DescribeKey would rotate lazily.
		n, err := kms.VersionsForTest(e.svc, id)
		if err != nil || n != 2 {
			t.Errorf("key %s has %d versions after Sweep, %v; want 2", id, n, err)
		}
	}
}

func TestDeletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	id, keep := e.symKey(t), e.symKey(t)
	e.alias(t, "alias/doomed", id)
	e.alias(t, "alias/doomed-2", id)
	e.alias(t, "alias/kept", keep)
	blob := e.issue(t, id, 0)

	// Cancelled before the date: the key comes back (Disabled).
	if _, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: i32(7)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(7*24*time.Hour - time.Second)
	if err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.KeyState != "PendingDeletion" {
		t.Fatalf("a second before the deletion date: KeyState %q, want PendingDeletion", m.KeyState)
	}
	if _, err := e.svc.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: id}); err != nil {
		t.Fatalf("CancelKeyDeletion() a second before the date err = %v, want nil", err)
	}
	if _, err := e.svc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	e.checkIssued(t, []issued{blob})
	if got := e.describe(t, "alias/doomed").KeyId; got != id {
		t.Fatalf("alias/doomed points to %s after the cancelled deletion, want %s", got, id)
	}

	// Scheduled again and the window passes: the key is gone.
	out, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: i32(7)})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(out.DeletionDate.Sub(e.clock.Now()))
	// The first call after the date is a listing, which must not show the
	// deleted key's aliases: in AWS they go with the key.
	la, err := e.svc.ListAliases(ctx, &kms.ListAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, a := range la.Aliases {
		listed = append(listed, a.AliasName)
	}
	if !slices.Equal(listed, []string{"alias/kept"}) {
		t.Errorf("REGRESSION (was a known divergence): ListAliases() after the deletion date, before anything else met the key, lists %q; want only alias/kept", listed)
	}
	for _, ref := range []string{id, e.keyARN(id), "alias/doomed"} {
		_, err := e.svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: ref})
		wantCode(t, "DescribeKey("+ref+") at the deletion date", err, kms.CodeNotFound)
	}
	_, err = e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.blob, EncryptionContext: blob.ec})
	wantCode(t, "Decrypt(blob of a deleted key)", err, kms.CodeNotFound)
	_, err = e.svc.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: id})
	wantCode(t, "CancelKeyDeletion() after the date", err, kms.CodeNotFound)
	_, err = e.svc.ListAliases(ctx, &kms.ListAliasesInput{KeyId: id})
	wantCode(t, "ListAliases(KeyId of a deleted key)", err, kms.CodeNotFound)
	lk, err := e.svc.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil || len(lk.Keys) != 1 || lk.Keys[0].KeyId != keep {
		t.Errorf("ListKeys() after the deletion date = %+v, %v; want only %s", lk, err, keep)
	}

	// Sweep removes the key, its material and its aliases.
	if err := e.svc.Sweep(ctx); err != nil {
		t.Fatalf("Sweep() err = %v, want nil", err)
	}
	if _, err := kms.VersionsForTest(e.svc, id); !errors.Is(err, kms.ErrNoRecord) {
		t.Errorf("the store still holds the key after Sweep: %v", err)
	}
	if _, err := kms.MaterialForTest(e.svc, id, 1); !errors.Is(err, kms.ErrNoRecord) {
		t.Errorf("the store still holds the material after Sweep: %v", err)
	}
	la, err = e.svc.ListAliases(ctx, &kms.ListAliasesInput{})
	if err != nil || len(la.Aliases) != 1 || la.Aliases[0].AliasName != "alias/kept" {
		t.Errorf("ListAliases() after Sweep = %+v, %v; want only alias/kept", la, err)
	}
	// The alias names are free again.
	e.alias(t, "alias/doomed", keep)
	if got := e.describe(t, "alias/doomed").KeyId; got != keep {
		t.Errorf("alias/doomed points to %s, want %s", got, keep)
	}
	// The other key is untouched.
	if m := e.describe(t, "alias/kept"); m.KeyState != "Enabled" {
		t.Errorf("the kept key is %s", m.KeyState)
	}
}

// TestDeletionWithoutSweep checks that a deleted key is gone for every
// operation even if Sweep never runs.
func TestDeletionWithoutSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	id := e.symKey(t)
	e.alias(t, "alias/gone", id)
	if _, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: i32(30)}); err != nil {
		t.Fatal(err)
	}
	e.clock.AdvanceDays(31)
	runCalls(t, []call{
		{"EnableKey", func(ctx2 context.Context) error {
			_, err := e.svc.EnableKey(ctx2, &kms.EnableKeyInput{KeyId: id})
			return err
		}, kms.CodeNotFound},
		{"TagResource", func(ctx2 context.Context) error {
			_, err := e.svc.TagResource(ctx2, &kms.TagResourceInput{KeyId: id, Tags: []kms.Tag{{Key: "a", Value: "b"}}})
			return err
		}, kms.CodeNotFound},
		{"GetKeyPolicy", func(ctx2 context.Context) error {
			_, err := e.svc.GetKeyPolicy(ctx2, &kms.GetKeyPolicyInput{KeyId: id})
			return err
		}, kms.CodeNotFound},
		{"UpdateAlias to it", func(ctx2 context.Context) error {
			_, err := e.svc.UpdateAlias(ctx2, &kms.UpdateAliasInput{AliasName: "alias/gone", TargetKeyId: id})
			return err
		}, kms.CodeNotFound},
		{"Encrypt by alias", func(ctx2 context.Context) error {
			_, err := e.svc.Encrypt(ctx2, &kms.EncryptInput{KeyId: "alias/gone", Plaintext: []byte("x")})
			return err
		}, kms.CodeNotFound},
		{"CreateAlias to it", func(ctx2 context.Context) error {
			_, err := e.svc.CreateAlias(ctx2, &kms.CreateAliasInput{AliasName: "alias/new", TargetKeyId: id})
			return err
		}, kms.CodeNotFound},
	})
}

// TestSweepDeletes checks that Sweep alone destroys keys whose window has
// ended, with their material and aliases, and leaves the others.
func TestSweepDeletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var doomed []string
	for i := range 3 {
		id := e.symKey(t)
		e.alias(t, fmt.Sprintf("alias/sweep-%d", i), id)
		if _, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: i32(int32(7 + i))}); err != nil {
			t.Fatal(err)
		}
		doomed = append(doomed, id)
	}
	keep := e.symKey(t)
	e.clock.AdvanceDays(8) // past the first two windows, not the third
	if err := e.svc.Sweep(ctx); err != nil {
		t.Fatalf("Sweep() err = %v, want nil", err)
	}
	for i, id := range doomed {
		_, err := kms.VersionsForTest(e.svc, id)
		if gone := errors.Is(err, kms.ErrNoRecord); gone != (i < 2) {
			t.Errorf("key %d (window %d days) gone = %v after 8 days and a Sweep, want %v", i, 7+i, gone, i < 2)
		}
	}
	la, err := e.svc.ListAliases(ctx, &kms.ListAliasesInput{})
	if err != nil || len(la.Aliases) != 1 || la.Aliases[0].AliasName != "alias/sweep-2" {
		t.Errorf("ListAliases() after Sweep = %+v, %v; want only alias/sweep-2", la, err)
	}
	if n, err := kms.VersionsForTest(e.svc, keep); err != nil || n != 1 {
		t.Errorf("the enabled key after Sweep: %d versions, %v", n, err)
	}
}

// TestRotationAfterReenable: AWS does not rotate a disabled key; when it is
// enabled again with material older than the rotation period, AWS rotates it
// once, immediately, and then every period from then on.
func TestRotationAfterReenable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	id := e.symKey(t)
	old := e.issue(t, id, 0)
	if _, err := e.svc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	e.clock.AdvanceDays(3*365 + 10)
	if err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if r := e.rotations(t, id); len(r) != 0 {
		t.Fatalf("a disabled key rotated: %+v", r)
	}
	if _, err := e.svc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	rot := e.rotations(t, id)
	if len(rot) == 0 {
		t.Fatal("no rotation after enabling a key whose rotation date has passed")
	}
	e.checkIssued(t, []issued{old})
	st, err := e.svc.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	if len(rot) != 1 || !rot[0].RotationDate.Equal(now) || !st.NextRotationDate.Equal(now.AddDate(0, 0, 365)) {
		var dates []string
		for _, r := range rot {
			dates = append(dates, r.RotationDate.Format(time.DateOnly))
		}
		t.Errorf("REGRESSION (was a known divergence): re-enabled on %s after %d missed periods: %d rotations dated %v, next %s; AWS rotates once, now, next %s",
			now.Format(time.DateOnly), 3, len(rot), dates, st.NextRotationDate.Format(time.DateOnly), now.AddDate(0, 0, 365).Format(time.DateOnly))
	}
}

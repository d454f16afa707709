package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

// remoteKeyring stands in for a keyring that calls a network service (a KMS):
// it honours its context as such a call would, counts its calls, and
// otherwise behaves as the raw AES keyring it wraps. It has no String method,
// so it is described by its type.
type remoteKeyring struct {
	kr                 keyring.Keyring
	encCalls, decCalls int
}

func (r *remoteKeyring) OnEncrypt(ctx context.Context, m *keyring.EncryptionMaterials) error {
	r.encCalls++
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("calling the key service: %w", err)
	}
	return r.kr.OnEncrypt(ctx, m)
}

func (r *remoteKeyring) OnDecrypt(ctx context.Context, m *keyring.DecryptionMaterials, edks []keyring.EncryptedDataKey) error {
	r.decCalls++
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("calling the key service: %w", err)
	}
	return r.kr.OnDecrypt(ctx, m, edks)
}

// brokenKeyring fails every call with a plain error, as a keyring whose
// service is down would.
type brokenKeyring struct{ calls int }

var errServiceDown = errors.New("key service unavailable")

func (b *brokenKeyring) OnEncrypt(context.Context, *keyring.EncryptionMaterials) error {
	b.calls++
	return errServiceDown
}

func (b *brokenKeyring) OnDecrypt(context.Context, *keyring.DecryptionMaterials, []keyring.EncryptedDataKey) error {
	b.calls++
	return errServiceDown
}

func (b *brokenKeyring) String() string { return "broken keyring" }

// silentKeyring never finds a key and says nothing about it: it returns nil
// without setting a data key. It has no String method.
type silentKeyring struct{}

func (silentKeyring) OnEncrypt(context.Context, *keyring.EncryptionMaterials) error { return nil }

func (silentKeyring) OnDecrypt(context.Context, *keyring.DecryptionMaterials, []keyring.EncryptedDataKey) error {
	return nil
}

func TestMultiEncryptDecrypt(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	gen := mustRawAES(t, "ns", "generator", randomBytes(32))
	aesChild := mustRawAES(t, "ns", "child", randomBytes(16))
	rsaChild := mustRawRSA(t, "ns", "rsa", keyring.OAEPSHA256, nil, priv)
	multi := keyring.NewMulti(gen, aesChild, rsaChild)

	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384)
	ec := map[string]string{"tenant": "a"}
	m := &keyring.EncryptionMaterials{Suite: s, Context: ec}
	if err := multi.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("Multi.OnEncrypt err = %v, want nil", err)
	}
	if len(m.DataKey) != 32 {
		t.Fatalf("Multi.OnEncrypt made a %d-byte data key, want 32", len(m.DataKey))
	}
	wantIDs := []string{`raw AES key namespace="ns" name="generator"`, `raw AES key namespace="ns" name="child"`, `raw key namespace="ns" name="rsa"`}
	if len(m.EncryptedDataKeys) != len(wantIDs) {
		t.Fatalf("Multi.OnEncrypt added %d EDKs, want %d", len(m.EncryptedDataKeys), len(wantIDs))
	}
	for i, edk := range m.EncryptedDataKeys {
		if edk.String() != wantIDs[i] {
			t.Errorf("EDK %d = %s, want %s (generator first, then children in order)", i, edk, wantIDs[i])
		}
	}

	// Each keyring alone unwraps the same data key, whatever the order of
	// the EDKs.
	for _, kr := range []keyring.Keyring{gen, aesChild, rsaChild, multi, keyring.NewMulti(nil, rsaChild), keyring.NewMulti(nil, &brokenKeyring{}, aesChild)} {
		t.Run(fmt.Sprint(kr), func(t *testing.T) {
			dm := &keyring.DecryptionMaterials{Suite: s, Context: ec}
			reversed := []keyring.EncryptedDataKey{m.EncryptedDataKeys[2], m.EncryptedDataKeys[1], m.EncryptedDataKeys[0]}
			if err := kr.OnDecrypt(context.Background(), dm, reversed); err != nil {
				t.Fatalf("OnDecrypt err = %v, want nil", err)
			}
			if !bytes.Equal(dm.DataKey, m.DataKey) {
				t.Errorf("OnDecrypt data key = %x, want %x", dm.DataKey, m.DataKey)
			}
		})
	}
}

func TestMultiDecryptStopsAtFirstSuccess(t *testing.T) {
	key := randomBytes(32)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := &keyring.EncryptionMaterials{Suite: s}
	if err := mustRawAES(t, "ns", "k", key).OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	first := &remoteKeyring{kr: mustRawAES(t, "ns", "k", key)}
	second := &remoteKeyring{kr: mustRawAES(t, "ns", "k", key)}
	dm := &keyring.DecryptionMaterials{Suite: s}
	if err := keyring.NewMulti(first, second).OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err != nil {
		t.Fatalf("OnDecrypt err = %v, want nil", err)
	}
	if first.decCalls != 1 || second.decCalls != 0 {
		t.Errorf("decrypt calls = %d, %d; want 1, 0 (stop after the first success)", first.decCalls, second.decCalls)
	}
}

func TestMultiWithoutGenerator(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	child := &remoteKeyring{kr: mustRawAES(t, "ns", "k", randomBytes(32))}
	multi := keyring.NewMulti(nil, child)

	m := &keyring.EncryptionMaterials{Suite: s}
	err := multi.OnEncrypt(context.Background(), m)
	if err == nil {
		t.Fatal("Multi(no generator).OnEncrypt without a data key err = nil, want an error")
	}
	if !strings.Contains(err.Error(), "generator") {
		t.Errorf("Multi(no generator).OnEncrypt err = %q, want it to mention the generator", err)
	}
	if m.DataKey != nil || len(m.EncryptedDataKeys) != 0 || child.encCalls != 0 {
		t.Errorf("failed OnEncrypt left DataKey %x, %d EDKs, %d child calls; want nothing", m.DataKey, len(m.EncryptedDataKeys), child.encCalls)
	}

	// With a data key present, the children wrap it.
	dataKey := randomBytes(32)
	m = &keyring.EncryptionMaterials{Suite: s, DataKey: bytes.Clone(dataKey)}
	if err := multi.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("Multi(no generator).OnEncrypt with a data key err = %v, want nil", err)
	}
	if !bytes.Equal(m.DataKey, dataKey) || len(m.EncryptedDataKeys) != 1 {
		t.Fatalf("OnEncrypt = data key %x and %d EDKs, want %x and 1", m.DataKey, len(m.EncryptedDataKeys), dataKey)
	}
	dm := &keyring.DecryptionMaterials{Suite: s}
	if err := multi.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err != nil || !bytes.Equal(dm.DataKey, dataKey) {
		t.Errorf("OnDecrypt = %x, %v; want %x, nil", dm.DataKey, err, dataKey)
	}
}

func TestMultiEncryptChildFails(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	broken := &brokenKeyring{}
	after := &remoteKeyring{kr: mustRawAES(t, "ns", "k2", randomBytes(32))}
	multi := keyring.NewMulti(mustRawAES(t, "ns", "k", randomBytes(32)), broken, after)
	m := &keyring.EncryptionMaterials{Suite: s}
	if err := multi.OnEncrypt(context.Background(), m); !errors.Is(err, errServiceDown) {
		t.Errorf("Multi.OnEncrypt with a broken child err = %v, want %v", err, errServiceDown)
	}
	if after.encCalls != 0 {
		t.Errorf("Multi.OnEncrypt called %d keyrings after a failure, want 0", after.encCalls)
	}
}

func TestMultiNoneUnwrap(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := &keyring.EncryptionMaterials{Suite: s}
	if err := mustRawAES(t, "msg", "k", randomBytes(32)).OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	priv, _ := rsaKeys2048(t)
	wrongKey := mustRawAES(t, "msg", "k", randomBytes(32)) // matches by name, fails to open
	otherName := mustRawAES(t, "msg", "other", randomBytes(32))
	rsaKR := mustRawRSA(t, "msg", "rsa", keyring.OAEPSHA256, nil, priv)
	broken := &brokenKeyring{}
	elsewhere := mustRawAES(t, "elsewhere", "k", randomBytes(32))
	remote := &remoteKeyring{kr: elsewhere}
	inner := keyring.NewMulti(otherName, rsaKR)
	multi := keyring.NewMulti(wrongKey, inner, broken, remote, silentKeyring{})

	dm := &keyring.DecryptionMaterials{Suite: s}
	err := multi.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
	var ue *keyring.UnwrapError
	if !errors.As(err, &ue) {
		t.Fatalf("Multi.OnDecrypt err = %T %v, want *UnwrapError", err, err)
	}
	if !errors.Is(err, keyring.ErrNoDataKey) {
		t.Errorf("Multi.OnDecrypt err = %v, want ErrNoDataKey", err)
	}
	if !errors.Is(err, errServiceDown) {
		t.Errorf("Multi.OnDecrypt err = %v, want it to carry the broken keyring's error", err)
	}
	// Every keyring tried, in order, nested multi-keyrings flattened; an
	// *UnwrapError names the keyring itself, other errors and silence get the
	// keyring's String or type.
	wantTried := []string{wrongKey.String(), otherName.String(), rsaKR.String(), "broken keyring", elsewhere.String(), "keyring_test.silentKeyring"}
	if fmt.Sprint(ue.Tried) != fmt.Sprint(wantTried) {
		t.Errorf("UnwrapError.Tried = %q, want %q", ue.Tried, wantTried)
	}
	if len(ue.Keys) != 1 || ue.Keys[0].String() != m.EncryptedDataKeys[0].String() {
		t.Errorf("UnwrapError.Keys = %v, want the message's EDK", ue.Keys)
	}
	if len(ue.Errs) != 2 {
		t.Errorf("UnwrapError.Errs = %v, want 2 (wrong key, broken keyring)", ue.Errs)
	}
	msg := err.Error()
	for _, s := range append(wantTried, "does not open", errServiceDown.Error(), `raw AES key namespace="msg" name="k"`) {
		if !strings.Contains(msg, s) {
			t.Errorf("Multi.OnDecrypt err = %q, want it to contain %q", msg, s)
		}
	}
	if dm.DataKey != nil {
		t.Errorf("DataKey = %x, want nil", dm.DataKey)
	}
}

func TestMultiEmpty(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	multi := keyring.NewMulti(nil)
	err := multi.OnDecrypt(context.Background(), &keyring.DecryptionMaterials{Suite: s}, nil)
	var ue *keyring.UnwrapError
	if !errors.As(err, &ue) || len(ue.Tried) != 0 {
		t.Fatalf("empty Multi.OnDecrypt err = %v, want an *UnwrapError with nothing tried", err)
	}
	if !strings.Contains(err.Error(), "tried: no keyring") {
		t.Errorf("empty Multi.OnDecrypt err = %q, want it to say no keyring was tried", err)
	}
	if err := multi.OnEncrypt(context.Background(), &keyring.EncryptionMaterials{Suite: s}); err == nil {
		t.Error("empty Multi.OnEncrypt err = nil, want an error")
	}
}

func TestMultiDecryptNoOpWithDataKey(t *testing.T) {
	broken := &brokenKeyring{}
	have := randomBytes(32)
	dm := &keyring.DecryptionMaterials{Suite: mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey), DataKey: bytes.Clone(have)}
	if err := keyring.NewMulti(broken).OnDecrypt(context.Background(), dm, nil); err != nil {
		t.Fatalf("Multi.OnDecrypt with a data key present err = %v, want nil", err)
	}
	if broken.calls != 0 || !bytes.Equal(dm.DataKey, have) {
		t.Errorf("Multi.OnDecrypt with a data key present called %d keyrings and left %x; want 0 calls and %x", broken.calls, dm.DataKey, have)
	}
}

func TestMultiCanceled(t *testing.T) {
	key := randomBytes(32)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := &keyring.EncryptionMaterials{Suite: s}
	if err := mustRawAES(t, "ns", "k", key).OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	remote := &remoteKeyring{kr: mustRawAES(t, "ns", "k", key)}
	// This one could unwrap, but a canceled call should not go on to it.
	local := &remoteKeyring{kr: mustRawAES(t, "ns", "k", key)}
	dm := &keyring.DecryptionMaterials{Suite: s}
	err := keyring.NewMulti(remote, local).OnDecrypt(ctx, dm, m.EncryptedDataKeys)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Multi.OnDecrypt(canceled) err = %v, want context.Canceled", err)
	}
	if remote.decCalls != 1 || local.decCalls != 0 {
		t.Errorf("Multi.OnDecrypt(canceled) calls = %d, %d; want 1, 0", remote.decCalls, local.decCalls)
	}
	if dm.DataKey != nil {
		t.Errorf("DataKey = %x, want nil", dm.DataKey)
	}

	// On encrypt the keyring's own error comes back.
	em := &keyring.EncryptionMaterials{Suite: s}
	if err := keyring.NewMulti(&remoteKeyring{kr: mustRawAES(t, "ns", "k", key)}).OnEncrypt(ctx, em); !errors.Is(err, context.Canceled) {
		t.Errorf("Multi.OnEncrypt(canceled) err = %v, want context.Canceled", err)
	}
}

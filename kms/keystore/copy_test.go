package keystore_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// clock is a clock tests move.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ciphertext is one made by the source keystore, and how to decrypt it.
type ciphertext struct {
	what      string
	in        kms.DecryptInput
	plaintext []byte
	// refused is set for a ciphertext of a key destroyed or pending
	// deletion, which neither keystore decrypts.
	refused bool
}

// copySource is a keystore with something of everything a copy carries:
// a symmetric key with a description, tags, a policy, automatic rotation and
// three versions; an RSA key; aliases of both; a key pending deletion; a
// destroyed key's record; the audit key and an audit log's mark.
type copySource struct {
	ks          *keystore.Keystore
	dir         string
	sym, rsa    string // key ids
	pending     string
	destroyed   string
	imported    string // Origin EXTERNAL, its material sealed in its record
	material    []byte // imported's, in the clear
	ciphertexts []ciphertext
	stats       keystore.CopyStats
}

func newCopySource(t *testing.T) *copySource {
	t.Helper()
	ctx := t.Context()
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := &copySource{dir: t.TempDir()}
	s.ks = open(t, s.dir, keystore.Options{Service: kms.Options{Now: c.Now, Region: "eu-west-3", AccountID: "123456789012"}})
	t.Cleanup(func() { s.ks.Close() })
	ks := s.ks
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	encrypt := func(what, keyID string, alg string, refused bool) {
		t.Helper()
		pt := []byte("plaintext of " + what)
		ec := map[string]string{"purpose": what}
		if alg != "" {
			ec = nil
		}
		out, err := ks.Encrypt(ctx, &kms.EncryptInput{KeyId: keyID, Plaintext: pt, EncryptionContext: ec, EncryptionAlgorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		in := kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec}
		if alg != "" {
			in.KeyId, in.EncryptionAlgorithm = keyID, alg
		}
		s.ciphertexts = append(s.ciphertexts, ciphertext{what, in, pt, refused})
	}
	create := func(in *kms.CreateKeyInput) string {
		t.Helper()
		out, err := ks.CreateKey(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out.KeyMetadata.KeyId
	}

	// A key destroyed once its window ended leaves a record.
	s.destroyed = create(&kms.CreateKeyInput{Description: "destroyed"})
	encrypt("destroyed key", s.destroyed, "", true)
	must(ks.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: s.destroyed, PendingWindowInDays: i32(7)}))
	c.advance(8 * 24 * time.Hour)
	if err := ks.Sweep(ctx); err != nil {
		t.Fatal(err)
	}

	s.sym = create(&kms.CreateKeyInput{Description: "app data", Tags: []kms.Tag{{Key: "team", Value: "crypto"}, {Key: "env", Value: "prod"}}})
	must(ks.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: s.sym, Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}`, BypassPolicyLockoutSafetyCheck: true}))
	must(ks.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: s.sym, GranteePrincipal: "arn:aws:iam::111122223333:role/batch",
		Operations: []string{"Decrypt"}, Constraints: &kms.GrantConstraints{EncryptionContextEquals: map[string]string{"job": "nightly"}}}))
	must(ks.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: s.sym, RotationPeriodInDays: i32(180)}))
	must(ks.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/app", TargetKeyId: s.sym}))
	for v := 1; v <= 3; v++ {
		encrypt("symmetric key, version "+string(rune('0'+v)), "alias/app", "", false)
		if v < 3 {
			must(ks.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: s.sym}))
		}
	}
	gdk, err := ks.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: s.sym, KeySpec: "AES_256"})
	if err != nil {
		t.Fatal(err)
	}
	s.ciphertexts = append(s.ciphertexts, ciphertext{"a data key", kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob}, gdk.Plaintext, false})

	s.rsa = create(&kms.CreateKeyInput{KeySpec: kms.SpecRSA2048, Description: "rsa"})
	must(ks.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/rsa", TargetKeyId: s.rsa}))
	encrypt("RSA key", s.rsa, "RSAES_OAEP_SHA_256", false)

	s.pending = create(&kms.CreateKeyInput{Description: "pending deletion"})
	encrypt("key pending deletion", s.pending, "", true)
	must(ks.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: s.pending, PendingWindowInDays: i32(30)}))

	// A key of imported material: the record holds it, sealed.
	s.imported = create(&kms.CreateKeyInput{Origin: kms.OriginExternal, Description: "imported"})
	s.material = randBytes(32)
	must(kms.ImportMaterial(ctx, ks, s.imported, s.material, kms.ImportOptions{WrappingKeySpec: kms.WrappingKeyRSA2048}))
	encrypt("imported key", s.imported, "", false)

	if _, _, err := ks.AuditKey(ctx, filepath.Join(t.TempDir(), "none")); err != nil {
		t.Fatal(err)
	}
	if err := ks.RaiseAuditMark(ctx, "log-1", "host:/var/log/envelope/audit.log", 42, randBytes(32)); err != nil {
		t.Fatal(err)
	}
	s.stats = keystore.CopyStats{Keys: 4, Versions: 6, Aliases: 2, Deleted: 1, AuditKey: true, AuditLogs: 1}
	return s
}

// copyInto copies src into a new SQLite keystore in dir, with opts's root
// key source.
func copyInto(t *testing.T, src *keystore.Keystore, dir string, opts keystore.Options) (keystore.CopyStats, error) {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	return keystore.Copy(t.Context(), src, keystore.Target{Store: store, Name: dir, Dir: dir}, opts)
}

// records returns every key and alias record and the names of the meta
// values of the SQLite keystore in dir.
func records(t *testing.T, dir string) ([]*kms.KeyRecord, []*kms.AliasRecord, []string) {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var keys []*kms.KeyRecord
	var aliases []*kms.AliasRecord
	var meta []string
	err = store.View(t.Context(), func(tx kms.Tx) (err error) {
		if keys, err = tx.ListKeys("", 0); err != nil {
			return err
		}
		if aliases, err = tx.ListAliases("", "", 0); err != nil {
			return err
		}
		meta, err = tx.ListMeta("", 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, aliases, meta
}

// checkCopy checks that the keystore in dir is a copy of s.
func (s *copySource) checkCopy(t *testing.T, dir string, dst *keystore.Keystore) {
	t.Helper()
	ctx := t.Context()
	for _, c := range s.ciphertexts {
		in := c.in
		out, err := dst.Decrypt(ctx, &in)
		if c.refused {
			// Refused alike: what the service knows of the destroyed
			// and the pending keys, it says alike.
			in := c.in
			_, want := s.ks.Decrypt(ctx, &in)
			if err == nil || want == nil || err.Error() != want.Error() {
				t.Errorf("Decrypt(%s): the copy says %v, the source %v", c.what, err, want)
			}
			continue
		}
		if err != nil || !bytes.Equal(out.Plaintext, c.plaintext) {
			t.Errorf("the copy's Decrypt(%s) = %v, %v; want the plaintext", c.what, out, err)
		}
	}
	if _, err := dst.Encrypt(ctx, &kms.EncryptInput{KeyId: s.pending, Plaintext: []byte("x")}); !errors.Is(err, kms.ErrInvalidState) {
		t.Errorf("the copy's Encrypt(key pending deletion) err = %v, want KMSInvalidStateException", err)
	}
	sg, err := s.ks.ListGrants(ctx, &kms.ListGrantsInput{KeyId: s.sym})
	dg, err2 := dst.ListGrants(ctx, &kms.ListGrantsInput{KeyId: s.sym})
	if err != nil || err2 != nil || len(sg.Grants) != 1 || !reflect.DeepEqual(sg, dg) {
		t.Errorf("the copy's grants = %+v, %v; want the source's %+v, %v", dg, err2, sg, err)
	}
	if dst.KeyARN(s.sym) != s.ks.KeyARN(s.sym) {
		t.Errorf("the copy's ARNs %s, want %s", dst.KeyARN(s.sym), s.ks.KeyARN(s.sym))
	}
	rot, err := dst.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: s.sym})
	if err != nil || !rot.KeyRotationEnabled || *rot.RotationPeriodInDays != 180 {
		t.Errorf("the copy's rotation status = %+v, %v; want enabled, 180 days", rot, err)
	}
	// The records themselves are the same, but for the root key's: the
	// imported material they hold is sealed under another (and the
	// copy's Decrypt above opened it).
	sk, sa, sm := records(t, s.dir)
	dk, da, dm := records(t, dir)
	for _, k := range slices.Concat(sk, dk) {
		for i := range k.Versions {
			if k.Versions[i].Sealed != nil {
				k.Versions[i].Sealed = []byte("sealed")
			}
		}
	}
	if !reflect.DeepEqual(sk, dk) || !reflect.DeepEqual(sa, da) {
		t.Errorf("the copy's key and alias records differ from the source's")
	}
	notRoot := func(names []string) []string {
		var out []string
		for _, n := range names {
			if !strings.HasPrefix(n, "root-") {
				out = append(out, n)
			}
		}
		return out
	}
	if !reflect.DeepEqual(notRoot(sm), notRoot(dm)) {
		t.Errorf("the copy's keystore values %q, want %q (and its own root-*)", dm, sm)
	}
	wantKey, err := s.ks.StoredAuditKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if key, err := dst.StoredAuditKey(ctx); err != nil || !bytes.Equal(key, wantKey) {
		t.Errorf("the copy's audit key: %v; want the source's", err)
	}
	wantMarks, _ := s.ks.AuditMarks(ctx)
	if marks, err := dst.AuditMarks(ctx); err != nil || !reflect.DeepEqual(marks, wantMarks) {
		t.Errorf("the copy's audit marks = %+v, %v; want %+v", marks, err, wantMarks)
	}
}

// secrets returns the key material of s in the clear (every version of its
// keys, through the test hook) and its root key, each also in hex and
// base64.
func (s *copySource) secrets(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	add := func(what string, b []byte) {
		out[what] = b
		out[what+" (hex)"] = []byte(hex.EncodeToString(b))
		out[what+" (base64)"] = []byte(base64.StdEncoding.EncodeToString(b))
	}
	for _, k := range []struct {
		id       string
		versions int
	}{{s.sym, 3}, {s.rsa, 1}, {s.pending, 1}, {s.imported, 1}} {
		for v := 1; v <= k.versions; v++ {
			m, err := keystore.MaterialForTest(s.ks, k.id, v)
			if err != nil {
				t.Fatal(err)
			}
			add("key "+k.id+" version "+string(rune('0'+v)), m)
		}
	}
	root, err := os.ReadFile(filepath.Join(s.dir, keystore.RootKeyName))
	if err != nil {
		t.Fatal(err)
	}
	add("the source's root key", root)
	return out
}

// scan fails t if a file under dir holds any of secrets.
func scan(t *testing.T, dir string, secrets map[string][]byte) {
	t.Helper()
	files := dirFiles(t, dir)
	if len(files) == 0 {
		t.Fatalf("no files under %s", dir)
	}
	for _, f := range files {
		for what, secret := range secrets {
			if bytes.Contains(f.data, secret) {
				t.Errorf("%s holds %s", f.name, what)
			}
		}
	}
}

// TestCopy copies a keystore with something of everything into a new one
// with a root key file kept apart, and that one again into a third with its
// own root.key: each decrypts every ciphertext the first made, holds the
// same records, and none of their files holds key material (or the first's
// root key) in the clear.
func TestCopy(t *testing.T) {
	t.Parallel()
	s := newCopySource(t)
	secrets := s.secrets(t)
	ctx := t.Context()
	if got, err := s.ks.CopyStats(ctx); err != nil || got != s.stats {
		t.Errorf("CopyStats() = %+v, %v; want %+v", got, err, s.stats)
	}

	keyFile := writeKeyFile(t, 0o600)
	first := filepath.Join(t.TempDir(), "first")
	stats, err := copyInto(t, s.ks, first, keystore.Options{RootKeyFile: keyFile})
	if err != nil || stats != s.stats {
		t.Fatalf("Copy() = %+v, %v; want %+v", stats, err, s.stats)
	}
	scan(t, first, secrets)
	dst := open(t, first, keystore.Options{RootKeyFile: keyFile, MustExist: true})
	if dst.RootSource != keystore.SourceKeyFile {
		t.Errorf("the copy's RootSource = %q, want %q", dst.RootSource, keystore.SourceKeyFile)
	}
	s.checkCopy(t, first, dst)
	scan(t, first, secrets) // with the write-ahead log in use

	second := filepath.Join(t.TempDir(), "second")
	stats, err = copyInto(t, dst, second, keystore.Options{})
	if err != nil || stats != s.stats {
		t.Fatalf("second Copy() = %+v, %v; want %+v", stats, err, s.stats)
	}
	closeKS(t, dst)
	dst = open(t, second, keystore.Options{MustExist: true})
	s.checkCopy(t, second, dst)
	closeKS(t, dst)
	scan(t, first, secrets)
	scan(t, second, secrets)
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	scan(t, second, map[string][]byte{"the first copy's root key": key})
}

// TestCopyRefusesNonEmpty: a copy goes only into an empty store, and is
// refused, before anything is written, into any other.
func TestCopyRefusesNonEmpty(t *testing.T) {
	t.Parallel()
	src := open(t, t.TempDir(), keystore.Options{})
	defer closeKS(t, src)
	newKey(t, src)

	existing := t.TempDir() // a keystore, with its root.key
	ks := open(t, existing, keystore.Options{})
	newKey(t, ks)
	closeKS(t, ks)
	root, _ := os.ReadFile(filepath.Join(existing, keystore.RootKeyName))
	keys, _, meta := records(t, existing)

	_, err := copyInto(t, src, existing, keystore.Options{})
	if !errors.Is(err, keystore.ErrNotEmpty) || !strings.Contains(err.Error(), existing+": the destination store is not empty: it holds keys") {
		t.Errorf("Copy(into a keystore) err = %v, want ErrNotEmpty naming it", err)
	}
	if again, _ := os.ReadFile(filepath.Join(existing, keystore.RootKeyName)); !bytes.Equal(again, root) {
		t.Error("the refused copy changed the destination's root.key")
	}
	if k, _, m := records(t, existing); !reflect.DeepEqual(k, keys) || !reflect.DeepEqual(m, meta) {
		t.Error("the refused copy changed the destination's records")
	}

	// Any value at all makes a store not empty.
	valueOnly := t.TempDir()
	store, err := sqlite.Open(filepath.Join(valueOnly, keystore.DBName))
	if err != nil {
		t.Fatal(err)
	}
	err = store.Update(t.Context(), func(tx kms.Tx) error { return tx.PutMeta("something", []byte("else")) })
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err = copyInto(t, src, valueOnly, keystore.Options{}); !errors.Is(err, keystore.ErrNotEmpty) || !strings.Contains(err.Error(), `it holds keystore values ("something", …)`) {
		t.Errorf("Copy(into a store with a value) err = %v, want ErrNotEmpty", err)
	}
	if _, err := os.Stat(filepath.Join(valueOnly, keystore.RootKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused copy made a root.key (%v)", err)
	}
}

// TestCopyRefusesUnknownValues: a value this envelope does not know may be
// sealed under the source's root key; a copy (and its dry run) refuses it
// rather than drop it or carry it unreadable.
func TestCopyRefusesUnknownValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := open(t, dir, keystore.Options{})
	defer closeKS(t, src)
	store, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
	if err != nil {
		t.Fatal(err)
	}
	err = store.Update(t.Context(), func(tx kms.Tx) error { return tx.PutMeta("future-value", []byte("sealed")) })
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := `it holds a value "future-value" this envelope does not know how to copy`
	if _, err := src.CopyStats(t.Context()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CopyStats() err = %v, want %q", err, want)
	}
	dst := t.TempDir()
	if _, err := copyInto(t, src, dst, keystore.Options{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Copy() err = %v, want %q", err, want)
	}
	if err := keystore.CheckEmpty(t.Context(), sqliteTarget(t, dst)); err != nil {
		t.Errorf("the refused copy wrote: %v", err)
	}
}

// sqliteTarget opens the SQLite store in dir as a Target, closed when the
// test ends.
func sqliteTarget(t *testing.T, dir string) keystore.Target {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return keystore.Target{Store: store, Name: dir, Dir: dir}
}

// BenchmarkCopy copies a keystore of 1000 symmetric keys (2000 material
// versions, 1000 aliases) into a new SQLite keystore with a root key file.
func BenchmarkCopy(b *testing.B) {
	dir := b.TempDir()
	src, err := keystore.Open(b.Context(), dir, keystore.Options{Service: kms.Options{CacheTTL: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	for i := range 1000 {
		out, err := src.CreateKeyWithAlias(b.Context(), &kms.CreateKeyInput{}, fmt.Sprintf("alias/k%04d", i))
		if err == nil {
			_, err = src.RotateKeyOnDemand(b.Context(), &kms.RotateKeyOnDemandInput{KeyId: out.KeyMetadata.KeyId})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	keyFile := filepath.Join(b.TempDir(), "root.key")
	if err := os.WriteFile(keyFile, randBytes(32), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		dst := filepath.Join(b.TempDir(), fmt.Sprint(i))
		store, err := sqlite.Open(filepath.Join(dst, keystore.DBName))
		if err != nil {
			b.Fatal(err)
		}
		stats, err := keystore.Copy(b.Context(), src, keystore.Target{Store: store, Name: dst, Dir: dst}, keystore.Options{RootKeyFile: keyFile})
		store.Close()
		if err != nil || stats.Versions != 2000 {
			b.Fatalf("Copy() = %+v, %v", stats, err)
		}
	}
}

package keystore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/envelopekms/envelope/internal/durable"
	"github.com/envelopekms/envelope/kms"
)

// RootSource is where a keystore's root key comes from. A keystore records
// its source when it is created, and every later open must give the same
// (see [Options]).
type RootSource string

// The root key sources.
const (
	// SourceRootFile is the file root.key beside a SQLite keystore, made
	// with it (the default for a keystore directory).
	SourceRootFile RootSource = "file"
	// SourceKeyFile is a root key file kept apart from the keystore
	// ([Options.RootKeyFile]).
	SourceKeyFile RootSource = "key-file"
	// SourcePassphrase is a passphrase ([Options.Passphrase]).
	SourcePassphrase RootSource = "passphrase"
	// SourceKMS is an upstream KMS that seals the root key
	// ([Options.RootKMS]).
	SourceKMS RootSource = "kms"
)

// describe names the source for messages.
func (s RootSource) describe() string {
	switch s {
	case SourceRootFile:
		return "its root key file " + RootKeyName + " beside it"
	case SourceKeyFile:
		return "a root key file"
	case SourcePassphrase:
		return "a passphrase"
	case SourceKMS:
		return "an upstream KMS"
	}
	return fmt.Sprintf("%q", string(s))
}

// RootKMS is an upstream KMS that seals a keystore's root key: the keystore
// keeps only its root key encrypted by the upstream (kms.API's Encrypt,
// under KeyID, with an encryption context naming the keystore), and asks the
// upstream to decrypt it at every open. The upstream is AWS KMS, or another
// envelope server, through package kms/awsclient.
type RootKMS struct {
	// API is the upstream KMS.
	API kms.API
	// KeyID is its symmetric key that seals the root key: a key id, key
	// ARN, alias name or alias ARN.
	KeyID string
	// Name is how messages name the upstream (its endpoint; never a
	// secret).
	Name string
}

// rootKMSTimeout bounds each call to the upstream KMS, retries included.
const rootKMSTimeout = 30 * time.Second

// The encryption context of the root key's sealing by an upstream KMS: the
// keystore's id, so that the upstream's audit shows which keystore asks
// and a value sealed for another use or keystore is not taken for the root
// key.
const (
	contextKeystore = "envelope:keystore"
	contextPurpose  = "envelope:purpose"
	purposeRootKey  = "root-key"
)

// kmsRecord is the meta value metaRootKMS: the root key sealed by the
// upstream KMS, and what messages say about it.
type kmsRecord struct {
	// KeyARN is the upstream key that sealed it, as the upstream named it.
	KeyARN string `json:"keyArn"`
	// Upstream is RootKMS.Name when the keystore was created.
	Upstream string `json:"upstream"`
	// Keystore is the keystore's id in the encryption context.
	Keystore string `json:"keystore"`
	// Sealed is the upstream's ciphertext of the root key.
	Sealed []byte `json:"sealed"`
}

func (r *kmsRecord) context() map[string]string {
	return map[string]string{contextKeystore: r.Keystore, contextPurpose: purposeRootKey}
}

// ErrRootSource is matched (errors.Is) by the [*RootSourceError] of an
// open that gives another root key source than the keystore was created
// with, or none when it needs one.
var ErrRootSource = errors.New("keystore: not the keystore's root key source")

// RootSourceError is an open that gives another root key source than the
// keystore was created with, or none when the source needs to be given (a
// root key file kept apart, an upstream KMS). A keystore with a passphrase
// opened without one is [ErrPassphraseRequired] instead.
type RootSourceError struct {
	// Keystore names the keystore.
	Keystore string
	// Created is the source it was created with, Given the one given ("":
	// none).
	Created, Given RootSource
	// KMSKey is the upstream key that sealed the root key, when Created
	// is SourceKMS.
	KMSKey string
}

func (e *RootSourceError) Error() string {
	created := e.Created.describe()
	if e.Created == SourceKMS && e.KMSKey != "" {
		created += " (key " + e.KMSKey + ")"
	}
	if e.Given == "" {
		return fmt.Sprintf("keystore: %s: its root key comes from %s, and none was given", e.Keystore, created)
	}
	return fmt.Sprintf("keystore: %s: its root key comes from %s, not from %s", e.Keystore, created, e.Given.describe())
}

// Is reports whether target is ErrRootSource.
func (e *RootSourceError) Is(target error) bool { return target == ErrRootSource }

// ErrNoRootSource means a keystore was to be created on a store that is not
// a SQLite directory (where root.key would be made) without a root key
// source.
var ErrNoRootSource = errors.New("a new keystore on this store needs a root key source: a root key file, a passphrase or an upstream KMS")

// ErrNoRootKeyFile is wrapped by the error of a creation whose root key
// file ([Options.RootKeyFile]) does not exist: a root key file is made
// beforehand, never by the keystore.
var ErrNoRootKeyFile = errors.New("the root key file does not exist")

// RootKMSError is a failure of the upstream KMS that seals a keystore's
// root key: unreachable, or refusing. Err is the upstream's error (a
// [*kms.Error] when it answered with one).
type RootKMSError struct {
	// Upstream names the upstream KMS, Op is "seal" or "unseal".
	Upstream, Op string
	Err          error
}

func (e *RootKMSError) Error() string {
	return fmt.Sprintf("the upstream KMS %s could not %s the root key: %v", e.Upstream, e.Op, e.Err)
}

func (e *RootKMSError) Unwrap() error { return e.Err }

// given returns the root key source opts give, "" for none, or an error
// if they give more than one.
func (o *Options) given() (RootSource, error) {
	var given []RootSource
	if o.RootKeyFile != "" {
		given = append(given, SourceKeyFile)
	}
	if o.Passphrase != nil {
		given = append(given, SourcePassphrase)
	}
	if o.RootKMS != nil {
		given = append(given, SourceKMS)
	}
	switch len(given) {
	case 0:
		return "", nil
	case 1:
		return given[0], nil
	}
	return "", fmt.Errorf("more than one root key source given (%s and %s); give one", given[0].describe(), given[1].describe())
}

// newRoot is the root key of a keystore being created, with what the
// keystore records about it.
type newRoot struct {
	key    kms.RootKey
	source RootSource
	kdf    []byte // the passphrase's parameters (JSON)
	kms    []byte // the sealed root key (JSON kmsRecord)
}

// makeRoot makes the root key of a keystore being created on t from the
// source opts give (the caller holds the creation lock): root.key in t.Dir
// when none is given.
func makeRoot(ctx context.Context, t Target, opts Options) (*newRoot, error) {
	source, err := opts.given()
	if err != nil {
		return nil, err
	}
	r := &newRoot{source: source}
	switch source {
	case "":
		if t.Dir == "" {
			return nil, ErrNoRootSource
		}
		r.source = SourceRootFile
		r.key, err = newRootKeyFile(t.Dir)
	case SourceKeyFile:
		r.key, err = readKeyFile(opts.RootKeyFile, true)
	case SourcePassphrase:
		params := defaultKDF
		params.Salt = make([]byte, 32)
		rand.Read(params.Salt)
		if r.key, err = passphraseRootKey(opts.Passphrase, params); err == nil {
			r.kdf, err = json.Marshal(params)
		}
	case SourceKMS:
		r.key, r.kms, err = sealRootKMS(ctx, opts.RootKMS)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// record stores in tx what the keystore keeps of its root key: its source,
// and the passphrase's parameters or the sealed root key.
func (r *newRoot) record(tx kms.Tx) error {
	if r.kdf != nil {
		if err := tx.PutMeta(metaRootKDF, r.kdf); err != nil {
			return err
		}
	}
	if r.kms != nil {
		if err := tx.PutMeta(metaRootKMS, r.kms); err != nil {
			return err
		}
	}
	return tx.PutMeta(metaRootSource, []byte(r.source))
}

// openRoot returns the root key of a complete keystore, from the source it
// was created with, which opts must give (root.key beside a SQLite keystore
// needs none, or a root key file in its place).
func openRoot(ctx context.Context, t Target, st state, opts Options) (kms.RootKey, error) {
	given, err := opts.given()
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	created := RootSource(st.source)
	mismatch := func() error {
		e := &RootSourceError{Keystore: t.Name, Created: created, Given: given}
		if created == SourceKMS {
			var rec kmsRecord
			if json.Unmarshal(st.kms, &rec) == nil {
				e.KMSKey = rec.KeyARN
			}
		}
		return e
	}
	switch created {
	case SourceRootFile:
		switch {
		case given == SourceKeyFile:
			return keyFile(opts.RootKeyFile)
		case given != "":
			return nil, mismatch()
		case t.Dir == "":
			return nil, fmt.Errorf("keystore: %s: records its root key in a file beside it, but this store has no directory", t.Name)
		}
		return keyFile(filepath.Join(t.Dir, RootKeyName))
	case SourceKeyFile:
		if given != SourceKeyFile {
			return nil, mismatch()
		}
		return keyFile(opts.RootKeyFile)
	case SourcePassphrase:
		switch given {
		case SourcePassphrase:
		case "":
			return nil, ErrPassphraseRequired
		default:
			return nil, mismatch()
		}
		var params kdfParams
		if st.kdf == nil {
			return nil, fmt.Errorf("keystore: %s: passphrase parameters missing", t.Name)
		}
		if err := json.Unmarshal(st.kdf, &params); err != nil {
			return nil, fmt.Errorf("keystore: %s: damaged passphrase parameters: %v", t.Name, err)
		}
		root, err := passphraseRootKey(opts.Passphrase, params)
		if err != nil {
			return nil, fmt.Errorf("keystore: %s: %w", t.Name, err)
		}
		return root, nil
	case SourceKMS:
		if given != SourceKMS {
			return nil, mismatch()
		}
		var rec kmsRecord
		if err := json.Unmarshal(st.kms, &rec); err != nil || len(rec.Sealed) == 0 {
			return nil, fmt.Errorf("keystore: %s: its root key is sealed by an upstream KMS, but the sealed root key is missing or damaged", t.Name)
		}
		root, err := unsealRootKMS(ctx, opts.RootKMS, &rec)
		if err != nil {
			return nil, fmt.Errorf("keystore: %s: %w", t.Name, err)
		}
		return root, nil
	case "":
		return nil, fmt.Errorf("keystore: %s: holds a root key check but no root key source; refusing to guess", t.Name)
	}
	return nil, fmt.Errorf("keystore: %s: unknown root key source %q (made by a newer envelope?)", t.Name, st.source)
}

// kdfParams describe how a passphrase becomes the root key.
type kdfParams struct {
	Alg     string `json:"alg"` // "argon2id"
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memoryKiB"`
	Threads uint8  `json:"threads"`
	Salt    []byte `json:"salt"`
}

var defaultKDF = kdfParams{Alg: "argon2id", Time: 3, Memory: 64 << 10, Threads: 4}

// passphraseRootKey derives the root key from a passphrase.
func passphraseRootKey(passphrase []byte, params kdfParams) (kms.RootKey, error) {
	if params.Alg != "argon2id" || len(params.Salt) < 16 || params.Memory == 0 || params.Time == 0 || params.Threads == 0 {
		return nil, fmt.Errorf("unsupported passphrase parameters (%q, %d-byte salt, memory %d KiB, time %d, threads %d)", params.Alg, len(params.Salt), params.Memory, params.Time, params.Threads)
	}
	key := argon2.IDKey(passphrase, params.Salt, params.Time, params.Memory, params.Threads, 32)
	defer clear(key)
	return kms.NewAESRootKey(key)
}

// keyFile reads the root key file of a complete keystore.
func keyFile(path string) (kms.RootKey, error) {
	root, err := readKeyFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	return root, nil
}

// RootKeySize is the size of a root key file: 32 bytes, the AES-256 key.
const RootKeySize = 32

// readKeyFile reads a root key file: 32 bytes, in a regular file that only
// its owner may read or write (on Windows, where modes say little, the mode
// is not checked). A missing file is an error, never a reason to make a new
// root key; creating says that a keystore is being created with it, for
// which the file must have been made beforehand.
func readKeyFile(path string, creating bool) (kms.RootKey, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if creating {
			return nil, fmt.Errorf("%s: %w", path, ErrNoRootKeyFile)
		}
		return nil, fmt.Errorf("the root key file %s is missing; without it no key in the keystore can be used (restore it from a backup)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading root key %s: %v", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading root key %s: %v", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("root key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("root key %s has mode %04o: others than its owner may read or change it; make it private (chmod 600 %s), and consider the key exposed if others did read it", path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, RootKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading root key %s: %v", path, err)
	}
	defer clear(key)
	if len(key) != RootKeySize {
		what := fmt.Sprintf("%d bytes", len(key))
		if len(key) > RootKeySize {
			what = "longer than 32 bytes"
		}
		return nil, fmt.Errorf("root key %s is %s, want 32 (a damaged or foreign file)", path, what)
	}
	return kms.NewAESRootKey(key)
}

// newRootKeyFile returns the root key of a keystore being created in dir
// (the caller holds the creation lock): root.key if it holds 32 bytes (left
// by an interrupted creation, or put there on purpose), else a new one,
// written atomically under a name of its own and renamed into place, so
// that no partial key is ever seen as root.key.
func newRootKeyFile(dir string) (kms.RootKey, error) {
	path := filepath.Join(dir, RootKeyName)
	removeStaleTemps(dir)
	fi, err := os.Stat(path)
	if err == nil && fi.Size() == RootKeySize {
		return readKeyFile(path, false)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading root key %s: %v", path, err)
	}
	key := make([]byte, RootKeySize)
	defer clear(key)
	rand.Read(key)
	suffix := make([]byte, 8)
	rand.Read(suffix)
	tmp := fmt.Sprintf("%s.%x%s", path, suffix, tempSuffix)
	err = durable.WriteNew(tmp, key, 0o600)
	if durable.CreateFailed(err) {
		return nil, fmt.Errorf("creating root key %s: %v", path, err)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("writing root key %s: %v", path, err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("writing root key %s: sync directory: %v", path, err)
	}
	return kms.NewAESRootKey(key)
}

// tempSuffix ends the names of root keys being written.
const tempSuffix = ".tmp"

// removeStaleTemps removes the temporary root key files of creations that
// were interrupted (root.key.*.tmp, and root.key.tmp of earlier versions):
// the caller holds the creation lock, so no other process is writing one,
// and nothing was sealed under the keys they hold.
func removeStaleTemps(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, RootKeyName+".") && strings.HasSuffix(n, tempSuffix) {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// sealRootKMS makes a new root key and has the upstream KMS seal it, for a
// keystore being created; it returns the root key and the record to keep.
func sealRootKMS(ctx context.Context, up *RootKMS) (kms.RootKey, []byte, error) {
	if up.API == nil || up.KeyID == "" {
		return nil, nil, errors.New("an upstream KMS needs its API and the id of the key that seals the root key")
	}
	id := make([]byte, 16)
	rand.Read(id)
	rec := &kmsRecord{Upstream: up.Name, Keystore: hex.EncodeToString(id)}
	key := make([]byte, RootKeySize)
	defer clear(key)
	rand.Read(key)
	ctx, cancel := context.WithTimeout(ctx, rootKMSTimeout)
	defer cancel()
	out, err := up.API.Encrypt(ctx, &kms.EncryptInput{KeyId: up.KeyID, Plaintext: key, EncryptionContext: rec.context()})
	if err != nil {
		return nil, nil, &RootKMSError{Upstream: up.Name, Op: "seal", Err: err}
	}
	rec.KeyARN, rec.Sealed = out.KeyId, out.CiphertextBlob
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, nil, err
	}
	root, err := kms.NewAESRootKey(key)
	return root, b, err
}

// unsealRootKMS has the upstream KMS decrypt the sealed root key of rec.
// The key id given must name the key that sealed it (the upstream refuses
// another with IncorrectKeyException).
func unsealRootKMS(ctx context.Context, up *RootKMS, rec *kmsRecord) (kms.RootKey, error) {
	if up.API == nil || up.KeyID == "" {
		return nil, errors.New("an upstream KMS needs its API and the id of the key that sealed the root key")
	}
	ctx, cancel := context.WithTimeout(ctx, rootKMSTimeout)
	defer cancel()
	out, err := up.API.Decrypt(ctx, &kms.DecryptInput{KeyId: up.KeyID, CiphertextBlob: rec.Sealed, EncryptionContext: rec.context()})
	if err != nil {
		return nil, &RootKMSError{Upstream: up.Name, Op: "unseal", Err: err}
	}
	defer clear(out.Plaintext)
	if len(out.Plaintext) != RootKeySize {
		return nil, &RootKMSError{Upstream: up.Name, Op: "unseal", Err: fmt.Errorf("it answered %d bytes, want 32", len(out.Plaintext))}
	}
	return kms.NewAESRootKey(out.Plaintext)
}

// Package keystore opens envelope's embedded keystore: one directory
// ($ENVELOPE_HOME, by default ~/.local/share/envelope) holding a SQLite
// file of keys whose material is sealed under a root key. It is created on
// first use, so that a new user's first command works.
//
// The root key comes from one of two sources, chosen when the keystore is
// created:
//   - a file, root.key, made beside the keystore with mode 0600 (default);
//   - a passphrase, stretched with Argon2id (64 MiB, 3 passes) over a salt
//     kept in the keystore.
//
// A missing root key file or a wrong passphrase is an error; a new keystore
// is never created over an existing one. Processes that open a new keystore
// at once create it once, under a file lock (keystore.lock); a keystore on a
// full disk or a read-only file system is opened for reading (see [Open]).
package keystore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/envelopekms/envelope/internal/durable"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// File names inside the keystore directory.
const (
	DBName      = "keystore.db"
	RootKeyName = "root.key"
	// LockName is the file whose lock makes a keystore's creation one
	// step (see Open). It is empty, and never removed.
	LockName = "keystore.lock"
)

// Keystore meta names.
const (
	metaRootSource = "root-source" // "file" or "passphrase"
	metaRootKDF    = "root-kdf"
	metaIdentity   = "arn-identity" // region and account of the key ARNs
)

// Dir returns the keystore directory: $ENVELOPE_HOME, else
// $XDG_DATA_HOME/envelope, else ~/.local/share/envelope.
func Dir() (string, error) {
	if d := os.Getenv("ENVELOPE_HOME"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "envelope"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("keystore: no home directory for the keystore; set ENVELOPE_HOME: %v", err)
	}
	return filepath.Join(home, ".local", "share", "envelope"), nil
}

// Options configure Open.
type Options struct {
	// Passphrase, when not nil, derives the root key of a new keystore
	// (and is required to open a keystore created that way). A keystore
	// created with a root key file ignores it.
	Passphrase []byte
	// MustExist makes Open fail with ErrNoKeystore instead of creating a
	// keystore (for reading, which can find nothing in a new one).
	MustExist bool
	// DefaultAlias, when not empty, names a key Open makes sure the
	// keystore has: a new keystore is created with a symmetric key under
	// this alias, and an existing one without the alias gets one (the key
	// and its alias in one transaction). Keystore.DefaultKey describes it.
	DefaultAlias string
	// DefaultKeyDescription is the description of a key made for
	// DefaultAlias.
	DefaultKeyDescription string
	// Service options: the clock, and the region and account of the key
	// ARNs — fixed when the keystore is created (default us-east-1,
	// 111122223333); later opens must give the same or none.
	Service kms.Options
}

// ErrNoKeystore is returned by Open with MustExist when there is no
// keystore yet.
var ErrNoKeystore = errors.New("no keystore here yet")

// Keystore is an open embedded keystore: the KMS service over it.
type Keystore struct {
	*kms.Service
	// Dir is the keystore directory.
	Dir string
	// Created reports whether this Open created the keystore. When
	// several processes open a new keystore at once, exactly one of them
	// creates it (and sees Created); the others open what it made.
	Created bool
	// DefaultKey is the key Options.DefaultAlias names (nil without that
	// option), and CreatedDefaultKey reports whether this Open made it:
	// true in exactly one of several processes racing to make it.
	DefaultKey        *kms.KeyMetadata
	CreatedDefaultKey bool
	// ReadOnly is nil when the keystore can be written. When its disk is
	// full or its file system read-only, Open falls back to reading it:
	// ReadOnly is then the error every change fails with, which wraps
	// sqlite.ErrReadOnly, and sqlite.ErrDiskFull or sqlite.ErrReadOnlyFS
	// when the file system shows which ([sqlite.Store.ReadOnly]).
	ReadOnly error
	store    *sqlite.Store
	root     kms.RootKey // seals the audit key and marks (audit.go)
}

// Close closes the keystore.
func (k *Keystore) Close() error { return k.store.Close() }

// kdfParams describe how a passphrase becomes the root key.
type kdfParams struct {
	Alg     string `json:"alg"` // "argon2id"
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memoryKiB"`
	Threads uint8  `json:"threads"`
	Salt    []byte `json:"salt"`
}

var defaultKDF = kdfParams{Alg: "argon2id", Time: 3, Memory: 64 << 10, Threads: 4}

// ErrPassphraseRequired means the keystore was created with a passphrase and
// none was given.
var ErrPassphraseRequired = errors.New("this keystore is protected by a passphrase; set ENVELOPE_PASSPHRASE")

// Open opens the keystore in dir, creating it on first use.
//
// # Creation
//
// A keystore is complete once its root key check (see [kms.New]) is
// stored, and the check is stored last: after the root key file (or the
// passphrase's salt) and the ARN identity, in the step that creates the
// keystore — with the key of Options.DefaultAlias, when given. That step
// runs under an exclusive lock on the file keystore.lock in dir, so that
// processes opening a new keystore at once create it once: the first to
// take the lock creates it, the others wait for the lock and then open what
// it made. A creation interrupted by a crash leaves no root key check and
// nothing sealed, and the next Open creates the keystore again.
//
// A complete keystore is opened without that lock: readers, writers and
// servers do not wait for one another (beyond SQLite's own locks).
//
// # Full disks and read-only file systems
//
// When the keystore cannot be opened for writing because its disk is full
// or its file system is read-only, Open opens it read-only
// ([sqlite.OpenReadOnly]): everything that only reads works (finding keys,
// encrypting and decrypting with them), every change fails with
// Keystore.ReadOnly's error, and no keystore is ever created that way.
func Open(ctx context.Context, dir string, opts Options) (*Keystore, error) {
	dbPath := filepath.Join(dir, DBName)
	if opts.MustExist {
		if _, err := os.Stat(dbPath); errors.Is(err, fs.ErrNotExist) {
			return nil, noKeystore(dir)
		} else if err != nil {
			return nil, fmt.Errorf("keystore: %v", err)
		}
	}
	store, err := openStore(dbPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && opts.MustExist {
			return nil, noKeystore(dir)
		}
		return nil, fmt.Errorf("keystore: %w", err)
	}
	ks, err := open(ctx, store, dir, opts)
	if err != nil {
		store.Close()
		return nil, err
	}
	return ks, nil
}

func noKeystore(dir string) error {
	return fmt.Errorf("%w: %s (it is created by the first \"envelope encrypt\" or \"envelope keys create\")", ErrNoKeystore, dir)
}

// openStore opens the keystore's database for writing, or for reading
// when the disk is full or the file system read-only.
func openStore(dbPath string) (*sqlite.Store, error) {
	store, err := sqlite.Open(dbPath)
	if err == nil || !errors.Is(err, sqlite.ErrDiskFull) && !errors.Is(err, sqlite.ErrReadOnlyFS) {
		return store, err
	}
	store, rerr := sqlite.OpenReadOnly(dbPath)
	if errors.Is(rerr, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (and there is no keystore to read: %w)", err, fs.ErrNotExist)
	}
	if rerr != nil {
		return nil, fmt.Errorf("%w; reading it failed too: %v", err, rerr)
	}
	return store, nil
}

// state is what a keystore's meta records say about it.
type state struct {
	complete bool // the root key check is stored
	source   string
	kdf      []byte
	identity []byte
}

// readState reads the keystore's state in one snapshot.
func readState(ctx context.Context, store kms.Store) (state, error) {
	var st state
	err := store.View(ctx, func(tx kms.Tx) error {
		st = state{}
		get := func(name string) ([]byte, error) {
			b, err := tx.GetMeta(name)
			if errors.Is(err, kms.ErrNoRecord) {
				return nil, nil
			}
			return b, err
		}
		check, err := get(kms.RootCheckMeta)
		if err != nil {
			return err
		}
		st.complete = check != nil
		source, err := get(metaRootSource)
		if err != nil {
			return err
		}
		st.source = string(source)
		if st.kdf, err = get(metaRootKDF); err != nil {
			return err
		}
		st.identity, err = get(metaIdentity)
		return err
	})
	return st, err
}

// open opens the keystore over store (see Open): as it is when complete,
// else under the creation lock, creating it when it is still not complete
// there and opts allow.
func open(ctx context.Context, store *sqlite.Store, dir string, opts Options) (*Keystore, error) {
	st, err := readState(ctx, store)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", dir, err)
	}
	ks := &Keystore{Dir: dir, ReadOnly: store.ReadOnly(), store: store}
	if !st.complete {
		// Not created yet, or being created: wait for whoever may be
		// creating it, and look again.
		unlock, err := lock(ctx, dir, opts.MustExist || ks.ReadOnly != nil)
		if err != nil {
			return nil, fmt.Errorf("keystore: %s: %w", dir, err)
		}
		defer unlock()
		if st, err = readState(ctx, store); err != nil {
			return nil, fmt.Errorf("keystore: %s: %w", dir, err)
		}
		switch {
		case st.complete:
		case opts.MustExist:
			return nil, noKeystore(dir)
		case ks.ReadOnly != nil:
			return nil, fmt.Errorf("keystore: %s cannot be created: %w", dir, ks.ReadOnly)
		default:
			if ks.Service, ks.root, err = create(ctx, store, dir, opts); err != nil {
				return nil, err
			}
			ks.Created = true
		}
	}
	if ks.Service == nil {
		if ks.Service, ks.root, err = openComplete(ctx, store, dir, st, opts); err != nil {
			return nil, err
		}
	}
	if opts.DefaultAlias != "" {
		if ks.DefaultKey, ks.CreatedDefaultKey, err = defaultKey(ctx, ks.Service, opts); err != nil {
			return nil, fmt.Errorf("keystore: %s: %s: %w", dir, opts.DefaultAlias, err)
		}
	}
	return ks, nil
}

// openComplete opens a complete keystore: its root key, its ARN identity,
// and the service, which checks the root key.
func openComplete(ctx context.Context, store *sqlite.Store, dir string, st state, opts Options) (*kms.Service, kms.RootKey, error) {
	var root kms.RootKey
	var err error
	switch st.source {
	case "file":
		root, err = readRootKey(filepath.Join(dir, RootKeyName))
	case "passphrase":
		if opts.Passphrase == nil {
			return nil, nil, ErrPassphraseRequired
		}
		var params kdfParams
		if st.kdf == nil {
			return nil, nil, fmt.Errorf("keystore: %s: passphrase parameters missing", dir)
		}
		if err := json.Unmarshal(st.kdf, &params); err != nil {
			return nil, nil, fmt.Errorf("keystore: %s: damaged passphrase parameters: %v", dir, err)
		}
		root, err = passphraseRootKey(opts.Passphrase, params)
		if err != nil {
			err = fmt.Errorf("%s: %w", dir, err)
		}
	case "":
		return nil, nil, fmt.Errorf("keystore: %s: holds a root key check but no root key source; refusing to guess", dir)
	default:
		return nil, nil, fmt.Errorf("keystore: %s: unknown root key source %q", dir, st.source)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: %w", err)
	}
	if opts.Service, err = identity(ctx, store, st.identity, opts.Service); err != nil {
		return nil, nil, fmt.Errorf("keystore: %s: %w", dir, err)
	}
	// New only reads here (the check exists): it works on a read-only
	// store too.
	svc, err := kms.New(ctx, store, root, opts.Service)
	if err != nil {
		if errors.Is(err, kms.ErrWrongRootKey) {
			return nil, nil, fmt.Errorf("keystore: %s: %w", dir, err)
		}
		return nil, nil, fmt.Errorf("keystore: %s: %v", dir, err)
	}
	return svc, root, nil
}

// create creates the keystore, holding the creation lock: the root key
// (file, or the passphrase's salt), the ARN identity and the root key check,
// which comes last and marks the keystore complete, then the default key.
// Whatever an interrupted creation left is replaced: nothing was sealed
// under its root key.
func create(ctx context.Context, store *sqlite.Store, dir string, opts Options) (*kms.Service, kms.RootKey, error) {
	var root kms.RootKey
	var err error
	source, params := "file", kdfParams{}
	if opts.Passphrase != nil {
		source, params = "passphrase", defaultKDF
		params.Salt = make([]byte, 32)
		rand.Read(params.Salt)
		root, err = passphraseRootKey(opts.Passphrase, params)
	} else {
		root, err = newRootKeyFile(dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: creating %s: %w", dir, err)
	}
	id := arnIdentity{Region: opts.Service.Region, AccountID: opts.Service.AccountID}
	if id.Region == "" {
		id.Region = kms.DefaultRegion
	}
	if id.AccountID == "" {
		id.AccountID = kms.DefaultAccountID
	}
	opts.Service.Region, opts.Service.AccountID = id.Region, id.AccountID
	err = store.Update(ctx, func(tx kms.Tx) error {
		if keys, err := tx.ListKeys("", 1); err != nil {
			return err
		} else if len(keys) > 0 {
			return errors.New("holds keys but no root key check; refusing to guess")
		}
		if source == "passphrase" {
			p, err := json.Marshal(params)
			if err != nil {
				return err
			}
			if err := tx.PutMeta(metaRootKDF, p); err != nil {
				return err
			}
		}
		if err := tx.PutMeta(metaRootSource, []byte(source)); err != nil {
			return err
		}
		b, _ := json.Marshal(id)
		return tx.PutMeta(metaIdentity, b)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: creating %s: %w", dir, err)
	}
	svc, err := kms.New(ctx, store, root, opts.Service) // stores the check
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: creating %s: %w", dir, err)
	}
	return svc, root, nil
}

// defaultKey returns the key opts.DefaultAlias names, creating it (with its
// alias, in one transaction) if the alias does not exist. Of several
// processes doing so at once, one creates it and the others find it.
func defaultKey(ctx context.Context, svc *kms.Service, opts Options) (*kms.KeyMetadata, bool, error) {
	d, err := svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: opts.DefaultAlias})
	if err == nil {
		return d.KeyMetadata, false, nil
	}
	if kms.CodeOf(err) != kms.CodeNotFound {
		return nil, false, err
	}
	out, err := svc.CreateKeyWithAlias(ctx, &kms.CreateKeyInput{Description: opts.DefaultKeyDescription}, opts.DefaultAlias)
	if err == nil {
		return out.KeyMetadata, true, nil
	}
	if kms.CodeOf(err) != kms.CodeAlreadyExists {
		return nil, false, err
	}
	// Another process made it meanwhile: use that one.
	if d, err = svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: opts.DefaultAlias}); err != nil {
		return nil, false, err
	}
	return d.KeyMetadata, false, nil
}

// arnIdentity is the region and account a keystore's ARNs carry.
type arnIdentity struct {
	Region    string `json:"region"`
	AccountID string `json:"accountId"`
}

// ErrIdentityMismatch means Open was asked for another region or account
// than the keystore's ARNs carry.
var ErrIdentityMismatch = errors.New("the keystore's key ARNs belong to another region or account")

// identity returns opts with the region and account of the keystore's ARNs,
// recorded (b) when the keystore was created; later opens must agree or
// leave them empty. A keystore made before identities were recorded gets
// one now (from opts, or the defaults), unless it is read-only.
func identity(ctx context.Context, store *sqlite.Store, b []byte, opts kms.Options) (kms.Options, error) {
	if b == nil {
		id := arnIdentity{Region: opts.Region, AccountID: opts.AccountID}
		if id.Region == "" {
			id.Region = kms.DefaultRegion
		}
		if id.AccountID == "" {
			id.AccountID = kms.DefaultAccountID
		}
		opts.Region, opts.AccountID = id.Region, id.AccountID
		if store.ReadOnly() != nil {
			return opts, nil
		}
		err := store.Update(ctx, func(tx kms.Tx) error {
			if _, err := tx.GetMeta(metaIdentity); !errors.Is(err, kms.ErrNoRecord) {
				return err // recorded meanwhile: the next Open checks it
			}
			b, _ := json.Marshal(id)
			return tx.PutMeta(metaIdentity, b)
		})
		return opts, err
	}
	var id arnIdentity
	if err := json.Unmarshal(b, &id); err != nil {
		return opts, fmt.Errorf("damaged ARN identity: %v", err)
	}
	if opts.Region != "" && opts.Region != id.Region || opts.AccountID != "" && opts.AccountID != id.AccountID {
		return opts, fmt.Errorf("%w: it was created for region %s, account %s (asked for %s, %s)", ErrIdentityMismatch, id.Region, id.AccountID, opts.Region, opts.AccountID)
	}
	opts.Region, opts.AccountID = id.Region, id.AccountID
	return opts, nil
}

// passphraseRootKey derives the root key from a passphrase.
func passphraseRootKey(passphrase []byte, params kdfParams) (kms.RootKey, error) {
	if params.Alg != "argon2id" || len(params.Salt) < 16 || params.Memory == 0 || params.Time == 0 || params.Threads == 0 {
		return nil, fmt.Errorf("unsupported passphrase parameters (%q, %d-byte salt, memory %d KiB, time %d, threads %d)", params.Alg, len(params.Salt), params.Memory, params.Time, params.Threads)
	}
	key := argon2.IDKey(passphrase, params.Salt, params.Time, params.Memory, params.Threads, 32)
	defer clear(key)
	return kms.NewAESRootKey(key)
}

// readRootKey reads the root key file of a complete keystore. A missing
// file is an error, never a reason to make a new root key.
func readRootKey(path string) (kms.RootKey, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the root key file %s is missing; without it no key in the keystore can be used (restore it from a backup)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading root key %s: %v", path, err)
	}
	defer clear(key)
	if len(key) != 32 {
		return nil, fmt.Errorf("root key %s is %d bytes, want 32 (a damaged or foreign file)", path, len(key))
	}
	return kms.NewAESRootKey(key)
}

// newRootKeyFile returns the root key of a keystore being created (the
// caller holds the creation lock): root.key if it holds 32 bytes (left by
// an interrupted creation, or put there on purpose), else a new one,
// written atomically under a name of its own and renamed into place, so
// that no partial key is ever seen as root.key.
func newRootKeyFile(dir string) (kms.RootKey, error) {
	path := filepath.Join(dir, RootKeyName)
	removeStaleTemps(dir)
	key, err := os.ReadFile(path)
	if err == nil && len(key) == 32 {
		defer clear(key)
		return kms.NewAESRootKey(key)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading root key %s: %v", path, err)
	}
	clear(key)
	key = make([]byte, 32)
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

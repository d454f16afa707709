// Package keystore opens envelope's keystore: the KMS service over a
// [kms.Store] whose key material is sealed under a root key. The embedded
// keystore is one directory ($ENVELOPE_HOME, by default
// ~/.local/share/envelope) holding a SQLite file ([Open]); any other store
// (PostgreSQL, for several servers) is opened with [OpenStore]. A keystore
// is created on first use, so that a new user's first command works.
//
// # Root key
//
// The root key comes from one source, chosen when the keystore is created
// and recorded in it ([RootSource]):
//   - a file, root.key, made beside a SQLite keystore with mode 0600 (the
//     default for a keystore directory);
//   - a root key file kept apart ([Options.RootKeyFile]): 32 bytes that
//     only their owner may read;
//   - a passphrase ([Options.Passphrase]), stretched with Argon2id (64 MiB,
//     3 passes) over a salt kept in the keystore;
//   - an upstream KMS ([Options.RootKMS]: AWS KMS, or another envelope
//     server), which seals it: the keystore keeps only the root key
//     encrypted by the upstream, and has it decrypted at every open.
//
// Every open must give the source the keystore was created with (a root key
// file may stand in for root.key): another source is refused with a
// [*RootSourceError], and a root key that is not the keystore's with
// [kms.ErrWrongRootKey], before anything is read or written with it. A
// missing root key file is an error; a new keystore is never created over
// an existing one.
//
// # Creation
//
// Processes that open a new keystore at once create it once, under the
// store's creation lock ([kms.CreationLocker]: a file lock, keystore.lock,
// beside a SQLite keystore); a keystore on a full disk or a read-only file
// system is opened for reading (see [Open]).
package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// File names inside a keystore directory.
const (
	DBName      = "keystore.db"
	RootKeyName = "root.key"
	// LockName is the file whose lock makes a keystore's creation one
	// step (see Open). It is empty, and never removed.
	LockName = sqlite.LockName
)

// Keystore meta names.
const (
	metaRootSource = "root-source"  // a RootSource
	metaRootKDF    = "root-kdf"     // the passphrase's parameters
	metaRootKMS    = "root-kms"     // the root key sealed by an upstream KMS
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

// Options configure Open and OpenStore.
type Options struct {
	// The root key source: at most one of RootKeyFile, Passphrase and
	// RootKMS. A new keystore is created with the one given, or with a new
	// root.key beside a SQLite keystore when none is; a keystore that
	// exists must be given the source it was created with (a root key file
	// may stand in for its root.key), else Open fails with a
	// [*RootSourceError] (or [ErrPassphraseRequired]).
	//
	// RootKeyFile names a file holding the 32-byte root key, which only
	// its owner may read or write (mode 0600); it is never made here. A
	// new keystore takes the key it holds.
	RootKeyFile string
	// Passphrase, when not nil, derives the root key.
	Passphrase []byte
	// RootKMS, when not nil, is an upstream KMS that seals the root key.
	RootKMS *RootKMS
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

// ErrPassphraseRequired means the keystore was created with a passphrase and
// none was given.
var ErrPassphraseRequired = errors.New("this keystore is protected by a passphrase; set ENVELOPE_PASSPHRASE")

// Target is a store to open a keystore on ([OpenStore]) or to copy one into
// ([Copy]).
type Target struct {
	// Store holds the keystore. A keystore can be created on it only if it
	// implements [kms.CreationLocker].
	Store kms.Store
	// Name is how messages name the keystore: its directory, or its URL
	// without secrets.
	Name string
	// Dir is the directory of a SQLite keystore, where its root key file
	// root.key is made when no root key source is given; "" for other
	// stores.
	Dir string
}

// Keystore is an open keystore: the KMS service over it.
type Keystore struct {
	*kms.Service
	// Dir is the keystore directory of a SQLite keystore, "" for other
	// stores.
	Dir string
	// Name is how messages name the keystore (Target.Name; for Open, the
	// directory).
	Name string
	// RootSource is where its root key comes from.
	RootSource RootSource
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
	store    kms.Store
	root     kms.RootKey // seals the audit key and marks (audit.go)
}

// Close closes the keystore and its store.
func (k *Keystore) Close() error { return k.store.Close() }

// Open opens the SQLite keystore in dir, creating it on first use.
//
// # Creation
//
// A keystore is complete once its root key check (see [kms.New]) is
// stored, and the check is stored last: after the root key's record (the
// root key file itself, the passphrase's salt, or the root key sealed by
// the upstream KMS) and the ARN identity, in the step that creates the
// keystore — with the key of Options.DefaultAlias, when given. That step
// runs under the store's exclusive creation lock (for a directory, a file
// lock on keystore.lock in it), so that processes opening a new keystore at
// once create it once: the first to take the lock creates it, the others
// wait for the lock and then open what it made. A creation interrupted by a
// crash leaves no root key check and nothing sealed, and the next Open
// creates the keystore again.
//
// A complete keystore is opened without that lock: readers, writers and
// servers do not wait for one another (beyond the store's own locks).
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
	store, err := openSQLite(dbPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && opts.MustExist {
			return nil, noKeystore(dir)
		}
		return nil, fmt.Errorf("keystore: %w", err)
	}
	ks, err := open(ctx, Target{Store: store, Name: dir, Dir: dir}, opts)
	if err != nil {
		store.Close()
		return nil, err
	}
	return ks, nil
}

// OpenStore opens the keystore on t, creating it on first use, as [Open]
// does for a directory; t.Store must implement [kms.CreationLocker] for the
// keystore to be created. The keystore owns t.Store once OpenStore
// succeeds (Close closes it); when OpenStore fails, the caller closes it.
// Without t.Dir, a new keystore needs a root key source in opts
// ([ErrNoRootSource]).
func OpenStore(ctx context.Context, t Target, opts Options) (*Keystore, error) {
	return open(ctx, t, opts)
}

func noKeystore(name string) error {
	return fmt.Errorf("%w: %s (it is created by the first \"envelope encrypt\" or \"envelope keys create\")", ErrNoKeystore, name)
}

// openSQLite opens the keystore's database for writing, or for reading
// when the disk is full or the file system read-only.
func openSQLite(dbPath string) (*sqlite.Store, error) {
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

// readOnly returns the error a store's writes fail with when it was opened
// for reading only ([sqlite.Store.ReadOnly]), else nil.
func readOnly(store kms.Store) error {
	if ro, ok := store.(interface{ ReadOnly() error }); ok {
		return ro.ReadOnly()
	}
	return nil
}

// state is what a keystore's meta records say about it.
type state struct {
	complete bool // the root key check is stored
	source   string
	kdf      []byte
	kms      []byte
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
		if st.kms, err = get(metaRootKMS); err != nil {
			return err
		}
		st.identity, err = get(metaIdentity)
		return err
	})
	return st, err
}

// lockWait bounds how long Open waits for another process creating the
// keystore; creating one takes well under a second (a few with an upstream
// KMS).
const lockWait = 2 * time.Minute

// lockCreation takes t's creation lock (see [kms.CreationLocker]),
// waiting at most lockWait.
func lockCreation(ctx context.Context, t Target, shared bool) (unlock func(), err error) {
	l, ok := t.Store.(kms.CreationLocker)
	if !ok {
		return nil, errors.New("the store has no creation lock, so no keystore can be created on it")
	}
	wait, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	unlock, err = l.LockCreation(wait, shared)
	switch {
	case err == nil:
		return unlock, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wait.Err() != nil:
		return nil, fmt.Errorf("another process has been creating the keystore for %v (it holds the store's creation lock); if it is stuck, stop it", lockWait)
	}
	return nil, err
}

// open opens the keystore on t (see Open): as it is when complete, else
// under the creation lock, creating it when it is still not complete there
// and opts allow.
func open(ctx context.Context, t Target, opts Options) (*Keystore, error) {
	if _, err := opts.given(); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	st, err := readState(ctx, t.Store)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", t.Name, err)
	}
	ks := &Keystore{Dir: t.Dir, Name: t.Name, ReadOnly: readOnly(t.Store), store: t.Store}
	if !st.complete {
		// Not created yet, or being created: wait for whoever may be
		// creating it, and look again.
		unlock, err := lockCreation(ctx, t, opts.MustExist || ks.ReadOnly != nil)
		if err != nil {
			return nil, fmt.Errorf("keystore: %s: %w", t.Name, err)
		}
		defer unlock()
		if st, err = readState(ctx, t.Store); err != nil {
			return nil, fmt.Errorf("keystore: %s: %w", t.Name, err)
		}
		switch {
		case st.complete:
		case opts.MustExist:
			return nil, noKeystore(t.Name)
		case ks.ReadOnly != nil:
			return nil, fmt.Errorf("keystore: %s cannot be created: %w", t.Name, ks.ReadOnly)
		default:
			if err := ks.create(ctx, t, opts); err != nil {
				return nil, err
			}
			ks.Created = true
		}
	}
	if ks.Service == nil {
		if err := ks.openComplete(ctx, t, st, opts); err != nil {
			return nil, err
		}
	}
	if opts.DefaultAlias != "" {
		if ks.DefaultKey, ks.CreatedDefaultKey, err = defaultKey(ctx, ks.Service, opts); err != nil {
			return nil, fmt.Errorf("keystore: %s: %s: %w", t.Name, opts.DefaultAlias, err)
		}
	}
	return ks, nil
}

// openComplete opens a complete keystore: its root key, its ARN identity,
// and the service, which checks the root key.
func (ks *Keystore) openComplete(ctx context.Context, t Target, st state, opts Options) error {
	root, err := openRoot(ctx, t, st, opts)
	if err != nil {
		return err
	}
	if opts.Service, err = identity(ctx, t.Store, st.identity, opts.Service); err != nil {
		return fmt.Errorf("keystore: %s: %w", t.Name, err)
	}
	// New only reads here (the check exists): it works on a read-only
	// store too.
	svc, err := kms.New(ctx, t.Store, root, opts.Service)
	if err != nil {
		if errors.Is(err, kms.ErrWrongRootKey) {
			return fmt.Errorf("keystore: %s: %w", t.Name, err)
		}
		return fmt.Errorf("keystore: %s: %v", t.Name, err)
	}
	ks.Service, ks.root, ks.RootSource = svc, root, RootSource(st.source)
	return nil
}

// create creates the keystore, holding the creation lock: the root key (a
// new root.key, or the record of the source opts give), the ARN identity
// and the root key check, which comes last and marks the keystore complete,
// then the default key. Whatever an interrupted creation left is replaced:
// nothing was sealed under its root key.
func (ks *Keystore) create(ctx context.Context, t Target, opts Options) error {
	root, err := makeRoot(ctx, t, opts)
	if err != nil {
		return fmt.Errorf("keystore: creating %s: %w", t.Name, err)
	}
	id := newIdentity(opts.Service)
	opts.Service.Region, opts.Service.AccountID = id.Region, id.AccountID
	err = t.Store.Update(ctx, func(tx kms.Tx) error {
		if keys, err := tx.ListKeys("", 1); err != nil {
			return err
		} else if len(keys) > 0 {
			return errors.New("holds keys but no root key check; refusing to guess")
		}
		if err := root.record(tx); err != nil {
			return err
		}
		return id.record(tx)
	})
	if err != nil {
		return fmt.Errorf("keystore: creating %s: %w", t.Name, err)
	}
	svc, err := kms.New(ctx, t.Store, root.key, opts.Service) // stores the check
	if err != nil {
		return fmt.Errorf("keystore: creating %s: %w", t.Name, err)
	}
	ks.Service, ks.root, ks.RootSource = svc, root.key, root.source
	return nil
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

// newIdentity returns the identity of a new keystore: opts's, or the
// defaults.
func newIdentity(opts kms.Options) arnIdentity {
	id := arnIdentity{Region: opts.Region, AccountID: opts.AccountID}
	if id.Region == "" {
		id.Region = kms.DefaultRegion
	}
	if id.AccountID == "" {
		id.AccountID = kms.DefaultAccountID
	}
	return id
}

// record stores the identity in tx.
func (id arnIdentity) record(tx kms.Tx) error {
	b, _ := json.Marshal(id)
	return tx.PutMeta(metaIdentity, b)
}

// ErrIdentityMismatch means Open was asked for another region or account
// than the keystore's ARNs carry.
var ErrIdentityMismatch = errors.New("the keystore's key ARNs belong to another region or account")

// identity returns opts with the region and account of the keystore's ARNs,
// recorded (b) when the keystore was created; later opens must agree or
// leave them empty. A keystore made before identities were recorded gets
// one now (from opts, or the defaults), unless it is read-only.
func identity(ctx context.Context, store kms.Store, b []byte, opts kms.Options) (kms.Options, error) {
	if b == nil {
		id := newIdentity(opts)
		opts.Region, opts.AccountID = id.Region, id.AccountID
		if readOnly(store) != nil {
			return opts, nil
		}
		err := store.Update(ctx, func(tx kms.Tx) error {
			if _, err := tx.GetMeta(metaIdentity); !errors.Is(err, kms.ErrNoRecord) {
				return err // recorded meanwhile: the next Open checks it
			}
			return id.record(tx)
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

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
// is never created over an existing one.
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

	"golang.org/x/crypto/argon2"

	"github.com/envelopekms/envelope/internal/durable"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// File names inside the keystore directory.
const (
	DBName      = "keystore.db"
	RootKeyName = "root.key"
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
		return "", fmt.Errorf("no home directory for the keystore; set ENVELOPE_HOME: %v", err)
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
	// Created reports whether Open created the keystore.
	Created bool
	store   *sqlite.Store
	root    kms.RootKey // seals the audit key and marks (audit.go)
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
func Open(ctx context.Context, dir string, opts Options) (*Keystore, error) {
	dbPath := filepath.Join(dir, DBName)
	_, statErr := os.Stat(dbPath)
	existed := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("keystore %s: %v", dbPath, statErr)
	}
	if !existed && opts.MustExist {
		return nil, fmt.Errorf("%w: %s (it is created by the first \"envelope encrypt\" or \"envelope keys create\")", ErrNoKeystore, dir)
	}
	store, err := sqlite.Open(dbPath)
	if err != nil {
		return nil, fmt.Errorf("opening keystore %s: %w", dbPath, err)
	}
	root, fresh, err := rootKey(ctx, store, dir, opts.Passphrase)
	if err != nil {
		store.Close()
		return nil, err
	}
	if opts.Service, err = identity(ctx, store, opts.Service); err != nil {
		store.Close()
		return nil, fmt.Errorf("keystore %s: %w", dir, err)
	}
	svc, err := kms.New(ctx, store, root, opts.Service)
	if err != nil {
		store.Close()
		if errors.Is(err, kms.ErrWrongRootKey) {
			return nil, fmt.Errorf("keystore %s: %w", dir, err)
		}
		return nil, fmt.Errorf("keystore %s: %v", dir, err)
	}
	return &Keystore{Service: svc, Dir: dir, Created: !existed || fresh, store: store, root: root}, nil
}

// arnIdentity is the region and account a keystore's ARNs carry.
type arnIdentity struct {
	Region    string `json:"region"`
	AccountID string `json:"accountId"`
}

// ErrIdentityMismatch means Open was asked for another region or account
// than the keystore's ARNs carry.
var ErrIdentityMismatch = errors.New("the keystore's key ARNs belong to another region or account")

// identity fixes the region and account of the keystore's ARNs when it is
// created (from opts, or the defaults), so that every process serving it
// names keys the same way; later opens must agree or leave them empty.
func identity(ctx context.Context, store kms.Store, opts kms.Options) (kms.Options, error) {
	err := store.Update(ctx, func(tx kms.Tx) error {
		b, err := tx.GetMeta(metaIdentity)
		if errors.Is(err, kms.ErrNotFound) {
			id := arnIdentity{Region: opts.Region, AccountID: opts.AccountID}
			if id.Region == "" {
				id.Region = kms.DefaultRegion
			}
			if id.AccountID == "" {
				id.AccountID = kms.DefaultAccountID
			}
			opts.Region, opts.AccountID = id.Region, id.AccountID
			b, _ := json.Marshal(id)
			return tx.PutMeta(metaIdentity, b)
		}
		if err != nil {
			return err
		}
		var id arnIdentity
		if err := json.Unmarshal(b, &id); err != nil {
			return fmt.Errorf("damaged ARN identity: %v", err)
		}
		if opts.Region != "" && opts.Region != id.Region || opts.AccountID != "" && opts.AccountID != id.AccountID {
			return fmt.Errorf("%w: it was created for region %s, account %s (asked for %s, %s)", ErrIdentityMismatch, id.Region, id.AccountID, opts.Region, opts.AccountID)
		}
		opts.Region, opts.AccountID = id.Region, id.AccountID
		return nil
	})
	return opts, err
}

// rootKey returns the keystore's root key, choosing and recording its
// source when the keystore is new.
func rootKey(ctx context.Context, store kms.Store, dir string, passphrase []byte) (root kms.RootKey, fresh bool, err error) {
	var source string
	var params kdfParams
	err = store.Update(ctx, func(tx kms.Tx) error {
		b, err := tx.GetMeta(metaRootSource)
		switch {
		case err == nil:
			source = string(b)
			// A first Open killed after recording the source but before
			// any key or the root key check existed left nothing that
			// needs the old root key: it may be made again.
			if _, cerr := tx.GetMeta(kms.RootCheckMeta); errors.Is(cerr, kms.ErrNotFound) {
				if keys, lerr := tx.ListKeys("", 1); lerr == nil && len(keys) == 0 {
					fresh = true
				}
			}
			if source == "passphrase" {
				p, err := tx.GetMeta(metaRootKDF)
				if err != nil {
					return fmt.Errorf("keystore: passphrase parameters missing: %w", err)
				}
				return json.Unmarshal(p, &params)
			}
			return nil
		case !errors.Is(err, kms.ErrNotFound):
			return err
		}
		// A new keystore: record the source (and salt) before any key.
		if keys, err := tx.ListKeys("", 1); err != nil {
			return err
		} else if len(keys) > 0 {
			return errors.New("keystore: holds keys but no root key source; refusing to guess")
		}
		source, fresh = "file", true
		if passphrase != nil {
			source = "passphrase"
			params = defaultKDF
			params.Salt = make([]byte, 32)
			rand.Read(params.Salt)
			p, err := json.Marshal(params)
			if err != nil {
				return err
			}
			if err := tx.PutMeta(metaRootKDF, p); err != nil {
				return err
			}
		}
		return tx.PutMeta(metaRootSource, []byte(source))
	})
	if err != nil {
		return nil, false, err
	}
	switch source {
	case "file":
		root, err = fileRootKey(filepath.Join(dir, RootKeyName), fresh)
		return root, fresh, err
	case "passphrase":
		if passphrase == nil {
			return nil, false, ErrPassphraseRequired
		}
		if params.Alg != "argon2id" || len(params.Salt) < 16 || params.Memory == 0 || params.Time == 0 || params.Threads == 0 {
			return nil, false, fmt.Errorf("keystore: unsupported passphrase parameters %q", params.Alg)
		}
		key := argon2.IDKey(passphrase, params.Salt, params.Time, params.Memory, params.Threads, 32)
		defer clear(key)
		root, err = kms.NewAESRootKey(key)
		return root, fresh, err
	}
	return nil, false, fmt.Errorf("keystore: unknown root key source %q", source)
}

// fileRootKey reads the root key file. For a fresh keystore it creates the
// file (mode 0600, 32 random bytes) if absent; for an existing keystore a
// missing file is an error, never a new root key.
func fileRootKey(path string, fresh bool) (kms.RootKey, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !fresh {
		return nil, fmt.Errorf("the keystore's root key file %s is missing; without it no key in the keystore can be used (restore it from a backup)", path)
	}
	if errors.Is(err, fs.ErrNotExist) || err == nil && fresh && len(key) != 32 {
		key = make([]byte, 32)
		rand.Read(key)
		if werr := writeRootKey(path, key); werr != nil {
			return nil, werr
		}
		err = nil
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

// writeRootKey writes the root key atomically: a temporary file (mode
// 0600), synced, then renamed into place, so a crash never leaves a
// partial key.
func writeRootKey(path string, key []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	err := durable.WriteNew(tmp, key, 0o600)
	if durable.CreateFailed(err) {
		return fmt.Errorf("creating root key %s: %v", path, err)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing root key %s: %v", path, err)
	}
	durable.SyncDir(filepath.Dir(path)) // best effort: the key is written
	return nil
}

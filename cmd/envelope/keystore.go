package main

// The keystore command: copy a keystore whole into another store, and back
// one up as a new keystore directory (keystore.Copy).

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/envelopekms/envelope/kms/keystore"
)

const keystoreHelp = `Usage: envelope keystore copy --from STORE --to STORE [--dry-run] [flags]
       envelope keystore backup -o DIR [--store STORE] [flags]

Move or back up a keystore whole: every key (its description, tags, policy,
state, rotation schedule and deletion date), every version of its material,
the aliases, the records of deleted keys, and the audit key and high-water
marks of its servers' audit logs. STORE is a keystore directory, sqlite:DIR
or postgres://….

  copy      copy the keystore --from into the empty store --to
  backup    snapshot the keystore into the new keystore directory DIR

Material is opened with the source's root key and sealed under the
destination's in memory, never written in the clear; the key ARNs keep their
region and account, so the copy decrypts every ciphertext the source made.
The destination must be empty: anything else is refused before a byte is
written. It is written in one transaction, so an interrupted copy leaves it
empty; the source is only read, in one transaction: a consistent snapshot,
even of a keystore servers are using.

Run "envelope keystore copy --help" or "envelope keystore backup --help"
for their flags.
`

const keystoreCopyHelp = `Usage: envelope keystore copy --from STORE --to STORE [--dry-run] [flags]

Copy the keystore --from whole into the store --to, which must be empty (a
new directory, or an empty database). STORE is a keystore directory,
sqlite:DIR or postgres://…. See "envelope keystore --help" for what is
copied and how.

The source is opened with its root key as every command opens it
(--root-key-file, --root-kms and --root-key-id, or their variables, or
ENVELOPE_PASSPHRASE). The copy's root key is chosen here, as when a keystore
is created: --to-root-key-file, --to-root-kms with --to-root-key-id, or
ENVELOPE_TO_PASSPHRASE; with none, a directory gets a new root.key beside
its keystore (a store that is not a directory needs one of them). Open the
copy later with the same.

--dry-run reads the source, counts what would be copied, checks that the
destination is empty, and writes nothing (reading a SQLite destination that
exists leaves SQLite's own -wal and -shm files beside it, as any reader of a
keystore does).

Flags:
%s
Examples:
  envelope keystore copy --from /var/lib/envelope --to postgres://envelope@db.internal/kms \
      --to-root-key-file /etc/envelope/root.key --dry-run
  envelope keystore copy --from postgres://envelope@db.internal/kms --root-key-file /etc/envelope/root.key \
      --to /srv/envelope-copy
`

const keystoreBackupHelp = `Usage: envelope keystore backup -o DIR [--store STORE] [flags]

Back up the keystore (--store, default $ENVELOPE_STORE, else $ENVELOPE_HOME)
as a new keystore directory DIR: a consistent snapshot, read in one
transaction, so a keystore that servers are using may be backed up at any
time. DIR is a keystore like any other: use it with --store DIR (to
restore, copy it back with "envelope keystore copy --from DIR --to STORE").

What DIR holds: every key and every version of its material (sealed under
DIR's root key), the aliases, tags, policies, rotation and deletion state,
the records of deleted keys, and the audit key and marks of the servers'
logs. With no --to-root-* option DIR's root key is DIR/root.key (mode
0600), and whoever reads DIR can use every key: keep DIR as you keep the
keystore (owner-only, on an encrypted disk). To keep the backup useless on
its own, give --to-root-key-file FILE (made by "envelope keygen root",
kept apart, offline), --to-root-kms with --to-root-key-id, or
ENVELOPE_TO_PASSPHRASE: then DIR opens only with that.

Flags:
%s
Examples:
  envelope keystore backup -o /backup/envelope-2026-12-02
  envelope keystore backup --store postgres://envelope@db.internal/kms --root-key-file /etc/envelope/root.key \
      -o /backup/kms --to-root-key-file /secure/backup-root.key
`

// keystore runs "envelope keystore copy|backup [flags]".
func (c *cli) keystore(args []string) error {
	if len(args) == 0 {
		return usageErrorf("keystore needs a command, copy or backup; see \"envelope keystore --help\"")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(c.stdout, keystoreHelp)
		return nil
	case "copy", "backup":
	default:
		return usageErrorf("unknown keystore command %q: want copy or backup", args[0])
	}
	backup := args[0] == "backup"
	var from, to string
	var dryRun bool
	var dst rootFlags
	fs := c.newFlagSet("keystore " + args[0])
	help := keystoreCopyHelp
	if backup {
		help = keystoreBackupHelp
		fs.StringVarP(&to, "output", "o", "", "write the backup to the new keystore directory `DIR`")
		c.store.register(fs)
	} else {
		fs.StringVar(&from, "from", "", "copy the keystore at `STORE`")
		fs.StringVar(&to, "to", "", "into the empty store `STORE` (a new directory, or an empty database)")
		fs.BoolVar(&dryRun, "dry-run", false, "count what would be copied and check that the destination is empty; write nothing")
		c.store.root.register(fs, "", "the source's")
	}
	dst.register(fs, "to-", "the copy's")
	if ok, err := c.parse(fs, args[1:], help); !ok {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("keystore %s takes no arguments; see \"envelope keystore %s --help\"", args[0], args[0])
	}
	var src, dstLoc storeLoc
	var err error
	switch {
	case backup && to == "":
		return usageErrorf("keystore backup needs -o DIR, a new keystore directory")
	case backup:
		if src, err = c.location(c.store.store); err != nil {
			return err
		}
		if dstLoc, err = c.parseStore("-o", to); err != nil {
			return err
		}
		if dstLoc.kind != storeSQLite {
			return usageErrorf("-o %s: a backup is a keystore directory; to copy into another kind of store, use \"envelope keystore copy\"", dstLoc.name)
		}
	case from == "" || to == "":
		return usageErrorf("keystore copy needs --from STORE and --to STORE")
	default:
		if src, err = c.parseStore("--from", from); err != nil {
			return err
		}
		if dstLoc, err = c.parseStore("--to", to); err != nil {
			return err
		}
	}

	ctx := c.ctx
	srcOpts := keystore.Options{MustExist: true}
	if err := c.rootOptions(ctx, c.store.root, "", &srcOpts); err != nil {
		return err
	}
	var dstOpts keystore.Options
	if err := c.rootOptions(ctx, dst, "to-", &dstOpts); err != nil {
		return err
	}
	ks, err := c.openKeystore(ctx, src, srcOpts)
	if err != nil {
		return keystoreHint(err, src, srcOpts)
	}
	defer ks.Close()

	if dryRun {
		stats, err := ks.CopyStats(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "dry run: would copy %s from %s to %s\n", statsText(stats), src.name, dstLoc.name)
		if err := c.checkEmpty(ctx, dstLoc); err != nil {
			return copyHint(err)
		}
		fmt.Fprintf(c.stdout, "%s is empty; nothing was written\n", dstLoc.name)
		return nil
	}
	t, err := c.target(ctx, dstLoc)
	if err != nil {
		return err
	}
	defer t.Store.Close()
	stats, err := keystore.Copy(ctx, ks, t, dstOpts)
	if err != nil {
		return copyHint(err)
	}
	root := rootText(dstOpts, dstLoc)
	if backup {
		fmt.Fprintf(c.stdout, "backed up %s from %s into %s (root key: %s); open it with --store %s\n", statsText(stats), src.name, dstLoc.name, root, dstLoc.name)
	} else {
		fmt.Fprintf(c.stdout, "copied %s from %s to %s (root key: %s)\n", statsText(stats), src.name, dstLoc.name, root)
	}
	return nil
}

// copyHint adds advice to a failure to copy into a store.
func copyHint(err error) error {
	var ue *keystore.RootKMSError
	switch {
	case errors.Is(err, keystore.ErrNotEmpty):
		return &hintError{err, "a keystore is copied into an empty store only: give a new directory, or an empty database"}
	case errors.Is(err, keystore.ErrNoRootSource):
		return &hintError{err, "give the copy's root key: --to-root-key-file FILE, or --to-root-kms with --to-root-key-id, or set ENVELOPE_TO_PASSPHRASE"}
	case errors.Is(err, keystore.ErrNoRootKeyFile):
		return &hintError{err, "make the copy's root key file first with \"envelope keygen root -o FILE\""}
	case errors.As(err, &ue):
		return &hintError{err, "check that the upstream KMS of --to-root-kms is reachable, and lets these credentials use kms:Encrypt with --to-root-key-id"}
	}
	return err
}

// rootText says where the root key of a keystore created with opts at loc
// comes from.
func rootText(opts keystore.Options, loc storeLoc) string {
	switch {
	case opts.RootKeyFile != "":
		return "the file " + opts.RootKeyFile
	case opts.Passphrase != nil:
		return "the passphrase of ENVELOPE_TO_PASSPHRASE"
	case opts.RootKMS != nil:
		return "sealed by " + opts.RootKMS.Name + " under " + opts.RootKMS.KeyID
	}
	return filepath.Join(loc.dir, keystore.RootKeyName) + ", which opens every key: keep it as safe"
}

// statsText says what a copy holds.
func statsText(s keystore.CopyStats) string {
	parts := []string{
		fmt.Sprintf("%s (%s)", count(s.Keys, "key", "keys"), count(s.Versions, "material version", "material versions")),
		count(s.Aliases, "alias", "aliases"),
		count(s.Deleted, "deleted key's record", "deleted keys' records"),
	}
	if s.AuditKey {
		parts = append(parts, "the audit key")
	}
	parts = append(parts, count(s.AuditLogs, "audit log's mark", "audit logs' marks"))
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// count writes n with the singular or the plural.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

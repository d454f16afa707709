// Package sqlite is the embedded keystore: a [kms.Store] kept in one SQLite
// database file, through the pure-Go driver modernc.org/sqlite (no cgo).
//
// [Open] creates the file and its schema on first use and reopens it
// afterwards. Many goroutines may share one [Store]; several processes may
// open the same file (the CLI beside a running server, say), and SQLite's
// file locks keep them consistent.
//
// # Durability
//
// When [Store.Update] returns nil, the transaction is on stable storage: the
// database runs in write-ahead-log (WAL) mode with synchronous=FULL, so every
// commit fsyncs the log before it returns. A crash of the process, or of the
// machine, after that point cannot lose the transaction; a crash before it
// leaves the store as it was before the transaction began. The directory
// entries of a newly created directory and database file are fsynced too.
//
// Write transactions take SQLite's write lock when they begin (BEGIN
// IMMEDIATE), so two writers never deadlock upgrading a read lock. Within a
// process, writers queue for a single write connection; across processes,
// they wait up to ten seconds for the lock (the busy timeout) and then fail.
// Readers ([Store.View]) use their own connections and, thanks to WAL, never
// wait for writers: each View sees one consistent snapshot.
//
// Deleted records are overwritten with zeros in the database file
// (secure_delete). That does not reach copies outside SQLite's control:
// frames still in the WAL until the next checkpoint, backups, and blocks the
// file system or the disk keep. Sealed material is encrypted under the root
// key in any case.
//
// # Full disks and read-only file systems
//
// Errors whose cause is a full disk or a read-only file system wrap
// [ErrDiskFull] or [ErrReadOnlyFS] (from [Open], [Store.Update] and the
// writing methods of its [kms.Tx]), whatever SQLite called them: a full
// disk is SQLITE_FULL when a write fails, but an I/O error when SQLite
// cannot grow its shared-memory file, which even reading needs in WAL mode;
// a read-only file system is "unable to open database file". On Linux the
// file system is asked (statfs) when SQLite's answer is ambiguous.
//
// [OpenReadOnly] reads a keystore that [Open] cannot open for those
// reasons; see it for how, and for what its Update does.
//
// # Permissions
//
// The keystore is private to the user who runs envelope. [Open] creates
// missing directories with mode 0700 and the database file with mode 0600,
// exclusively and before SQLite sees it, then sets those modes exactly, so no
// umask can widen them. SQLite gives the -wal and -shm files it creates the
// mode of the database file, and [Open] sets any it finds to 0600 as well.
// A directory or database file that already exists keeps its mode.
//
// # Schema
//
// The file is marked with an application id and a schema version (the
// application_id and user_version header fields). [Open] refuses, with
// [ErrNotKeystore], a file that is not an envelope keystore (another SQLite
// database, or not SQLite at all) without modifying it, and refuses with
// [ErrSchemaTooNew] a keystore written by a newer envelope.
//
// Key and alias metadata are stored as JSON documents, so fields can be added
// to [kms.KeyRecord] and [kms.AliasRecord] without a schema change.
package sqlite

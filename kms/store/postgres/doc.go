// Package postgres is the keystore of several servers: a [kms.Store] kept in
// a PostgreSQL database (version 12 or later), through pgx v5 and its
// connection pool.
//
// Any number of processes may open the same database at once — servers
// behind a load balancer, the CLI beside them — and see one keystore. [Open]
// creates its schema on first use; [Store.Watch] tells each process of the
// changes the others commit, and [Store.LockCreation] orders processes that
// create the keystore's first contents together.
//
// # Transactions and concurrency
//
// [Store.View] runs at REPEATABLE READ, read-only: one snapshot, no waiting
// for writers. [Store.Update] runs at SERIALIZABLE, so that concurrent
// Updates, whichever processes run them, have the effect of some serial
// order: a key rotated by two servers at once gets two consecutive new
// versions, an alias created by two at once exists once (the other fails
// with AlreadyExistsException), and no change to a key's tags, description
// or state is lost. PostgreSQL keeps that promise by failing a transaction
// that would break it (serialization failure, or deadlock); Update then runs
// its function again in a new transaction, which is why [kms.Store] lets
// Update run its function more than once. GetKey within an Update also
// locks the key's row, so that conflicting writers of one key fail at once
// instead of after doing their work. See the comment on the isolation
// levels in postgres.go for each guarantee.
//
// # Round trips
//
// A transaction takes a connection from the pool at its first statement and
// sends BEGIN in the same round trip as that statement; each statement is
// prepared once per connection and then costs one round trip; an Update's
// COMMIT travels with its notification. A View that reads nothing costs
// nothing. The kms key cache in front of the store serves hot keys without
// any transaction at all.
//
// # Connections
//
// Transactions share a pool of connections (pgxpool: at most max(4, CPUs)
// unless the URL's pool_max_conns says otherwise); Watch and each creation
// lock hold one more connection each, outside the pool. A connection
// attempt that the URL does not bound (connect_timeout) gives up after ten
// seconds. A transaction's function should not wait for another
// transaction of the same Store: with every connection of the pool taken,
// it would wait forever.
//
// # Durability
//
// When Update returns nil, the transaction is committed: durable as the
// server's synchronous_commit setting makes it (on by default: flushed to the
// server's write-ahead log; with synchronous replication, on the standbys as
// the server is configured). A commit whose acknowledgment is lost (the
// connection drops) is reported as an error although it may have been
// applied.
//
// # Schema and migrations
//
// Everything lives in the schema "envelope" of the database: tables keys,
// materials, aliases, meta, and schema_migrations, which records the
// migrations applied. [Open] applies the missing ones in one transaction
// under a transaction-level advisory lock, so that servers starting together
// on a new or older database are safe: one migrates, the others wait and find
// the schema current. A database whose schema a newer envelope wrote is
// refused with [ErrSchemaTooNew], naming both versions. The first Open needs
// the right to create a schema in the database (CREATE on it); later ones
// need only to read and write the tables.
//
// Names (key ids, alias names, meta names) are text in the "C" collation, so
// lists are in the byte order of the names whatever the database's locale.
// PostgreSQL text cannot hold NUL bytes or invalid UTF-8: names holding them
// are refused by the writers and found by no getter.
//
// # Notifications
//
// Each Update that changes keys or aliases sends, inside its transaction,
// a notification (pg_notify on the channel "envelope_keystore") naming the
// key ids and alias names changed, or "all" when the list would pass
// PostgreSQL's 8000-byte limit; PostgreSQL delivers it to every listener
// when, and only if, the transaction commits. [Store.Watch] listens on a
// connection of its own and hands those of other Stores to a function such as
// [kms.Service.Invalidate].
//
// # Secrets
//
// Sealed key material is encrypted under the root key before it reaches the
// store: the database holds no key in the clear. The connection string may
// hold a password: every message of this package names the store by
// [Redact]'s form of it (user:xxxxx@), never the password.
package postgres

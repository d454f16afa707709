package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/envelopekms/envelope/kms"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The statements of a transaction, prepared once per connection.
const (
	qGetKey = `SELECT doc FROM keys WHERE id = ?`
	// An upsert, not INSERT OR REPLACE: REPLACE deletes the old row first,
	// and the delete would cascade to the key's material and aliases.
	qPutKey = `INSERT INTO keys (id, doc) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`
	qDeleteKey   = `DELETE FROM keys WHERE id = ?`
	qListKeys    = `SELECT id, doc FROM keys WHERE id > ? ORDER BY id LIMIT ?`
	qGetMaterial = `SELECT sealed FROM materials WHERE key_id = ? AND version = ?`
	qPutMaterial = `INSERT INTO materials (key_id, version, sealed) VALUES (?, ?, ?)`
	qGetAlias    = `SELECT key_id, doc FROM aliases WHERE name = ?`
	qPutAlias    = `INSERT INTO aliases (name, key_id, doc) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, doc = excluded.doc`
	qDeleteAlias      = `DELETE FROM aliases WHERE name = ?`
	qListAliases      = `SELECT name, key_id, doc FROM aliases WHERE name > ? ORDER BY name LIMIT ?`
	qListAliasesByKey = `SELECT name, key_id, doc FROM aliases WHERE key_id = ? AND name > ? ORDER BY name LIMIT ?`
	qGetMeta          = `SELECT value FROM meta WHERE name = ?`
	qListMeta         = `SELECT name FROM meta WHERE name > ? ORDER BY name LIMIT ?`
	qPutMeta          = `INSERT INTO meta (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`

	qGetGrant = `SELECT doc FROM grants WHERE id = ?`
	qPutGrant = `INSERT INTO grants (id, key_id, grantee, name, retiring, doc) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id, grantee = excluded.grantee,
		name = excluded.name, retiring = excluded.retiring, doc = excluded.doc`
	qDeleteGrant          = `DELETE FROM grants WHERE id = ?`
	qCountGrants          = `SELECT count(*) FROM grants WHERE key_id = ?`
	qListGrants           = `SELECT doc FROM grants WHERE id > ? ORDER BY id LIMIT ?`
	qListGrantsByKey      = `SELECT doc FROM grants WHERE key_id = ? AND id > ? ORDER BY id LIMIT ?`
	qListGrantsByGrantee  = `SELECT doc FROM grants WHERE key_id = ? AND grantee = ? AND id > ? ORDER BY id LIMIT ?`
	qListGrantsByName     = `SELECT doc FROM grants WHERE key_id = ? AND name = ? AND id > ? ORDER BY id LIMIT ?`
	qListGrantsByRetiring = `SELECT doc FROM grants WHERE retiring = ? AND id > ? ORDER BY id LIMIT ?`
)

var (
	readQueries  = []string{qGetKey, qListKeys, qGetMaterial, qGetAlias, qListAliases, qListAliasesByKey, qGetMeta, qListMeta}
	writeQueries = []string{qPutKey, qDeleteKey, qPutMaterial, qPutAlias, qDeleteAlias, qPutMeta}
	// grantQueries read grants: a keystore of schema version 1 opened
	// read-only has no grants table, and none prepared.
	grantQueries      = []string{qGetGrant, qCountGrants, qListGrants, qListGrantsByKey, qListGrantsByGrantee, qListGrantsByName, qListGrantsByRetiring}
	grantWriteQueries = []string{qPutGrant, qDeleteGrant}
)

// statements maps the text of each query to its prepared statement on one
// connection pool.
type statements map[string]*sql.Stmt

// prepareAll prepares queries on db, whose connections must not all be
// taken: database/sql prepares a statement on one connection now and on
// the others as transactions use them ([sql.Tx.StmtContext]).
func prepareAll(ctx context.Context, db *sql.DB, queries ...[]string) (statements, error) {
	st := statements{}
	for _, qs := range queries {
		for _, q := range qs {
			stmt, err := db.PrepareContext(ctx, q)
			if err != nil {
				st.close()
				return nil, fmt.Errorf("prepare %q: %w", q, err)
			}
			st[q] = stmt
		}
	}
	return st, nil
}

func (st statements) close() {
	for _, stmt := range st {
		stmt.Close()
	}
}

// classify adds to err whether a full disk or a read-only file system
// caused it (see classify).
func (t *tx) classify(err error) error { return classify(err, t.dir) }

// stmt returns the prepared statement of query q in t. A write query in a
// read-only transaction is a programming error (usable checks first).
func (t *tx) stmt(q string) *sql.Stmt {
	return t.tx.StmtContext(t.ctx, t.stmts[q])
}

// sqlLimit returns the LIMIT value for a list limit: SQLite reads a
// negative LIMIT as no limit.
func sqlLimit(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

// constraintCode returns the extended SQLite result code of a failed
// constraint, or 0 when err is not a constraint failure.
func constraintCode(err error) int {
	var e *sqlitedriver.Error
	if errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		return e.Code()
	}
	return 0
}

// GetKey returns the key with the given id, or an error wrapping
// [kms.ErrNoRecord].
func (t *tx) GetKey(id string) (*kms.KeyRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	var doc string
	err := t.stmt(qGetKey).QueryRowContext(t.ctx, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: key %q: %w", id, kms.ErrNoRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get key %q: %w", id, t.classify(err))
	}
	return decodeKey(id, doc)
}

func decodeKey(id, doc string) (*kms.KeyRecord, error) {
	k := new(kms.KeyRecord)
	if err := json.Unmarshal([]byte(doc), k); err != nil {
		return nil, fmt.Errorf("sqlite: key %q: corrupt record: %v", id, err)
	}
	k.ID = id // the column is what the key is found by
	return k, nil
}

// PutKey inserts or replaces a key's metadata.
func (t *tx) PutKey(k *kms.KeyRecord) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if k == nil || k.ID == "" {
		return errors.New("sqlite: put key: empty key id")
	}
	doc, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("sqlite: put key %q: %v", k.ID, err)
	}
	_, err = t.stmt(qPutKey).ExecContext(t.ctx, k.ID, string(doc))
	if err != nil {
		return fmt.Errorf("sqlite: put key %q: %w", k.ID, t.classify(err))
	}
	return nil
}

// DeleteKey removes a key; the foreign keys cascade to its material and its
// aliases. Deleting an absent key is not an error.
func (t *tx) DeleteKey(id string) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if _, err := t.stmt(qDeleteKey).ExecContext(t.ctx, id); err != nil {
		return fmt.Errorf("sqlite: delete key %q: %w", id, t.classify(err))
	}
	return nil
}

// ListKeys returns up to limit keys (all when limit <= 0) whose id sorts
// after the given one, in id order.
func (t *tx) ListKeys(after string, limit int) ([]*kms.KeyRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	rows, err := t.stmt(qListKeys).QueryContext(t.ctx, after, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", t.classify(err))
	}
	defer rows.Close()
	var keys []*kms.KeyRecord
	for rows.Next() {
		var id, doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", t.classify(err))
		}
		k, err := decodeKey(id, doc)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", t.classify(err))
	}
	return keys, nil
}

// GetMaterial returns the sealed material of one version of a key, or an
// error wrapping [kms.ErrNoRecord].
func (t *tx) GetMaterial(keyID string, version int) ([]byte, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	var sealed []byte
	err := t.stmt(qGetMaterial).QueryRowContext(t.ctx, keyID, version).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: key %q material version %d: %w", keyID, version, kms.ErrNoRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get key %q material version %d: %w", keyID, version, t.classify(err))
	}
	return sealed, nil
}

// PutMaterial stores the sealed material of a key version. The key must
// exist, the version must be positive, and a version is written once:
// storing one that exists is an error.
func (t *tx) PutMaterial(keyID string, version int, sealed []byte) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if version < 1 {
		return fmt.Errorf("sqlite: put key %q material: invalid version %d", keyID, version)
	}
	if len(sealed) == 0 {
		return fmt.Errorf("sqlite: put key %q material version %d: empty material", keyID, version)
	}
	_, err := t.stmt(qPutMaterial).ExecContext(t.ctx, keyID, version, sealed)
	switch constraintCode(err) {
	case 0:
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("sqlite: key %q material version %d already exists", keyID, version)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("sqlite: put material: key %q does not exist", keyID)
	}
	if err != nil {
		return fmt.Errorf("sqlite: put key %q material version %d: %w", keyID, version, t.classify(err))
	}
	return nil
}

// GetAlias returns the alias with the given name, or an error wrapping
// [kms.ErrNoRecord].
func (t *tx) GetAlias(name string) (*kms.AliasRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	var keyID, doc string
	err := t.stmt(qGetAlias).QueryRowContext(t.ctx, name).Scan(&keyID, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: alias %q: %w", name, kms.ErrNoRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get alias %q: %w", name, t.classify(err))
	}
	return decodeAlias(name, keyID, doc)
}

func decodeAlias(name, keyID, doc string) (*kms.AliasRecord, error) {
	a := new(kms.AliasRecord)
	if err := json.Unmarshal([]byte(doc), a); err != nil {
		return nil, fmt.Errorf("sqlite: alias %q: corrupt record: %v", name, err)
	}
	// The columns are what the alias is found by.
	a.Name, a.KeyID = name, keyID
	return a, nil
}

// PutAlias inserts or replaces an alias. The key it names must exist.
func (t *tx) PutAlias(a *kms.AliasRecord) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if a == nil || a.Name == "" {
		return errors.New("sqlite: put alias: empty alias name")
	}
	if a.KeyID == "" {
		return fmt.Errorf("sqlite: put alias %q: empty key id", a.Name)
	}
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("sqlite: put alias %q: %v", a.Name, err)
	}
	_, err = t.stmt(qPutAlias).ExecContext(t.ctx, a.Name, a.KeyID, string(doc))
	if constraintCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return fmt.Errorf("sqlite: put alias %q: key %q does not exist", a.Name, a.KeyID)
	}
	if err != nil {
		return fmt.Errorf("sqlite: put alias %q: %w", a.Name, t.classify(err))
	}
	return nil
}

// DeleteAlias removes an alias. Deleting an absent alias is not an error.
func (t *tx) DeleteAlias(name string) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if _, err := t.stmt(qDeleteAlias).ExecContext(t.ctx, name); err != nil {
		return fmt.Errorf("sqlite: delete alias %q: %w", name, t.classify(err))
	}
	return nil
}

// ListAliases returns up to limit aliases (all when limit <= 0) whose name
// sorts after the given one, in name order; keyID, when not empty, keeps
// only the aliases of that key.
func (t *tx) ListAliases(keyID, after string, limit int) ([]*kms.AliasRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	var (
		rows *sql.Rows
		err  error
	)
	if keyID == "" {
		rows, err = t.stmt(qListAliases).QueryContext(t.ctx, after, sqlLimit(limit))
	} else {
		rows, err = t.stmt(qListAliasesByKey).QueryContext(t.ctx, keyID, after, sqlLimit(limit))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list aliases: %w", t.classify(err))
	}
	defer rows.Close()
	var aliases []*kms.AliasRecord
	for rows.Next() {
		var name, key, doc string
		if err := rows.Scan(&name, &key, &doc); err != nil {
			return nil, fmt.Errorf("sqlite: list aliases: %w", t.classify(err))
		}
		a, err := decodeAlias(name, key, doc)
		if err != nil {
			return nil, err
		}
		aliases = append(aliases, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list aliases: %w", t.classify(err))
	}
	return aliases, nil
}

// GetMeta returns a named keystore value, or an error wrapping
// [kms.ErrNoRecord].
func (t *tx) GetMeta(name string) ([]byte, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	var value []byte
	err := t.stmt(qGetMeta).QueryRowContext(t.ctx, name).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: meta %q: %w", name, kms.ErrNoRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get meta %q: %w", name, t.classify(err))
	}
	if value == nil {
		value = []byte{}
	}
	return value, nil
}

// ListMeta returns up to limit names of keystore values (limit ≤ 0: all)
// after the given one, in name order.
func (t *tx) ListMeta(after string, limit int) ([]string, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	rows, err := t.stmt(qListMeta).QueryContext(t.ctx, after, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list meta: %w", t.classify(err))
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("sqlite: list meta: %w", t.classify(err))
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list meta: %w", t.classify(err))
	}
	return names, nil
}

// PutMeta sets a named keystore value.
func (t *tx) PutMeta(name string, value []byte) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if name == "" {
		return errors.New("sqlite: put meta: empty name")
	}
	if value == nil {
		value = []byte{} // NOT NULL: an empty value, not an absent one
	}
	_, err := t.stmt(qPutMeta).ExecContext(t.ctx, name, value)
	if err != nil {
		return fmt.Errorf("sqlite: put meta %q: %w", name, t.classify(err))
	}
	return nil
}

// grantsUsable reports whether t's statements include the grants queries:
// false for a keystore of schema version 1 opened read-only, which has no
// grants.
func (t *tx) grantsUsable() bool { return t.stmts[qGetGrant] != nil }

// GetGrant returns the grant with the given id, or an error wrapping
// [kms.ErrNoRecord].
func (t *tx) GetGrant(id string) (*kms.GrantRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	if !t.grantsUsable() {
		return nil, fmt.Errorf("sqlite: grant %q: %w", id, kms.ErrNoRecord)
	}
	var doc string
	err := t.stmt(qGetGrant).QueryRowContext(t.ctx, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: grant %q: %w", id, kms.ErrNoRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get grant %q: %w", id, t.classify(err))
	}
	return decodeGrant(id, doc)
}

func decodeGrant(id, doc string) (*kms.GrantRecord, error) {
	g := new(kms.GrantRecord)
	if err := json.Unmarshal([]byte(doc), g); err != nil {
		return nil, fmt.Errorf("sqlite: grant %q: corrupt record: %v", id, err)
	}
	return g, nil
}

// PutGrant inserts or replaces a grant; its key must exist.
func (t *tx) PutGrant(g *kms.GrantRecord) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if g == nil || g.ID == "" || g.KeyID == "" {
		return errors.New("sqlite: put grant: empty grant or key id")
	}
	doc, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("sqlite: put grant %q: %v", g.ID, err)
	}
	_, err = t.stmt(qPutGrant).ExecContext(t.ctx, g.ID, g.KeyID, g.GranteePrincipal, g.Name, g.RetiringPrincipal, string(doc))
	if constraintCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return fmt.Errorf("sqlite: put grant %q: key %q: %w", g.ID, g.KeyID, kms.ErrNoRecord)
	}
	if err != nil {
		return fmt.Errorf("sqlite: put grant %q: %w", g.ID, t.classify(err))
	}
	return nil
}

// DeleteGrant removes a grant. Deleting an absent grant is not an error.
func (t *tx) DeleteGrant(id string) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if _, err := t.stmt(qDeleteGrant).ExecContext(t.ctx, id); err != nil {
		return fmt.Errorf("sqlite: delete grant %q: %w", id, t.classify(err))
	}
	return nil
}

// CountGrants returns the number of grants of a key.
func (t *tx) CountGrants(keyID string) (int, error) {
	if err := t.usable(false); err != nil {
		return 0, err
	}
	if !t.grantsUsable() {
		return 0, nil
	}
	var n int
	if err := t.stmt(qCountGrants).QueryRowContext(t.ctx, keyID).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count grants of %q: %w", keyID, t.classify(err))
	}
	return n, nil
}

// ListGrants returns up to limit grants (all when limit <= 0) matching f
// whose id sorts after the given one, in id order.
func (t *tx) ListGrants(f kms.GrantFilter, after string, limit int) ([]*kms.GrantRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	if !t.grantsUsable() {
		return nil, nil
	}
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case f.KeyID != "" && f.Grantee != "":
		rows, err = t.stmt(qListGrantsByGrantee).QueryContext(t.ctx, f.KeyID, f.Grantee, after, sqlLimit(limit))
	case f.KeyID != "" && f.Name != "":
		rows, err = t.stmt(qListGrantsByName).QueryContext(t.ctx, f.KeyID, f.Name, after, sqlLimit(limit))
	case f.KeyID != "":
		rows, err = t.stmt(qListGrantsByKey).QueryContext(t.ctx, f.KeyID, after, sqlLimit(limit))
	case f.RetiringPrincipal != "":
		rows, err = t.stmt(qListGrantsByRetiring).QueryContext(t.ctx, f.RetiringPrincipal, after, sqlLimit(limit))
	default:
		rows, err = t.stmt(qListGrants).QueryContext(t.ctx, after, sqlLimit(limit))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list grants: %w", t.classify(err))
	}
	defer rows.Close()
	var gs []*kms.GrantRecord
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("sqlite: list grants: %w", t.classify(err))
		}
		g, err := decodeGrant("", doc)
		if err != nil {
			return nil, err
		}
		if f.KeyID != "" && f.Grantee != "" && f.Name != "" && g.Name != f.Name {
			continue
		}
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list grants: %w", t.classify(err))
	}
	return gs, nil
}

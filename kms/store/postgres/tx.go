package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/envelopekms/envelope/kms"
	"github.com/jackc/pgx/v5"
)

// The statements of a transaction. pgx prepares each on a connection the
// first time it runs there and keeps it (its statement cache), so that
// every later run is one round trip.
//
// The writes that kms.Tx lets fail (material written twice, material or
// an alias for a key that does not exist) are written so as not to fail in
// PostgreSQL, which would abort the whole transaction: they say what
// happened in their result instead.
const (
	qGetKey       = `SELECT doc FROM envelope.keys WHERE id = $1`
	qGetKeyLocked = qGetKey + ` FOR NO KEY UPDATE`
	qPutKey       = `INSERT INTO envelope.keys (id, doc) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`
	qDeleteKey   = `DELETE FROM envelope.keys WHERE id = $1`
	qListKeys    = `SELECT id, doc FROM envelope.keys WHERE id > $1 ORDER BY id LIMIT $2`
	qGetMaterial = `SELECT sealed FROM envelope.materials WHERE key_id = $1 AND version = $2`
	// qPutMaterial inserts the material if the key exists and the version
	// does not, and reports whether the key exists and whether it
	// inserted.
	qPutMaterial = `WITH k AS (SELECT id FROM envelope.keys WHERE id = $1::text),
		ins AS (INSERT INTO envelope.materials (key_id, version, sealed)
			SELECT id, $2::integer, $3::bytea FROM k ON CONFLICT DO NOTHING RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM k), EXISTS (SELECT 1 FROM ins)`
	qGetAlias = `SELECT key_id, doc FROM envelope.aliases WHERE name = $1`
	// qPutAlias inserts or replaces the alias if its key exists, and
	// reports whether it does.
	qPutAlias = `WITH k AS (SELECT id FROM envelope.keys WHERE id = $2::text),
		up AS (INSERT INTO envelope.aliases (name, key_id, doc) SELECT $1::text, id, $3::text FROM k
			ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, doc = excluded.doc RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM k)`
	qDeleteAlias      = `DELETE FROM envelope.aliases WHERE name = $1`
	qListAliases      = `SELECT name, key_id, doc FROM envelope.aliases WHERE name > $1 ORDER BY name LIMIT $2`
	qListAliasesByKey = `SELECT name, key_id, doc FROM envelope.aliases WHERE key_id = $1 AND name > $2 ORDER BY name LIMIT $3`
	qGetMeta          = `SELECT value FROM envelope.meta WHERE name = $1`
	qListMeta         = `SELECT name FROM envelope.meta WHERE name > $1 ORDER BY name LIMIT $2`
	qPutMeta          = `INSERT INTO envelope.meta (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`
)

// storable reports whether PostgreSQL can store s as text: valid UTF-8
// without NUL bytes. A name that is not cannot name a record: the getters
// find nothing, the writers refuse it (before PostgreSQL would, aborting
// the transaction).
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.Contains(s, "\x00")
}

// marker returns a list's "after" argument as PostgreSQL can take it: no
// stored name holds a NUL, so the names after one that does are those after
// its part before the NUL.
func marker(after string) (string, error) {
	after, _, _ = strings.Cut(after, "\x00")
	if !utf8.ValidString(after) {
		return "", fmt.Errorf("invalid marker %q: not UTF-8", after)
	}
	return after, nil
}

// sqlLimit returns the LIMIT argument of a list: NULL (no limit) for
// limit <= 0.
func sqlLimit(limit int) *int64 {
	if limit <= 0 {
		return nil
	}
	n := int64(limit)
	return &n
}

// failure is the error of a Tx method: ctx's own error, for callers to
// match, or the statement's.
func (t *tx) failure(err error, format string, args ...any) error {
	if ctxErr := t.ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return fmt.Errorf("postgres: "+format+": %w", append(args, ctxErr)...)
	}
	return fmt.Errorf("postgres: "+format+": %v", append(args, err)...)
}

// noted adds v to list unless it is there.
func noted(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// GetKey returns the key with the given id, or an error wrapping
// [kms.ErrNoRecord]. In an Update it locks the key's row until the
// transaction ends (see the package documentation).
func (t *tx) GetKey(id string) (*kms.KeyRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	q := qGetKey
	if t.writable {
		q = qGetKeyLocked
	}
	var doc string
	found := false
	if storable(id) {
		err := t.query(q, []any{id}, func(r pgx.Rows) error { found = true; return r.Scan(&doc) })
		if err != nil {
			return nil, t.failure(err, "get key %q", id)
		}
	}
	if !found {
		return nil, fmt.Errorf("postgres: key %q: %w", id, kms.ErrNoRecord)
	}
	return decodeKey(id, doc)
}

func decodeKey(id, doc string) (*kms.KeyRecord, error) {
	k := new(kms.KeyRecord)
	if err := json.Unmarshal([]byte(doc), k); err != nil {
		return nil, fmt.Errorf("postgres: key %q: corrupt record: %v", id, err)
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
		return errors.New("postgres: put key: empty key id")
	}
	if !storable(k.ID) {
		return fmt.Errorf("postgres: put key %q: the id is not UTF-8 text without NUL", k.ID)
	}
	doc, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("postgres: put key %q: %v", k.ID, err)
	}
	if err := t.query(qPutKey, []any{k.ID, string(doc)}, nil); err != nil {
		return t.failure(err, "put key %q", k.ID)
	}
	t.keys = noted(t.keys, k.ID)
	return nil
}

// DeleteKey removes a key; the foreign keys cascade to its material and its
// aliases. Deleting an absent key is not an error.
func (t *tx) DeleteKey(id string) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if !storable(id) {
		return nil // no such key
	}
	if err := t.query(qDeleteKey, []any{id}, nil); err != nil {
		return t.failure(err, "delete key %q", id)
	}
	// Watchers drop the aliases of the key with it (kms.Change).
	t.keys = noted(t.keys, id)
	return nil
}

// ListKeys returns up to limit keys (all when limit <= 0) whose id sorts
// after the given one, in id order (the byte order of their UTF-8).
func (t *tx) ListKeys(after string, limit int) ([]*kms.KeyRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	after, err := marker(after)
	if err != nil {
		return nil, fmt.Errorf("postgres: list keys: %v", err)
	}
	type row struct{ id, doc string }
	var rows []row
	err = t.query(qListKeys, []any{after, sqlLimit(limit)}, func(r pgx.Rows) error {
		var x row
		err := r.Scan(&x.id, &x.doc)
		rows = append(rows, x)
		return err
	})
	if err != nil {
		return nil, t.failure(err, "list keys")
	}
	keys := make([]*kms.KeyRecord, 0, len(rows))
	for _, x := range rows {
		k, err := decodeKey(x.id, x.doc)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, nil
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
	found := false
	if storable(keyID) && version > 0 && version <= math.MaxInt32 {
		err := t.query(qGetMaterial, []any{keyID, int32(version)}, func(r pgx.Rows) error {
			found = true
			return r.Scan(&sealed)
		})
		if err != nil {
			return nil, t.failure(err, "get key %q material version %d", keyID, version)
		}
	}
	if !found {
		return nil, fmt.Errorf("postgres: key %q material version %d: %w", keyID, version, kms.ErrNoRecord)
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
	if version < 1 || version > math.MaxInt32 {
		return fmt.Errorf("postgres: put key %q material: invalid version %d", keyID, version)
	}
	if len(sealed) == 0 {
		return fmt.Errorf("postgres: put key %q material version %d: empty material", keyID, version)
	}
	if !storable(keyID) {
		return fmt.Errorf("postgres: put material: key %q does not exist", keyID)
	}
	var exists, inserted bool
	err := t.query(qPutMaterial, []any{keyID, int32(version), sealed}, func(r pgx.Rows) error {
		return r.Scan(&exists, &inserted)
	})
	switch {
	case err != nil:
		return t.failure(err, "put key %q material version %d", keyID, version)
	case !exists:
		return fmt.Errorf("postgres: put material: key %q does not exist", keyID)
	case !inserted:
		return fmt.Errorf("postgres: key %q material version %d already exists", keyID, version)
	}
	t.keys = noted(t.keys, keyID)
	return nil
}

// GetAlias returns the alias with the given name, or an error wrapping
// [kms.ErrNoRecord].
func (t *tx) GetAlias(name string) (*kms.AliasRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	var keyID, doc string
	found := false
	if storable(name) {
		err := t.query(qGetAlias, []any{name}, func(r pgx.Rows) error { found = true; return r.Scan(&keyID, &doc) })
		if err != nil {
			return nil, t.failure(err, "get alias %q", name)
		}
	}
	if !found {
		return nil, fmt.Errorf("postgres: alias %q: %w", name, kms.ErrNoRecord)
	}
	return decodeAlias(name, keyID, doc)
}

func decodeAlias(name, keyID, doc string) (*kms.AliasRecord, error) {
	a := new(kms.AliasRecord)
	if err := json.Unmarshal([]byte(doc), a); err != nil {
		return nil, fmt.Errorf("postgres: alias %q: corrupt record: %v", name, err)
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
		return errors.New("postgres: put alias: empty alias name")
	}
	if a.KeyID == "" {
		return fmt.Errorf("postgres: put alias %q: empty key id", a.Name)
	}
	if !storable(a.Name) {
		return fmt.Errorf("postgres: put alias %q: the name is not UTF-8 text without NUL", a.Name)
	}
	if !storable(a.KeyID) {
		return fmt.Errorf("postgres: put alias %q: key %q does not exist", a.Name, a.KeyID)
	}
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("postgres: put alias %q: %v", a.Name, err)
	}
	var exists bool
	err = t.query(qPutAlias, []any{a.Name, a.KeyID, string(doc)}, func(r pgx.Rows) error { return r.Scan(&exists) })
	if err != nil {
		return t.failure(err, "put alias %q", a.Name)
	}
	if !exists {
		return fmt.Errorf("postgres: put alias %q: key %q does not exist", a.Name, a.KeyID)
	}
	t.aliases = noted(t.aliases, a.Name)
	return nil
}

// DeleteAlias removes an alias. Deleting an absent alias is not an error.
func (t *tx) DeleteAlias(name string) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if !storable(name) {
		return nil // no such alias
	}
	if err := t.query(qDeleteAlias, []any{name}, nil); err != nil {
		return t.failure(err, "delete alias %q", name)
	}
	t.aliases = noted(t.aliases, name)
	return nil
}

// ListAliases returns up to limit aliases (all when limit <= 0) whose name
// sorts after the given one, in name order; keyID, when not empty, keeps
// only the aliases of that key.
func (t *tx) ListAliases(keyID, after string, limit int) ([]*kms.AliasRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	after, err := marker(after)
	if err != nil {
		return nil, fmt.Errorf("postgres: list aliases: %v", err)
	}
	q, args := qListAliases, []any{after, sqlLimit(limit)}
	if keyID != "" {
		if !storable(keyID) {
			return nil, nil // no such key
		}
		q, args = qListAliasesByKey, []any{keyID, after, sqlLimit(limit)}
	}
	type row struct{ name, key, doc string }
	var rows []row
	err = t.query(q, args, func(r pgx.Rows) error {
		var x row
		err := r.Scan(&x.name, &x.key, &x.doc)
		rows = append(rows, x)
		return err
	})
	if err != nil {
		return nil, t.failure(err, "list aliases")
	}
	var aliases []*kms.AliasRecord
	for _, x := range rows {
		a, err := decodeAlias(x.name, x.key, x.doc)
		if err != nil {
			return nil, err
		}
		aliases = append(aliases, a)
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
	found := false
	if storable(name) {
		err := t.query(qGetMeta, []any{name}, func(r pgx.Rows) error { found = true; return r.Scan(&value) })
		if err != nil {
			return nil, t.failure(err, "get meta %q", name)
		}
	}
	if !found {
		return nil, fmt.Errorf("postgres: meta %q: %w", name, kms.ErrNoRecord)
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
	after, err := marker(after)
	if err != nil {
		return nil, fmt.Errorf("postgres: list meta: %v", err)
	}
	var names []string
	err = t.query(qListMeta, []any{after, sqlLimit(limit)}, func(r pgx.Rows) error {
		var name string
		err := r.Scan(&name)
		names = append(names, name)
		return err
	})
	if err != nil {
		return nil, t.failure(err, "list meta")
	}
	return names, nil
}

// PutMeta sets a named keystore value.
func (t *tx) PutMeta(name string, value []byte) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if name == "" {
		return errors.New("postgres: put meta: empty name")
	}
	if !storable(name) {
		return fmt.Errorf("postgres: put meta %q: the name is not UTF-8 text without NUL", name)
	}
	if value == nil {
		value = []byte{} // NOT NULL: an empty value, not an absent one
	}
	if err := t.query(qPutMeta, []any{name, value}, nil); err != nil {
		return t.failure(err, "put meta %q", name)
	}
	return nil
}

package postgres

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/envelopekms/envelope/kms"
	"github.com/jackc/pgx/v5"
)

// The statements of grants.
const (
	qGetGrant = `SELECT doc FROM envelope.grants WHERE id = $1`
	// qPutGrant inserts or replaces the grant if its key exists, and
	// reports whether it does.
	qPutGrant = `WITH k AS (SELECT id FROM envelope.keys WHERE id = $2::text),
		up AS (INSERT INTO envelope.grants (id, key_id, grantee, name, retiring, doc)
			SELECT $1::text, id, $3::text, $4::text, $5::text, $6::text FROM k
			ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id, grantee = excluded.grantee,
				name = excluded.name, retiring = excluded.retiring, doc = excluded.doc RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM k)`
	qDeleteGrant          = `DELETE FROM envelope.grants WHERE id = $1 RETURNING key_id`
	qCountGrants          = `SELECT count(*) FROM envelope.grants WHERE key_id = $1`
	qListGrants           = `SELECT doc FROM envelope.grants WHERE id > $1 ORDER BY id LIMIT $2`
	qListGrantsByKey      = `SELECT doc FROM envelope.grants WHERE key_id = $1 AND id > $2 ORDER BY id LIMIT $3`
	qListGrantsByGrantee  = `SELECT doc FROM envelope.grants WHERE key_id = $1 AND grantee = $2 AND id > $3 ORDER BY id LIMIT $4`
	qListGrantsByName     = `SELECT doc FROM envelope.grants WHERE key_id = $1 AND name = $2 AND id > $3 ORDER BY id LIMIT $4`
	qListGrantsByRetiring = `SELECT doc FROM envelope.grants WHERE retiring = $1 AND id > $2 ORDER BY id LIMIT $3`
)

// GetGrant returns the grant with the given id, or an error wrapping
// [kms.ErrNoRecord].
func (t *tx) GetGrant(id string) (*kms.GrantRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	var doc string
	found := false
	if storable(id) {
		err := t.query(qGetGrant, []any{id}, func(r pgx.Rows) error { found = true; return r.Scan(&doc) })
		if err != nil {
			return nil, t.failure(err, "get grant %q", id)
		}
	}
	if !found {
		return nil, fmt.Errorf("postgres: grant %q: %w", id, kms.ErrNoRecord)
	}
	return decodeGrant(id, doc)
}

func decodeGrant(id, doc string) (*kms.GrantRecord, error) {
	g := new(kms.GrantRecord)
	if err := json.Unmarshal([]byte(doc), g); err != nil {
		return nil, fmt.Errorf("postgres: grant %q: corrupt record: %v", id, err)
	}
	return g, nil
}

// PutGrant inserts or replaces a grant. Its key must exist.
func (t *tx) PutGrant(g *kms.GrantRecord) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if g == nil || g.ID == "" || g.KeyID == "" {
		return errors.New("postgres: put grant: empty grant or key id")
	}
	for _, s := range []string{g.ID, g.GranteePrincipal, g.Name, g.RetiringPrincipal} {
		if !storable(s) {
			return fmt.Errorf("postgres: put grant %q: a field is not UTF-8 text without NUL", g.ID)
		}
	}
	if !storable(g.KeyID) {
		return fmt.Errorf("postgres: put grant %q: key %q: %w", g.ID, g.KeyID, kms.ErrNoRecord)
	}
	doc, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("postgres: put grant %q: %v", g.ID, err)
	}
	var exists bool
	err = t.query(qPutGrant, []any{g.ID, g.KeyID, g.GranteePrincipal, g.Name, g.RetiringPrincipal, string(doc)},
		func(r pgx.Rows) error { return r.Scan(&exists) })
	if err != nil {
		return t.failure(err, "put grant %q", g.ID)
	}
	if !exists {
		return fmt.Errorf("postgres: put grant %q: key %q: %w", g.ID, g.KeyID, kms.ErrNoRecord)
	}
	// Watchers drop what they cached of the key's grants with it.
	t.keys = noted(t.keys, g.KeyID)
	return nil
}

// DeleteGrant removes a grant. Deleting an absent grant is not an error.
func (t *tx) DeleteGrant(id string) error {
	if err := t.usable(true); err != nil {
		return err
	}
	if !storable(id) {
		return nil // no such grant
	}
	var keys []string
	err := t.query(qDeleteGrant, []any{id}, func(r pgx.Rows) error {
		var k string
		err := r.Scan(&k)
		keys = append(keys, k)
		return err
	})
	if err != nil {
		return t.failure(err, "delete grant %q", id)
	}
	for _, k := range keys {
		t.keys = noted(t.keys, k)
	}
	return nil
}

// CountGrants returns the number of grants of a key.
func (t *tx) CountGrants(keyID string) (int, error) {
	if err := t.usable(false); err != nil {
		return 0, err
	}
	if !storable(keyID) {
		return 0, nil
	}
	var n int64
	if err := t.query(qCountGrants, []any{keyID}, func(r pgx.Rows) error { return r.Scan(&n) }); err != nil {
		return 0, t.failure(err, "count grants of %q", keyID)
	}
	return int(n), nil
}

// ListGrants returns up to limit grants (all when limit <= 0) matching f
// whose id sorts after the given one, in id order.
func (t *tx) ListGrants(f kms.GrantFilter, after string, limit int) ([]*kms.GrantRecord, error) {
	if err := t.usable(false); err != nil {
		return nil, err
	}
	after, err := marker(after)
	if err != nil {
		return nil, fmt.Errorf("postgres: list grants: %v", err)
	}
	for _, s := range []string{f.KeyID, f.Grantee, f.Name, f.RetiringPrincipal} {
		if !storable(s) {
			return nil, nil // nothing stored matches
		}
	}
	var q string
	var args []any
	switch {
	case f.KeyID != "" && f.Grantee != "":
		q, args = qListGrantsByGrantee, []any{f.KeyID, f.Grantee, after, sqlLimit(limit)}
	case f.KeyID != "" && f.Name != "":
		q, args = qListGrantsByName, []any{f.KeyID, f.Name, after, sqlLimit(limit)}
	case f.KeyID != "":
		q, args = qListGrantsByKey, []any{f.KeyID, after, sqlLimit(limit)}
	case f.RetiringPrincipal != "":
		q, args = qListGrantsByRetiring, []any{f.RetiringPrincipal, after, sqlLimit(limit)}
	default:
		q, args = qListGrants, []any{after, sqlLimit(limit)}
	}
	var docs []string
	err = t.query(q, args, func(r pgx.Rows) error {
		var doc string
		err := r.Scan(&doc)
		docs = append(docs, doc)
		return err
	})
	if err != nil {
		return nil, t.failure(err, "list grants")
	}
	var gs []*kms.GrantRecord
	for _, doc := range docs {
		g, err := decodeGrant("", doc)
		if err != nil {
			return nil, err
		}
		if f.KeyID != "" && f.Grantee != "" && f.Name != "" && g.Name != f.Name {
			continue
		}
		gs = append(gs, g)
	}
	return gs, nil
}

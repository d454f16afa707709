package keystore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/envelopekms/envelope/internal/durable"
	"github.com/envelopekms/envelope/kms"
)

// What the keystore keeps for the servers' audit logs (package
// kms/awsapi): their HMAC key and their high-water marks, both sealed under
// the root key, so that neither lies in the clear beside the logs and
// neither can be changed without the root key.
const (
	// AuditKeyFileName is where servers before the key moved into the
	// keystore kept it, unsealed, beside the log.
	AuditKeyFileName = "audit.key"

	metaAuditKey  = "audit-key"  // the 32-byte key, sealed
	metaAuditLogs = "audit-logs" // JSON auditLogs, sealed
)

// ErrNoAuditKey is returned by [Keystore.StoredAuditKey] when no server has
// put an audit key into the keystore yet.
var ErrNoAuditKey = errors.New("keystore: no audit key stored yet")

// AuditKey returns the audit log's 32-byte HMAC key, kept in the keystore
// sealed under its root key. If the keystore has none yet, it moves the
// key of legacyFile (the audit.key file of servers before) into the
// keystore, so that their logs still verify, and removes the file
// durably; without such a file it makes a new random key. migrated reports
// a moved file.
//
// A legacyFile holding another key than the keystore's is left in place
// and reported as an error: it belongs to another keystore's logs. An empty
// legacyFile names none.
func (k *Keystore) AuditKey(ctx context.Context, legacyFile string) (key []byte, migrated bool, err error) {
	var fileKey []byte
	if legacyFile != "" {
		fileKey, err = os.ReadFile(legacyFile)
	}
	switch {
	case legacyFile == "" || errors.Is(err, fs.ErrNotExist):
		fileKey = nil
	case err != nil:
		return nil, false, fmt.Errorf("keystore: reading the old audit key file: %v", err)
	case len(fileKey) != 32:
		return nil, false, fmt.Errorf("keystore: the old audit key file %s is %d bytes, want 32 (a damaged or foreign file)", legacyFile, len(fileKey))
	}
	defer clear(fileKey)
	// Read first: a keystore that holds the key is enough, even read-only.
	key, err = k.StoredAuditKey(ctx)
	if errors.Is(err, ErrNoAuditKey) {
		err = k.store.Update(ctx, func(tx kms.Tx) error {
			key, migrated = nil, false // a store may run fn more than once
			sealed, err := tx.GetMeta(metaAuditKey)
			if err == nil { // another process was first
				key, err = k.openAuditKey(sealed)
				return err
			}
			if !errors.Is(err, kms.ErrNoRecord) {
				return err
			}
			if fileKey != nil {
				key, migrated = bytes.Clone(fileKey), true
			} else {
				key = make([]byte, 32)
				rand.Read(key)
			}
			if sealed, err = k.root.Seal(key, []byte(metaAuditKey)); err != nil {
				return err
			}
			return tx.PutMeta(metaAuditKey, sealed)
		})
		if err != nil {
			err = fmt.Errorf("keystore: %s: the audit key: %w", k.Name, err)
		}
	}
	if err != nil {
		return nil, false, err
	}
	if fileKey != nil {
		if !hmac.Equal(fileKey, key) {
			clear(key)
			return nil, false, fmt.Errorf("keystore: %s holds another audit key than keystore %s: it belongs to other logs; move it away, keeping it with them (\"envelope audit verify --key FILE LOG\" checks them)", legacyFile, k.Name)
		}
		if err := os.Remove(legacyFile); err != nil {
			return nil, false, fmt.Errorf("keystore: removing the old audit key file once moved into the keystore: %v", err)
		}
		if err := durable.SyncDir(filepath.Dir(legacyFile)); err != nil {
			return nil, false, fmt.Errorf("keystore: removing the old audit key file once moved into the keystore: %v", err)
		}
	}
	return key, migrated, nil
}

// StoredAuditKey returns the audit key in the keystore, or [ErrNoAuditKey]
// when there is none; it never makes one.
func (k *Keystore) StoredAuditKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := k.store.View(ctx, func(tx kms.Tx) error {
		sealed, err := tx.GetMeta(metaAuditKey)
		if errors.Is(err, kms.ErrNoRecord) {
			return ErrNoAuditKey
		}
		if err != nil {
			return err
		}
		key, err = k.openAuditKey(sealed)
		return err
	})
	switch {
	case errors.Is(err, ErrNoAuditKey):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("keystore: %s: the audit key: %w", k.Name, err)
	}
	return key, nil
}

// openAuditKey unseals the audit key stored in the keystore.
func (k *Keystore) openAuditKey(sealed []byte) ([]byte, error) {
	key, err := k.root.Open(sealed, []byte(metaAuditKey))
	if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		clear(key)
		return nil, fmt.Errorf("it is %d bytes, want 32", len(key))
	}
	return key, nil
}

// AuditLogMark is an audit log's high-water mark: the highest sequence
// number its server knew on disk, and that line's mac.
type AuditLogMark struct {
	// ID is the log's id, from its start records.
	ID string `json:"id"`
	// Where is the log's host and path when the mark was last raised.
	Where string `json:"where"`
	// Seq is the highest sequence number known, MAC that line's mac.
	Seq int64  `json:"seq"`
	MAC []byte `json:"mac"`
	// Updated is when the mark was last raised or moved.
	Updated time.Time `json:"updated"`
}

// auditLogs is the sealed meta value metaAuditLogs.
type auditLogs struct {
	Logs []AuditLogMark `json:"logs"`
}

// readAuditLogs reads the marks in tx.
func (k *Keystore) readAuditLogs(tx kms.Tx) (*auditLogs, error) {
	var logs auditLogs
	sealed, err := tx.GetMeta(metaAuditLogs)
	if errors.Is(err, kms.ErrNoRecord) {
		return &logs, nil
	}
	if err != nil {
		return nil, err
	}
	b, err := k.root.Open(sealed, []byte(metaAuditLogs))
	if err != nil {
		return nil, fmt.Errorf("keystore: the audit logs' high-water marks: %w", err)
	}
	if err := json.Unmarshal(b, &logs); err != nil {
		return nil, fmt.Errorf("keystore: the audit logs' high-water marks are damaged: %v", err)
	}
	return &logs, nil
}

// AuditMarks returns the audit logs the keystore knows, with their
// high-water marks.
func (k *Keystore) AuditMarks(ctx context.Context) ([]AuditLogMark, error) {
	var logs *auditLogs
	err := k.store.View(ctx, func(tx kms.Tx) (err error) {
		logs, err = k.readAuditLogs(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return logs.Logs, nil
}

// AuditMark returns the high-water mark of the log with the given id: seq
// 0 and no mac if the keystore knows none.
func (k *Keystore) AuditMark(ctx context.Context, id string) (seq int64, mac []byte, err error) {
	marks, err := k.AuditMarks(ctx)
	if err != nil {
		return 0, nil, err
	}
	for _, m := range marks {
		if m.ID == id {
			return m.Seq, m.MAC, nil
		}
	}
	return 0, nil, nil
}

// AuditLogAt returns the id of the log whose mark was last raised from
// where (host and path), or "".
func (k *Keystore) AuditLogAt(ctx context.Context, where string) (string, error) {
	marks, err := k.AuditMarks(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range marks {
		if m.Where == where {
			return m.ID, nil
		}
	}
	return "", nil
}

// maxAuditLogs bounds the marks kept: the least recently raised go first.
const maxAuditLogs = 1000

// RaiseAuditMark records seq and mac as the high-water mark of log id,
// written from where, unless its mark is already at seq or higher: a mark
// never goes down. Another log that was at where is no longer found there.
func (k *Keystore) RaiseAuditMark(ctx context.Context, id, where string, seq int64, mac []byte) error {
	return k.store.Update(ctx, func(tx kms.Tx) error {
		logs, err := k.readAuditLogs(tx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(logs.Logs, func(m AuditLogMark) bool { return m.ID == id })
		if i >= 0 && logs.Logs[i].Seq >= seq && logs.Logs[i].Where == where {
			return nil
		}
		for j := range logs.Logs {
			if j != i && logs.Logs[j].Where == where {
				logs.Logs[j].Where = ""
			}
		}
		if i < 0 {
			logs.Logs = append(logs.Logs, AuditLogMark{ID: id})
			i = len(logs.Logs) - 1
		}
		m := &logs.Logs[i]
		m.Where, m.Updated = where, time.Now().UTC()
		if seq > m.Seq {
			m.Seq, m.MAC = seq, bytes.Clone(mac)
		}
		if len(logs.Logs) > maxAuditLogs {
			slices.SortFunc(logs.Logs, func(a, b AuditLogMark) int { return b.Updated.Compare(a.Updated) })
			logs.Logs = logs.Logs[:maxAuditLogs]
		}
		b, err := json.Marshal(logs)
		if err != nil {
			return err
		}
		sealed, err := k.root.Seal(b, []byte(metaAuditLogs))
		if err != nil {
			return err
		}
		return tx.PutMeta(metaAuditLogs, sealed)
	})
}

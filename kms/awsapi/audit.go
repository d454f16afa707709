package awsapi

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/envelopekms/envelope/internal/durable"
)

// AuditEvent is one line of the audit log: who did what to which key, and
// how it ended. It never holds key material, plaintext or context values.
type AuditEvent struct {
	Seq                   int64    `json:"seq"`
	Time                  string   `json:"time"`
	RequestID             string   `json:"requestId"`
	Principal             string   `json:"principal"`
	SourceAddress         string   `json:"sourceAddress"`
	Operation             string   `json:"operation"`
	KeyARN                string   `json:"keyArn,omitempty"`
	EncryptionContextKeys []string `json:"encryptionContextKeys,omitempty"`
	// Result is "Success" or the AWS error name.
	Result string `json:"result"`
}

// macField ends every line: ,"mac":"<64 hex digits>"}
const macField = `,"mac":"`

// The audit log is a file of JSON lines chained by HMAC-SHA256: each line
// ends with mac = HMAC(key, previous line's mac ‖ this line up to the mac
// field), the first line chaining from 32 zero bytes. Without the audit key
// no line can be edited, inserted or deleted unnoticed; lines cut from the
// end leave no trace in the file itself (seq numbers do show a gap to
// anyone who saw later ones).
type AuditLog struct {
	mu   sync.Mutex
	f    *os.File
	key  []byte
	prev []byte
	seq  int64
	sync bool
	mac  hash.Hash // HMAC-SHA256 with key, reset for each line

	pending []byte // lines not yet written
	spare   []byte // the flusher's last batch, for reuse
	kick    chan struct{}
	stopped chan struct{}
	cond    *sync.Cond
	synced  int64 // highest seq on disk (fsync)
	err     error // sticky write failure
	closed  bool
}

// AuditFlushInterval is how often the default (batching) audit mode hands
// its lines to the operating system: the loss window if the server
// process crashes. Lines in the operating system's page cache survive a
// server crash but not a power loss; with sync, each answer waits until
// its line is on disk.
const AuditFlushInterval = 10 * time.Millisecond

// LoadOrCreateAuditKey reads the 32-byte audit key from file, creating it
// (mode 0600) if absent.
func LoadOrCreateAuditKey(file string) ([]byte, error) {
	key, err := os.ReadFile(file)
	if err == nil {
		if len(key) != 32 {
			return nil, fmt.Errorf("audit key %s is %d bytes, want 32", file, len(key))
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key = make([]byte, 32)
	rand.Read(key)
	if err := durable.WriteNew(file, key, 0o600); durable.CreateFailed(err) {
		return nil, fmt.Errorf("creating audit key: %v", err)
	} else if err != nil {
		return nil, fmt.Errorf("writing audit key: %v", err)
	}
	return key, nil
}

// OpenAuditLog opens (creating, mode 0600) the audit log at path and
// continues its chain from its last line. With sync false, lines are
// written in batches every AuditFlushInterval; with syncWrites, Write
// returns only once its line is on disk, many concurrent writers sharing
// one fsync (group commit).
func OpenAuditLog(path string, key []byte, syncWrites bool) (*AuditLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %v", err)
	}
	a := &AuditLog{f: f, key: key, prev: make([]byte, 32), sync: syncWrites, mac: hmac.New(sha256.New, key),
		kick: make(chan struct{}, 1), stopped: make(chan struct{})}
	a.cond = sync.NewCond(&a.mu)
	last, err := lastLine(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if len(last) > 0 {
		mac, rest, err := splitMAC(last)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("audit log %s: the last line is damaged (%v); run \"envelope audit verify\"", path, err)
		}
		var ev AuditEvent
		if err := json.Unmarshal(append(rest, '}'), &ev); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit log %s: the last line is damaged (%v)", path, err)
		}
		a.prev, a.seq = mac, ev.Seq
	}
	a.synced = a.seq
	go a.flusher()
	return a, nil
}

// lastLine returns the last complete line of f (without its newline).
func lastLine(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size == 0 {
		return nil, nil
	}
	const chunk = 64 << 10
	var buf []byte
	for off := size; off > 0; {
		n := int64(chunk)
		if off < n {
			n = off
		}
		off -= n
		b := make([]byte, n)
		if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
			return nil, err
		}
		buf = append(b, buf...)
		trimmed := bytes.TrimRight(buf, "\n")
		if i := bytes.LastIndexByte(trimmed, '\n'); i >= 0 {
			return trimmed[i+1:], nil
		}
		if off == 0 {
			return trimmed, nil
		}
	}
	return nil, nil
}

func splitMAC(line []byte) (mac, rest []byte, err error) {
	i := bytes.LastIndex(line, []byte(macField))
	if i < 0 || len(line) != i+len(macField)+64+2 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, nil, errors.New("no mac at the end of the line")
	}
	mac, err = hex.DecodeString(string(line[i+len(macField) : len(line)-2]))
	if err != nil {
		return nil, nil, errors.New("the mac is not hex")
	}
	return mac, line[:i], nil
}

func lineMAC(key, prev, rest []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(prev)
	h.Write(rest)
	return h.Sum(nil)
}

// Write appends ev to the log, setting its sequence number. In the default
// mode the line reaches the operating system within AuditFlushInterval; in
// sync mode Write returns once it is on disk.
func (a *AuditLog) Write(ev *AuditEvent) error {
	tail := appendAuditTail(nil, ev.Time, ev.RequestID, ev.Principal, ev.SourceAddress, ev.Operation, ev.KeyARN, ev.EncryptionContextKeys, ev.Result)
	seq, err := a.writeTail(tail)
	if err == nil || seq != 0 {
		ev.Seq = seq
	}
	return err
}

// appendAuditTail appends the JSON of an audit event from its second
// member ("time") to its last ("result"), without the closing brace:
// exactly what encoding/json makes of an AuditEvent after "seq". at is a
// string (AuditEvent.Time) or a time.Time, formatted as RFC 3339 in UTC
// with nanoseconds.
func appendAuditTail[T string | time.Time](dst []byte, at T, requestID, principal, source, operation, keyARN string, ecKeys []string, result string) []byte {
	dst = append(dst, `,"time":`...)
	switch t := any(at).(type) {
	case string:
		dst = appendJSONString(dst, t)
	case time.Time:
		dst = append(dst, '"')
		dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"requestId":`...)
	dst = appendJSONString(dst, requestID)
	dst = append(dst, `,"principal":`...)
	dst = appendJSONString(dst, principal)
	dst = append(dst, `,"sourceAddress":`...)
	dst = appendJSONString(dst, source)
	dst = append(dst, `,"operation":`...)
	dst = appendJSONString(dst, operation)
	if keyARN != "" {
		dst = append(dst, `,"keyArn":`...)
		dst = appendJSONString(dst, keyARN)
	}
	if len(ecKeys) > 0 {
		dst = append(dst, `,"encryptionContextKeys":[`...)
		for i, k := range ecKeys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"result":`...)
	return appendJSONString(dst, result)
}

// writeTail appends a line made of the next sequence number and tail (from
// appendAuditTail), chained by its mac, and returns the sequence number.
// The encoding happens before, outside the lock: only the numbering and the
// chain are serial.
func (a *AuditLog) writeTail(tail []byte) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, errors.New("audit log closed")
	}
	if a.err != nil {
		return 0, a.err
	}
	a.seq++
	seq := a.seq
	start := len(a.pending)
	a.pending = append(a.pending, `{"seq":`...)
	a.pending = strconv.AppendInt(a.pending, seq, 10)
	a.pending = append(a.pending, tail...)
	a.mac.Reset()
	a.mac.Write(a.prev)
	a.mac.Write(a.pending[start:])
	a.prev = a.mac.Sum(a.prev[:0])
	a.pending = append(a.pending, macField...)
	a.pending = hex.AppendEncode(a.pending, a.prev)
	a.pending = append(a.pending, "\"}\n"...)
	if !a.sync {
		if len(a.pending) > 256<<10 {
			a.wake()
		}
		return seq, nil
	}
	a.wake()
	for a.synced < seq && a.err == nil {
		a.cond.Wait()
	}
	return seq, a.err
}

func (a *AuditLog) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// flusher writes pending lines: every AuditFlushInterval, or at once when
// woken (sync mode, or a large batch); in sync mode it fsyncs each batch
// and wakes its writers.
func (a *AuditLog) flusher() {
	defer close(a.stopped)
	t := time.NewTicker(AuditFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-a.kick:
		case <-t.C:
		}
		a.mu.Lock()
		batch, upto, closed := a.pending, a.seq, a.closed
		a.pending, a.spare = a.spare[:0], nil
		a.mu.Unlock()
		var err error
		if len(batch) > 0 {
			_, err = a.f.Write(batch)
		}
		if err == nil && (a.sync && len(batch) > 0 || closed) {
			err = a.f.Sync() // on closing, always: an earlier batch may not be synced yet
		}
		a.mu.Lock()
		if err != nil && a.err == nil {
			a.err = fmt.Errorf("audit log: %w", err)
		}
		if a.sync || closed {
			a.synced = upto
		}
		if cap(batch) <= 1<<20 {
			a.spare = batch // the next batch's buffer
		}
		a.cond.Broadcast()
		done := closed && len(a.pending) == 0 // closed seen before this batch: it was synced
		a.mu.Unlock()
		if done {
			return
		}
	}
}

// Close writes what is pending, syncs it to disk and closes the log.
func (a *AuditLog) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	a.wake()
	<-a.stopped
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.err
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ChainError says where an audit log's chain breaks.
type ChainError struct {
	Line   int // 1-based
	Reason string
}

func (e *ChainError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// VerifyAudit checks an audit log's chain with key and returns the number
// of lines, or a *ChainError naming the first line that breaks it.
func VerifyAudit(r io.Reader, key []byte) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	prev := make([]byte, 32)
	var seq int64
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		mac, rest, err := splitMAC(line)
		if err != nil {
			return n, &ChainError{n, err.Error() + " (the line was edited or cut)"}
		}
		if !hmac.Equal(mac, lineMAC(key, prev, rest)) {
			return n, &ChainError{n, "the mac does not match: this line was edited, or a line before it was edited, inserted or deleted (or the audit key is not this log's)"}
		}
		var ev AuditEvent
		if err := json.Unmarshal(append(bytes.Clone(rest), '}'), &ev); err != nil {
			return n, &ChainError{n, "not a JSON audit event: " + err.Error()}
		}
		if n > 1 && ev.Seq != seq+1 {
			return n, &ChainError{n, fmt.Sprintf("seq %d follows %d", ev.Seq, seq)}
		}
		seq = ev.Seq
		prev = mac
	}
	if err := sc.Err(); err != nil {
		return n, err
	}
	return n, nil
}

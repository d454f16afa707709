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
	"io"
	"os"
	"sync"
	"time"
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

	pending []byte // lines not yet written
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
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating audit key: %v", err)
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
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
	a := &AuditLog{f: f, key: key, prev: make([]byte, 32), sync: syncWrites,
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
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("audit log closed")
	}
	if a.err != nil {
		return a.err
	}
	a.seq++
	ev.Seq = a.seq
	b, err := json.Marshal(ev)
	if err != nil {
		a.seq--
		return err
	}
	rest := b[:len(b)-1] // without the closing brace
	mac := lineMAC(a.key, a.prev, rest)
	a.pending = append(a.pending, rest...)
	a.pending = append(a.pending, macField...)
	a.pending = hex.AppendEncode(a.pending, mac)
	a.pending = append(a.pending, "\"}\n"...)
	a.prev = mac
	if !a.sync {
		if len(a.pending) > 256<<10 {
			a.wake()
		}
		return nil
	}
	seq := a.seq
	a.wake()
	for a.synced < seq && a.err == nil {
		a.cond.Wait()
	}
	return a.err
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
		a.pending = nil
		a.mu.Unlock()
		var err error
		if len(batch) > 0 {
			_, err = a.f.Write(batch)
		}
		if err == nil && (a.sync || closed) && len(batch) > 0 {
			err = a.f.Sync()
		}
		a.mu.Lock()
		if err != nil && a.err == nil {
			a.err = fmt.Errorf("audit log: %w", err)
		}
		if a.sync || closed {
			a.synced = upto
		}
		a.cond.Broadcast()
		done := a.closed && len(a.pending) == 0
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

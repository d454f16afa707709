package awsapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Unauthenticated failures (requests with no principal) are written one by
// one up to a rate; beyond it they are counted, by source address and
// error, into one summary line per AuditSummaryInterval.
const (
	unauthenticatedRate  = 10 // lines per second
	unauthenticatedBurst = 50
	maxSummaryPairs      = 64 // source and error pairs named in a summary
)

// AuditSyncInterval is how often the default audit mode syncs the log to
// disk, and how often, in both modes, the log's high-water mark is raised
// in the keystore ([AuditMarks]).
const AuditSyncInterval = time.Second

// AuditSummaryInterval is how often unauthenticated failures counted
// rather than written are summarised in one line.
const AuditSummaryInterval = 10 * time.Second

// Retries of a log that cannot be written back off from retryMin to
// retryMax.
const (
	retryMin = 10 * time.Millisecond
	retryMax = time.Second
)

// AuditMarks keeps audit logs' high-water marks outside the logs, so that
// lines cut from the end of a log can be told: a log that ends before its
// mark has lost lines. *keystore.Keystore implements it, in the keystore,
// sealed under its root key.
type AuditMarks interface {
	// AuditMark returns the mark of the log with the given id: the
	// highest sequence number known on disk and that line's mac; seq 0
	// if there is none.
	AuditMark(ctx context.Context, id string) (seq int64, mac []byte, err error)
	// RaiseAuditMark records seq and mac as the mark of log id, written
	// from where (host and path), unless the mark is already higher.
	RaiseAuditMark(ctx context.Context, id, where string, seq int64, mac []byte) error
	// AuditLogAt returns the id of the log last marked from where, or "".
	AuditLogAt(ctx context.Context, where string) (string, error)
}

// AuditOptions configure [OpenAuditLog].
type AuditOptions struct {
	// Key is the 32-byte HMAC-SHA256 key of the chain.
	Key []byte
	// Sync makes each request wait until its line is on disk (fsync,
	// shared by the requests waiting together). By default a request
	// waits until its line is written to the operating system, and the
	// log is synced every AuditSyncInterval.
	Sync bool
	// Marks, if not nil, keeps the log's high-water mark (the keystore).
	Marks AuditMarks
	// Logger logs failures and recoveries; nil discards.
	Logger *slog.Logger

	// wrap, in tests, wraps the log file to inject faults.
	wrap func(*os.File) auditFile
}

// auditFile is what the log needs of its file.
type auditFile interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// AuditLog is the server's audit log: a file of JSON lines, one per request
// and a few of its own, chained by HMAC-SHA256. Each line ends with
// mac = HMAC(key, previous line's mac ‖ this line up to the mac member);
// the first line of a log chains from 32 zero bytes, or from the prevMac
// of the start record it is. Without the key no line can be edited,
// inserted or deleted unnoticed ([VerifyAuditLog]).
//
// # Lines
//
// A request's line ([AuditEvent]): seq, time, requestId, principal ("-"
// when none was authenticated), sourceAddress, operation, keyArn (or
// keyArnOmitted), encryptionContextKeys (and encryptionContextKeysOmitted),
// result, mac. Context keys are listed, in order, while they are at most
// 128 bytes and 32 of them; a key reference of more than 512 bytes is
// replaced by its length, SHA-256 and first 64 bytes ([AuditOmitted]). A
// request's line is thus at most about 7 KiB.
//
// Requests that fail with no authenticated principal are written one by
// one up to 10 a second (50 at once); beyond that they are counted, by
// source address and error, into a summary line every
// AuditSummaryInterval.
//
// The server's own lines carry a "type":
//   - "start", written each time the log is opened: logId (the log's id,
//     random, kept from open to open), host, pid, mode ("batched" or
//     "sync"), prevSeq and prevMac (the line it chains from), missing (the
//     lines known written but found cut from the end: the log ended before
//     its high-water mark), highWater (the mark found, when marks are
//     kept) and torn (bytes, sha256 and the text of an incomplete last line
//     that was cut: a crash in the middle of a write).
//   - "resume", written when the log can be written again after failing:
//     failedAt, error, attempts, refused (requests refused meanwhile,
//     without lines of their own) and withheld (from, through: the lines
//     of requests that were answered KMSInternalException because their
//     lines could not be written; the operations they record did run).
//   - "unauthenticated": since, until, count, bySource (source, result,
//     count) and others (count) for the pairs beyond 64.
//
// # Guarantees
//
// A request is answered only once its line is written to the operating
// system (default mode) or synced to disk (sync mode): a crash of the
// server process loses no answered request's line. In the default mode a
// power failure can lose the lines written since the last sync, at most
// AuditSyncInterval earlier. When a line cannot be written (a full disk,
// an I/O error), the requests waiting for it are answered
// KMSInternalException instead (a computed answer, which may hold a data
// key, is discarded), every later request is refused until the log can be
// written again, and a background retry writes the pending lines, with
// the chain intact, as soon as it can.
//
// With [AuditOptions.Marks], the seq and mac of the last line synced are
// raised as the log's high-water mark every AuditSyncInterval and on
// Close; a log that ends before its mark was cut, and [VerifyAuditLog]
// says by how many lines at least. A reopened log continues after its mark,
// never reusing a sequence number, and its start record says what is
// missing.
type AuditLog struct {
	path  string
	where string // host and absolute path, for the marks
	id    string
	key   []byte
	sync  bool
	marks AuditMarks
	log   *slog.Logger
	f     auditFile
	osf   *os.File // the file under f, locked while open

	mu      sync.Mutex
	cond    *sync.Cond
	mac     hash.Hash // HMAC-SHA256 with key, reset for each line
	prev    []byte    // the mac of the last line appended
	seq     int64     // the last line appended
	pending []byte    // lines appended, not yet written
	spare   []byte    // a written batch's buffer, for reuse
	writing bool      // a batch is being written
	size    int64     // where the written lines end in the file
	dirty   bool      // the file may hold bytes past size: cut them
	done    int64     // the last line written (sync mode: and synced)
	doneMAC [32]byte  // its mac
	// synced lines: the file up to syncedSize is on disk.
	synced     int64
	syncedMAC  [32]byte
	syncedSize int64
	unsynced   unsyncedLines // the file from syncedSize to size, to rewrite after a failure
	// A failure, while the log cannot be written.
	err          error
	failedAt     time.Time
	attempts     int64
	refused      int64
	withheldFrom int64
	closed       bool
	marked       int64 // the last seq raised as the mark

	healthy       atomic.Bool
	writeFailures atomic.Int64
	refusedTotal  atomic.Int64
	summarized    atomic.Int64
	markFailures  atomic.Int64

	// Unauthenticated failures beyond the rate, for the next summary.
	umu      sync.Mutex
	tokens   float64
	tokensAt time.Time
	usince   time.Time
	ucount   int64
	upairs   map[[2]string]int64
	uothers  int64

	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

// errAuditClosed is a write after Close.
var errAuditClosed = errors.New("audit log closed")

// errLogInUse is a log another process has locked.
var errLogInUse = errors.New("audit log in use")

// OpenAuditLog opens (creating, mode 0600) the audit log at path, locks it
// against other processes, recovers a torn last line, and writes a start
// record that continues its chain (see [AuditLog]). A log that cannot be
// written at once (a full disk) opens unhealthy and recovers by itself.
func OpenAuditLog(path string, opts AuditOptions) (*AuditLog, error) {
	if len(opts.Key) != 32 {
		return nil, fmt.Errorf("audit key is %d bytes, want 32", len(opts.Key))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("audit log %q: %v", path, err)
	}
	host, _ := os.Hostname()
	osf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %v", err)
	}
	lockErr := lockFile(osf)
	if lockErr == errLogInUse {
		osf.Close()
		return nil, fmt.Errorf("audit log %s is in use by another process: each server needs a log of its own", path)
	}
	a := &AuditLog{path: path, where: host + ":" + abs, key: bytes.Clone(opts.Key), sync: opts.Sync, marks: opts.Marks,
		log: opts.Logger, f: osf, osf: osf, mac: hmac.New(sha256.New, opts.Key),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if opts.wrap != nil {
		a.f = opts.wrap(osf)
	}
	if lockErr != nil {
		a.log.Warn("cannot lock the audit log (its file system does not lock): make sure no other server writes it", "log", path, "err", lockErr)
	}
	a.cond = sync.NewCond(&a.mu)
	a.healthy.Store(true)
	if err := a.open(); err != nil {
		osf.Close()
		return nil, err
	}
	go a.maintain()
	return a, nil
}

// open reads the end of the log, finds its id and mark, and writes the
// start record.
func (a *AuditLog) open() error {
	st, err := a.osf.Stat()
	if err != nil {
		return fmt.Errorf("audit log %s: %v", a.path, err)
	}
	size := st.Size()
	good, lastStart, err := scanTail(a.f, size)
	if err != nil {
		return fmt.Errorf("audit log %s: %v", a.path, err)
	}
	var lastSeq int64
	lastMAC := make([]byte, 32)
	if good > 0 {
		if lastSeq, lastMAC, err = readLineEnds(a.f, lastStart, good-1); err != nil {
			return fmt.Errorf("audit log %s: the last line is damaged (%v); run \"envelope audit verify\"", a.path, err)
		}
	}
	var torn *tornTail
	if size > good {
		if torn, err = readTorn(a.f, good, size); err != nil {
			return fmt.Errorf("audit log %s: %v", a.path, err)
		}
	}
	if good > 0 {
		a.id = firstLineLogID(a.f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if a.id == "" && a.marks != nil {
		if a.id, err = a.marks.AuditLogAt(ctx, a.where); err != nil {
			return fmt.Errorf("audit log %s: reading its high-water mark: %v", a.path, err)
		}
	}
	if a.id == "" {
		var b [16]byte
		rand.Read(b[:])
		a.id = hex.EncodeToString(b[:])
	}
	var markSeq int64
	var markMAC []byte
	if a.marks != nil {
		if markSeq, markMAC, err = a.marks.AuditMark(ctx, a.id); err != nil {
			return fmt.Errorf("audit log %s: reading its high-water mark: %v", a.path, err)
		}
	}
	s := startRecord{id: a.id, mode: "batched", prevSeq: lastSeq, prevMAC: lastMAC, marks: a.marks != nil, highWater: markSeq, torn: torn}
	if a.sync {
		s.mode = "sync"
	}
	if markSeq > lastSeq {
		if good > 0 {
			s.missing = markSeq - lastSeq // cut from the end
		} else if len(markMAC) == 32 {
			s.prevSeq, s.prevMAC = markSeq, markMAC // a new file: the log goes on
		}
	}
	a.seq = s.prevSeq + s.missing
	a.prev = bytes.Clone(s.prevMAC)
	a.size, a.syncedSize, a.dirty = good, good, torn != nil
	a.done, a.doneMAC = a.seq, [32]byte(a.prev)
	a.synced, a.syncedMAC = a.seq, [32]byte(a.prev)
	if s.missing > 0 {
		a.log.Warn("lines were cut from the end of the audit log: it ends before its high-water mark", "log", a.path,
			"lastSeq", lastSeq, "highWater", markSeq, "missing", s.missing)
	}
	if torn != nil {
		a.log.Warn("cut the torn last line of the audit log (a crash while writing it); the start record holds what was cut", "log", a.path, "bytes", torn.bytes)
	}

	a.mu.Lock()
	a.appendLocked(s.appendTail(nil, time.Now()))
	a.flushLocked()
	if a.err == nil && !a.sync {
		if err := a.f.Sync(); err != nil {
			a.failLocked(err)
		} else {
			a.markSyncedLocked(a.size, a.done, a.doneMAC)
		}
	}
	failed := a.err
	a.mu.Unlock()
	if failed == nil {
		a.raiseMark()
	}
	return nil
}

// scanTail finds where the complete lines of a file of size bytes end
// (good, just after its last newline) and where the last of them starts.
func scanTail(f io.ReaderAt, size int64) (good, lastStart int64, err error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	good = -1
	for end := size; end > 0; {
		if size-end > maxTailScan {
			if good < 0 {
				return 0, 0, fmt.Errorf("no complete line in the last %d MiB", maxTailScan>>20)
			}
			return 0, 0, fmt.Errorf("the last line is longer than %d MiB", maxTailScan>>20)
		}
		off := max(end-chunk, 0)
		b := buf[:end-off]
		if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
			return 0, 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			if good < 0 {
				good = off + int64(i) + 1
				continue
			}
			return good, off + int64(i) + 1, nil
		}
		end = off
	}
	if good < 0 {
		return 0, 0, nil // no complete line
	}
	return good, 0, nil
}

// readLineEnds returns the seq and mac of the line from start to end (its
// newline), reading only its beginning and end.
func readLineEnds(f io.ReaderAt, start, end int64) (int64, []byte, error) {
	n := end - start
	if n < int64(len(`{"seq":1`))+int64(macSuffixLen) {
		return 0, nil, errors.New("too short")
	}
	head := make([]byte, min(n-int64(macSuffixLen), 32))
	if _, err := f.ReadAt(head, start); err != nil {
		return 0, nil, err
	}
	seq, ok := parseSeq(head)
	if !ok {
		return 0, nil, errors.New(`it does not begin with {"seq":N`)
	}
	suffix := make([]byte, macSuffixLen)
	if _, err := f.ReadAt(suffix, end-int64(macSuffixLen)); err != nil {
		return 0, nil, err
	}
	mac, ok := parseMACSuffix(suffix)
	if !ok {
		return 0, nil, errors.New("no mac at the end of the line")
	}
	return seq, mac, nil
}

// readTorn describes the bytes of f from good to size: an incomplete line.
func readTorn(f io.ReaderAt, good, size int64) (*tornTail, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, good, size-good)); err != nil {
		return nil, err
	}
	text := make([]byte, min(size-good, maxTornText))
	if _, err := f.ReadAt(text, good); err != nil && err != io.EOF {
		return nil, err
	}
	return &tornTail{bytes: size - good, sha256: h.Sum(nil), text: text}, nil
}

// firstLineLogID returns the logId of the log's first line if it is a start
// record, else "" (a log begun by a server before start records).
func firstLineLogID(f io.ReaderAt) string {
	b := make([]byte, 64<<10)
	n, _ := f.ReadAt(b, 0)
	line, _, ok := bytes.Cut(b[:n], []byte("\n"))
	if !ok {
		return ""
	}
	var rec struct {
		Type  string `json:"type"`
		LogID string `json:"logId"`
	}
	if json.Unmarshal(line, &rec) != nil || rec.Type != "start" {
		return ""
	}
	return rec.LogID
}

// Write appends a request's line to the log, setting ev.Seq, and returns
// once it is written (in sync mode, on disk). After an error the line
// waits for the log to be writable again (it is not lost unless the
// process ends first), and the request must be refused.
func (a *AuditLog) Write(ev *AuditEvent) error {
	tail := appendAuditTail(nil, ev.Time, ev.RequestID, ev.Principal, ev.SourceAddress, ev.Operation, ev.KeyARN, ev.EncryptionContextKeys, ev.DecidedBy, ev.Sid, ev.Result)
	seq, err := a.writeTail(tail)
	if seq != 0 {
		ev.Seq = seq
	}
	return err
}

// writeTail appends a line made of the next sequence number and tail,
// chained by its mac, and waits until it is written (sync mode: on disk).
// It returns the line's sequence number; on an error the line stays
// pending (written once the log recovers) and the request must be refused.
func (a *AuditLog) writeTail(tail []byte) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, errAuditClosed
	}
	seq := a.appendLocked(tail)
	for a.done < seq {
		if a.err != nil {
			return seq, a.err
		}
		if !a.writing {
			a.flushLocked() // group commit: this writer writes every pending line
			continue
		}
		a.cond.Wait()
	}
	return seq, nil
}

// appendLocked appends a line of the next seq and tail to pending.
func (a *AuditLog) appendLocked(tail []byte) int64 {
	a.seq++
	start := len(a.pending)
	a.pending = append(a.pending, `{"seq":`...)
	a.pending = strconv.AppendInt(a.pending, a.seq, 10)
	a.pending = append(a.pending, tail...)
	a.mac.Reset()
	a.mac.Write(a.prev)
	a.mac.Write(a.pending[start:])
	a.prev = a.mac.Sum(a.prev[:0])
	a.pending = append(a.pending, macField...)
	a.pending = hex.AppendEncode(a.pending, a.prev)
	a.pending = append(a.pending, "\"}\n"...)
	return a.seq
}

// flushLocked writes the pending lines (a.mu held, released during the
// write; nothing else writing, the log healthy).
func (a *AuditLog) flushLocked() {
	if len(a.pending) == 0 || a.writing || a.err != nil {
		return
	}
	a.writing = true
	batch, upto, mac := a.pending, a.seq, [32]byte(a.prev)
	a.pending, a.spare = a.spare[:0], nil
	off, dirty := a.size, a.dirty
	a.mu.Unlock()
	_, err := a.f.WriteAt(batch, off)
	if err == nil && dirty {
		err = a.f.Truncate(off + int64(len(batch)))
	}
	if err == nil && a.sync {
		err = a.f.Sync()
	}
	a.mu.Lock()
	a.writing = false
	if err != nil {
		a.pending = append(batch, a.pending...)
		a.failLocked(err)
	} else {
		a.size, a.dirty = off+int64(len(batch)), false
		a.done, a.doneMAC = upto, mac
		if a.sync {
			a.markSyncedLocked(a.size, upto, mac)
		} else {
			a.unsynced.write(batch)
			if a.unsynced.n > maxUnsynced {
				a.wake()
			}
		}
		if cap(batch) <= 1<<20 {
			a.spare = batch[:0]
		}
	}
	a.cond.Broadcast()
}

// markSyncedLocked records that the file is on disk up to size, which
// ends with line seq of the given mac.
func (a *AuditLog) markSyncedLocked(size, seq int64, mac [32]byte) {
	if size <= a.syncedSize && seq <= a.synced {
		return
	}
	a.unsynced.drop(int(min(size-a.syncedSize, int64(a.unsynced.n))))
	a.syncedSize, a.synced, a.syncedMAC = size, seq, mac
}

// failLocked records a failure to write or sync: from now on requests are
// refused until the maintainer rewrites what is not on disk.
func (a *AuditLog) failLocked(err error) {
	a.writeFailures.Add(1)
	a.attempts++
	a.dirty = true
	if a.err != nil {
		return
	}
	a.err = fmt.Errorf("audit log: %w", err)
	a.failedAt = time.Now()
	a.withheldFrom = a.done + 1
	a.refused = 0
	a.healthy.Store(false)
	a.log.Error("the audit log cannot be written: every KMS request is refused until it can (retrying)", "log", a.path, "err", err)
	a.wake()
}

func (a *AuditLog) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// maintain runs in the background: it retries a log that cannot be
// written, syncs the default mode's log and raises the mark every
// AuditSyncInterval, and writes the summaries of unauthenticated failures.
func (a *AuditLog) maintain() {
	defer close(a.stopped)
	timer := time.NewTimer(AuditSyncInterval)
	defer timer.Stop()
	backoff := retryMin
	nextSync := time.Now().Add(AuditSyncInterval)
	for {
		select {
		case <-a.stop:
			return
		case <-a.kick:
		case <-timer.C:
		}
		if !a.healthy.Load() {
			if !a.retry() {
				timer.Reset(backoff)
				backoff = min(2*backoff, retryMax)
				continue
			}
			backoff = retryMin
			a.flushPending()
			a.raiseMark()
		}
		now := time.Now()
		a.mu.Lock()
		over := a.unsynced.n > maxUnsynced
		a.mu.Unlock()
		if !now.Before(nextSync) || over {
			a.syncAndMark()
			nextSync = now.Add(AuditSyncInterval)
		}
		wait := time.Until(nextSync)
		if due, ok := a.summaryDue(); ok {
			if !now.Before(due) {
				a.writeSummary(now)
			} else {
				wait = min(wait, due.Sub(now))
			}
		}
		timer.Reset(max(wait, time.Millisecond))
	}
}

// retry rewrites what is not on disk (the lines written since the last
// sync, and the pending ones) and syncs it; on success the log is healthy
// again and a resume record is appended. It reports whether the log is
// healthy.
func (a *AuditLog) retry() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.writing {
		a.cond.Wait()
	}
	if a.err == nil {
		return true
	}
	a.writing = true
	off := a.syncedSize
	data := make([]byte, 0, a.unsynced.n+len(a.pending))
	data = append(a.unsynced.appendTo(data), a.pending...)
	pending, upto, mac := a.pending, a.seq, [32]byte(a.prev)
	a.pending = nil
	a.mu.Unlock()
	_, err := a.f.WriteAt(data, off)
	if err == nil {
		err = a.f.Truncate(off + int64(len(data)))
	}
	if err == nil {
		err = a.f.Sync()
	}
	a.mu.Lock()
	a.writing = false
	defer a.cond.Broadcast()
	if err != nil {
		a.pending = append(pending, a.pending...)
		a.failLocked(err)
		return false
	}
	a.size, a.dirty, a.done, a.doneMAC = off+int64(len(data)), false, upto, mac
	a.unsynced.drop(a.unsynced.n)
	a.markSyncedLocked(a.size, upto, mac)
	r := resumeRecord{failedAt: a.failedAt, err: a.err, attempts: a.attempts, refused: a.refused, withheldFrom: a.withheldFrom, withheldThrough: upto}
	a.log.Info("the audit log can be written again; serving", "log", a.path, "after", time.Since(a.failedAt).Round(time.Millisecond),
		"refused", a.refused, "attempts", a.attempts)
	a.err, a.attempts, a.refused = nil, 0, 0
	a.appendLocked(r.appendTail(nil, time.Now()))
	a.healthy.Store(!a.closed)
	return true
}

// flushPending writes the lines pending now, if the log is healthy.
func (a *AuditLog) flushPending() {
	a.mu.Lock()
	defer a.mu.Unlock()
	target := a.seq
	for a.done < target && a.err == nil {
		if !a.writing {
			a.flushLocked()
			continue
		}
		a.cond.Wait()
	}
}

// syncAndMark syncs the default mode's log (sync mode's lines are synced
// as they are written) and raises the mark.
func (a *AuditLog) syncAndMark() {
	a.mu.Lock()
	size, done, mac := a.size, a.done, a.doneMAC
	need := a.err == nil && !a.sync && (done > a.synced || size > a.syncedSize)
	a.mu.Unlock()
	if need {
		err := a.f.Sync()
		a.mu.Lock()
		if err != nil {
			a.failLocked(err)
		} else {
			a.markSyncedLocked(size, done, mac)
		}
		a.mu.Unlock()
	}
	a.raiseMark()
}

// raiseMark raises the log's mark to its last synced line.
func (a *AuditLog) raiseMark() {
	if a.marks == nil {
		return
	}
	a.mu.Lock()
	seq, mac := a.synced, a.syncedMAC
	a.mu.Unlock()
	if seq <= a.marked {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.marks.RaiseAuditMark(ctx, a.id, a.where, seq, mac[:]); err != nil {
		if a.markFailures.Add(1) == 1 {
			a.log.Warn("could not raise the audit log's high-water mark in the keystore: lines cut from the log's end may go unnoticed", "log", a.path, "err", err)
		}
		return
	}
	a.marked = seq
}

// admitUnauthenticated decides whether an unauthenticated failure gets a
// line of its own (within the rate) or is counted for the next summary.
func (a *AuditLog) admitUnauthenticated(source, result string) bool {
	now := time.Now()
	a.umu.Lock()
	defer a.umu.Unlock()
	if a.tokensAt.IsZero() {
		a.tokens = unauthenticatedBurst
	} else {
		a.tokens = min(unauthenticatedBurst, a.tokens+now.Sub(a.tokensAt).Seconds()*unauthenticatedRate)
	}
	a.tokensAt = now
	if a.tokens >= 1 {
		a.tokens--
		return true
	}
	if a.upairs == nil {
		a.upairs, a.usince = map[[2]string]int64{}, now
	}
	k := [2]string{source, result}
	if _, ok := a.upairs[k]; ok || len(a.upairs) < maxSummaryPairs {
		a.upairs[k]++
	} else {
		a.uothers++
	}
	a.ucount++
	a.summarized.Add(1)
	return false
}

// summaryDue returns when the next summary is due, if one is.
func (a *AuditLog) summaryDue() (time.Time, bool) {
	a.umu.Lock()
	defer a.umu.Unlock()
	return a.usince.Add(AuditSummaryInterval), a.upairs != nil
}

// takeSummary returns the tail of a summary line of the failures counted
// since the last, or nil if none were.
func (a *AuditLog) takeSummary(now time.Time) []byte {
	a.umu.Lock()
	pairs, since, count, others := a.upairs, a.usince, a.ucount, a.uothers
	a.upairs, a.ucount, a.uothers = nil, 0, 0
	a.umu.Unlock()
	if pairs == nil {
		return nil
	}
	type pair struct {
		k [2]string
		n int64
	}
	sorted := make([]pair, 0, len(pairs))
	for k, n := range pairs {
		sorted = append(sorted, pair{k, n})
	}
	slices.SortFunc(sorted, func(x, y pair) int {
		if c := cmp.Compare(y.n, x.n); c != 0 {
			return c
		}
		if c := cmp.Compare(x.k[0], y.k[0]); c != 0 {
			return c
		}
		return cmp.Compare(x.k[1], y.k[1])
	})
	dst := appendAuditTime(nil, now)
	dst = append(dst, `,"type":"unauthenticated","since":`...)
	dst = appendJSONString(dst, since.UTC().Format(time.RFC3339Nano))
	dst = append(dst, `,"until":`...)
	dst = appendJSONString(dst, now.UTC().Format(time.RFC3339Nano))
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, count, 10)
	dst = append(dst, `,"bySource":[`...)
	for i, p := range sorted {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"source":`...)
		dst = appendJSONString(dst, p.k[0])
		dst = append(dst, `,"result":`...)
		dst = appendJSONString(dst, p.k[1])
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendInt(dst, p.n, 10)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if others > 0 {
		dst = append(dst, `,"others":{"count":`...)
		dst = strconv.AppendInt(dst, others, 10)
		dst = append(dst, '}')
	}
	return dst
}

// writeSummary appends the summary of unauthenticated failures, if any,
// and writes it (or leaves it pending while the log cannot be written).
func (a *AuditLog) writeSummary(now time.Time) {
	tail := a.takeSummary(now)
	if tail == nil {
		return
	}
	a.mu.Lock()
	a.appendLocked(tail)
	a.mu.Unlock()
	a.flushPending()
}

// admit reports whether a request may be served: not while the log cannot
// be written (the request is then counted as refused).
func (a *AuditLog) admit() error {
	if a.healthy.Load() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		a.refused++
		a.refusedTotal.Add(1)
		return a.err
	}
	if a.closed {
		return errAuditClosed
	}
	return nil
}

// Err returns why the log cannot be written, while it cannot (every KMS
// request is refused meanwhile), or nil.
func (a *AuditLog) Err() error {
	if a.healthy.Load() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.err != nil:
		return fmt.Errorf("%w (since %s, %d attempts; retrying, and refusing every KMS request until it can be written)",
			a.err, a.failedAt.UTC().Format(time.RFC3339), a.attempts)
	case a.closed:
		return errAuditClosed
	}
	return nil
}

// collectors returns the log's metrics.
func (a *AuditLog) collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "envelope_audit_healthy", Help: "1 while the audit log can be written; 0 while it cannot, and every KMS request is refused.",
		}, func() float64 {
			if a.Err() == nil {
				return 1
			}
			return 0
		}),
		counter("envelope_audit_write_failures_total", "Failed attempts to write or sync the audit log.", &a.writeFailures),
		counter("envelope_audit_refused_total", "KMS requests refused because the audit log could not be written.", &a.refusedTotal),
		counter("envelope_audit_unauthenticated_summarized_total", "Failed unauthenticated requests counted in a summary line rather than written one by one.", &a.summarized),
		counter("envelope_audit_mark_failures_total", "Failed attempts to raise the audit log's high-water mark in the keystore.", &a.markFailures),
	}
}

// Close writes what is pending (with a last summary of unauthenticated
// failures), syncs it, raises the mark and closes the log. If the log
// still cannot be written, the lines not written are lost and Close says
// how many.
func (a *AuditLog) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.healthy.Store(false)
	a.mu.Unlock()
	close(a.stop)
	<-a.stopped
	if tail := a.takeSummary(time.Now()); tail != nil {
		a.mu.Lock()
		a.appendLocked(tail)
		a.mu.Unlock()
	}
	a.mu.Lock()
	failed := a.err != nil
	a.mu.Unlock()
	if failed {
		a.retry() // a last attempt
	}
	a.flushPending()
	a.mu.Lock()
	err := a.err
	if err == nil {
		size, done, mac := a.size, a.done, a.doneMAC
		a.mu.Unlock()
		if serr := a.f.Sync(); serr != nil {
			err = fmt.Errorf("audit log: %w", serr)
		}
		a.mu.Lock()
		if err == nil {
			a.markSyncedLocked(size, done, mac)
		}
	}
	lost := a.seq - a.synced
	a.mu.Unlock()
	if err == nil {
		a.raiseMark()
	}
	cerr := a.f.Close()
	if err != nil {
		return fmt.Errorf("%w; %d lines were not written to disk", err, lost)
	}
	if cerr != nil {
		return fmt.Errorf("audit log: %v", cerr)
	}
	return nil
}

// unsyncedLines holds the bytes written but not yet synced, in chunks of
// unsyncedChunk bytes reused once synced: the default mode copies each
// batch here, to rewrite it if a sync fails, without allocating in the
// steady state.
type unsyncedLines struct {
	chunks [][]byte // the first starts at off
	off    int
	free   [][]byte
	n      int // bytes held
}

const unsyncedChunk = 64 << 10

// write appends b.
func (u *unsyncedLines) write(b []byte) {
	u.n += len(b)
	for len(b) > 0 {
		if k := len(u.chunks); k == 0 || len(u.chunks[k-1]) == cap(u.chunks[k-1]) {
			c := make([]byte, 0, unsyncedChunk)
			if f := len(u.free); f > 0 {
				c, u.free = u.free[f-1], u.free[:f-1]
			}
			u.chunks = append(u.chunks, c)
		}
		last := &u.chunks[len(u.chunks)-1]
		m := min(len(b), cap(*last)-len(*last))
		*last = append(*last, b[:m]...)
		b = b[m:]
	}
}

// drop discards the first n bytes.
func (u *unsyncedLines) drop(n int) {
	u.n -= n
	for n > 0 {
		c := u.chunks[0]
		avail := len(c) - u.off
		if n < avail {
			u.off += n
			return
		}
		n -= avail
		u.off = 0
		if len(u.free) < maxUnsynced/unsyncedChunk {
			u.free = append(u.free, c[:0])
		}
		u.chunks = u.chunks[1:]
	}
}

// appendTo appends the bytes held to dst.
func (u *unsyncedLines) appendTo(dst []byte) []byte {
	for i, c := range u.chunks {
		if i == 0 {
			c = c[u.off:]
		}
		dst = append(dst, c...)
	}
	return dst
}

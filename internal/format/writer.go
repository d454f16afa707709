package format

import (
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/envelopekms/envelope/suite"
)

// jobBytes is the plaintext one pipeline job carries: as many whole frames
// as fit (at least one), so that small frames are sealed in batches.
const jobBytes = 256 << 10

// Writer encrypts a stream into message body frames. Frames are sealed by
// a pool of workers, a batch of frames per job, and written in order by one
// goroutine that also feeds the signature hash, a job (256 KiB or more) per
// write, straight from the job's buffer; at most a few jobs per worker are
// in flight, so memory stays bounded whatever the input size. A message
// that fits in one job is sealed without any goroutine and written with one
// call.
type Writer struct {
	dst      io.Writer
	out      []byte // sealed bytes not yet written (until the pipeline starts)
	h        *Header
	aead     cipher.AEAD
	signer   *ecdsa.PrivateKey
	digest   hash.Hash
	frameLen int
	jobLen   int // plaintext per job, a multiple of frameLen
	workers  int

	cur    *encJob // the job being filled
	seq    uint32  // sequence number of the last frame assigned
	closed bool

	// The pipeline, started when the first job is full.
	started bool
	pool    *jobPool[encJob]
	work    chan *encJob
	order   chan *encJob
	done    chan struct{}
	mu      sync.Mutex
	err     error // sticky; the first failure
}

type encJob struct {
	pt       []byte
	out      []byte
	firstSeq uint32
	final    bool // the job ends with the final frame
	ready    chan struct{}
	iv, aad  []byte
}

// NewWriter writes the sealed header h to dst and returns a Writer for the
// body. signer is the message's signing key for signed suites, nil
// otherwise. workers ≤ 0 means one per CPU. The header must be framed.
func NewWriter(dst io.Writer, h *Header, aead cipher.AEAD, signer *ecdsa.PrivateKey, workers int) (*Writer, error) {
	if !h.Framed || h.FrameLength == 0 {
		return nil, errors.New("format: only framed messages are written")
	}
	if h.Suite.Signed() != (signer != nil) {
		return nil, errors.New("format: a signing key is needed exactly for signed suites")
	}
	if workers <= 0 {
		workers = defaultWorkers(signer != nil)
	}
	w := &Writer{
		dst:      dst,
		h:        h,
		aead:     aead,
		signer:   signer,
		frameLen: int(h.FrameLength),
		workers:  workers,
	}
	w.jobLen = w.frameLen
	if w.frameLen < jobBytes {
		w.jobLen = jobBytes / w.frameLen * w.frameLen
	}
	if signer != nil {
		w.digest = h.Suite.SignatureHash.New()
	}
	w.pool = newJobPool[encJob](poolSize(workers, w.jobLen), 1) // and w.cur is the first job
	w.cur = w.newJob()
	w.emit(h.Bytes())
	return w, w.failure()
}

func (w *Writer) newJob() *encJob {
	return &encJob{ready: make(chan struct{})} // buffers grow as plaintext comes
}

// getJob returns an empty job, waiting for one to come back from the
// pipeline when the in-flight limit is reached.
func (w *Writer) getJob() *encJob {
	j := w.pool.get(nil)
	j.pt, j.out, j.final = j.pt[:0], j.out[:0], false
	j.ready = make(chan struct{})
	return j
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *Writer) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// emit writes sealed bytes to the destination, feeding the signature.
// Until the pipeline starts they are collected, so that a small message is
// written with one call and without a large buffer.
func (w *Writer) emit(b []byte) {
	if w.digest != nil {
		w.digest.Write(b)
	}
	if !w.started {
		w.out = append(w.out, b...)
		return
	}
	if _, err := w.dst.Write(b); err != nil {
		w.fail(err)
	}
}

// Write encrypts p. Whole frames are sealed as jobs fill.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("format: write to a closed encrypting writer")
	}
	n := 0
	for len(p) > 0 {
		if err := w.failure(); err != nil {
			return n, err
		}
		k := min(len(p), w.jobLen-len(w.cur.pt))
		w.cur.pt = append(w.cur.pt, p[:k]...)
		p, n = p[k:], n+k
		if len(w.cur.pt) == w.jobLen {
			if err := w.submit(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// ReadFrom encrypts everything r yields, reading straight into the jobs.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.closed {
		return 0, errors.New("format: write to a closed encrypting writer")
	}
	var n int64
	for {
		if err := w.failure(); err != nil {
			return n, err
		}
		j := w.cur
		if cap(j.pt) < w.jobLen {
			j.pt = append(make([]byte, 0, w.jobLen), j.pt...)
		}
		m, err := r.Read(j.pt[len(j.pt):w.jobLen])
		j.pt = j.pt[:len(j.pt)+m]
		n += int64(m)
		if len(j.pt) == w.jobLen {
			if serr := w.submit(); serr != nil {
				return n, serr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// assign gives the current job its sequence numbers: one per whole frame,
// plus the final frame for a final job.
func (w *Writer) assign(j *encJob) error {
	frames := len(j.pt) / w.frameLen
	if j.final {
		frames++ // the final frame holds the remainder, possibly empty
	}
	if uint64(w.seq)+uint64(frames) > uint64(MaxFrames) || (!j.final && uint64(w.seq)+uint64(frames) >= uint64(MaxFrames)) {
		return fmt.Errorf("format: message too large: more than %d frames of %d bytes; use a larger frame size", uint32(MaxFrames), w.frameLen)
	}
	j.firstSeq = w.seq + 1
	w.seq += uint32(frames)
	return nil
}

// submit hands the full current job to the pipeline.
func (w *Writer) submit() error {
	j := w.cur
	if err := w.assign(j); err != nil {
		w.fail(err)
		return err
	}
	w.start()
	w.order <- j
	w.work <- j
	w.cur = w.getJob()
	return nil
}

// start launches the workers and the ordered writer.
func (w *Writer) start() {
	if w.started {
		return
	}
	w.started = true
	if _, err := w.dst.Write(w.out); err != nil { // the header
		w.fail(err)
	}
	w.out = nil
	w.work = make(chan *encJob, w.pool.size())
	w.order = make(chan *encJob, w.pool.size())
	w.done = make(chan struct{})
	for range w.workers {
		go func() {
			for j := range w.work {
				w.seal(j)
				close(j.ready)
			}
		}()
	}
	go func() {
		defer close(w.done)
		for j := range w.order {
			<-j.ready
			if w.failure() == nil {
				w.emit(j.out)
			}
			w.pool.put(j)
		}
	}()
}

// Grow prepares a message whose plaintext is known to be n bytes: if it
// fits in one job, the buffers for its plaintext and its sealed bytes are
// made once, at their final size.
func (w *Writer) Grow(n int64) {
	if w.started || n < 0 || n > int64(w.jobLen) {
		return
	}
	if cap(w.cur.pt) < int(n) {
		w.cur.pt = append(make([]byte, 0, n), w.cur.pt...)
	}
	need := len(w.out) + sealedLen(int(n), w.frameLen) + maxFooterLen
	if cap(w.out) < need {
		w.out = append(make([]byte, 0, need), w.out...)
	}
}

// maxFooterLen bounds a signature footer: its length, and a DER ECDSA
// P-384 signature.
const maxFooterLen = 2 + 104

// sealedLen is the size of n bytes of plaintext sealed in frames of
// frameLen, the final frame included.
func sealedLen(n, frameLen int) int {
	return n + (n/frameLen+1)*(FrameOverhead()+8)
}

// seal seals every frame of a job into j.out.
func (w *Writer) seal(j *encJob) {
	need := sealedLen(len(j.pt), w.frameLen)
	if cap(j.out) < need {
		j.out = make([]byte, 0, need)
	}
	j.out = w.sealFrames(j.out[:0], j)
}

// sealFrames appends the sealed frames of a job to out.
func (w *Writer) sealFrames(out []byte, j *encJob) []byte {
	pt, seq := j.pt, j.firstSeq
	for len(pt) >= w.frameLen {
		out = sealFrame(out, w.aead, w.h.MessageID, seq, false, pt[:w.frameLen], &j.iv, &j.aad)
		pt, seq = pt[w.frameLen:], seq+1
	}
	if j.final {
		out = sealFrame(out, w.aead, w.h.MessageID, seq, true, pt, &j.iv, &j.aad)
	}
	return out
}

// sealFrame appends one sealed frame to out.
func sealFrame(out []byte, aead cipher.AEAD, messageID []byte, seq uint32, final bool, pt []byte, iv, aad *[]byte) []byte {
	label := labelFrame
	if final {
		label = labelFinalFrame
		out = binary.BigEndian.AppendUint32(out, finalFrameMarker)
	}
	out = binary.BigEndian.AppendUint32(out, seq)
	*iv = frameIV(*iv, seq)
	out = append(out, *iv...)
	if final {
		out = binary.BigEndian.AppendUint32(out, uint32(len(pt)))
	}
	*aad = bodyAAD(*aad, messageID, label, seq, uint64(len(pt)))
	return aead.Seal(out, *iv, pt, *aad)
}

// Close seals the final frame, writes the signature footer of a signed
// message, and flushes. It does not close the destination. The message is
// complete and valid only once Close returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return w.failure()
	}
	w.closed = true
	j := w.cur
	j.final = true
	if err := w.assign(j); err != nil {
		w.fail(err)
	}
	if w.started {
		if w.failure() == nil {
			w.order <- j
			w.work <- j
		}
		close(w.work)
		close(w.order)
		<-w.done
	} else if w.failure() == nil {
		// The whole message is in w.out: seal the body straight after the
		// header.
		start := len(w.out)
		w.out = w.sealFrames(w.out, j)
		if w.digest != nil {
			w.digest.Write(w.out[start:])
		}
	}
	if err := w.failure(); err != nil {
		return err
	}
	if w.signer != nil {
		sig, err := ecdsa.SignASN1(rand.Reader, w.signer, w.digest.Sum(nil))
		if err != nil {
			w.fail(err)
			return err
		}
		w.out = binary.BigEndian.AppendUint16(w.out, uint16(len(sig))) // the footer is not signed
		w.out = append(w.out, sig...)
	}
	if len(w.out) > 0 {
		if _, err := w.dst.Write(w.out); err != nil {
			w.fail(err)
		}
		w.out = nil
	}
	return w.failure()
}

// Abort ends an unfinished message without writing its end (no final
// frame, no signature: no reader accepts it) and stops the pipeline.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.fail(errors.New("format: message aborted"))
	if w.started {
		close(w.work)
		close(w.order)
		<-w.done
	}
	clear(w.cur.pt)
}

// MaxFrames is the largest number of frames, the final one included, that a
// message body can hold.
const MaxFrames = finalFrameMarker

// FrameOverhead returns the bytes a framed body adds to each regular frame.
func FrameOverhead() int { return 4 + suite.IVLength + suite.TagLength }

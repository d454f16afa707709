package format

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"

	"github.com/envelopekms/envelope/suite"
)

// inFlightBytes bounds the memory of jobs in flight in a pipeline.
const inFlightBytes = 24 << 20

// poolSize returns how many jobs a pipeline keeps in flight.
func poolSize(workers, jobLen int) int {
	return max(2, min(2*workers+2, inFlightBytes/(2*jobLen)))
}

// Reader decrypts a message body. Frames are read and parsed in order by
// one goroutine (which also feeds the signature hash), opened by a pool of
// workers a batch per job, and released in order. A frame's plaintext is
// released only after its tag verifies; the last plaintext (the final
// frame, or the whole of a non-framed body) only after the signature of a
// signed message verifies and the message is known to end there. Errors
// are sticky. A message that fits in one job is opened without any
// goroutine.
type Reader struct {
	r       *bufio.Reader
	h       *Header
	aead    cipher.AEAD
	pub     *ecdsa.PublicKey
	digest  hash.Hash
	workers int
	jobLen  int

	seq  uint32 // the last frame parsed (parser)
	cur  *decJob
	off  int
	done bool
	err  error

	started bool
	pool    chan *decJob
	made    int
	work    chan *decJob
	order   chan *decJob
	stop    chan struct{}
	stopped bool
	scratch [12]byte
}

// frameRef locates one frame inside a job.
type frameRef struct {
	seq          uint32
	label        string
	ivOff, ctOff int // in raw
	ctLen        int // with the tag
	ptOff, ptLen int // in pt
}

type decJob struct {
	raw    []byte
	pt     []byte
	frames []frameRef
	// failAt is the index of the first frame not to release (len(frames)
	// when all may be); err says why.
	failAt int
	err    error
	// valid is how many bytes of pt may be released.
	valid   int
	last    bool // the message ends in this job, fully checked
	ready   chan struct{}
	iv, aad []byte
}

// NewReader returns a Reader for the body that follows header h in r. h
// must already have been verified with the key aead; pub is the
// verification key of a signed suite, nil otherwise. workers ≤ 0 means one
// per CPU.
func NewReader(r *bufio.Reader, h *Header, aead cipher.AEAD, pub *ecdsa.PublicKey, workers int) (*Reader, error) {
	if h.Suite.Signed() != (pub != nil) {
		return nil, fmt.Errorf("format: a verification key is needed exactly for signed suites")
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	rd := &Reader{r: r, h: h, aead: aead, pub: pub, workers: workers, stop: make(chan struct{})}
	rd.jobLen = int(h.FrameLength)
	if rd.jobLen == 0 || rd.jobLen < jobBytes {
		rd.jobLen = jobBytes
	}
	rd.pool = make(chan *decJob, poolSize(workers, rd.jobLen))
	if pub != nil {
		rd.digest = h.Suite.SignatureHash.New()
		rd.digest.Write(h.Bytes())
	}
	return rd, nil
}

// Read returns decrypted, authenticated plaintext. It returns io.EOF only
// once the whole message has been verified.
func (rd *Reader) Read(p []byte) (int, error) {
	for {
		if j := rd.cur; j != nil {
			if rd.off < j.valid {
				n := copy(p, j.pt[rd.off:j.valid])
				rd.off += n
				return n, nil
			}
			rd.advance()
			continue
		}
		if rd.err != nil {
			return 0, rd.err
		}
		if rd.done {
			return 0, io.EOF
		}
		rd.next()
	}
}

// WriteTo writes the plaintext to w, job by job, without an extra copy.
func (rd *Reader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for {
		if j := rd.cur; j != nil {
			if rd.off < j.valid {
				m, err := w.Write(j.pt[rd.off:j.valid])
				rd.off += m
				n += int64(m)
				if err != nil {
					return n, err
				}
				continue
			}
			rd.advance()
			continue
		}
		if rd.err != nil {
			return n, rd.err
		}
		if rd.done {
			return n, nil
		}
		rd.next()
	}
}

// advance finishes the drained current job: its error becomes the
// reader's, or the message is done if it was the last.
func (rd *Reader) advance() {
	j := rd.cur
	rd.cur, rd.off = nil, 0
	switch {
	case j.err != nil:
		rd.err = j.err
	case j.last:
		rd.done = true
	}
	clear(j.pt)
	if rd.started {
		select {
		case rd.pool <- j:
		default:
		}
	}
	if rd.err != nil || rd.done {
		rd.shutdown()
	}
}

// next makes the next job current: the first one is parsed in the
// caller; if the message does not end there, the pipeline starts.
func (rd *Reader) next() {
	if !rd.started {
		j := rd.newJob()
		rd.parse(j)
		if j.last || j.err != nil {
			rd.open(j)
			rd.cur = j
			return
		}
		rd.start(j)
	}
	j, ok := <-rd.order
	if !ok {
		rd.err = errors.New("format: internal error: the pipeline ended early")
		return
	}
	<-j.ready
	rd.cur = j
}

func (rd *Reader) newJob() *decJob {
	return &decJob{ready: make(chan struct{})}
}

// start launches the parser and the workers, with first already parsed.
func (rd *Reader) start(first *decJob) {
	rd.started = true
	rd.made = 1
	rd.work = make(chan *decJob, cap(rd.pool))
	rd.order = make(chan *decJob, cap(rd.pool))
	for range rd.workers {
		go func() {
			for j := range rd.work {
				rd.open(j)
				close(j.ready)
			}
		}()
	}
	rd.order <- first
	rd.work <- first
	go func() {
		defer close(rd.work)
		defer close(rd.order)
		for {
			j := rd.getJob()
			if j == nil {
				return
			}
			rd.parse(j)
			select {
			case rd.order <- j:
			case <-rd.stop:
				return
			}
			rd.work <- j
			if j.last || j.err != nil {
				return
			}
		}
	}()
}

// getJob returns an empty job, or nil once the reader is stopped.
func (rd *Reader) getJob() *decJob {
	var j *decJob
	if rd.made < cap(rd.pool) {
		select {
		case j = <-rd.pool:
		default:
			rd.made++
			j = rd.newJob()
		}
	} else {
		select {
		case j = <-rd.pool:
		case <-rd.stop:
			return nil
		}
	}
	j.raw, j.pt, j.frames = j.raw[:0], j.pt[:0], j.frames[:0]
	j.err, j.last, j.failAt, j.valid = nil, false, 0, 0
	j.ready = make(chan struct{})
	return j
}

// shutdown stops the parser goroutine if it runs.
func (rd *Reader) shutdown() {
	if !rd.stopped {
		rd.stopped = true
		close(rd.stop)
	}
}

// Close releases the reader's goroutines and buffers when it is abandoned
// before the end of the message. It does not close the source.
func (rd *Reader) Close() error {
	rd.shutdown()
	if rd.err == nil && !rd.done {
		rd.err = errors.New("read from a closed decrypting reader")
	}
	return nil
}

// --- parsing (the parser goroutine, or the caller for the first job) ---

// read appends n bytes of the message to j.raw, feeding the signature
// digest, and returns their offset. Large reads grow the buffer only as
// data arrives, so a header claiming huge frames cannot make us allocate
// ahead of input.
func (rd *Reader) read(j *decJob, n int, part partName) (int, error) {
	off := len(j.raw)
	end := off + n
	for len(j.raw) < end {
		// Read at most as much again as the job holds (1 MiB at least)
		// before growing: memory follows the data, not the claims.
		next := min(end, len(j.raw)+max(len(j.raw), 1<<20))
		if cap(j.raw) < next {
			nb := make([]byte, len(j.raw), max(next, 2*cap(j.raw), 256<<10))
			copy(nb, j.raw)
			j.raw = nb
		}
		b := j.raw[len(j.raw):next]
		if _, err := io.ReadFull(rd.r, b); err != nil {
			return 0, readErr(err, part.String())
		}
		if rd.digest != nil {
			rd.digest.Write(b)
		}
		j.raw = j.raw[:next]
	}
	return off, nil
}

// partName names the part of the message being read, formatted only when
// an error needs it.
type partName struct {
	what string
	seq  uint32
}

func (p partName) String() string {
	if p.seq == 0 {
		return p.what
	}
	return fmt.Sprintf("%s %d", p.what, p.seq)
}

func (rd *Reader) u32(j *decJob, part partName) (uint32, error) {
	off, err := rd.read(j, 4, part)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(j.raw[off:]), nil
}

// parse reads the frames of one job: whole frames until the job holds
// jobLen bytes of plaintext or the final frame. A structural failure is
// recorded in j.err with j.failAt at the frame it concerns, so that the
// frames before it can still be released once they authenticate.
func (rd *Reader) parse(j *decJob) {
	defer func() { j.failAt = len(j.frames) }()
	if !rd.h.Framed {
		j.err = rd.parseNonFramed(j)
		return
	}
	ptLen := 0
	for ptLen < rd.jobLen {
		f, err := rd.parseFrame(j)
		if err != nil {
			j.err = err
			return
		}
		f.ptOff = ptLen
		ptLen += f.ptLen
		j.frames = append(j.frames, f)
		if f.label == labelFinalFrame {
			if err := rd.finish(); err != nil {
				j.err = err
				j.frames = j.frames[:len(j.frames)-1] // withheld: the message failed its last checks
				j.last = false
				return
			}
			j.last = true
			return
		}
	}
}

// parseFrame reads the next frame into j.raw.
func (rd *Reader) parseFrame(j *decJob) (frameRef, error) {
	var f frameRef
	expected := rd.seq + 1
	part := partName{"frame", expected}
	seq, err := rd.u32(j, part)
	if err != nil {
		return f, err
	}
	final := seq == finalFrameMarker
	f.label = labelFrame
	if final {
		part = partName{"final frame", expected}
		f.label = labelFinalFrame
		if seq, err = rd.u32(j, part); err != nil {
			return f, err
		}
	}
	if seq != expected || expected == 0 {
		return f, tampered("frame %d carries sequence number %d (frames reordered, dropped or repeated)", expected, seq)
	}
	f.seq = seq
	if f.ivOff, err = rd.read(j, suite.IVLength, part); err != nil {
		return f, err
	}
	want := frameIV(rd.scratch[:0], seq)
	if !bytes.Equal(j.raw[f.ivOff:f.ivOff+suite.IVLength], want) {
		return f, tampered("%s has IV %x, want %x", part, j.raw[f.ivOff:f.ivOff+suite.IVLength], want)
	}
	length := rd.h.FrameLength
	if final {
		if length, err = rd.u32(j, part); err != nil {
			return f, err
		}
		if length > rd.h.FrameLength {
			return f, malformed("%s holds %d bytes, more than the frame length %d", part, length, rd.h.FrameLength)
		}
	}
	f.ptLen = int(length)
	f.ctLen = f.ptLen + suite.TagLength
	if f.ctOff, err = rd.read(j, f.ctLen, part); err != nil {
		return f, err
	}
	rd.seq = seq
	return f, nil
}

// parseNonFramed reads a legacy non-framed body, held whole in one job as
// it has a single tag.
func (rd *Reader) parseNonFramed(j *decJob) error {
	part := partName{what: "non-framed body"}
	var f frameRef
	var err error
	if f.ivOff, err = rd.read(j, suite.IVLength, part); err != nil {
		return err
	}
	want := frameIV(rd.scratch[:0], 1)
	if !bytes.Equal(j.raw[f.ivOff:f.ivOff+suite.IVLength], want) {
		return tampered("the non-framed body has IV %x, want %x", j.raw[f.ivOff:f.ivOff+suite.IVLength], want)
	}
	off, err := rd.read(j, 8, part)
	if err != nil {
		return err
	}
	length := binary.BigEndian.Uint64(j.raw[off:])
	if length > maxNonFramedLength {
		return malformed("non-framed body declares %d bytes, more than the %d allowed", length, uint64(maxNonFramedLength))
	}
	f.seq, f.label, f.ptLen = 1, labelSingleBlock, int(length)
	f.ctLen = f.ptLen + suite.TagLength
	if f.ctOff, err = rd.read(j, f.ctLen, part); err != nil {
		return err
	}
	if err := rd.finish(); err != nil {
		return err
	}
	j.frames = append(j.frames, f)
	j.last = true
	return nil
}

// finish verifies the signature footer of a signed message and that nothing
// follows the message.
func (rd *Reader) finish() error {
	if rd.pub != nil {
		sum := rd.digest.Sum(nil)
		rd.digest = nil // the footer is not signed
		sig, err := ReadFooter(rd.r)
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(rd.pub, sum, sig) {
			return tampered("the message signature does not verify")
		}
		return nil
	}
	return CheckEnd(rd.r)
}

// --- opening (a worker, or the caller) ---

// open authenticates and decrypts the frames of a job, up to the first
// that fails.
func (rd *Reader) open(j *decJob) {
	total := 0
	for _, f := range j.frames[:j.failAt] {
		total += f.ptLen
	}
	if cap(j.pt) < total {
		j.pt = make([]byte, 0, total)
	}
	j.pt = j.pt[:total]
	j.valid = total
	for i, f := range j.frames[:j.failAt] {
		j.iv = frameIV(j.iv, f.seq)
		j.aad = bodyAAD(j.aad, rd.h.MessageID, f.label, f.seq, uint64(f.ptLen))
		if _, err := rd.aead.Open(j.pt[f.ptOff:f.ptOff], j.iv, j.raw[f.ctOff:f.ctOff+f.ctLen], j.aad); err != nil {
			clear(j.pt[f.ptOff:])
			j.valid = f.ptOff
			j.failAt = i
			if f.label == labelSingleBlock {
				j.err = tampered("the authentication tag of the non-framed body does not verify")
			} else if f.label == labelFinalFrame {
				j.err = tampered("the authentication tag of final frame %d does not verify", f.seq)
			} else {
				j.err = tampered("the authentication tag of frame %d does not verify", f.seq)
			}
			j.last = false
			return
		}
	}
}

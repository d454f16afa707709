package format

import (
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

// defaultWorkers is the size of a pipeline's worker pool: one per CPU, or
// for a signed suite one fewer (at least one), so that the goroutine
// feeding the signature hash, which every byte must pass through in order,
// always finds a CPU free.
func defaultWorkers(signed bool) int {
	n := runtime.GOMAXPROCS(0)
	if signed {
		n--
	}
	return max(1, n)
}

// frameSlot is the size on the wire of a regular frame of n bytes of
// plaintext: sequence number, IV, ciphertext and tag.
func frameSlot(n int) int { return 4 + suite.IVLength + n + suite.TagLength }

// Reader decrypts a message body. One goroutine (the parser) reads the body
// straight from the source into job buffers, a job's worth of frames per
// read, and checks its structure; for a signed suite a second one (the
// hasher) feeds the signature hash and verifies the signature; a pool of
// workers opens the frames; the caller releases them in order. A frame's
// plaintext is released only after its tag verifies; the last plaintext
// (the final frame, or the whole of a non-framed body) only after the
// signature of a signed message verifies and the message is known to end
// there. Errors are sticky. A message that fits in one job is opened
// without any goroutine.
type Reader struct {
	src       source
	h         *Header
	aead      cipher.AEAD
	pub       *ecdsa.PublicKey
	digest    hash.Hash
	workers   int
	jobLen    int // plaintext per job, at least
	jobFrames int // regular frames per job
	maxFrame  int // the longest non-framed body accepted (0: any)

	seq  uint32 // the last frame parsed (parser)
	cur  *decJob
	off  int
	done bool
	err  error

	started bool
	pool    *jobPool[decJob]
	hashq   chan *decJob // parser → hasher, for signed suites
	work    chan *decJob // parser or hasher → workers
	order   chan *decJob // parser → caller
	stop    chan struct{}
	stopped bool
	scratch [12]byte
}

// source is the body's bytes: those already read after the header, then
// the underlying reader.
type source struct {
	buf []byte
	r   io.Reader
}

func (s *source) Read(p []byte) (int, error) {
	if len(s.buf) > 0 {
		n := copy(p, s.buf)
		s.buf = s.buf[n:]
		return n, nil
	}
	return s.r.Read(p)
}

// unread puts b back in front of the source (b is copied).
func (s *source) unread(b []byte) {
	if len(b) > 0 {
		s.buf = append(bytes.Clone(b), s.buf...)
	}
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
	raw    []byte // the job's bytes of the message, exactly
	pt     []byte
	frames []frameRef
	// failAt is the index of the first frame not to release (len(frames)
	// when all may be); err says why.
	failAt int
	err    error
	// valid is how many bytes of pt may be released.
	valid   int
	last    bool   // the message ends in this job, fully checked (but for sig)
	sig     []byte // the footer's signature, on the last job of a signed message
	ready   chan struct{}
	iv, aad []byte
}

// NewReader returns a Reader for the body that follows header h in src;
// rest holds the bytes of src already read past the header (what a
// bufio.Reader used for the header buffered), and is not modified. h must
// already have been verified with the key aead; pub is the verification key
// of a signed suite, nil otherwise. workers ≤ 0 means one per CPU.
// maxFrame, when positive, is the longest frame or non-framed body the
// reader holds in memory ([Limits.MaxFrame]): a longer frame length is
// refused here, a longer non-framed body when its length is read.
//
// Memory: at most a few jobs exist, each holding its raw bytes and
// plaintext, 2·max(frame length, 256 KiB) and a little more: 2·workers+2
// of them, fewer when that would pass 24 MiB in all, never fewer than two.
func NewReader(rest []byte, src io.Reader, h *Header, aead cipher.AEAD, pub *ecdsa.PublicKey, workers, maxFrame int) (*Reader, error) {
	if h.Suite.Signed() != (pub != nil) {
		return nil, errors.New("format: a verification key is needed exactly for signed suites")
	}
	if err := CheckFrameLength(h, maxFrame); err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = defaultWorkers(pub != nil)
	}
	rd := &Reader{src: source{buf: rest, r: src}, h: h, aead: aead, pub: pub, workers: workers, maxFrame: maxFrame, stop: make(chan struct{})}
	rd.jobLen = max(int(h.FrameLength), jobBytes)
	rd.jobFrames = 1
	if h.FrameLength > 0 {
		rd.jobFrames = (rd.jobLen + int(h.FrameLength) - 1) / int(h.FrameLength)
	}
	rd.pool = newJobPool[decJob](poolSize(workers, rd.jobLen), 1) // the first job is made by next
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
	if rd.started {
		rd.pool.put(j)
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
			rd.hash(j)
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

// start launches the parser, the hasher of a signed message and the
// workers, with first already parsed.
func (rd *Reader) start(first *decJob) {
	rd.started = true
	rd.work = make(chan *decJob, rd.pool.size())
	rd.order = make(chan *decJob, rd.pool.size())
	for range rd.workers {
		go func() {
			for j := range rd.work {
				rd.open(j)
				close(j.ready)
			}
		}()
	}
	next := rd.work // where the parser sends jobs
	if rd.digest != nil {
		rd.hashq = make(chan *decJob, rd.pool.size())
		next = rd.hashq
		go func() {
			defer close(rd.work)
			for j := range rd.hashq {
				rd.hash(j)
				rd.work <- j
			}
		}()
	}
	rd.order <- first
	next <- first
	go func() {
		defer close(next)
		defer close(rd.order)
		for {
			j := rd.getJob()
			if j == nil {
				return
			}
			rd.parse(j)
			// Read before handing j on: the hasher may change both (a
			// signature that fails).
			end := j.last || j.err != nil
			select {
			case rd.order <- j:
			case <-rd.stop:
				return
			}
			next <- j // never blocks: at most cap(pool) jobs exist
			if end {
				return
			}
		}
	}()
}

// getJob returns an empty job, or nil once the reader is stopped.
func (rd *Reader) getJob() *decJob {
	j := rd.pool.get(rd.stop)
	if j == nil {
		return nil
	}
	j.raw, j.pt, j.frames, j.sig = j.raw[:0], j.pt[:0], j.frames[:0], nil
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
		rd.err = errors.New("format: read from a closed decrypting reader")
	}
	return nil
}

// --- parsing (the parser goroutine, or the caller for the first job) ---

// fill reads from the source until j.raw holds end bytes. The end of the
// source is an error (ErrTruncated, naming part) only before atLeast
// bytes; the error is nil if fewer than end but at least atLeast bytes
// arrived. The buffer grows only as data arrives, so a header claiming huge
// frames cannot make us allocate ahead of input.
func (rd *Reader) fill(j *decJob, end, atLeast int, part partName) error {
	for len(j.raw) < end {
		// Read at most as much again as the job holds (1 MiB at least)
		// before growing: memory follows the data, not the claims.
		next := min(end, len(j.raw)+max(len(j.raw), 1<<20))
		if cap(j.raw) < next {
			size := max(next, min(end, 2*cap(j.raw)))
			if end-size < size/8 {
				size = end // close enough: one buffer, not two
			}
			nb := make([]byte, len(j.raw), size)
			copy(nb, j.raw)
			j.raw = nb
		}
		n, err := io.ReadFull(&rd.src, j.raw[len(j.raw):next])
		j.raw = j.raw[:len(j.raw)+n]
		if err != nil {
			if (err == io.EOF || err == io.ErrUnexpectedEOF) && len(j.raw) >= atLeast {
				return nil
			}
			return readErr(err, part.String())
		}
	}
	return nil
}

// need makes sure j.raw holds end bytes.
func (rd *Reader) need(j *decJob, end int, part partName) error {
	if len(j.raw) >= end {
		return nil
	}
	return rd.fill(j, end, end, part)
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

// finalHeadLen is the length of a final frame before its ciphertext:
// marker, sequence number, IV and content length.
const finalHeadLen = 4 + 4 + suite.IVLength + 4

// parse reads the frames of one job: whole frames until the job holds
// jobLen bytes of plaintext or the final frame. The bytes of a job's
// regular frames, and the start of the frame after them, are read with one
// fill; what was read past the end of the job goes back to the source. A
// structural failure is recorded in j.err with j.failAt at the frame it
// concerns, so that the frames before it can still be released once they
// authenticate.
//
// The last frame that carries plaintext is released only once the end of
// the message has been read and checked (for a signed message, once the
// signature verifies). When that frame would be the last of a job, because
// the final frame that follows is empty (a plaintext that is an exact
// multiple of the frame length), the job also takes the final frame; a
// frame followed by one that cannot be parsed is withheld with the error.
func (rd *Reader) parse(j *decJob) {
	defer func() { j.failAt = len(j.frames) }()
	if !rd.h.Framed {
		j.err = rd.parseNonFramed(j)
		return
	}
	bulk := rd.jobFrames*frameSlot(int(rd.h.FrameLength)) + finalHeadLen
	if l, ok := rd.src.r.(interface{ Len() int }); ok {
		// A source that knows its size (bytes.Reader, say): a small message
		// gets a buffer of its size, not a job's.
		bulk = min(bulk, len(rd.src.buf)+l.Len())
	}
	if err := rd.fill(j, bulk, 0, partName{"frame", rd.seq + 1}); err != nil {
		j.err = err
		return
	}
	off, ptLen := 0, 0
	for ptLen < rd.jobLen || rd.emptyFinalAt(j, off) {
		f, end, err := rd.parseFrame(j, off)
		if err != nil {
			// The frame that broke off may have been the final one, and
			// the frame before it the last with data.
			j.err = err
			withholdLast(j)
			return
		}
		off = end
		f.ptOff = ptLen
		ptLen += f.ptLen
		j.frames = append(j.frames, f)
		if f.label == labelFinalFrame {
			rd.src.unread(j.raw[off:])
			j.raw = j.raw[:off]
			if err := rd.finish(j); err != nil {
				j.err = err
				withholdLast(j) // the message failed its last checks
				return
			}
			j.last = true
			return
		}
	}
	rd.src.unread(j.raw[off:])
	j.raw = j.raw[:off]
}

// emptyFinalAt reports whether what follows off in j.raw may be an empty
// final frame: one whose marker and content length say so, or one cut
// short before they can be read (the frame at off is then parsed into the
// job, and its truncation withholds the frame before it).
func (rd *Reader) emptyFinalAt(j *decJob, off int) bool {
	if len(j.raw) < off+finalHeadLen {
		// fill read a job's bulk and a final frame's head, or up to the
		// end of the source: this is the end, or the body broke off.
		if err := rd.fill(j, off+finalHeadLen, off, partName{"frame", rd.seq + 1}); err != nil {
			return true // parseFrame meets the error again and reports it
		}
		if len(j.raw) < off+finalHeadLen {
			return true
		}
	}
	b := j.raw[off:]
	return binary.BigEndian.Uint32(b) == finalFrameMarker && binary.BigEndian.Uint32(b[finalHeadLen-4:]) == 0
}

// withholdLast drops from j the frames that must wait for the end of the
// message: its last frame and, when that frame is empty, the frame before
// it, the last that carries plaintext.
func withholdLast(j *decJob) {
	n := len(j.frames) - 1
	if n > 0 && j.frames[n].ptLen == 0 {
		n--
	}
	j.frames = j.frames[:max(n, 0)]
}

// parseFrame checks the frame at off in j.raw, reading more of it if
// needed, and returns it with the offset of its end.
func (rd *Reader) parseFrame(j *decJob, off int) (frameRef, int, error) {
	var f frameRef
	expected := rd.seq + 1
	part := partName{"frame", expected}
	if err := rd.need(j, off+4, part); err != nil {
		return f, 0, err
	}
	seq := binary.BigEndian.Uint32(j.raw[off:])
	off += 4
	final := seq == finalFrameMarker
	f.label = labelFrame
	if final {
		part = partName{"final frame", expected}
		f.label = labelFinalFrame
		if err := rd.need(j, off+4, part); err != nil {
			return f, 0, err
		}
		seq = binary.BigEndian.Uint32(j.raw[off:])
		off += 4
	}
	if seq != expected || expected == 0 {
		return f, 0, tampered("frame %d carries sequence number %d (frames reordered, dropped or repeated)", expected, seq)
	}
	f.seq = seq
	if err := rd.need(j, off+suite.IVLength, part); err != nil {
		return f, 0, err
	}
	f.ivOff = off
	off += suite.IVLength
	want := frameIV(rd.scratch[:0], seq)
	if iv := j.raw[f.ivOff:off]; !bytes.Equal(iv, want) {
		return f, 0, tampered("%s has IV %x, want %x", part, iv, want)
	}
	length := rd.h.FrameLength
	if final {
		if err := rd.need(j, off+4, part); err != nil {
			return f, 0, err
		}
		length = binary.BigEndian.Uint32(j.raw[off:])
		off += 4
		if length > rd.h.FrameLength {
			return f, 0, malformed("%s holds %d bytes, more than the frame length %d", part, length, rd.h.FrameLength)
		}
	}
	f.ptLen = int(length)
	f.ctLen = f.ptLen + suite.TagLength
	if err := rd.need(j, off+f.ctLen, part); err != nil {
		return f, 0, err
	}
	f.ctOff = off
	rd.seq = seq
	return f, off + f.ctLen, nil
}

// parseNonFramed reads a legacy non-framed body, held whole in one job as
// it has a single tag.
func (rd *Reader) parseNonFramed(j *decJob) error {
	part := partName{what: "non-framed body"}
	var f frameRef
	if err := rd.need(j, suite.IVLength+8, part); err != nil {
		return err
	}
	want := frameIV(rd.scratch[:0], 1)
	if iv := j.raw[:suite.IVLength]; !bytes.Equal(iv, want) {
		return tampered("the non-framed body has IV %x, want %x", iv, want)
	}
	length := binary.BigEndian.Uint64(j.raw[suite.IVLength:])
	if length > maxNonFramedLength {
		return malformed("non-framed body declares %d bytes, more than the %d allowed", length, uint64(maxNonFramedLength))
	}
	if rd.maxFrame > 0 && length > uint64(rd.maxFrame) {
		return fmt.Errorf("%w: the non-framed body holds %d bytes, more than the %d a reader may hold before its tag verifies", ErrTooLarge, length, rd.maxFrame)
	}
	f.seq, f.label, f.ptLen = 1, labelSingleBlock, int(length)
	f.ctOff, f.ctLen = suite.IVLength+8, f.ptLen+suite.TagLength
	if err := rd.need(j, f.ctOff+f.ctLen, part); err != nil {
		return err
	}
	if err := rd.finish(j); err != nil {
		return err
	}
	j.frames = append(j.frames, f)
	j.last = true
	return nil
}

// finish reads the signature footer of a signed message into j, and checks
// that nothing follows the message. The signature is verified by hash.
func (rd *Reader) finish(j *decJob) error {
	if rd.pub != nil {
		sig, err := ReadFooter(&rd.src)
		if err != nil {
			return err
		}
		j.sig = sig
		return nil
	}
	return CheckEnd(&rd.src)
}

// CheckFrameLength refuses a framed header whose frame length is above
// maxFrame ([Limits.MaxFrame]; 0 means no limit): a reader would have to
// hold such frames in memory.
func CheckFrameLength(h *Header, maxFrame int) error {
	if maxFrame > 0 && h.Framed && int64(h.FrameLength) > int64(maxFrame) {
		return fmt.Errorf("%w: the message has %d-byte frames, more than the %d a reader may hold before their tag verifies", ErrTooLarge, h.FrameLength, maxFrame)
	}
	return nil
}

// --- hashing (the hasher goroutine, or the caller) ---

// hash feeds a job's bytes to the signature digest and, on the last job,
// verifies the signature: if it fails, the final frame is withheld.
func (rd *Reader) hash(j *decJob) {
	if rd.digest == nil {
		return
	}
	rd.digest.Write(j.raw)
	if !j.last {
		return
	}
	sum := rd.digest.Sum(nil)
	rd.digest = nil // the footer is not signed
	if !ecdsa.VerifyASN1(rd.pub, sum, j.sig) {
		j.err = tampered("the message signature does not verify")
		withholdLast(j)
		j.failAt = len(j.frames)
		j.last = false
	}
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

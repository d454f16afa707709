package awsapi

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ChainError says where an audit log's chain breaks.
type ChainError struct {
	Line   int // 1-based
	Reason string
}

func (e *ChainError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// AuditMark is a log's high-water mark as the keystore keeps it
// ([AuditMarks]).
type AuditMark struct {
	LogID string
	Seq   int64
	MAC   []byte
}

// AuditGap is a run of lines that a start record says were cut from the
// end of the log before the server started again.
type AuditGap struct {
	Line          int   // the start record's line
	From, Through int64 // the sequence numbers missing
}

// AuditReport is what [VerifyAuditLog] found in a log.
type AuditReport struct {
	Lines             int
	FirstSeq, LastSeq int64
	// LogID is the log's id, from its last start record; "" for a log
	// with none (written by a server before start records).
	LogID string
	// ContinuesFrom is the sequence number the log's first line
	// continues from: the lines up to it are not in this input.
	ContinuesFrom int64
	// Gaps are the lines start records say were cut.
	Gaps []AuditGap
	// Starts, Resumes, Summaries and Torn count the start, resume and
	// summary records, and the torn lines the start records say were cut.
	Starts, Resumes, Summaries, Torn int
	// Marks reports whether marks were given; Mark is LogID's.
	Marks bool
	Mark  *AuditMark
	// Marked: the log's last start record says its server kept a mark.
	Marked bool
	// Cut is how many lines at least were cut from the end: the mark is
	// past the last line.
	Cut int64
	// MarkMismatch: the line at the mark is not the line marked.
	MarkMismatch bool
}

// Problems lists, in words, what the report shows missing: nothing for a
// complete log.
func (r *AuditReport) Problems() []string {
	var p []string
	if r.ContinuesFrom > 0 {
		p = append(p, fmt.Sprintf("the log begins at seq %d, continuing the chain from seq %d: %d earlier lines are not in it (moved to another file, or deleted)",
			r.FirstSeq, r.ContinuesFrom, r.ContinuesFrom))
	}
	for _, g := range r.Gaps {
		p = append(p, fmt.Sprintf("%d lines (seq %d to %d) are missing before line %d: they were cut from the end of the log before the server started again (its start record says so)",
			g.Through-g.From+1, g.From, g.Through, g.Line))
	}
	if r.Cut > 0 {
		p = append(p, fmt.Sprintf("at least %d lines were cut from the end: the keystore's high-water mark for this log is seq %d, the log ends at seq %d",
			r.Cut, r.Mark.Seq, r.LastSeq))
	}
	if r.Marks && r.Marked && r.Mark == nil {
		p = append(p, fmt.Sprintf("the keystore holds no high-water mark for log %s, though its server kept one: this is not the log's keystore, or its marks were removed (lines cut from the end cannot be counted)", r.LogID))
	}
	if r.MarkMismatch {
		p = append(p, fmt.Sprintf("the line at the keystore's high-water mark (seq %d) is not the line the server recorded there", r.Mark.Seq))
	}
	return p
}

// Notes lists, in words, what bounds the check and what the log records of
// the server's own troubles.
func (r *AuditReport) Notes() []string {
	var n []string
	switch {
	case r.LogID == "":
		n = append(n, "the log has no start record (written by a server before them): lines cut from its end cannot be detected")
	case !r.Marks:
	case r.Mark == nil:
		if !r.Marked { // else a problem
			n = append(n, fmt.Sprintf("the keystore holds no high-water mark for log %s: lines cut from its end cannot be detected", r.LogID))
		}
	case r.Cut == 0:
		n = append(n, fmt.Sprintf("log %s, seq %d to %d: its end is at or past the keystore's high-water mark (seq %d)", r.LogID, r.FirstSeq, r.LastSeq, r.Mark.Seq))
	}
	if r.Torn > 0 {
		n = append(n, fmt.Sprintf("%d torn lines (crashes while writing) were cut by the server, as its start records say", r.Torn))
	}
	if r.Resumes > 0 {
		n = append(n, fmt.Sprintf("the log could not be written %d times; its resume records say for how long and which requests were refused", r.Resumes))
	}
	return n
}

// maxDecodedLine is the longest line decoded whole; longer lines (requests
// from servers before lines were bounded) are checked by their mac and
// sequence number, read as they stream by.
const maxDecodedLine = 1 << 20

// VerifyAudit checks an audit log's chain with key and returns the number
// of lines, or a *ChainError naming the first line that breaks it.
func VerifyAudit(r io.Reader, key []byte) (int, error) {
	rep, err := VerifyAuditLog(r, key, nil)
	return rep.Lines, err
}

// VerifyAuditLog checks an audit log's chain with key, line by line (of
// any length), and reports what its start records say is missing. marks,
// when not nil, are the high-water marks of the keystore, read before the
// log (a mark read after could be past lines written meanwhile): the
// mark of the log's id tells lines cut from its end. A chain that breaks
// is a *ChainError naming the first line that breaks it; the report holds
// what was read until then.
func VerifyAuditLog(r io.Reader, key []byte, marks []AuditMark) (*AuditReport, error) {
	rep := &AuditReport{Marks: marks != nil}
	macAt := map[int64][]byte{} // the mac of the lines at marks
	for _, m := range marks {
		macAt[m.Seq] = nil
	}
	br := bufio.NewReaderSize(r, 64<<10)
	h := hmac.New(sha256.New, key)
	prev := make([]byte, 32)
	var lastSeq int64
	var buf []byte
	for n := 1; ; n++ {
		// Read a line: whole up to maxDecodedLine, else hashed as it
		// comes, keeping its head (for the seq) and its end (the mac).
		buf = buf[:0]
		var head []byte
		long, complete := false, false
		total := 0
		for !complete {
			chunk, err := br.ReadSlice('\n')
			total += len(chunk)
			if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
				chunk, complete = chunk[:len(chunk)-1], true
			}
			buf = append(buf, chunk...)
			if !long && len(buf) > maxDecodedLine {
				long, head = true, bytes.Clone(buf[:32])
				h.Reset()
				h.Write(prev)
			}
			if long && len(buf) > 2*macSuffixLen {
				k := len(buf) - macSuffixLen
				h.Write(buf[:k])
				buf = buf[:copy(buf, buf[k:])]
			}
			if err == io.EOF {
				break
			}
			if err != nil && err != bufio.ErrBufferFull {
				rep.Lines = n - 1
				return rep, err
			}
		}
		if total == 0 {
			break // the end
		}
		rep.Lines = n
		if !complete {
			return rep, &ChainError{n, "the last line is incomplete: a crash while writing it, or the file was cut (a server opening the log cuts it and records what it cut)"}
		}
		if len(buf) < macSuffixLen {
			return rep, &ChainError{n, "no mac at the end of the line (the line was edited or cut)"}
		}
		mac, ok := parseMACSuffix(buf[len(buf)-macSuffixLen:])
		if !ok {
			return rep, &ChainError{n, "no mac at the end of the line (the line was edited or cut)"}
		}
		rest := buf[:len(buf)-macSuffixLen]
		var rec struct {
			Seq     int64           `json:"seq"`
			Type    string          `json:"type"`
			LogID   string          `json:"logId"`
			PrevSeq int64           `json:"prevSeq"`
			PrevMAC string          `json:"prevMac"`
			Missing int64           `json:"missing"`
			Torn    json.RawMessage `json:"torn"`
			// HighWater is present when the server kept marks.
			HighWater *int64 `json:"highWater"`
		}
		var jsonErr error
		if long {
			h.Write(rest)
			seq, ok := parseSeq(head)
			if !ok {
				jsonErr = errors.New(`it does not begin with {"seq":N`)
			}
			rec.Seq = seq
		} else {
			jsonErr = json.Unmarshal(append(rest[:len(rest):len(rest)], '}'), &rec)
			if n == 1 && jsonErr == nil && rec.Type == "start" {
				if p, err := hex.DecodeString(rec.PrevMAC); err == nil && len(p) == 32 {
					prev = p // a log that continues a chain begun elsewhere
				}
			}
			h.Reset()
			h.Write(prev)
			h.Write(rest)
		}
		if !hmac.Equal(mac, h.Sum(nil)) {
			return rep, &ChainError{n, "the mac does not match: this line was edited, or a line before it was edited, inserted or deleted (or the audit key is not this log's)"}
		}
		if jsonErr != nil {
			return rep, &ChainError{n, "not a JSON audit line: " + jsonErr.Error()}
		}
		seq := rec.Seq
		switch {
		case rec.Type == "start":
			if n > 1 && rec.PrevMAC != hex.EncodeToString(prev) {
				return rep, &ChainError{n, "the start record's prevMac is not the mac of the line before it"}
			}
			if n > 1 && rec.PrevSeq != lastSeq {
				return rep, &ChainError{n, fmt.Sprintf("the start record says it follows seq %d, not %d", rec.PrevSeq, lastSeq)}
			}
			if rec.Missing < 0 || seq != rec.PrevSeq+rec.Missing+1 {
				return rep, &ChainError{n, fmt.Sprintf("the start record's seq %d is not %d + %d missing + 1", seq, rec.PrevSeq, rec.Missing)}
			}
			if n == 1 {
				rep.ContinuesFrom = rec.PrevSeq
			}
			if rec.Missing > 0 {
				rep.Gaps = append(rep.Gaps, AuditGap{Line: n, From: rec.PrevSeq + 1, Through: rec.PrevSeq + rec.Missing})
			}
			rep.Starts++
			rep.LogID, rep.Marked = rec.LogID, rec.HighWater != nil
			if len(rec.Torn) > 0 && string(rec.Torn) != "null" {
				rep.Torn++
			}
		case n > 1 && seq != lastSeq+1:
			return rep, &ChainError{n, fmt.Sprintf("seq %d follows %d", seq, lastSeq)}
		case rec.Type == "resume":
			rep.Resumes++
		case rec.Type == "unauthenticated":
			rep.Summaries++
		}
		if n == 1 {
			rep.FirstSeq = seq
		}
		if _, ok := macAt[seq]; ok {
			macAt[seq] = mac
		}
		lastSeq, prev = seq, mac
	}
	rep.LastSeq = lastSeq
	for i := range marks {
		if m := &marks[i]; rep.LogID != "" && m.LogID == rep.LogID {
			rep.Mark = m
			if m.Seq > lastSeq {
				rep.Cut = m.Seq - lastSeq
			} else if mac := macAt[m.Seq]; mac != nil && !hmac.Equal(mac, m.MAC) {
				rep.MarkMismatch = true
			}
		}
	}
	return rep, nil
}

package format

import (
	"encoding/binary"
)

// Body AAD labels.
const (
	labelFrame       = "AWSKMSEncryptionClient Frame"
	labelFinalFrame  = "AWSKMSEncryptionClient Final Frame"
	labelSingleBlock = "AWSKMSEncryptionClient Single Block"
)

// finalFrameMarker opens a final frame in place of a sequence number.
const finalFrameMarker = 0xFFFFFFFF

// MaxFrameLength is the largest frame length a header can declare.
const MaxFrameLength = 1<<32 - 1

// maxNonFramedLength is the largest content a non-framed body may hold, as
// the ESDK specification bounds it (AES-GCM's limit for one IV).
const maxNonFramedLength = 1<<36 - 32

// bodyAAD returns the additional data authenticated with a frame:
// message ID, label, sequence number and content length.
func bodyAAD(dst, messageID []byte, label string, seq uint32, length uint64) []byte {
	dst = append(dst[:0], messageID...)
	dst = append(dst, label...)
	dst = binary.BigEndian.AppendUint32(dst, seq)
	return binary.BigEndian.AppendUint64(dst, length)
}

// frameIV returns the IV of frame seq: eight zero bytes and the sequence
// number.
func frameIV(dst []byte, seq uint32) []byte {
	dst = append(dst[:0], 0, 0, 0, 0, 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(dst, seq)
}

package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// maxContextBytes is the largest serialized encryption context a header can
// hold: its length is stored in two bytes.
const maxContextBytes = 1<<16 - 1

// MarshalContext returns the canonical serialization of an encryption
// context: the pair count, then each key and value with a two-byte length
// prefix, ordered by the keys' UTF-8 bytes. An empty context serializes to no
// bytes at all. Keys and values must be valid UTF-8.
func MarshalContext(ec map[string]string) ([]byte, error) {
	if len(ec) == 0 {
		return nil, nil
	}
	if len(ec) > 1<<16-1 {
		return nil, errors.New("format: encryption context has more than 65535 pairs")
	}
	keys := make([]string, 0, len(ec))
	size := 2
	for k, v := range ec {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("format: encryption context key %q or its value is not valid UTF-8", k)
		}
		if len(k) > 1<<16-1 || len(v) > 1<<16-1 {
			return nil, fmt.Errorf("format: encryption context key %q or its value is longer than 65535 bytes", k)
		}
		keys = append(keys, k)
		size += 4 + len(k) + len(v)
	}
	if size > maxContextBytes {
		return nil, fmt.Errorf("format: encryption context serializes to %d bytes, more than the 65535 a message can hold", size)
	}
	slices.Sort(keys) // Go compares strings by their bytes, which is UTF-8 order.
	b := make([]byte, 0, size)
	b = binary.BigEndian.AppendUint16(b, uint16(len(keys)))
	for _, k := range keys {
		b = appendField16(b, []byte(k))
		b = appendField16(b, []byte(ec[k]))
	}
	return b, nil
}

// UnmarshalContext parses a serialized encryption context. It rejects
// duplicate keys, invalid UTF-8, trailing bytes and a zero pair count in a
// non-empty serialization.
func UnmarshalContext(b []byte) (map[string]string, error) {
	ec := make(map[string]string)
	if len(b) == 0 {
		return ec, nil
	}
	if len(b) < 2 {
		return nil, malformed("encryption context is %d bytes, too short for its pair count", len(b))
	}
	n := int(binary.BigEndian.Uint16(b))
	if n == 0 {
		return nil, malformed("encryption context of %d bytes declares zero pairs", len(b))
	}
	rest := b[2:]
	for i := range n {
		var k, v []byte
		var ok bool
		if k, rest, ok = cutField16(rest); !ok {
			return nil, malformed("encryption context pair %d of %d: key overruns the context", i+1, n)
		}
		if v, rest, ok = cutField16(rest); !ok {
			return nil, malformed("encryption context pair %d of %d: value overruns the context", i+1, n)
		}
		if !utf8.Valid(k) || !utf8.Valid(v) {
			return nil, malformed("encryption context pair %d: not valid UTF-8", i+1)
		}
		if _, dup := ec[string(k)]; dup {
			return nil, malformed("encryption context key %q appears twice", k)
		}
		ec[string(k)] = string(v)
	}
	if len(rest) != 0 {
		return nil, malformed("encryption context has %d bytes after its %d pairs", len(rest), n)
	}
	return ec, nil
}

func appendField16(b, field []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(field)))
	return append(b, field...)
}

func cutField16(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, b, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, b, false
	}
	return b[2 : 2+n], b[2+n:], true
}

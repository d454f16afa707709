package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// node is a JSON value of a policy document, with its object members in
// document order (encoding/json's maps would lose the order and, worse,
// keep only the last of two members with the same name).
type node struct {
	kind nodeKind
	str  string // a string; a number's literal; "true" or "false"
	keys []string
	vals []*node // an object's member values, or an array's elements
}

type nodeKind uint8

const (
	jsonObject nodeKind = iota
	jsonArray
	jsonString
	jsonNumber
	jsonBool
	jsonNull
)

func (k nodeKind) String() string {
	return [...]string{"an object", "an array", "a string", "a number", "a boolean", "null"}[k]
}

// maxDepth bounds the nesting of a document: a valid policy nests five
// deep (Statement, a statement, Condition, an operator, a key's values).
const maxDepth = 8

// readDocument checks doc's characters and parses it into a tree, refusing
// duplicate members, nesting deeper than maxDepth, and anything after the
// document.
func readDocument(doc string) (*node, error) {
	if err := checkChars(doc); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	n, err := readValue(dec, nil, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{Reason: "more than one JSON value in the document"}
	}
	return n, nil
}

func readValue(dec *json.Decoder, p *path, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, errAt(p, fmt.Sprintf("nested more than %d deep", maxDepth))
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(dec, err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: jsonObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, syntaxError(dec, err)
				}
				k := kt.(string) // the decoder gives only strings as member names
				kp := p.key(k)
				if err := checkString(kp, k); err != nil {
					return nil, err
				}
				for _, seen := range n.keys {
					if seen == k {
						return nil, errAt(kp, "appears twice (each element appears once)")
					}
				}
				v, err := readValue(dec, kp, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxError(dec, err)
			}
			return n, nil
		case '[':
			n := &node{kind: jsonArray}
			for i := 0; dec.More(); i++ {
				v, err := readValue(dec, p.at(i), depth+1)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxError(dec, err)
			}
			return n, nil
		}
	case string:
		if err := checkString(p, t); err != nil {
			return nil, err
		}
		return &node{kind: jsonString, str: t}, nil
	case json.Number:
		return &node{kind: jsonNumber, str: t.String()}, nil
	case bool:
		if t {
			return &node{kind: jsonBool, str: "true"}, nil
		}
		return &node{kind: jsonBool, str: "false"}, nil
	case nil:
		return &node{kind: jsonNull}, nil
	}
	return nil, errAt(p, "unexpected JSON token") // unreachable: the decoder checks the grammar
}

func syntaxError(dec *json.Decoder, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Reason: "not a complete JSON document"}
	}
	return &Error{Reason: fmt.Sprintf("not valid JSON (near byte %d): %v", dec.InputOffset(), err)}
}

// allowedRune reports whether a policy document may hold r: IAM and KMS
// allow tab, line feed, carriage return and U+0020 to U+00FF.
func allowedRune(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xff
}

// checkChars refuses a document that is not UTF-8 or holds a character a
// policy may not hold.
func checkChars(doc string) error {
	for i, r := range doc {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(doc[i:]); n == 1 {
				return &Error{Reason: fmt.Sprintf("byte %d is not UTF-8", i)}
			}
		}
		if !allowedRune(r) {
			return &Error{Reason: fmt.Sprintf("character %U at byte %d is not allowed in a policy (only tab, line feed, carriage return and U+0020 to U+00FF are)", r, i)}
		}
	}
	return nil
}

// checkString applies checkChars's rule to a decoded string, which JSON
// escapes could otherwise fill with any character.
func checkString(p *path, s string) error {
	for _, r := range s {
		if !allowedRune(r) {
			return errAt(p, fmt.Sprintf("holds character %U, which a policy may not hold", r))
		}
	}
	return nil
}

package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// tri is the outcome of a test that a request may leave undecided: an
// encryption context with two keys that differ only in case (both match a
// case-insensitive kms:EncryptionContext:KEY), or a value a numeric, date,
// boolean or IP operator cannot read. An Allow statement applies only when
// every test says yes; a Deny statement applies unless a test says no. So an
// undecided request never gains an Allow nor escapes a Deny.
type tri uint8

const (
	no tri = iota
	yes
	unknown
)

func (t tri) not() tri {
	switch t {
	case yes:
		return no
	case no:
		return yes
	}
	return unknown
}

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

// or and and are Kleene's three-valued disjunction and conjunction.
func or(a, b tri) tri {
	if a == yes || b == yes {
		return yes
	}
	if a == unknown || b == unknown {
		return unknown
	}
	return no
}

func and(a, b tri) tri {
	if a == no || b == no {
		return no
	}
	if a == unknown || b == unknown {
		return unknown
	}
	return yes
}

// wildMatch reports whether s matches pattern, where * matches any run of
// characters (none included) and ? exactly one. With fold, pattern is lower
// case and s is compared ignoring ASCII case (action names are ASCII).
func wildMatch(pattern, s string, fold bool) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(pattern) {
			switch c := pattern[pi]; c {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[si:])
				pi, si = pi+1, si+n
				continue
			default:
				b := s[si]
				if fold && 'A' <= b && b <= 'Z' {
					b += 'a' - 'A'
				}
				if b == c {
					pi, si = pi+1, si+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		pi, si = starP+1, starS
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

type segKind uint8

const (
	segLit  segKind = iota // literal text
	segStar                // * (a wildcard)
	segOne                 // ? (a wildcard)
	segVar                 // a policy variable, ${key} or ${key, 'default'}
)

// seg is a piece of a pattern that holds policy variables or the escapes
// ${*}, ${?} and ${$}.
type seg struct {
	kind segKind
	lit  string
	v    *variable
}

// variable is a policy variable: the value of a single-valued condition
// key, or def when the request lacks the key and the variable has one.
type variable struct {
	key    keyRef
	def    string
	hasDef bool
}

// glob is a string a condition value or an ARN part is compared with:
// literally, or with the wildcards * and ? (wild). Text without variables
// or escapes is kept as it is; other text is split into segs.
type glob struct {
	text  string
	segs  []seg
	wild  bool // * and ? in text or segs are wildcards
	plain bool // no wildcard in text: compare for equality
}

// maxSegs is how many pieces a pattern with variables may have before its
// match allocates.
const maxSegs = 16

// match compares s with g: literally (ignoring case with fold) or as a
// wildcard pattern. Variables are read from st; a variable the request
// lacks (and has no default) matches nothing, as AWS documents.
func (g *glob) match(s string, fold bool, st *evalState) tri {
	if g.segs == nil {
		switch {
		case g.plain && fold:
			return triOf(strings.EqualFold(s, g.text))
		case g.plain:
			return triOf(s == g.text)
		}
		return triOf(wildMatch(g.text, s, false))
	}
	var buf [maxSegs]seg
	rs := buf[:0]
	for _, sg := range g.segs {
		if sg.kind == segVar {
			v, t := st.variable(sg.v)
			if t != yes {
				return t
			}
			sg = seg{kind: segLit, lit: v}
		}
		rs = append(rs, sg)
	}
	if g.wild {
		return triOf(matchSegs(rs, s))
	}
	for _, sg := range rs {
		var ok bool
		if fold {
			s, ok = cutPrefixFold(s, sg.lit)
		} else {
			s, ok = strings.CutPrefix(s, sg.lit)
		}
		if !ok {
			return no
		}
	}
	return triOf(s == "")
}

// matchSegs is wildMatch over pieces, whose literal text holds no
// wildcards: so that a variable's value or an escape such as ${*} is taken
// literally.
func matchSegs(segs []seg, s string) bool {
	pi, po, si := 0, 0, 0 // piece, offset in a literal piece, offset in s
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(segs) {
			sg := &segs[pi]
			switch sg.kind {
			case segStar:
				starP, starS = pi, si
				pi, po = pi+1, 0
				continue
			case segOne:
				_, n := utf8.DecodeRuneInString(s[si:])
				pi, si = pi+1, si+n
				continue
			case segLit:
				if po == len(sg.lit) {
					pi, po = pi+1, 0
					continue
				}
				if s[si] == sg.lit[po] {
					po, si = po+1, si+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		pi, po, si = starP+1, 0, starS
	}
	for ; pi < len(segs); pi, po = pi+1, 0 {
		sg := &segs[pi]
		if sg.kind != segStar && (sg.kind != segLit || po != len(sg.lit)) {
			return false
		}
	}
	return true
}

// cutPrefixFold is strings.CutPrefix ignoring case as strings.EqualFold
// does (Unicode simple folding).
func cutPrefixFold(s, prefix string) (string, bool) {
	for prefix != "" {
		if s == "" {
			return "", false
		}
		r1, n1 := utf8.DecodeRuneInString(prefix)
		r2, n2 := utf8.DecodeRuneInString(s)
		if r1 != r2 && !foldsTo(r1, r2) {
			return "", false
		}
		prefix, s = prefix[n1:], s[n2:]
	}
	return s, true
}

// foldsTo reports whether b is in a's case-folding orbit.
func foldsTo(a, b rune) bool {
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// splitARN cuts an ARN into its six colon-separated parts; the last keeps
// any further colons. ok is false for fewer than six parts.
func splitARN(s string) (parts [6]string, ok bool) {
	for i := range 5 {
		j := strings.IndexByte(s, ':')
		if j < 0 {
			return parts, false
		}
		parts[i], s = s[:j], s[j+1:]
	}
	parts[5] = s
	return parts, true
}

// arnPattern is an ARN with wildcards, matched part by part: each of the
// six colon-separated parts separately, as IAM matches Resource entries and
// the Arn condition operators. "*" alone matches anything.
type arnPattern struct {
	any   bool
	parts [6]glob
}

func (a *arnPattern) match(s string, st *evalState) tri {
	if a.any {
		return yes
	}
	parts, ok := splitARN(s)
	if !ok {
		return no
	}
	r := yes
	for i := range parts {
		switch a.parts[i].match(parts[i], false, st) {
		case no:
			return no
		case unknown:
			r = unknown
		}
	}
	return r
}

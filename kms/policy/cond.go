package policy

import (
	"net/netip"
	"strings"
	"time"
)

type family uint8

const (
	famString family = iota
	famNumeric
	famDate
	famBool
	famIP
	famArn
	famNull
)

type cmpKind uint8

const (
	cmpEq cmpKind = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

// opDef is a condition operator (without set qualifier or IfExists). A
// negated operator is its positive twin's result inverted: it holds when
// the value matches none of the policy's values.
type opDef struct {
	name    string
	family  family
	cmp     cmpKind
	negated bool
	fold    bool // IgnoreCase
	wild    bool // * and ? are wildcards
}

var opDefs = []opDef{
	{name: "StringEquals"},
	{name: "StringNotEquals", negated: true},
	{name: "StringEqualsIgnoreCase", fold: true},
	{name: "StringNotEqualsIgnoreCase", fold: true, negated: true},
	{name: "StringLike", wild: true},
	{name: "StringNotLike", wild: true, negated: true},
	{name: "NumericEquals", family: famNumeric},
	{name: "NumericNotEquals", family: famNumeric, negated: true},
	{name: "NumericLessThan", family: famNumeric, cmp: cmpLt},
	{name: "NumericLessThanEquals", family: famNumeric, cmp: cmpLe},
	{name: "NumericGreaterThan", family: famNumeric, cmp: cmpGt},
	{name: "NumericGreaterThanEquals", family: famNumeric, cmp: cmpGe},
	{name: "DateEquals", family: famDate},
	{name: "DateNotEquals", family: famDate, negated: true},
	{name: "DateLessThan", family: famDate, cmp: cmpLt},
	{name: "DateLessThanEquals", family: famDate, cmp: cmpLe},
	{name: "DateGreaterThan", family: famDate, cmp: cmpGt},
	{name: "DateGreaterThanEquals", family: famDate, cmp: cmpGe},
	{name: "Bool", family: famBool},
	{name: "IpAddress", family: famIP},
	{name: "NotIpAddress", family: famIP, negated: true},
	{name: "ArnEquals", family: famArn, wild: true},
	{name: "ArnLike", family: famArn, wild: true},
	{name: "ArnNotEquals", family: famArn, wild: true, negated: true},
	{name: "ArnNotLike", family: famArn, wild: true, negated: true},
	{name: "Null", family: famNull},
}

func lookupOp(name string) *opDef {
	for i := range opDefs {
		if opDefs[i].name == name {
			return &opDefs[i]
		}
	}
	return nil
}

type setOp uint8

const (
	setNone setOp = iota
	setAny        // ForAnyValue:
	setAll        // ForAllValues:
)

// cond is one condition: an operator, a key, and the policy's values for it.
type cond struct {
	op       *opDef
	set      setOp
	ifExists bool
	key      keyRef

	globs    []glob // String…
	arns     []arnPattern
	nums     []float64
	times    []time.Time
	bools    []bool // Bool, and Null (true: the key is absent)
	prefixes []netip.Prefix
}

// eval tests the condition against the request.
func (c *cond) eval(st *evalState) tri {
	if c.op.family == famNull {
		present := st.each(&c.key, func(cval) {}) > 0
		for _, absent := range c.bools {
			if absent != present {
				return yes
			}
		}
		return no
	}
	res, n := no, 0
	st.each(&c.key, func(v cval) {
		r := c.test(st, &v)
		if c.op.negated {
			r = r.not()
		}
		switch {
		case n == 0:
			res = r
		case c.set == setAny:
			res = or(res, r)
		case c.set == setAll:
			res = and(res, r)
		case r != res:
			res = unknown // a single-valued key given several values that disagree
		}
		n++
	})
	if n == 0 {
		// The key is absent (or an empty set): ForAllValues holds vacuously,
		// IfExists holds, ForAnyValue has nothing to match, a negated
		// operator finds no value equal to the policy's.
		switch {
		case c.set == setAll, c.ifExists:
			return yes
		case c.set == setAny:
			return no
		}
		return triOf(c.op.negated)
	}
	return res
}

// test reports whether a request value matches any of the policy's values
// (before a negated operator inverts it): unknown if the value cannot be
// read as the operator's type.
func (c *cond) test(st *evalState, v *cval) tri {
	r := no
	switch c.op.family {
	case famString:
		s := v.text()
		for i := range c.globs {
			if r = or(r, c.globs[i].match(s, c.op.fold, st)); r == yes {
				return yes
			}
		}
	case famArn:
		s := v.text()
		for i := range c.arns {
			if r = or(r, c.arns[i].match(s, st)); r == yes {
				return yes
			}
		}
	case famNumeric:
		x, ok := v.number()
		if !ok {
			return unknown
		}
		for _, y := range c.nums {
			if compare(c.op.cmp, cmpFloat(x, y)) {
				return yes
			}
		}
	case famDate:
		t, ok := v.time()
		if !ok {
			return unknown
		}
		for _, y := range c.times {
			if compare(c.op.cmp, t.Compare(y)) {
				return yes
			}
		}
	case famBool:
		b, ok := v.bool()
		if !ok {
			return unknown
		}
		for _, y := range c.bools {
			if b == y {
				return yes
			}
		}
	case famIP:
		a, ok := v.addr()
		if !ok {
			return unknown
		}
		for _, p := range c.prefixes {
			if p.Contains(a) {
				return yes
			}
		}
	}
	return r
}

func cmpFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// compare applies an operator's comparison to the request value's order
// against the policy value (-1: before, 0: equal, 1: after).
func compare(k cmpKind, order int) bool {
	switch k {
	case cmpLt:
		return order < 0
	case cmpLe:
		return order <= 0
	case cmpGt:
		return order > 0
	case cmpGe:
		return order >= 0
	}
	return order == 0
}

// parseOperator splits "ForAnyValue:StringLikeIfExists" into its set
// qualifier, operator and IfExists suffix.
func parseOperator(p *path, name string) (*opDef, setOp, bool, error) {
	set := setNone
	base := name
	if rest, ok := strings.CutPrefix(base, "ForAnyValue:"); ok {
		set, base = setAny, rest
	} else if rest, ok := strings.CutPrefix(base, "ForAllValues:"); ok {
		set, base = setAll, rest
	}
	op := lookupOp(base)
	ifExists := false
	if op == nil {
		if rest, ok := strings.CutSuffix(base, "IfExists"); ok {
			if op = lookupOp(rest); op != nil {
				ifExists = true
				if op.family == famNull {
					return nil, 0, false, errAt(p, "Null takes no IfExists: it tests whether the key exists")
				}
			}
		}
	}
	if op == nil {
		return nil, 0, false, errAt(p, unknownOperator(name, base))
	}
	if op.family == famNull && set != setNone {
		return nil, 0, false, errAt(p, "Null takes no set qualifier: it tests whether the key exists")
	}
	return op, set, ifExists, nil
}

func unknownOperator(name, base string) string {
	stem, _ := strings.CutSuffix(base, "IfExists")
	if strings.HasPrefix(stem, "Binary") {
		return "the condition operator " + quote(name) + " is not supported: no KMS condition key holds binary data"
	}
	for _, q := range []string{"ForAnyValue:", "ForAllValues:"} {
		if len(name) > len(q) && strings.EqualFold(name[:len(q)], q) && name[:len(q)] != q {
			return "unknown condition operator " + quote(name) + ": the set qualifier is spelt " + quote(q)
		}
	}
	for i := range opDefs {
		if strings.EqualFold(stem, opDefs[i].name) {
			return "unknown condition operator " + quote(name) + ": did you mean " + quote(opDefs[i].name) + "? (operators are case-sensitive)"
		}
	}
	return "unknown condition operator " + quote(name)
}

package policy

import "unicode/utf8"

// MarshalJSON returns the policy as a compact JSON document: Version, Id
// and Statement in that order, each statement's elements in the order Sid,
// Effect, Principal, Action, Resource, Condition, and every value as the
// document wrote it (a string or a list, the order of a Condition's
// operators and keys). Parsing it gives a policy that decides every request
// as p does.
func (p *Policy) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	sep := false
	member := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = appendString(b, name)
		b = append(b, ':')
	}
	if p.version != "" {
		member("Version")
		b = appendString(b, p.version)
	}
	if p.hasID {
		member("Id")
		b = appendString(b, p.id)
	}
	member("Statement")
	if !p.single {
		b = append(b, '[')
	}
	for i := range p.stmts {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.stmts[i].appendJSON(b)
	}
	if !p.single {
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

func (s *statement) appendJSON(b []byte) []byte {
	b = append(b, '{')
	sep := false
	member := func(name string, n *node) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = appendString(b, name)
		b = append(b, ':')
		b = appendNode(b, n)
	}
	if s.hasSid {
		member("Sid", &node{kind: jsonString, str: s.sid})
	}
	member("Effect", &node{kind: jsonString, str: s.effect.String()})
	switch s.principal {
	case isPrincipal:
		member("Principal", s.principalNode)
	case isNotPrincipal:
		member("NotPrincipal", s.principalNode)
	}
	if s.notAction {
		member("NotAction", s.actionNode)
	} else {
		member("Action", s.actionNode)
	}
	if s.notResource {
		member("NotResource", s.resourceNode)
	} else {
		member("Resource", s.resourceNode)
	}
	if s.conditionNode != nil {
		member("Condition", s.conditionNode)
	}
	return append(b, '}')
}

func appendNode(b []byte, n *node) []byte {
	switch n.kind {
	case jsonObject:
		b = append(b, '{')
		for i, k := range n.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendNode(b, n.vals[i])
		}
		return append(b, '}')
	case jsonArray:
		b = append(b, '[')
		for i, v := range n.vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNode(b, v)
		}
		return append(b, ']')
	case jsonString:
		return appendString(b, n.str)
	case jsonNull:
		return append(b, "null"...)
	}
	return append(b, n.str...) // a number's literal, true, false
}

// appendString appends s as a JSON string: every character as it is but
// for the quote, the backslash and the characters below U+0020, so that the
// result is never longer than the document it came from.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[r>>4], "0123456789abcdef"[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// DefaultKeyPolicy returns the key policy AWS KMS gives a key created
// without one: the account (arn:aws:iam::ACCOUNT:root) allowed every KMS
// action, which lets the account's identity policies decide who may use
// the key. The document is laid out as AWS returns it.
func DefaultKeyPolicy(account string) string {
	return `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : ` + string(appendString(nil, "arn:aws:iam::"+account+":root")) + `
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`
}

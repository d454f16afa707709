package policy

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestWildMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything at all", true},
		{"**", "x", true},
		{"?", "", false},
		{"?", "a", true},
		{"?", "é", true}, // one character, two bytes
		{"??", "é", false},
		{"a*", "a", true},
		{"a*b", "ab", true},
		{"a*b", "axxb", true},
		{"a*b", "axxbx", false},
		{"a*b*c", "abbbcbc", true},
		{"*a*", "bab", true},
		{"*.pdf", "report.pdf.exe", false},
		{"backup-*", "backup-", true},
		{"v?", "v10", false},
		{"a?c", "abc", true},
		{"*?", "", false},
		{"*?", "é", true},
		{"a*??", "aé", false},
		// IAM's example: one asterisk spans "/" (Resource element page).
		{"DOC-EXAMPLE-BUCKET/*/test/*", "DOC-EXAMPLE-BUCKET/1/2/test/3/object.jpg", true},
		{"DOC-EXAMPLE-BUCKET/*/test/*", "DOC-EXAMPLE-BUCKET//test/object.jpg", true},
		{"DOC-EXAMPLE-BUCKET/*/test/*", "DOC-EXAMPLE-BUCKET/1/test/", true},
		{"DOC-EXAMPLE-BUCKET/*/test/*", "DOC-EXAMPLE-BUCKET/1-test/object.jpg", false},
		{"DOC-EXAMPLE-BUCKET/*/test/*", "DOC-EXAMPLE-BUCKET/test/object.jpg", false},
		{"DOC-EXAMPLE-BUCKET/*/test/*", "DOC-EXAMPLE-BUCKET/1/2/test.jpg", false},
	} {
		if got := wildMatch(c.pattern, c.s, false); got != c.want {
			t.Errorf("wildMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
	if !wildMatch("kms:generatedatakey*", "KMS:GenerateDataKeyPair", true) || wildMatch("kms:decrypt", "kms:encrypt", true) {
		t.Error("wildMatch with fold")
	}
}

// reference matches as wildMatch should, with a regular expression.
func reference(pattern, s string) bool {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile("(?s)" + b.String()).MatchString(s)
}

// wildMatch and matchSegs agree with the regular-expression reference on
// random patterns and strings over a small alphabet (so that matches are
// common), multibyte characters included.
func TestMatchersAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune{'a', 'b', 'é', '/', ':'}
	gen := func(n int, wild bool) string {
		var b strings.Builder
		for range rng.IntN(n) {
			switch k := rng.IntN(7); {
			case wild && k == 0:
				b.WriteByte('*')
			case wild && k == 1:
				b.WriteByte('?')
			default:
				b.WriteRune(alphabet[rng.IntN(len(alphabet))])
			}
		}
		return b.String()
	}
	for range 20000 {
		p, s := gen(8, true), gen(10, false)
		want := reference(p, s)
		if got := wildMatch(p, s, false); got != want {
			t.Fatalf("wildMatch(%q, %q) = %v, want %v", p, s, got, want)
		}
		g, err := compileGlob(nil, p, false, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.match(s, false, nil) == yes; got != want {
			t.Fatalf("glob(%q).match(%q) = %v, want %v", p, s, got, want)
		}
		// The same pattern cut into pieces, as a pattern with variables is.
		var segs []seg
		for _, r := range p {
			switch r {
			case '*':
				segs = append(segs, seg{kind: segStar})
			case '?':
				segs = append(segs, seg{kind: segOne})
			default:
				segs = append(segs, seg{kind: segLit, lit: string(r)}, seg{kind: segLit})
			}
		}
		if got := matchSegs(segs, s); got != want {
			t.Fatalf("matchSegs(%q, %q) = %v, want %v", p, s, got, want)
		}
	}
}

func TestCutPrefixFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune{'a', 'A', 'k', 'K', '\u212a' /* Kelvin sign */, 'ß', 'ẞ', 'é', 'É', 's', 'ſ'}
	gen := func(n int) string {
		var b strings.Builder
		for range rng.IntN(n) {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 20000 {
		a, b := gen(5), gen(5)
		s := a + "x"
		rest, ok := cutPrefixFold(s, b)
		// b is a prefix of s ignoring case iff some prefix of s (cut at a
		// character boundary) folds equal to b.
		want := strings.EqualFold(s, b)
		for i := range s {
			want = want || strings.EqualFold(s[:i], b)
		}
		if ok != want {
			t.Fatalf("cutPrefixFold(%q, %q) = %q, %v; want %v", s, b, rest, ok, want)
		}
		if ok && !strings.EqualFold(s[:len(s)-len(rest)], b) {
			t.Fatalf("cutPrefixFold(%q, %q) left %q", s, b, rest)
		}
	}
}

func TestParseNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"10": true, "-2.5": true, "1e3": true, "1E-3": true, "0": true, "10.0": true,
		"": false, "-": false, "1.": false, ".5": false, "+1": false, "0x10": false, "1_000": false,
		"Inf": false, "NaN": false, "1e999": false, " 1": false, "1e": false,
	} {
		if _, ok := parseNumber(s); ok != want {
			t.Errorf("parseNumber(%q) ok = %v, want %v", s, ok, want)
		}
	}
}

func TestParseDate(t *testing.T) {
	utc := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	for s, want := range map[string]time.Time{
		"2020-04-01T00:00:00Z":      utc("2020-04-01T00:00:00Z"),
		"2020-04-01T02:00:00+02:00": utc("2020-04-01T00:00:00Z"),
		"2020-04-01T00:00Z":         utc("2020-04-01T00:00:00Z"),
		"2020-04-01T00:00:00.25Z":   utc("2020-04-01T00:00:00.25Z"),
		"2020-04-01T00:00:00":       utc("2020-04-01T00:00:00Z"),
		"2020-04-01":                utc("2020-04-01T00:00:00Z"),
		"2020-04":                   utc("2020-04-01T00:00:00Z"),
		"1585699200":                utc("2020-04-01T00:00:00Z"),
		"00000":                     utc("1970-01-01T00:00:00Z"),
	} {
		got, err := parseDate(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseDate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "2020", "0", "tomorrow", "2020-13-01", "2020-04-01 00:00:00", "99999999999999", "-1"} {
		if got, err := parseDate(s); err == nil {
			t.Errorf("parseDate(%q) = %v, want an error", s, got)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for s, want := range map[string]string{
		"203.0.113.0/24":          "203.0.113.0/24",
		"203.0.113.77/24":         "203.0.113.0/24",
		"203.0.113.5":             "203.0.113.5/32",
		"2001:DB8:1234:5678::/64": "2001:db8:1234:5678::/64",
		"2001:db8::1":             "2001:db8::1/128",
		"::ffff:203.0.113.0/120":  "203.0.113.0/24",
	} {
		got, err := parsePrefix(s)
		if err != nil || got.String() != want {
			t.Errorf("parsePrefix(%q) = %v, %v; want %s", s, got, err, want)
		}
	}
	for _, s := range []string{"", "203.0.113.0/33", "localhost", "fe80::1%eth0", "::ffff:1.2.3.4/64", "1.2.3.4/"} {
		if got, err := parsePrefix(s); err == nil {
			t.Errorf("parsePrefix(%q) = %v, want an error", s, got)
		}
	}
}

func TestSplitPattern(t *testing.T) {
	for _, c := range []struct {
		s    string
		vars bool
		want []string
	}{
		{"arn:aws:kms:us-east-1:111122223333:key/*", true, []string{"arn", "aws", "kms", "us-east-1", "111122223333", "key/*"}},
		{"arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}", true, []string{"arn", "aws", "iam", "", "${aws:PrincipalAccount}", "user/${aws:username}"}},
		{"arn:aws:iam::${aws:PrincipalAccount}:user/x", false, []string{"arn", "aws", "iam", "", "${aws", "PrincipalAccount}:user/x"}},
		{"arn:aws:logs:us-east-1:1:log-group:name:*", true, []string{"arn", "aws", "logs", "us-east-1", "1", "log-group:name:*"}},
		{"a:b", true, []string{"a", "b"}},
	} {
		if got := splitPattern(c.s, c.vars); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("splitPattern(%q, %v) = %q, want %q", c.s, c.vars, got, c.want)
		}
	}
}

func TestPathString(t *testing.T) {
	var root *path
	p := root.key("Statement").at(2).key("Condition").key("StringEquals").key("kms:EncryptionContext:a b")
	if got, want := p.String(), `Statement[2].Condition.StringEquals."kms:EncryptionContext:a b"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := root.key("").String(); got != `""` {
		t.Errorf("an empty member name: %q", got)
	}
	if root.String() != "" {
		t.Error("the document's path is not empty")
	}
}

// Every KMS action is a valid action, and matches itself only.
func TestKMSActions(t *testing.T) {
	for _, a := range kmsActions {
		ap, err := compileAction(nil, "kms:"+a)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range kmsActions {
			if got := ap.match("kms:" + b); got != (a == b) {
				t.Errorf("%q matches %q: %v", a, b, got)
			}
		}
	}
}

package policy

import (
	"errors"
	"math"
	"strconv"
	"time"
)

// parseNumber reads a number as JSON writes one ("10", "-2.5", "1e3"),
// refusing what strconv.ParseFloat would also take ("0x10", "Inf", "NaN",
// "1_000").
func parseNumber(s string) (float64, bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if !digits() {
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return 0, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// dateLayouts are the W3C profiles of ISO 8601 IAM takes for dates, with a
// time zone (Z or ±hh:mm) or without one (UTC); seconds may have a fraction.
var dateLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
	"2006-01",
}

var errDate = errors.New(`want an ISO 8601 date ("2026-01-31", "2026-01-31T12:00:00Z") or epoch seconds ("1769860800")`)

// parseDate reads a date as IAM's date operators take it: one of
// dateLayouts, or seconds since the Unix epoch. Four digits or fewer are
// refused as ambiguous (a year, or seconds into 1970?).
func parseDate(s string) (time.Time, error) {
	if s != "" && allDigits(s) {
		if len(s) <= 4 {
			return time.Time{}, errors.New(`ambiguous (a year, or epoch seconds?): write a full date such as "` + s + `-01-01", or epoch seconds`)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > 253402300799 { // 9999-12-31T23:59:59Z
			return time.Time{}, errDate
		}
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errDate
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

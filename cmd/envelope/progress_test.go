package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		n, total int64
		elapsed  time.Duration
		want     string
	}{
		{0, 100 << 20, 0, "[>                             ]   0%  0 B / 100.0 MiB"},
		{50 << 20, 100 << 20, time.Second, "[===============>              ]  50%  50.0 MiB / 100.0 MiB  50.0 MiB/s"},
		{3 << 30, 3 << 30, 2 * time.Second, "[==============================] 100%  3.0 GiB / 3.0 GiB  1.5 GiB/s"},
	} {
		if got := progressLine(tc.n, tc.total, tc.elapsed); got != tc.want {
			t.Errorf("progressLine(%d, %d, %v) = %q, want %q", tc.n, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

func TestProgressShownOnlyOnTerminalForLargeInputs(t *testing.T) {
	data := strings.NewReader("x")
	for _, tc := range []struct {
		tty     bool
		size    int64
		enabled bool
		want    bool
	}{
		{true, progressThreshold, true, true},
		{true, progressThreshold - 1, true, false},
		{true, -1, true, false},
		{false, progressThreshold, true, false},
		{true, progressThreshold, false, false},
	} {
		var stderr bytes.Buffer
		c := &cli{stderr: &stderr, stderrTTY: tc.tty}
		r, done := c.withProgress(&input{r: data, size: tc.size}, tc.enabled)
		_, isBar := r.(*progress)
		if isBar != tc.want {
			t.Errorf("tty=%v size=%d enabled=%v: progress bar = %v, want %v", tc.tty, tc.size, tc.enabled, isBar, tc.want)
		}
		if isBar {
			if _, err := io.Copy(io.Discard, r); err != nil {
				t.Fatal(err)
			}
			done()
			done() // idempotent
			if !strings.HasSuffix(stderr.String(), "\r\033[K") {
				t.Errorf("the bar was not erased at the end: %q", stderr.String())
			}
		}
		done()
		data.Reset("x")
	}
}

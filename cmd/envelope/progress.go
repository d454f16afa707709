package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progressThreshold is the input size from which a progress bar is shown.
const progressThreshold = 64 << 20

// progress counts bytes read and redraws a one-line bar on a terminal.
type progress struct {
	r     io.Reader
	n     atomic.Int64
	total int64
	out   io.Writer
	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
	once  sync.Once
}

// withProgress wraps in with a progress bar on stderr when stderr is a
// terminal, the input is large and the user did not turn it off.
func (c *cli) withProgress(in *input, enabled bool) (io.Reader, func()) {
	if !enabled || !c.stderrTTY || in.size < progressThreshold {
		return in.r, func() {}
	}
	p := &progress{r: in.r, total: in.size, out: c.stderr, start: time.Now(), stop: make(chan struct{})}
	p.done.Add(1)
	go p.loop()
	return p, p.finish
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

func (p *progress) loop() {
	defer p.done.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			fmt.Fprint(p.out, "\r\033[K")
			return
		case now := <-t.C:
			fmt.Fprint(p.out, "\r"+progressLine(p.n.Load(), p.total, now.Sub(p.start))+"\033[K")
		}
	}
}

// finish erases the bar. It may be called more than once.
func (p *progress) finish() {
	p.once.Do(func() {
		close(p.stop)
		p.done.Wait()
	})
}

// progressLine renders "[=====>    ]  45%  1.2 GiB / 2.5 GiB  812 MiB/s".
func progressLine(n, total int64, elapsed time.Duration) string {
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = min(float64(n)/float64(total), 1)
	}
	filled := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		switch {
		case i < filled:
			bar[i] = '='
		case i == filled:
			bar[i] = '>'
		default:
			bar[i] = ' '
		}
	}
	rate := ""
	if s := elapsed.Seconds(); s > 0 {
		rate = "  " + humanBytes(int64(float64(n)/s)) + "/s"
	}
	return fmt.Sprintf("[%s] %3.0f%%  %s / %s%s", bar, frac*100, humanBytes(n), humanBytes(total), rate)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

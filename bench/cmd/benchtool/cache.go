package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkkms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/bench/internal/proc"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsclient"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
)

// cacheConfig is one run of "benchtool cache": messages of one size
// encrypted back to back through the library, with a KMS keyring over an
// AWS-KMS-API endpoint, with or without the caching materials manager.
type cacheConfig struct {
	KeyID    string
	Suite    suite.ID
	Size     int           // plaintext bytes per message
	MaxAge   time.Duration // the cache's max age; 0: no cache
	MaxMsgs  uint64        // the cache's messages per data key; 0: 2^32
	Clients  int           // goroutines encrypting
	Duration time.Duration // measured window
	Warmup   time.Duration // before the window, not counted
	// ServerPID, if positive, is the server's process: its CPU time over
	// the window and its peak RSS are reported.
	ServerPID int
}

// cacheResult is what a run measured; it is written as JSON for the
// report ("lg" lines of the log).
type cacheResult struct {
	Suite       string  `json:"suite"`
	Cache       bool    `json:"cache"`
	MaxAgeS     float64 `json:"cache_max_age_s,omitempty"`
	MaxMessages uint64  `json:"cache_max_messages,omitempty"`
	Size        int     `json:"message_bytes"`
	Clients     int     `json:"clients"`
	WindowS     float64 `json:"window_s"`
	Messages    int64   `json:"messages"`
	MsgsPerS    float64 `json:"msgs_per_s"`
	// KMSCalls counts the GenerateDataKey calls made in the window, one per
	// fresh data key; CacheHitRatio is the share of messages that needed
	// none.
	KMSCalls       int64   `json:"kms_calls"`
	KMSCallsPerMsg float64 `json:"kms_calls_per_msg"`
	CacheHitRatio  float64 `json:"cache_hit_ratio"`
	P50us          float64 `json:"msg_p50_us"`
	P99us          float64 `json:"msg_p99_us"`
	ClientCPUMsPM  float64 `json:"client_cpu_ms_per_msg"`
	ServerCPUMsPM  float64 `json:"server_cpu_ms_per_msg,omitempty"`
	ServerRSSKB    int64   `json:"server_peak_rss_kb,omitempty"`
	// Errors is always 0: the first error ends the run.
	Errors int64 `json:"errors"`
}

// Summary is one human-readable line.
func (r *cacheResult) Summary() string {
	mode := "no cache"
	if r.Cache {
		mode = fmt.Sprintf("cache (max age %gs, max messages %d)", r.MaxAgeS, r.MaxMessages)
	}
	s := fmt.Sprintf("suite %s, %s, %d B messages, %d client(s): %.0f msgs/s over %.1fs (%d messages), %.4f KMS calls/msg (cache hits %.1f%%), latency p50 %.0f µs p99 %.0f µs, client CPU %.3f ms/msg",
		r.Suite, mode, r.Size, r.Clients, r.MsgsPerS, r.WindowS, r.Messages, r.KMSCallsPerMsg, 100*r.CacheHitRatio, r.P50us, r.P99us, r.ClientCPUMsPM)
	if r.ServerCPUMsPM > 0 {
		s += fmt.Sprintf(", server CPU %.3f ms/msg", r.ServerCPUMsPM)
	}
	return s
}

// countingKMS counts GenerateDataKey calls: one per data key made.
type countingKMS struct {
	kms.API
	generated atomic.Int64
}

func (c *countingKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error) {
	c.generated.Add(1)
	return c.API.GenerateDataKey(ctx, in)
}

// runCache runs c against api.
func runCache(ctx context.Context, api kms.API, c cacheConfig) (*cacheResult, error) {
	s, ok := suite.ByID(c.Suite)
	if !ok {
		return nil, fmt.Errorf("unknown suite %s", c.Suite)
	}
	if c.Size < 0 || c.Clients < 1 || c.Duration <= 0 {
		return nil, errors.New("cache: need a size ≥ 0, at least one client and a positive duration")
	}
	// The keyring names keys by ARN (and decrypts only what names its
	// ARN): resolve an alias first, as the CLI does.
	d, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: c.KeyID})
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", c.KeyID, err)
	}
	counter := &countingKMS{API: api}
	kr, err := awskms.New(counter, d.KeyMetadata.Arn)
	if err != nil {
		return nil, err
	}
	var m materials.Manager = materials.NewDefault(kr)
	if c.MaxAge > 0 {
		if m, err = materials.NewCaching(m, materials.CachingOptions{MaxAge: c.MaxAge, MaxMessagesEncrypted: c.MaxMsgs}); err != nil {
			return nil, err
		}
	}
	policy := suite.RequireEncryptRequireDecrypt
	if !s.Committing {
		policy = suite.ForbidEncryptAllowDecrypt
	}
	ec := map[string]string{"purpose": "bench"}
	opts := []envelope.Option{envelope.WithMaterialsManager(m), envelope.WithSuite(s.ID),
		envelope.WithCommitmentPolicy(policy), envelope.WithContext(ec)}
	pt := make([]byte, c.Size)
	rand.Read(pt)
	// check decrypts a message with the KMS keyring alone (no cache):
	// what was measured must be messages anyone with the key can read.
	check := func(msg []byte) error {
		got, h, err := envelope.DecryptBytes(ctx, msg, kr, envelope.WithCommitmentPolicy(policy), envelope.WithContext(ec))
		switch {
		case err != nil:
			return fmt.Errorf("decrypting a message: %w", err)
		case !bytes.Equal(got, pt):
			return errors.New("a message decrypts to another plaintext")
		case h.Suite.ID != s.ID:
			return fmt.Errorf("a message has suite %s, not %s", h.Suite.ID, s.ID)
		}
		return nil
	}
	first, err := envelope.EncryptBytes(ctx, pt, nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("first message: %w", err)
	}
	if err := check(first); err != nil {
		return nil, err
	}

	const (
		warmup = iota
		measure
		stop
	)
	var (
		phase    atomic.Int32
		count    atomic.Int64
		mu       sync.Mutex
		lats     []int64
		firstErr error
		last     []byte
		wg       sync.WaitGroup
	)
	for range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int64
			var msg []byte
			for {
				p := phase.Load()
				if p == stop {
					break
				}
				t0 := time.Now()
				var err error
				msg, err = envelope.EncryptBytes(ctx, pt, nil, opts...)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					phase.Store(stop)
					break
				}
				if p == measure && phase.Load() == measure {
					mine = append(mine, int64(time.Since(t0)))
					count.Add(1)
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			if msg != nil {
				last = msg
			}
			mu.Unlock()
		}()
	}
	sleep := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	sleep(c.Warmup)
	cpu0, _ := proc.CPU(c.ServerPID)
	self0 := proc.SelfCPU()
	calls0 := counter.generated.Load()
	t0 := time.Now()
	phase.CompareAndSwap(warmup, measure)
	sleep(c.Duration)
	phase.Store(stop)
	window := time.Since(t0)
	calls := counter.generated.Load() - calls0
	self1 := proc.SelfCPU()
	cpu1, cpuErr := proc.CPU(c.ServerPID)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := check(last); err != nil {
		return nil, err
	}

	r := &cacheResult{Suite: s.ID.String(), Cache: c.MaxAge > 0, Size: c.Size, Clients: c.Clients, WindowS: window.Seconds(),
		Messages: count.Load(), KMSCalls: calls}
	if r.Cache {
		r.MaxAgeS, r.MaxMessages = c.MaxAge.Seconds(), c.MaxMsgs
		if r.MaxMessages == 0 {
			r.MaxMessages = materials.CachingMaxMessages
		}
	}
	r.MsgsPerS = float64(r.Messages) / window.Seconds()
	if r.Messages > 0 {
		r.KMSCallsPerMsg = float64(calls) / float64(r.Messages)
		r.CacheHitRatio = max(0, 1-r.KMSCallsPerMsg)
		r.ClientCPUMsPM = (self1 - self0).Seconds() * 1e3 / float64(r.Messages)
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[min(int(p*float64(len(lats))), len(lats)-1)]) / 1e3
	}
	r.P50us, r.P99us = pct(.50), pct(.99)
	if c.ServerPID > 0 {
		if cpuErr != nil {
			return nil, fmt.Errorf("server CPU: %v", cpuErr)
		}
		if r.Messages > 0 {
			r.ServerCPUMsPM = (cpu1 - cpu0).Seconds() * 1e3 / float64(r.Messages)
		}
		r.ServerRSSKB, _ = proc.PeakRSS(c.ServerPID)
	}
	return r, nil
}

func cacheCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cache", flag.ContinueOnError)
	var c cacheConfig
	url := fs.String("url", "", "the AWS-KMS-API endpoint `URL` (envelope serve)")
	region := fs.String("region", kms.DefaultRegion, "SigV4 `REGION`")
	fs.StringVar(&c.KeyID, "key", "alias/bench", "symmetric KMS `KEY` (id, ARN or alias) that wraps the data keys")
	suiteName := fs.String("suite", "0x0478", "algorithm suite `ID`")
	size := fs.String("size", "1K", "plaintext `BYTES` per message (K, M suffixes)")
	fs.DurationVar(&c.MaxAge, "max-age", 0, "cache data keys for this long (0: no cache)")
	fs.Uint64Var(&c.MaxMsgs, "max-messages", 0, "with the cache: messages per data key (0: 2^32)")
	fs.IntVar(&c.Clients, "c", 1, "goroutines encrypting concurrently")
	fs.DurationVar(&c.Duration, "d", 5*time.Second, "measured window")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "encrypting before the window, not counted")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "server `PID`: report its CPU time per message and peak RSS (Linux /proc)")
	jsonOut := fs.String("json", "", "also write the result as JSON to `FILE`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || fs.NArg() != 0 {
		return errors.New("cache: need -url (and no arguments); see the package documentation")
	}
	s, err := suite.Parse(*suiteName)
	if err != nil {
		return fmt.Errorf("cache: -suite: %v", err)
	}
	c.Suite = s.ID
	n, err := parseSize(*size)
	if err != nil || n > 1<<30 {
		return fmt.Errorf("cache: -size %q: want up to 1G", *size)
	}
	c.Size = int(n)
	akid, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if akid == "" || secret == "" {
		return errors.New("cache: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	// No retries: a failed call fails the run rather than hiding in its
	// timing.
	api, err := awsclient.NewEndpoint(ctx, *url, awsclient.WithCredentials(akid, secret), awsclient.WithRegion(*region),
		awsclient.WithSDKOptions(func(o *sdkkms.Options) { o.Retryer = aws.NopRetryer{} }))
	if err != nil {
		return err
	}
	r, err := runCache(ctx, api, c)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "  "+r.Summary())
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

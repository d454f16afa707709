package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi"
	"github.com/envelopekms/envelope/kms/keystore"
)

// newServer runs envelope's AWS-KMS-API server over a fresh keystore with
// the key alias/bench, sets the AWS credentials to its root's (and keeps
// the developer's AWS configuration out), and returns its URL.
func newServer(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	ks, err := keystore.Open(ctx, t.TempDir(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	ck, err := ks.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/bench", TargetKeyId: ck.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	root := awsapi.NewRootCredentials()
	srv, err := awsapi.New(awsapi.Config{Backend: ks, Region: kms.DefaultRegion, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": root.AccessKeyID, "AWS_SECRET_ACCESS_KEY": root.SecretAccessKey, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_KMS": "", "AWS_CA_BUNDLE": "",
	} {
		t.Setenv(k, v)
	}
	return hs.URL
}

// runCacheCmd runs "benchtool cache ARGS -json F" and returns the result.
func runCacheCmd(t *testing.T, args ...string) *cacheResult {
	t.Helper()
	out := filepath.Join(t.TempDir(), "r.json")
	if err := cacheCmd(t.Context(), append(args, "-json", out)); err != nil {
		t.Fatalf("cache %q: %v", args, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r cacheResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return &r
}

// TestCache runs the cache benchmark briefly against an in-process server:
// without the cache every message makes a data key, with it they share
// one (or one per -max-messages), and the cache is faster.
func TestCache(t *testing.T) {
	url := newServer(t)
	short := []string{"-url", url, "-key", "alias/bench", "-size", "1K", "-d", "400ms", "-warmup", "50ms", "-server-pid", fmt.Sprint(os.Getpid())}
	for _, s := range []string{"0x0478", "0x0578"} {
		t.Run(s, func(t *testing.T) {
			off := runCacheCmd(t, append(short, "-suite", s)...)
			on := runCacheCmd(t, append(short, "-suite", s, "-max-age", "1m")...)
			for _, r := range []*cacheResult{off, on} {
				if r.Suite != s || r.Size != 1024 || r.Messages < 5 || r.MsgsPerS <= 0 || r.Errors != 0 ||
					r.WindowS < 0.3 || r.P50us <= 0 || r.P99us < r.P50us || r.ClientCPUMsPM <= 0 || r.ServerCPUMsPM <= 0 || r.ServerRSSKB <= 0 {
					t.Errorf("implausible result: %+v", r)
				}
			}
			// Without the cache: a GenerateDataKey per message (give or
			// take the message in flight as the window opens and closes).
			if off.Cache || off.KMSCalls < off.Messages || off.KMSCalls > off.Messages+2 || off.CacheHitRatio > 0.01 {
				t.Errorf("without the cache: %d KMS calls for %d messages (hit ratio %.3f), cache %v", off.KMSCalls, off.Messages, off.CacheHitRatio, off.Cache)
			}
			// With it: the first message's data key serves every one.
			if !on.Cache || on.KMSCalls > 1 || on.CacheHitRatio < 0.99 || on.MaxAgeS != 60 || on.MaxMessages != 1<<32 {
				t.Errorf("with the cache: %d KMS calls for %d messages (hit ratio %.3f), %+v", on.KMSCalls, on.Messages, on.CacheHitRatio, on)
			}
			if on.MsgsPerS <= off.MsgsPerS {
				t.Errorf("the cache is not faster: %.0f msgs/s with it, %.0f without", on.MsgsPerS, off.MsgsPerS)
			}
			t.Logf("%s: %.0f msgs/s without the cache, %.0f with it (%.1f×)", s, off.MsgsPerS, on.MsgsPerS, on.MsgsPerS/off.MsgsPerS)
		})
	}
	// -max-messages 10: a data key per 10 messages. With two clients,
	// both may miss when a key is spent, and both call the KMS.
	r := runCacheCmd(t, append(short, "-max-age", "1m", "-max-messages", "10")...)
	if want := float64(r.Messages) / 10; r.Messages < 50 || float64(r.KMSCalls) < want-2 || float64(r.KMSCalls) > want+3 {
		t.Errorf("-max-messages 10: %d KMS calls for %d messages", r.KMSCalls, r.Messages)
	}
	r = runCacheCmd(t, append(short, "-max-age", "1m", "-max-messages", "10", "-c", "2")...)
	if want := float64(r.Messages) / 10; r.Messages < 50 || float64(r.KMSCalls) < want-2 || float64(r.KMSCalls) > 2*want+3 {
		t.Errorf("-max-messages 10, 2 clients: %d KMS calls for %d messages", r.KMSCalls, r.Messages)
	}
	if r.Clients != 2 || r.MaxMessages != 10 {
		t.Errorf("result %+v", r)
	}
}

func TestCacheErrors(t *testing.T) {
	url := newServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "need -url"},
		{[]string{"-url", url, "extra"}, "need -url"},
		{[]string{"-url", url, "-suite", "0x9999"}, "-suite"},
		{[]string{"-url", url, "-size", "2G"}, "-size"},
		{[]string{"-url", url, "-key", "alias/missing", "-d", "10ms"}, "alias/missing"},
		{[]string{"-url", url, "-c", "0"}, "at least one client"},
	} {
		err := cacheCmd(t.Context(), tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cache %q: err = %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if err := cacheCmd(t.Context(), []string{"-url", url}); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("no credentials: err = %v", err)
	}
}

// TestReportCache checks that cache results and message counts reach the
// report: the ratio row, the cache table, and not the server table.
func TestReportCache(t *testing.T) {
	dir := t.TempDir()
	on, off := filepath.Join(dir, "on.json"), filepath.Join(dir, "off.json")
	os.WriteFile(on, []byte(`{"suite":"0x0478","cache":true,"msgs_per_s":20000,"kms_calls_per_msg":0.001,"msg_p50_us":40,"msg_p99_us":90,"client_cpu_ms_per_msg":0.05,"server_cpu_ms_per_msg":0.001,"server_peak_rss_kb":30720}`), 0o644)
	os.WriteFile(off, []byte(`{"suite":"0x0478","cache":false,"msgs_per_s":800,"kms_calls_per_msg":1,"msg_p50_us":1200,"msg_p99_us":2500,"client_cpu_ms_per_msg":0.4,"server_cpu_ms_per_msg":0.3,"server_peak_rss_kb":30720}`), 0o644)
	log := "label\ton\tcache on\nlabel\toff\tno cache\nlabel\tcli-on\tCLI cache\nlabel\tcli-off\tCLI no cache\n" +
		"lg\ton\t1\t" + on + "\nlg\toff\t1\t" + off + "\n" +
		"run\tcli-on\t1\t1024000\t0.100000\t0.05\t0.02\t20000\t1000\n" +
		"run\tcli-off\t1\t1024000\t2.000000\t0.5\t0.2\t20000\t1000\n" +
		"cmp\tcache\tlg:msgs_per_s\ton\toff\tlibrary\n" +
		"cmp\tcache\tmsgps\tcli-on\tcli-off\tCLI files\n" +
		"cmp\tcache\tlg:msg_p50_us\ton\toff\tlatency\n"
	d, err := readLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	d.write(&buf, "test")
	s := buf.String()
	for _, want := range []string{
		"| cache | library | 20000 msgs/s | no cache: 800 msgs/s | 25.00× | 30.0 MiB | 30.0 MiB |",
		"| cache | CLI files | 10000 msgs/s | CLI no cache: 500 msgs/s | 20.00× |",
		"## Cache runs",
		"| cache | latency | 40 µs | no cache: 1200 µs | 0.03× |",
		"| cache on | 1 | 20000 | 0.0010 | 40 | 90 | 0.050 | 0.001 | 30.0 MiB |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "## Server runs") {
		t.Errorf("cache results in the server table:\n%s", s)
	}
	if _, err := readLog(strings.NewReader("run\tx\t1\t1\t1\t1\t1\t1\tmany\n")); err == nil {
		t.Error("a malformed message count was accepted")
	}
}

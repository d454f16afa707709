package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"123": 123, "64K": 64 << 10, "64M": 64 << 20, "1G": 1 << 30, "10GiB": 10 << 30, "2m": 2 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%s: got %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1Q"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestPipelineAndReport(t *testing.T) {
	dir := t.TempDir()
	in, out, log := filepath.Join(dir, "in"), filepath.Join(dir, "out"), filepath.Join(dir, "log")
	os.WriteFile(in, []byte("hello\nworld\n"), 0o644)
	wall, usage, err := runPipeline([][]string{{"cat"}, {"tr", "a-z", "A-Z"}}, in, out)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "HELLO\nWORLD\n" || wall <= 0 || len(usage) != 2 || usage[0].rssKB == 0 {
		t.Fatalf("pipeline: %q %v %+v", got, wall, usage)
	}
	if _, _, err := runPipeline([][]string{{"cat"}, {"false"}}, in, out); err == nil {
		t.Fatal("a failing stage was not reported")
	}
	for rep := 1; rep <= 3; rep++ {
		if err := execCmd([]string{"-log", log, "-id", "a", "-rep", "1", "-bytes", "1M", "-in", in, "--", "cat"}); err != nil {
			t.Fatal(err)
		}
		if err := execCmd([]string{"-log", log, "-id", "b1,b2", "-rep", "1", "-bytes", "1M", "-in", in, "--", "cat", "|", "cat"}); err != nil {
			t.Fatal(err)
		}
	}
	lg := filepath.Join(dir, "lg.json")
	os.WriteFile(lg, []byte(`{"clients":8,"pairs_per_s":1000,"pair_p99_ms":2.5,"server_cpu_ms_per_pair":0.2,"server_peak_rss_kb":20480,"errors":0}`), 0o644)
	lg2 := filepath.Join(dir, "lg2.json")
	os.WriteFile(lg2, []byte(`{"clients":8,"pairs_per_s":500,"pair_p99_ms":5,"server_cpu_ms_per_pair":0.4,"server_peak_rss_kb":10240,"errors":0}`), 0o644)
	f, _ := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("meta\tsize\t1 MiB\nlabel\ta\tcat a\nlabel\tsrvA\tenvelope\nlabel\tsrvB\tlocal-kms\n" +
		"lg\tsrvA\t1\t" + lg + "\nlg\tsrvB\t1\t" + lg2 + "\n" +
		"cmp\tstream\tmbps\ta\tb1\ta vs b1\n" +
		"cmp\tserver\tlg:server_cpu_ms_per_pair\tsrvA\tsrvB\tCPU per pair\n" +
		"cmp\tstream\tmbps\ta\tmissing\tnot measured\n" +
		"note\tpage cache warm\nskip\tcache\tno --cache flag\n")
	f.Close()
	lf, _ := os.Open(log)
	d, err := readLog(lf)
	lf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.runs["a"]) != 3 || len(d.runs["b2"]) != 3 {
		t.Fatalf("runs: %+v", d.runs)
	}
	var buf bytes.Buffer
	d.write(&buf, "test")
	s := buf.String()
	for _, want := range []string{"| server | CPU per pair | 0.200 ms CPU/pair | local-kms: 0.400 ms CPU/pair | 0.50× | 20.0 MiB | 10.0 MiB |",
		"| cat a | 3 |", "missing: not run", "| cache | no --cache flag | skipped", "- size: 1 MiB", "page cache warm"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Error(m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Error(m)
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The log is tab-separated, one record a line:
//
//	meta   KEY VALUE                      shown in the header of the report
//	label  ID TEXT                        what command ID is
//	run    ID REP BYTES WALL_S USER_S SYS_S RSS_KB [MSGS]
//	lg     ID REP JSONFILE                a JSON result: loadgen's, or benchtool cache's
//	cmp    SECTION METRIC ID_A ID_B TEXT  a row of the ratio table: A/B
//	note   TEXT
//	skip   SECTION TEXT                   a section or row that did not run
//
// METRIC is mbps (median MB/s, 10^6 bytes/s of BYTES), msgps (median
// messages per second, MSGS/WALL_S), wall (median wall seconds), cpu
// (median user+sys seconds), rss (peak RSS over repetitions), or lg:FIELD
// (median of a field of the JSON results, e.g. lg:pairs_per_s).

type run struct {
	rep             int
	bytes           int64
	wall, user, sys float64
	rssKB           int64
	msgs            int64 // 0: not counted
}

type cmpRow struct {
	section, metric, a, b, text string
}

type logData struct {
	meta    [][2]string
	labels  map[string]string
	order   []string // ids in order of first appearance
	runs    map[string][]run
	lgs     map[string][]map[string]any
	lgOrder []string
	cmps    []cmpRow
	notes   []string
	skips   [][2]string
}

func readLog(r io.Reader) (*logData, error) {
	d := &logData{labels: map[string]string{}, runs: map[string][]run{}, lgs: map[string][]map[string]any{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		f := strings.Split(sc.Text(), "\t")
		bad := func() error { return fmt.Errorf("log line %d: malformed: %q", ln, sc.Text()) }
		switch f[0] {
		case "":
		case "meta":
			if len(f) != 3 {
				return nil, bad()
			}
			d.meta = append(d.meta, [2]string{f[1], f[2]})
		case "label":
			if len(f) != 3 {
				return nil, bad()
			}
			d.labels[f[1]] = f[2]
		case "run":
			if len(f) != 8 && len(f) != 9 {
				return nil, bad()
			}
			var x run
			var errs [7]error
			x.rep, errs[0] = strconv.Atoi(f[2])
			x.bytes, errs[1] = strconv.ParseInt(f[3], 10, 64)
			x.wall, errs[2] = strconv.ParseFloat(f[4], 64)
			x.user, errs[3] = strconv.ParseFloat(f[5], 64)
			x.sys, errs[4] = strconv.ParseFloat(f[6], 64)
			x.rssKB, errs[5] = strconv.ParseInt(f[7], 10, 64)
			if len(f) == 9 {
				x.msgs, errs[6] = strconv.ParseInt(f[8], 10, 64)
			}
			for _, e := range errs {
				if e != nil {
					return nil, bad()
				}
			}
			if _, ok := d.runs[f[1]]; !ok {
				d.order = append(d.order, f[1])
			}
			d.runs[f[1]] = append(d.runs[f[1]], x)
		case "lg":
			if len(f) != 4 {
				return nil, bad()
			}
			b, err := os.ReadFile(f[3])
			if err != nil {
				return nil, err
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("%s: %v", f[3], err)
			}
			if _, ok := d.lgs[f[1]]; !ok {
				d.lgOrder = append(d.lgOrder, f[1])
			}
			d.lgs[f[1]] = append(d.lgs[f[1]], m)
		case "cmp":
			if len(f) != 6 {
				return nil, bad()
			}
			d.cmps = append(d.cmps, cmpRow{f[1], f[2], f[3], f[4], f[5]})
		case "note":
			d.notes = append(d.notes, strings.Join(f[1:], " "))
		case "skip":
			if len(f) != 3 {
				return nil, bad()
			}
			d.skips = append(d.skips, [2]string{f[1], f[2]})
		default:
			return nil, bad()
		}
	}
	return d, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// value returns the metric of id (median over repetitions) and whether id
// was measured.
func (d *logData) value(metric, id string) (float64, bool) {
	if field, ok := strings.CutPrefix(metric, "lg:"); ok {
		var v []float64
		for _, m := range d.lgs[id] {
			if x, ok := m[field].(float64); ok {
				v = append(v, x)
			}
		}
		return median(v), len(v) > 0
	}
	runs := d.runs[id]
	if len(runs) == 0 {
		return 0, false
	}
	var v []float64
	for _, r := range runs {
		switch metric {
		case "mbps":
			v = append(v, float64(r.bytes)/r.wall/1e6)
		case "msgps":
			if r.msgs > 0 {
				v = append(v, float64(r.msgs)/r.wall)
			}
		case "wall":
			v = append(v, r.wall)
		case "cpu":
			v = append(v, r.user+r.sys)
		case "rss":
			v = append(v, float64(r.rssKB))
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	if metric == "rss" {
		return slices.Max(v), true
	}
	return median(v), true
}

// peakRSS returns the peak RSS of id in KiB: of the command, or of the
// server for loadgen ids.
func (d *logData) peakRSS(id string) (int64, bool) {
	if runs, ok := d.runs[id]; ok {
		var m int64
		for _, r := range runs {
			m = max(m, r.rssKB)
		}
		return m, true
	}
	if lgs, ok := d.lgs[id]; ok {
		var m int64
		for _, x := range lgs {
			if v, ok := x["server_peak_rss_kb"].(float64); ok {
				m = max(m, int64(v))
			}
		}
		return m, m > 0
	}
	return 0, false
}

// lgWith returns the ids of JSON results that have field.
func (d *logData) lgWith(field string) []string {
	var ids []string
	for _, id := range d.lgOrder {
		for _, m := range d.lgs[id] {
			if _, ok := m[field]; ok {
				ids = append(ids, id)
				break
			}
		}
	}
	return ids
}

func formatValue(metric string, v float64) string {
	switch {
	case metric == "mbps":
		return fmt.Sprintf("%.0f MB/s", v)
	case metric == "wall":
		return fmt.Sprintf("%.3f s", v)
	case metric == "cpu":
		return fmt.Sprintf("%.3f s CPU", v)
	case metric == "rss":
		return mib(int64(v))
	case metric == "lg:pairs_per_s":
		return fmt.Sprintf("%.0f pairs/s", v)
	case metric == "lg:ops_per_s":
		return fmt.Sprintf("%.0f ops/s", v)
	case metric == "msgps" || metric == "lg:msgs_per_s":
		return fmt.Sprintf("%.0f msgs/s", v)
	case strings.HasSuffix(metric, "cpu_ms_per_pair"):
		return fmt.Sprintf("%.3f ms CPU/pair", v)
	case strings.HasSuffix(metric, "_ms"):
		return fmt.Sprintf("%.2f ms", v)
	case strings.HasSuffix(metric, "_us"):
		return fmt.Sprintf("%.0f µs", v)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

func (d *logData) label(id string) string {
	if l, ok := d.labels[id]; ok {
		return l
	}
	return id
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func (d *logData) write(w io.Writer, title string) {
	fmt.Fprintf(w, "# %s\n\n", title)
	for _, m := range d.meta {
		fmt.Fprintf(w, "- %s: %s\n", m[0], esc(m[1]))
	}
	if len(d.meta) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "## Ratios (envelope ÷ reference, medians)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| section | comparison | envelope | reference | ratio | envelope peak RSS | reference peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, c := range d.cmps {
		va, okA := d.value(c.metric, c.a)
		vb, okB := d.value(c.metric, c.b)
		cell := func(id string, v float64, ok bool, withLabel bool) string {
			s := "not run"
			if ok {
				s = formatValue(c.metric, v)
			}
			if withLabel {
				s = d.label(id) + ": " + s
			}
			return esc(s)
		}
		ratio := "–"
		if okA && okB && vb != 0 {
			ratio = fmt.Sprintf("%.2f×", va/vb)
		}
		rss := func(id string) string {
			if k, ok := d.peakRSS(id); ok {
				return mib(k)
			}
			return "–"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", esc(c.section), esc(c.text),
			cell(c.a, va, okA, false), cell(c.b, vb, okB, true), ratio, rss(c.a), rss(c.b))
	}
	for _, s := range d.skips {
		fmt.Fprintf(w, "| %s | %s | skipped | | | | |\n", esc(s[0]), esc(s[1]))
	}
	if len(d.order) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "## Every command (median over repetitions; MB/s of plaintext, 10^6 B/s)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| command | n | MB/s | min–max MB/s | wall s | user s | sys s | peak RSS |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, id := range d.order {
			runs := d.runs[id]
			var mbps, wall, user, sys []float64
			var rss int64
			for _, r := range runs {
				mbps = append(mbps, float64(r.bytes)/r.wall/1e6)
				wall = append(wall, r.wall)
				user = append(user, r.user)
				sys = append(sys, r.sys)
				rss = max(rss, r.rssKB)
			}
			tput, span := "–", "–"
			if runs[0].bytes > 0 {
				tput = fmt.Sprintf("%.0f", median(mbps))
				span = fmt.Sprintf("%.0f–%.0f", slices.Min(mbps), slices.Max(mbps))
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %.3f | %.3f | %.3f | %s |\n", esc(d.label(id)), len(runs), tput, span,
				median(wall), median(user), median(sys), mib(rss))
		}
	}
	if ids := d.lgWith("pairs_per_s"); len(ids) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "## Server runs (GenerateDataKey + Decrypt pairs; medians over repetitions)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| server | clients | n | pairs/s | p50 ms | p90 ms | p99 ms | p99.9 ms | server CPU ms/pair | client CPU ms/pair | server peak RSS | errors |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, id := range ids {
			v := func(f string) float64 { x, _ := d.value("lg:"+f, id); return x }
			var errs float64
			for _, m := range d.lgs[id] {
				e, _ := m["errors"].(float64)
				errs += e
			}
			rss, _ := d.peakRSS(id)
			fmt.Fprintf(w, "| %s | %.0f | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f | %s | %.0f |\n", esc(d.label(id)),
				v("clients"), len(d.lgs[id]), v("pairs_per_s"), v("pair_p50_ms"), v("pair_p90_ms"), v("pair_p99_ms"), v("pair_p999_ms"),
				v("server_cpu_ms_per_pair"), v("client_cpu_ms_per_pair"), mib(rss), errs)
		}
	}
	if ids := d.lgWith("msgs_per_s"); len(ids) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "## Cache runs (messages encrypted through the library against the server; medians over repetitions)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| run | n | msgs/s | KMS calls/msg | p50 µs | p99 µs | client CPU ms/msg | server CPU ms/msg | server peak RSS |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
		for _, id := range ids {
			v := func(f string) float64 { x, _ := d.value("lg:"+f, id); return x }
			rss, _ := d.peakRSS(id)
			fmt.Fprintf(w, "| %s | %d | %.0f | %.4f | %.0f | %.0f | %.3f | %.3f | %s |\n", esc(d.label(id)), len(d.lgs[id]),
				v("msgs_per_s"), v("kms_calls_per_msg"), v("msg_p50_us"), v("msg_p99_us"), v("client_cpu_ms_per_msg"),
				v("server_cpu_ms_per_msg"), mib(rss))
		}
	}
	if len(d.notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "## Notes")
		fmt.Fprintln(w)
		for _, n := range d.notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	logFile := fs.String("log", "", "the measurement log `FILE`")
	title := fs.String("title", "envelope benchmark", "report `TITLE`")
	fs.Parse(args)
	f, err := os.Open(*logFile)
	if err != nil {
		return err
	}
	defer f.Close()
	d, err := readLog(f)
	if err != nil {
		return err
	}
	d.write(os.Stdout, *title)
	return nil
}

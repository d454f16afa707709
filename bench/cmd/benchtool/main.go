// Command benchtool holds the small measuring and reporting tools that
// bench/run drives:
//
//	benchtool exec -log FILE -id ID[,ID...] -rep N -bytes B [-msgs N] [-in F] [-out F] -- CMD ARGS... ['|' CMD ARGS...]...
//	    run a command (or a pipeline of commands joined by a '|' argument)
//	    with stdin from -in and stdout to -out (both default /dev/null), and
//	    append to the log one "run" line per -id: wall time, user and system
//	    CPU and peak RSS (getrusage of the waited child, as GNU time -v). With
//	    one id for several stages, CPU is summed and RSS is the stages' max.
//	    -msgs records how many messages the command wrote (for msgs/s).
//	benchtool cache -url URL [-key KEY] [-suite ID] [-size 1K] [-max-age D] [-max-messages N] [-c N] [-d 5s] [-warmup 1s] [-server-pid PID] [-json FILE]
//	    encrypt messages of -size bytes back to back for -d through the
//	    library (envelope.EncryptBytes, the KMS keyring over the AWS-KMS-API
//	    endpoint URL, credentials from AWS_ACCESS_KEY_ID and
//	    AWS_SECRET_ACCESS_KEY), with the caching materials manager when
//	    -max-age is positive; print messages per second, KMS calls
//	    (GenerateDataKey) per message, latency and CPU per message, and
//	    write them as JSON with -json. The first and last messages are
//	    decrypted with the KMS keyring to check them.
//	benchtool gen -size N[K|M|G] [-seed S]
//	    write N pseudo-random bytes (ChaCha8) to stdout
//	benchtool sha384 [FILE]
//	    SHA-384 of FILE (or stdin) on one goroutine (crypto/sha512.New384)
//	benchtool report -log FILE [-title T]
//	    read the log and print the markdown report
//	benchtool size N[K|M|G]
//	    print N in bytes
package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "exec":
		err = execCmd(args)
	case "gen":
		err = genCmd(args)
	case "sha384":
		err = sha384Cmd(args)
	case "report":
		err = reportCmd(args)
	case "cache":
		err = cacheCmd(context.Background(), args)
	case "size":
		var n int64
		if len(args) != 1 {
			usage()
		}
		if n, err = parseSize(args[0]); err == nil {
			fmt.Println(n)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool exec|gen|sha384|report|size|cache ... (see the package documentation)")
	os.Exit(2)
}

// parseSize reads 123, 64K, 64M, 1G, 10GiB (binary units).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "IB"), "B")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional K, M or G suffix", s)
	}
	return n * mult, nil
}

// stageUsage is what one process of a pipeline used.
type stageUsage struct {
	user, sys time.Duration
	rssKB     int64
}

// runPipeline runs the stages, stdin of the first from in, stdout of the
// last to out, and returns the wall time and each stage's usage.
func runPipeline(stages [][]string, in, out string) (time.Duration, []stageUsage, error) {
	stdin, err := os.Open(in)
	if err != nil {
		return 0, nil, err
	}
	defer stdin.Close()
	stdout, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, nil, err
	}
	defer stdout.Close()
	cmds := make([]*exec.Cmd, len(stages))
	errs := make([]*bytes.Buffer, len(stages))
	var closeAfterStart []io.Closer
	var prev io.Reader = stdin
	for i, argv := range stages {
		c := exec.Command(argv[0], argv[1:]...)
		c.Stdin = prev
		errs[i] = new(bytes.Buffer)
		c.Stderr = errs[i]
		if i == len(stages)-1 {
			c.Stdout = stdout
		} else {
			r, w, err := os.Pipe()
			if err != nil {
				return 0, nil, err
			}
			c.Stdout = w
			prev = r
			closeAfterStart = append(closeAfterStart, r, w)
		}
		cmds[i] = c
	}
	t0 := time.Now()
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			for _, c := range cmds[:i] {
				c.Process.Kill()
				c.Wait()
			}
			return 0, nil, err
		}
	}
	for _, c := range closeAfterStart {
		c.Close()
	}
	var failed []string
	usage := make([]stageUsage, len(cmds))
	for i, c := range cmds {
		err := c.Wait()
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v: %s", strings.Join(stages[i], " "), err, strings.TrimSpace(errs[i].String())))
		}
		if c.ProcessState != nil {
			if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
				usage[i] = stageUsage{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), ru.Maxrss}
			}
		}
	}
	wall := time.Since(t0)
	if failed != nil {
		return wall, usage, errors.New(strings.Join(failed, "; "))
	}
	return wall, usage, nil
}

func execCmd(args []string) error {
	fs := flag.NewFlagSet("exec", flag.ExitOnError)
	logFile := fs.String("log", "", "append the measurement to `FILE`")
	ids := fs.String("id", "", "command `ID`s (comma-separated: one per stage, or one for all)")
	rep := fs.Int("rep", 1, "repetition number")
	nbytes := fs.String("bytes", "0", "bytes processed (for MB/s)")
	msgs := fs.Int64("msgs", 0, "messages written (for msgs/s); 0: not counted")
	in := fs.String("in", "/dev/null", "stdin of the first stage")
	out := fs.String("out", "/dev/null", "stdout of the last stage")
	fs.Parse(args)
	if fs.NArg() == 0 || *logFile == "" || *ids == "" {
		return errors.New("exec: need -log, -id and a command")
	}
	var stages [][]string
	cur := []string{}
	for _, a := range fs.Args() {
		if a == "|" {
			stages = append(stages, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, a)
	}
	stages = append(stages, cur)
	for _, s := range stages {
		if len(s) == 0 {
			return errors.New("exec: empty pipeline stage")
		}
	}
	idList := strings.Split(*ids, ",")
	if len(idList) != 1 && len(idList) != len(stages) {
		return fmt.Errorf("exec: %d ids for %d stages", len(idList), len(stages))
	}
	n, err := parseSize(*nbytes)
	if err != nil {
		return err
	}
	wall, usage, err := runPipeline(stages, *in, *out)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	line := func(id string, u stageUsage) string {
		l := fmt.Sprintf("run\t%s\t%d\t%d\t%.6f\t%.6f\t%.6f\t%d", id, *rep, n, wall.Seconds(), u.user.Seconds(), u.sys.Seconds(), u.rssKB)
		if *msgs > 0 {
			l += fmt.Sprintf("\t%d", *msgs)
		}
		return l + "\n"
	}
	var text string
	if len(idList) == 1 {
		var sum stageUsage
		for _, u := range usage {
			sum.user += u.user
			sum.sys += u.sys
			sum.rssKB = max(sum.rssKB, u.rssKB)
		}
		text = line(idList[0], sum)
	} else {
		for i, id := range idList {
			text += line(id, usage[i])
		}
	}
	if _, err = f.WriteString(text); err != nil {
		return err
	}
	var rss int64
	for _, u := range usage {
		rss = max(rss, u.rssKB)
	}
	progress := fmt.Sprintf("  %-22s rep %d: %8.3f s", *ids, *rep, wall.Seconds())
	if n > 0 {
		progress += fmt.Sprintf(" %7.0f MB/s", float64(n)/wall.Seconds()/1e6)
	}
	if *msgs > 0 {
		progress += fmt.Sprintf(" %7.0f msgs/s", float64(*msgs)/wall.Seconds())
	}
	fmt.Fprintf(os.Stderr, "%s, peak RSS %.1f MiB\n", progress, float64(rss)/1024)
	return nil
}

func genCmd(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	size := fs.String("size", "1G", "bytes to write (K, M, G suffixes)")
	seed := fs.Uint64("seed", 0, "seed (0: random)")
	fs.Parse(args)
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	var s [32]byte
	if *seed == 0 {
		crand.Read(s[:])
	} else {
		binary.LittleEndian.PutUint64(s[:], *seed)
	}
	r := rand.NewChaCha8(s)
	buf := make([]byte, 1<<20)
	for n > 0 {
		b := buf[:min(int64(len(buf)), n)]
		r.Read(b)
		if _, err := os.Stdout.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
	}
	return nil
}

func sha384Cmd(args []string) error {
	src := os.Stdin
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	h := sha512.New384()
	buf := make([]byte, 1<<20)
	for {
		n, err := src.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	fmt.Println(hex.EncodeToString(h.Sum(nil)))
	return nil
}

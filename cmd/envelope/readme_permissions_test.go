package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readmeCommand is a command of a README transcript ("$ " lines, with the
// body of a here-document) and the output the README shows for it.
type readmeCommand struct {
	cmd, want string
}

// readmeTranscripts returns the commands of the sh blocks of a README
// section: lines "$ CMD", a here-document's lines up to its EOF, and then
// the lines of output until the next command.
func readmeTranscripts(t *testing.T, section string) []readmeCommand {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "\n## "+section+"\n")
	if !ok {
		t.Fatalf("README has no section %q", section)
	}
	rest, _, _ = strings.Cut(rest, "\n## ")
	var cmds []readmeCommand
	for _, block := range strings.Split(rest, "```sh\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		lines := strings.Split(strings.TrimSuffix(block, "\n"), "\n")
		for i := 0; i < len(lines); i++ {
			line := lines[i]
			cmd, ok := strings.CutPrefix(line, "$ ")
			if !ok {
				if len(cmds) == 0 {
					t.Fatalf("README %s: output %q before any command", section, line)
				}
				cmds[len(cmds)-1].want += line + "\n"
				continue
			}
			if strings.Contains(cmd, "<<'EOF'") {
				for i++; i < len(lines) && lines[i] != "EOF"; i++ {
					cmd += "\n" + lines[i]
				}
				cmd += "\nEOF"
			}
			cmds = append(cmds, readmeCommand{cmd: cmd})
		}
	}
	return cmds
}

var markerRE = regexp.MustCompile(`(?m)^@@(\d+) (start|rc (\d+))$`)

// TestReadmePermissions runs the README's Permissions examples as written,
// in order, in one shell in a new keystore, and checks that each command
// prints what the README shows. A command may fail only where the README
// shows a refusal ("Deny...").
func TestReadmePermissions(t *testing.T) {
	cmds := readmeTranscripts(t, "Permissions")
	if len(cmds) < 10 {
		t.Fatalf("the README's Permissions section has %d commands, want its three examples", len(cmds))
	}
	bin := buildEnvelope(t)
	binDir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(binDir, "envelope")); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&script, "printf '@@%d start\\n'\n%s\nprintf '\\n@@%d rc %%d\\n' $?\n", i, c.cmd, i)
	}
	work := t.TempDir()
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = work
	sh.Env = append(filterEnv(os.Environ(), "ENVELOPE_HOME", "ENVELOPE_PASSPHRASE", "ENVELOPE_STORE", "ENVELOPE_ROOT_KEY_FILE",
		"ENVELOPE_ROOT_KMS", "ENVELOPE_ROOT_KEY_ID", "ENVELOPE_KMS", "XDG_DATA_HOME", "PATH"),
		"ENVELOPE_HOME="+filepath.Join(work, "home"), "PATH="+binDir+":"+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	sh.Stdout, sh.Stderr = &stdout, &stderr
	if err := sh.Run(); err != nil {
		t.Fatalf("the examples' shell failed: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	locs := markerRE.FindAllStringSubmatchIndex(out, -1)
	if len(locs) != 2*len(cmds) {
		t.Fatalf("the shell ran %d of %d commands; stdout:\n%s\nstderr:\n%s", len(locs)/2, len(cmds), out, stderr.String())
	}
	for i, c := range cmds {
		start, end := locs[2*i], locs[2*i+1]
		got := strings.TrimRight(out[start[1]+1:end[0]], "\n")
		rc, _ := strconv.Atoi(out[end[6]:end[7]])
		want := strings.TrimSuffix(c.want, "\n")
		if got != want {
			t.Errorf("README command %q printed\n%s\nwant (as the README shows)\n%s\nstderr:\n%s", c.cmd, got, want, stderr.String())
		}
		if rc != 0 && !strings.HasPrefix(want, "Deny") {
			t.Errorf("README command %q exited with status %d; stderr:\n%s", c.cmd, rc, stderr.String())
		}
		if rc == 0 && strings.HasPrefix(want, "Deny") {
			t.Errorf("README command %q shows a refusal but exited with status 0", c.cmd)
		}
	}
}

package durable

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// tempMarker precedes the owner fields in a temporary file's name.
const tempMarker = ".envelope-"

// hostTag identifies this host and PID namespace in temporary names, so
// that a process never judges a PID of another machine (sharing the
// directory over a network) or of another container.
var hostTag = sync.OnceValue(func() string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "\x00" + pidNamespace()))
	return hex.EncodeToString(sum[:4])
})

// tempName returns a fresh temporary name beside base in dir (see [Create]).
func tempName(dir, base string) string {
	var r [6]byte
	rand.Read(r[:])
	name := "." + trimBase(base, 100) + tempMarker + hostTag() + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(r[:])
	return filepath.Join(dir, name)
}

// createTemp creates a new named temporary file beside base in dir, with
// mode perm less the umask.
func createTemp(dir, base string, perm os.FileMode) (*os.File, string, error) {
	for range 100 {
		name := tempName(dir, base)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", errors.New("could not find a free temporary name")
}

// tempOwner returns the process that made the temporary file called name,
// if name is one made on this host.
func tempOwner(name string) (pid int, ok bool) {
	i := strings.LastIndex(name, tempMarker)
	if !strings.HasPrefix(name, ".") || i < 1 {
		return 0, false
	}
	fields := strings.Split(name[i+len(tempMarker):], "-")
	if len(fields) != 3 || fields[0] != hostTag() || len(fields[2]) != 12 {
		return 0, false
	}
	if _, err := hex.DecodeString(fields[2]); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(fields[1])
	return pid, err == nil && pid > 0 && fields[1] == strconv.Itoa(pid)
}

// cleaned holds the directories removeStale has been through.
var cleaned sync.Map

// removeStale removes, once per process and directory, the temporary files
// in dir that processes of this host left when they were killed: those
// whose process no longer runs. Failures are ignored: the files are only
// litter, and the next run tries again.
func removeStale(dir string) {
	key := dir
	if abs, err := filepath.Abs(dir); err == nil {
		key = abs
	}
	if _, done := cleaned.LoadOrStore(key, true); done {
		return
	}
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	self := os.Getpid()
	for {
		names, err := d.Readdirnames(1024)
		for _, name := range names {
			pid, ok := tempOwner(name)
			if !ok || pid == self || processRuns(pid) {
				continue
			}
			p := filepath.Join(dir, name)
			if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
				os.Remove(p)
			}
		}
		if err != nil {
			return
		}
	}
}

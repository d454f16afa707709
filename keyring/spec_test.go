package keyring_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

func writeFile(t testing.TB, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustFromSpec(t testing.TB, spec string, forDecrypt bool) keyring.Keyring {
	t.Helper()
	kr, err := keyring.FromSpec(spec, forDecrypt)
	if err != nil {
		t.Fatalf("FromSpec(%q, %v) err = %v, want nil", spec, forDecrypt, err)
	}
	return kr
}

// roundTrip wraps a fresh data key with enc and unwraps it with dec.
func roundTrip(t testing.TB, enc, dec keyring.Keyring) error {
	t.Helper()
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	ec := map[string]string{"k": "v"}
	m := &keyring.EncryptionMaterials{Suite: s, Context: ec}
	if err := enc.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt err = %v, want nil", err)
	}
	dm := &keyring.DecryptionMaterials{Suite: s, Context: ec}
	if err := dec.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err != nil {
		return err
	}
	if !bytes.Equal(dm.DataKey, m.DataKey) {
		t.Fatalf("unwrapped %x, want %x", dm.DataKey, m.DataKey)
	}
	return nil
}

func TestIsSpec(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"aes:file=k,namespace=n,name=x", true},
		{"rsa:file=k,namespace=n,name=x", true},
		{"aes:", true},
		{"rsa:anything", true},
		{"aes", false},
		{"AES:file=k,namespace=n,name=x", false},
		{"des:file=k", false},
		{"alias/default", false},
		{"arn:aws:kms:eu-west-1:111122223333:key/1234abcd", false},
		{"1234abcd-12ab-34cd-56ef-1234567890ab", false},
		{"", false},
		{":aes", false},
	}
	for _, tt := range tests {
		if got := keyring.IsSpec(tt.in); got != tt.want {
			t.Errorf("IsSpec(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFromSpecAES(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{16, 24, 32} {
		key := randomBytes(n)
		b64 := base64.StdEncoding.EncodeToString(key)
		files := map[string][]byte{
			"raw":                  key,
			"base64":               []byte(b64),
			"base64 newline":       []byte(b64 + "\n"),
			"base64 CRLF":          []byte(b64 + "\r\n"),
			"base64 surrounded ws": []byte("  " + b64 + "\n\n"),
		}
		for form, data := range files {
			t.Run(fmt.Sprintf("%s/%d", form, n), func(t *testing.T) {
				path := writeFile(t, filepath.Join(dir, strings.ReplaceAll(form, " ", "-")+"-"+b64[:4]), data)
				kr := mustFromSpec(t, "aes:file="+path+",namespace=myapp,name=key1", false)
				if got, want := kr.(interface{ String() string }).String(), `raw AES key namespace="myapp" name="key1"`; got != want {
					t.Errorf("FromSpec keyring = %s, want %s", got, want)
				}
				// The keyring uses exactly the key in the file.
				direct := mustRawAES(t, "myapp", "key1", key)
				if err := roundTrip(t, kr, direct); err != nil {
					t.Errorf("unwrapping with NewRawAES(key in file) err = %v, want nil", err)
				}
				if err := roundTrip(t, direct, mustFromSpec(t, "aes:file="+path+",namespace=myapp,name=key1", true)); err != nil {
					t.Errorf("unwrapping with FromSpec(forDecrypt) err = %v, want nil", err)
				}
			})
		}
	}
}

func TestFromSpecFieldOrder(t *testing.T) {
	key := randomBytes(32)
	path := writeFile(t, filepath.Join(t.TempDir(), "key"), key)
	direct := mustRawAES(t, "ns", "k", key)
	for _, spec := range []string{
		"aes:file=" + path + ",namespace=ns,name=k",
		"aes:name=k,namespace=ns,file=" + path,
		"aes:namespace=ns,file=" + path + ",name=k",
	} {
		if err := roundTrip(t, mustFromSpec(t, spec, false), direct); err != nil {
			t.Errorf("FromSpec(%q) then unwrap err = %v, want nil", spec, err)
		}
	}
}

func TestFromSpecPathWithComma(t *testing.T) {
	key := randomBytes(32)
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "x,y", "key"), key)
	direct := mustRawAES(t, "ns", "k", key)
	for _, spec := range []string{
		"aes:file=" + path + ",namespace=ns,name=k",
		"aes:namespace=ns,name=k,file=" + path,
	} {
		if err := roundTrip(t, mustFromSpec(t, spec, false), direct); err != nil {
			t.Errorf("FromSpec(%q) then unwrap err = %v, want nil", spec, err)
		}
	}
	// A comma in a path with "=" after it, in a name that is not a field.
	odd := writeFile(t, filepath.Join(dir, "a,b=c", "key"), key)
	if err := roundTrip(t, mustFromSpec(t, "aes:file="+odd+",namespace=ns,name=k", false), direct); err != nil {
		t.Errorf("FromSpec(path %q) then unwrap err = %v, want nil", odd, err)
	}
}

func TestFromSpecRSA(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	dir := t.TempDir()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	privPath := writeFile(t, filepath.Join(dir, "priv.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	pkcs1Path := writeFile(t, filepath.Join(dir, "priv1.pem"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)}))
	pubPath := writeFile(t, filepath.Join(dir, "pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	pub1Path := writeFile(t, filepath.Join(dir, "pub1.pem"), pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&priv.PublicKey)}))

	for _, p := range paddings {
		t.Run(p.name, func(t *testing.T) {
			enc := mustFromSpec(t, "rsa:file="+pubPath+",namespace=ns,name=rsa,padding="+p.name, false)
			if got := enc.(interface{ String() string }).String(); !strings.HasSuffix(got, "padding="+p.name) {
				t.Errorf("FromSpec keyring = %s, want padding=%s", got, p.name)
			}
			for _, path := range []string{privPath, pkcs1Path} {
				dec := mustFromSpec(t, "rsa:file="+path+",namespace=ns,name=rsa,padding="+p.name, true)
				if err := roundTrip(t, enc, dec); err != nil {
					t.Errorf("unwrap with %s err = %v, want nil", filepath.Base(path), err)
				}
			}
		})
	}

	t.Run("default padding", func(t *testing.T) {
		for _, encPath := range []string{pubPath, pub1Path, privPath} {
			enc := mustFromSpec(t, "rsa:file="+encPath+",namespace=ns,name=rsa", false)
			explicit := mustFromSpec(t, "rsa:file="+privPath+",namespace=ns,name=rsa,padding=oaep-sha256", true)
			if err := roundTrip(t, enc, explicit); err != nil {
				t.Errorf("spec default padding, unwrap with padding=oaep-sha256 err = %v, want nil", err)
			}
			other := mustFromSpec(t, "rsa:file="+privPath+",namespace=ns,name=rsa,padding=oaep-sha1", true)
			if err := roundTrip(t, enc, other); !errors.Is(err, keyring.ErrNoDataKey) {
				t.Errorf("spec default padding, unwrap with padding=oaep-sha1 err = %v, want ErrNoDataKey", err)
			}
		}
	})

	t.Run("public key for decrypt", func(t *testing.T) {
		for _, path := range []string{pubPath, pub1Path} {
			spec := "rsa:file=" + path + ",namespace=ns,name=rsa"
			kr, err := keyring.FromSpec(spec, true)
			if err == nil {
				t.Fatalf("FromSpec(%q, forDecrypt) = %v, want an error", spec, kr)
			}
			if !strings.Contains(err.Error(), "private key") || !strings.Contains(err.Error(), path) {
				t.Errorf("FromSpec(%q, forDecrypt) err = %q, want it to name the file and ask for the private key", spec, err)
			}
		}
	})

	t.Run("unknown padding", func(t *testing.T) {
		for _, p := range []string{"oaep", "", "pkcs1v15"} {
			spec := "rsa:file=" + privPath + ",namespace=ns,name=rsa,padding=" + p
			_, err := keyring.FromSpec(spec, false)
			var se *keyring.SpecError
			if !errors.As(err, &se) {
				t.Errorf("FromSpec(%q) err = %v, want *SpecError", spec, err)
			} else if se.Spec != spec || !strings.Contains(se.Reason, "padding") {
				t.Errorf("FromSpec(%q) SpecError = %+v, want the spec and a reason about padding", spec, se)
			}
		}
	})
}

func TestFromSpecRSASmallKey(t *testing.T) {
	// 1024 bits is the smallest key Go will generate; the keyring wants 2048.
	small := mustGenerateRSA(t, 1024)
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	path := writeFile(t, filepath.Join(t.TempDir(), "small.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	_, err := keyring.FromSpec("rsa:file="+path+",namespace=ns,name=k", true)
	if err == nil || !strings.Contains(err.Error(), "1024 bits") || !strings.Contains(err.Error(), path) {
		t.Errorf("FromSpec(1024-bit key) err = %v, want one naming the file and the key size", err)
	}
}

func TestFromSpecMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "key.bin")
	for _, kind := range []string{"aes", "rsa"} {
		spec := kind + ":file=" + path + ",namespace=ns,name=k"
		_, err := keyring.FromSpec(spec, false)
		if err == nil {
			t.Fatalf("FromSpec(%q) err = nil, want an error", spec)
		}
		if !strings.Contains(err.Error(), `"`+path+`"`) {
			t.Errorf("FromSpec(%q) err = %q, want it to name the path", spec, err)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("FromSpec(%q) err = %v, want errors.Is(err, fs.ErrNotExist)", spec, err)
		}
		if strings.Count(err.Error(), path) != 1 {
			t.Errorf("FromSpec(%q) err = %q, want the path once (not the os.PathError's too)", spec, err)
		}
	}
}

func TestFromSpecMalformed(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "key"), randomBytes(32))
	tests := []struct {
		name, spec, reason string
	}{
		{"missing file", "aes:namespace=ns,name=k", "missing file="},
		{"missing namespace", "aes:file=" + path + ",name=k", "missing namespace="},
		{"missing name", "aes:file=" + path + ",namespace=ns", "missing name="},
		{"empty name", "aes:file=" + path + ",namespace=ns,name=", "missing name="},
		{"empty file", "aes:file=,namespace=ns,name=k", "missing file="},
		{"nothing", "aes:", "unknown field"},
		{"rsa missing name", "rsa:file=" + path + ",namespace=ns", "missing name="},
		{"duplicate name", "aes:file=" + path + ",namespace=ns,name=k,name=k2", "name= given twice"},
		{"duplicate file", "aes:file=" + path + ",file=" + path + ",namespace=ns,name=k", "file= given twice"},
		{"duplicate padding", "rsa:file=" + path + ",namespace=ns,name=k,padding=pkcs1,padding=pkcs1", "padding= given twice"},
		{"unknown first field", "aes:path=" + path + ",namespace=ns,name=k", "unknown field"},
		{"unknown kind", "des:file=" + path + ",namespace=ns,name=k", "unknown key form"},
		{"upper-case kind", "AES:file=" + path + ",namespace=ns,name=k", "unknown key form"},
		{"no colon", "aes", "unknown key form"},
		{"KMS alias", "alias/default", "unknown key form"},
		{"empty", "", "unknown key form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := keyring.FromSpec(tt.spec, false)
			var se *keyring.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("FromSpec(%q) = %v, %v; want a *SpecError", tt.spec, kr, err)
			}
			if se.Spec != tt.spec {
				t.Errorf("SpecError.Spec = %q, want %q", se.Spec, tt.spec)
			}
			if !strings.Contains(se.Reason, tt.reason) {
				t.Errorf("FromSpec(%q) reason = %q, want it to contain %q", tt.spec, se.Reason, tt.reason)
			}
			if want := "keyring: key " + strconv.Quote(tt.spec) + ": " + se.Reason; err.Error() != want {
				t.Errorf("SpecError.Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

// TestFromSpecAESRefusesPadding: padding= belongs to rsa keys; on an aes key
// it is refused rather than silently taken as part of the name.
func TestFromSpecAESRefusesPadding(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "key"), randomBytes(32))
	_, err := keyring.FromSpec("aes:file="+path+",namespace=ns,name=k,padding=pkcs1", false)
	var se *keyring.SpecError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "padding= is not a field of aes keys") {
		t.Errorf("FromSpec(aes with padding=) err = %v, want a SpecError about padding=", err)
	}
}

func TestFromSpecGarbageKeyFile(t *testing.T) {
	const secret = "SECRET-DO-NOT-ECHO-0123456789abcdef"
	dir := t.TempDir()
	tests := []struct {
		name, kind string
		data       []byte
		errHas     string
	}{
		{"aes text", "aes", []byte(secret + "\n"), "want a 16, 24 or 32-byte AES key"},
		{"aes 31 bytes", "aes", []byte(secret[:31]), "holds 31 bytes"},
		{"aes empty", "aes", nil, "holds 0 bytes"},
		{"aes base64 of 20 bytes", "aes", []byte(base64.StdEncoding.EncodeToString([]byte(secret[:20]))), "want a 16, 24 or 32-byte AES key"},
		{"aes PEM", "aes", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte(secret)}), "want a 16, 24 or 32-byte AES key"},
		{"rsa text", "rsa", []byte(secret), "no PEM block"},
		{"rsa bad PEM body", "rsa", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte(secret)}), "parsing PRIVATE KEY"},
		{"rsa bad PKCS #1 body", "rsa", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte(secret)}), "parsing RSA PRIVATE KEY"},
		{"rsa raw AES key", "rsa", randomBytes(32), "no PEM block"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, string(rune('a'+i))), tt.data)
			spec := tt.kind + ":file=" + path + ",namespace=ns,name=k"
			kr, err := keyring.FromSpec(spec, false)
			if err == nil {
				t.Fatalf("FromSpec(%q) = %v, want an error", spec, kr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.errHas) || !strings.Contains(msg, path) {
				t.Errorf("FromSpec(%q) err = %q, want it to name the file and contain %q", spec, msg, tt.errHas)
			}
			if strings.Contains(msg, secret[:8]) || (len(tt.data) > 0 && strings.Contains(msg, string(tt.data))) {
				t.Errorf("FromSpec(%q) err = %q echoes the key file", spec, msg)
			}
			var se *keyring.SpecError
			if errors.As(err, &se) {
				t.Errorf("FromSpec(%q) err is a *SpecError; the spec is well formed, the file is not", spec)
			}
		})
	}
}

package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

func init() { keystoreProcessTests["BackupWhileServing"] = testBackupWhileServing }

// testBackupWhileServing backs up the keystore of a running server while
// clients create keys and encrypt under them: the backup is a keystore that
// a server of its own serves, and that decrypts every ciphertext made
// before the backup began; once the server has stopped, its audit log
// verifies with the backup's audit key and marks.
func testBackupWhileServing(t *testing.T, bin string) {
	p := startServe(t, bin, serveOpts{})
	ctx := context.Background()
	c := p.client(serveRoot)
	type blob struct{ data, plaintext []byte }
	encrypt := func(keyID string, n int) (blob, error) {
		pt := []byte(strings.Repeat("x", n%64+1))
		out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: pt})
		if err != nil {
			return blob{}, err
		}
		return blob{out.CiphertextBlob, pt}, nil
	}
	var before []blob
	for i := range 4 {
		k, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := encrypt(aws.ToString(k.KeyMetadata.KeyId), i)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, b)
	}

	// Load from two clients while the backup runs.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var loadErr atomic.Value
	for range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				k, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("made during the backup")})
				if err == nil {
					_, err = encrypt(aws.ToString(k.KeyMetadata.KeyId), i)
				}
				if err != nil {
					loadErr.Store(err)
					return
				}
			}
		})
	}
	bak := filepath.Join(t.TempDir(), "bak")
	r := runEnvelope(t, bin, serveEnviron(p.home, false), "keystore", "backup", "-o", bak)
	stop.Store(true)
	wg.Wait()
	if err := loadErr.Load(); err != nil {
		t.Fatalf("the load failed: %v", err)
	}
	if r.code != 0 || !strings.HasPrefix(r.stdout, "backed up ") {
		t.Fatalf("%v", r)
	}

	b := startServe(t, bin, serveOpts{args: []string{"--store", bak, "--audit-log", filepath.Join(t.TempDir(), "audit.log")}})
	bc := b.client(serveRoot)
	for i, blob := range before {
		out, err := bc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.data})
		if err != nil || string(out.Plaintext) != string(blob.plaintext) {
			t.Errorf("ciphertext %d made before the backup: Decrypt on the backup = %v, %v", i, out, err)
		}
	}
	keys, err := bc.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil || len(keys.Keys) < len(before) {
		t.Fatalf("the backup's ListKeys = %v, %v; want at least %d keys", keys, err, len(before))
	}
	// Every key in the backup is whole: each encrypts and decrypts.
	for _, k := range keys.Keys {
		out, err := bc.Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("whole")})
		if err == nil {
			_, err = bc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
		}
		if err != nil {
			t.Errorf("key %s in the backup: %v", aws.ToString(k.KeyId), err)
		}
	}

	if code := p.stop(); code != 0 {
		t.Fatalf("the server exited with status %d", code)
	}
	code, out, errOut := auditVerify(t, bin, p.home, "--store", bak, filepath.Join(p.home, "audit.log"))
	if code != 0 || !strings.Contains(out, "chain intact") || !strings.Contains(out, "its end is at or past the keystore's high-water mark") {
		t.Errorf("audit verify of the server's log with the backup's key and marks: status %d\n%s%s", code, out, errOut)
	}
}

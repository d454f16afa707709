package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
)

// writePolicyFile replaces the policy file at path with doc, atomically
// (as an operator's editor or deployment does), mode 0600.
func writePolicyFile(t *testing.T, path, doc string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func reloadPrincipal(name, key string) string {
	return fmt.Sprintf(`{"name": %q, "accessKeyId": %q, "secretAccessKey": "secret-%s",
		"allow": [{"actions": ["kms:Encrypt", "kms:DescribeKey"], "keys": ["alias/app"]}]}`, name, key, name)
}

// TestServePolicyReload: SIGHUP reloads the policy file while requests
// run: a principal added can call at once, one removed no longer can, a
// file that does not load is logged and leaves the one in force, and no
// request that should succeed fails meanwhile (zero failures under load).
func TestServePolicyReload(t *testing.T) {
	bin := buildEnvelope(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.json")
	const appKey, newKey = "AKIDRELOADAPP0000001", "AKIDRELOADNEW0000001"
	writePolicyFile(t, file, `{"principals": [`+reloadPrincipal("app", appKey)+`]}`)
	p := startServe(t, bin, serveOpts{args: []string{"--policy", file}})
	ctx := context.Background()
	root := p.client(aws.Credentials{AccessKeyID: serveRootID, SecretAccessKey: serveRootSecret})
	ck := must[*kms.CreateKeyOutput](t, "CreateKey")(root.CreateKey(ctx, &kms.CreateKeyInput{}))
	must[*kms.CreateAliasOutput](t, "CreateAlias")(root.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: ck.KeyMetadata.KeyId}))
	app := p.client(aws.Credentials{AccessKeyID: appKey, SecretAccessKey: "secret-app"})
	newcomer := p.client(aws.Credentials{AccessKeyID: newKey, SecretAccessKey: "secret-new"})
	encrypt := func(c *kms.Client) error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/app"), Plaintext: []byte("x")})
		return err
	}
	if err := encrypt(newcomer); !isCode(err, "UnrecognizedClientException") {
		t.Fatalf("a principal not yet in the policy file: err = %v, want UnrecognizedClientException", err)
	}

	// Load: app encrypts all along; every request must succeed.
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := encrypt(app); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	hup := func() {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	// poll waits until cond holds, sending SIGHUP once first.
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: not within 10s; server output:\n%s", what, p.stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	writePolicyFile(t, file, `{"principals": [`+reloadPrincipal("app", appKey)+`, `+reloadPrincipal("new", newKey)+`]}`)
	hup()
	poll("the principal added is served", func() bool { return encrypt(newcomer) == nil })

	n := strings.Count(p.stderr.String(), "policy file not reloaded")
	writePolicyFile(t, file, `{"principals": [`+reloadPrincipal("app", appKey)+`,`) // cut short
	hup()
	poll("the bad file is logged", func() bool { return strings.Count(p.stderr.String(), "policy file not reloaded") > n })
	if err := encrypt(newcomer); err != nil {
		t.Errorf("after a policy file that does not load, the principals in force changed: %v", err)
	}

	writePolicyFile(t, file, `{"principals": [`+reloadPrincipal("app", appKey)+`]}`)
	hup()
	poll("the principal removed is refused", func() bool { return isCode(encrypt(newcomer), "UnrecognizedClientException") })

	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests that should have succeeded failed during the reloads; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 10 {
		t.Errorf("the load barely ran: %d requests", ok.Load())
	}
	t.Logf("%d requests, none failed, across 3 reloads", ok.Load())
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

package awsapi

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// panickyBackend panics in GenerateDataKey: a stand-in for a bug below the
// server.
type panickyBackend struct{ Backend }

func (panickyBackend) GenerateDataKey(context.Context, *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error) {
	panic("bug")
}

// TestPanicIsAFailure checks that a panic below the server is answered as
// an internal failure, counted and audited as one, and that the server
// goes on serving.
func TestPanicIsAFailure(t *testing.T) { bothFrontEnds(t, testPanicIsAFailure) }

func testPanicIsAFailure(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Backend = panickyBackend{c.Backend} })
	resp := e.do(e.request("GenerateDataKey", []byte(`{"KeyId":"alias/x","NumberOfBytes":32}`), signOpts{}))
	wantError(t, resp, kms.CodeInternal)
	if resp.status != 500 {
		t.Errorf("status %d, want 500", resp.status)
	}
	resp = e.do(e.request("ListKeys", []byte(`{}`), signOpts{}))
	if resp.status != 200 {
		t.Fatalf("after the panic, ListKeys: %d %s", resp.status, resp.body)
	}
	if err := e.audit.Close(); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"operation":"GenerateDataKey"`) || !strings.Contains(string(log), `"result":"`+kms.CodeInternal+`"`) {
		t.Errorf("the audit log does not record the failed GenerateDataKey:\n%s", log)
	}
}

// TestRequestBodiesNotRetained sends requests with large bodies naming
// different keys: nothing decoded from a body (key ids and aliases the key
// cache may keep) may keep the whole body alive.
func TestRequestBodiesNotRetained(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ck, err := e.ks.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := e.ks.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: fmt.Sprintf("alias/p%d", i), TargetKeyId: ck.KeyMetadata.KeyId}); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	big := strings.Repeat("A", 1_000_000)
	for i := range 20 {
		body := fmt.Sprintf(`{"KeyId":"alias/p%d","NumberOfBytes":32,"EncryptionContext":{"p":"%s"}}`, i, big)
		errorCode(t, e.do(e.request("GenerateDataKey", []byte(body), signOpts{})))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Errorf("the heap grew by %d MiB after 20 requests of 1 MB (bodies retained)", grown>>20)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// The root principal every test server starts with, from the environment.
const (
	serveRootID     = "EVKSERVETESTROOT0001"
	serveRootSecret = "serve/root/secret/0123456789abcdefghijkl"
	serveRegion     = "us-east-1"
	serveAccount    = "111122223333"
)

var serveRoot = aws.Credentials{AccessKeyID: serveRootID, SecretAccessKey: serveRootSecret}

// TestServe runs "envelope serve" as a real process, built once from this
// package, and talks to it with the official AWS SDK for Go v2 and with
// hand-made requests signed by that SDK's signer.
func TestServe(t *testing.T) {
	bin := buildEnvelope(t)
	t.Run("Conformance", func(t *testing.T) { testServeConformance(t, bin) })
	t.Run("Security", func(t *testing.T) { testServeSecurity(t, bin) })
	t.Run("InsecureDev", func(t *testing.T) { testServeInsecureDev(t, bin) })
	t.Run("RootCredentialsFile", func(t *testing.T) { testServeRootCredentialsFile(t, bin) })
	t.Run("LoadSmoke", func(t *testing.T) { testServeLoadSmoke(t, bin) })
	t.Run("GracefulShutdown", func(t *testing.T) { testServeGracefulShutdown(t, bin) })
	t.Run("ShutdownInFlight", func(t *testing.T) { testServeShutdownInFlight(t, bin) })
	t.Run("Protection", func(t *testing.T) { testServeProtection(t, bin) })
	t.Run("PlainHTTPWarning", func(t *testing.T) { testServePlainHTTPWarning(t, bin) })
}

// buildEnvelope builds the envelope command into a temporary directory.
func buildEnvelope(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "envelope")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	start := time.Now()
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built envelope in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// --- the server process ----------------------------------------------------

// lockedBuffer collects a process's output safely.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveProc is a running "envelope serve".
type serveProc struct {
	t      *testing.T
	home   string
	addr   string
	url    string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{} // closed once the process has exited
	once   sync.Once
	code   int // exit status, once exited
}

// serveOpts configure startServe.
type serveOpts struct {
	args []string // more flags
	// noRootEnv leaves ENVELOPE_ROOT_* unset (root credentials then come
	// from root-credentials.json).
	noRootEnv bool
	// env adds NAME=VALUE settings to the environment.
	env []string
}

// serveEnviron is the environment of envelope processes: this one's
// without envelope, AWS and XDG settings, with ENVELOPE_HOME=home and, if
// root, the root credentials.
func serveEnviron(home string, root bool) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ENVELOPE_") || strings.HasPrefix(name, "AWS_") || name == "XDG_DATA_HOME" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "ENVELOPE_HOME="+home)
	if root {
		env = append(env, "ENVELOPE_ROOT_ACCESS_KEY_ID="+serveRootID, "ENVELOPE_ROOT_SECRET_ACCESS_KEY="+serveRootSecret)
	}
	return env
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServe starts "envelope serve" on a free loopback port with a new
// ENVELOPE_HOME, waits until /healthz answers, and stops it (SIGTERM,
// expecting exit status 0) when the test ends.
func startServe(t *testing.T, bin string, o serveOpts) *serveProc {
	t.Helper()
	home := t.TempDir()
	for attempt := 1; ; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := &serveProc{t: t, home: home, addr: addr, url: "http://" + addr, stderr: &lockedBuffer{}, exited: make(chan struct{})}
		p.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr}, o.args...)...)
		p.cmd.Env = append(serveEnviron(home, !o.noRootEnv), o.env...)
		p.cmd.Stdout = p.stderr
		p.cmd.Stderr = p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("starting envelope serve: %v", err)
		}
		go func() {
			p.cmd.Wait()
			p.code = p.cmd.ProcessState.ExitCode()
			close(p.exited)
		}()
		err := p.waitReady(30 * time.Second)
		if err == nil {
			t.Cleanup(func() {
				if code := p.stop(); code != 0 {
					t.Errorf("envelope serve exited with status %d on SIGTERM, want 0; output:\n%s", code, p.stderr.String())
				}
			})
			return p
		}
		p.kill()
		if attempt < 5 && strings.Contains(p.stderr.String(), "address already in use") {
			continue // the free port was taken meanwhile
		}
		t.Fatalf("envelope serve %s: %v; output:\n%s", strings.Join(o.args, " "), err, p.stderr.String())
	}
}

// waitReady polls /healthz until it answers 200, the process exits or the
// deadline passes.
func (p *serveProc) waitReady(d time.Duration) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited with status %d before it was ready", p.code)
		case <-deadline.C:
			return fmt.Errorf("/healthz did not answer within %v", d)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM and returns the exit status (once; later calls return
// the same status).
func (p *serveProc) stop() int {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
			p.t.Errorf("envelope serve did not exit within 20s of SIGTERM")
		}
	})
	return p.code
}

func (p *serveProc) kill() {
	p.once.Do(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
}

// client returns an SDK KMS client for the server, with retries off.
func (p *serveProc) client(creds aws.Credentials, optFns ...func(*kms.Options)) *kms.Client {
	return kms.New(kms.Options{
		BaseEndpoint: aws.String(p.url),
		Region:       serveRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		Retryer:      aws.NopRetryer{},
	}, optFns...)
}

// rawResult is the outcome of a hand-made request.
type rawResult struct {
	status    int
	code      string // the __type of an error
	requestID string
	body      []byte
}

// raw sends op with body; sign (if not nil) signs the request first.
func (p *serveProc) raw(op string, body []byte, sign func(*http.Request)) rawResult {
	p.t.Helper()
	r, err := http.NewRequest(http.MethodPost, p.url+"/", bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService."+op)
	if sign != nil {
		sign(r)
	}
	return p.send(r)
}

func (p *serveProc) send(r *http.Request) rawResult {
	p.t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		p.t.Fatalf("POST %s: %v", r.Header.Get("X-Amz-Target"), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	res := rawResult{status: resp.StatusCode, requestID: resp.Header.Get("x-amzn-RequestId"), body: b}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type string `json:"__type"`
		}
		json.Unmarshal(b, &e)
		res.code = e.Type
		if h := resp.Header.Get("x-amzn-ErrorType"); h != e.Type {
			p.t.Errorf("x-amzn-ErrorType %q differs from __type %q", h, e.Type)
		}
	}
	return res
}

// signer returns a function that signs a request (whose body is body) with
// the SDK's SigV4 signer.
func signer(t *testing.T, body []byte, creds aws.Credentials, region, service string, at time.Time) func(*http.Request) {
	return func(r *http.Request) {
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), service, region, at); err != nil {
			t.Fatalf("SignHTTP: %v", err)
		}
	}
}

// --- assertions -------------------------------------------------------------

// wantErrorType checks that err is (wraps) the SDK error type T.
func wantErrorType[T error](t *testing.T, what string, err error) {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Errorf("%s: err = %v, want %T", what, err, target)
	}
}

// wantErrorCode checks the AWS error name of err (for errors the KMS model
// does not declare, such as ValidationException).
func wantErrorCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Errorf("%s: err = %v, want the API error %s", what, err, code)
		return
	}
	if ae.ErrorCode() != code {
		t.Errorf("%s: error %s (%s), want %s", what, ae.ErrorCode(), ae.ErrorMessage(), code)
	}
}

// requestIDOf returns the request id of an SDK error.
func requestIDOf(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func near(t *testing.T, what string, got *time.Time, want time.Time, tolerance time.Duration) {
	t.Helper()
	if got == nil {
		t.Errorf("%s is absent, want about %v", what, want)
		return
	}
	if d := got.Sub(want); d < -tolerance || d > tolerance {
		t.Errorf("%s = %v, want within %v of %v", what, got, tolerance, want)
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func keyARN(id string) string {
	return "arn:aws:kms:" + serveRegion + ":" + serveAccount + ":key/" + id
}

// --- conformance --------------------------------------------------------------

// testServeConformance calls every operation of the KMS API with the SDK
// and checks the answers in the SDK's own types, and its errors by type.
func testServeConformance(t *testing.T, bin string) {
	p := startServe(t, bin, serveOpts{})
	c := p.client(serveRoot)
	ctx := context.Background()
	now := time.Now()

	var sym, sym2, rsaKey string
	t.Run("CreateKey", func(t *testing.T) {
		out := must[*kms.CreateKeyOutput](t, "CreateKey")(c.CreateKey(ctx, &kms.CreateKeyInput{
			Description: aws.String("conformance"),
			Tags:        []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("security")}},
		}))
		m := out.KeyMetadata
		sym = aws.ToString(m.KeyId)
		if !uuidPattern.MatchString(sym) || aws.ToString(m.Arn) != keyARN(sym) || aws.ToString(m.AWSAccountId) != serveAccount {
			t.Errorf("CreateKey id %q, ARN %q, account %q", sym, aws.ToString(m.Arn), aws.ToString(m.AWSAccountId))
		}
		//lint:ignore SA1019 the deprecated field is still sent by KMS, and clients read it.
		if m.KeySpec != types.KeySpecSymmetricDefault || m.CustomerMasterKeySpec != types.CustomerMasterKeySpecSymmetricDefault ||
			m.KeyUsage != types.KeyUsageTypeEncryptDecrypt || m.KeyState != types.KeyStateEnabled || !m.Enabled ||
			m.Origin != types.OriginTypeAwsKms || m.KeyManager != types.KeyManagerTypeCustomer ||
			aws.ToString(m.Description) != "conformance" || aws.ToBool(m.MultiRegion) ||
			!slices.Equal(m.EncryptionAlgorithms, []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecSymmetricDefault}) {
			t.Errorf("CreateKey metadata = %+v", *m)
		}
		near(t, "CreationDate", m.CreationDate, now, time.Minute)
		if m.DeletionDate != nil || m.PendingDeletionWindowInDays != nil {
			t.Errorf("a new key has DeletionDate %v, window %v", m.DeletionDate, m.PendingDeletionWindowInDays)
		}

		out = must[*kms.CreateKeyOutput](t, "CreateKey")(c.CreateKey(ctx, &kms.CreateKeyInput{}))
		sym2 = aws.ToString(out.KeyMetadata.KeyId)

		out = must[*kms.CreateKeyOutput](t, "CreateKey RSA_2048")(c.CreateKey(ctx, &kms.CreateKeyInput{
			KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt}))
		m = out.KeyMetadata
		rsaKey = aws.ToString(m.KeyId)
		if m.KeySpec != types.KeySpecRsa2048 || m.KeyUsage != types.KeyUsageTypeEncryptDecrypt ||
			!slices.Contains(m.EncryptionAlgorithms, types.EncryptionAlgorithmSpecRsaesOaepSha256) ||
			!slices.Contains(m.EncryptionAlgorithms, types.EncryptionAlgorithmSpecRsaesOaepSha1) {
			t.Errorf("CreateKey RSA_2048 metadata = %+v", *m)
		}

		_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify})
		wantErrorType[*types.UnsupportedOperationException](t, "CreateKey SM2", err)
		_, err = c.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
		wantErrorType[*types.UnsupportedOperationException](t, "CreateKey MultiRegion", err)
		_, err = c.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String("not a policy")})
		wantErrorType[*types.MalformedPolicyDocumentException](t, "CreateKey with a malformed policy", err)
	})
	if sym == "" || sym2 == "" || rsaKey == "" {
		t.Fatal("no keys to go on with")
	}

	t.Run("DescribeKey", func(t *testing.T) {
		for _, ref := range []string{sym, keyARN(sym)} {
			out := must[*kms.DescribeKeyOutput](t, "DescribeKey "+ref)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)}))
			if aws.ToString(out.KeyMetadata.KeyId) != sym {
				t.Errorf("DescribeKey(%s) = key %s", ref, aws.ToString(out.KeyMetadata.KeyId))
			}
		}
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab")})
		wantErrorType[*types.NotFoundException](t, "DescribeKey(missing key)", err)
		_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/missing")})
		wantErrorType[*types.NotFoundException](t, "DescribeKey(missing alias)", err)
		_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("arn:aws:s3:::bucket/object")})
		wantErrorType[*types.InvalidArnException](t, "DescribeKey(S3 ARN)", err)
	})

	t.Run("ListKeys", func(t *testing.T) {
		out := must[*kms.ListKeysOutput](t, "ListKeys")(c.ListKeys(ctx, &kms.ListKeysInput{}))
		if len(out.Keys) != 3 || out.Truncated {
			t.Errorf("ListKeys = %d keys, truncated %v; want 3, false", len(out.Keys), out.Truncated)
		}
		var ids []string
		pages := kms.NewListKeysPaginator(c, &kms.ListKeysInput{Limit: aws.Int32(1)})
		for n := 0; pages.HasMorePages(); n++ {
			page := must[*kms.ListKeysOutput](t, "ListKeys page")(pages.NextPage(ctx))
			if len(page.Keys) != 1 || n > 5 {
				t.Fatalf("ListKeys page %d has %d keys", n, len(page.Keys))
			}
			if aws.ToString(page.Keys[0].KeyArn) != keyARN(aws.ToString(page.Keys[0].KeyId)) {
				t.Errorf("ListKeys entry %+v: ARN does not match id", page.Keys[0])
			}
			ids = append(ids, aws.ToString(page.Keys[0].KeyId))
		}
		slices.Sort(ids)
		want := []string{sym, sym2, rsaKey}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("ListKeys pages gave %v, want %v", ids, want)
		}
		_, err := c.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1001)})
		wantErrorCode(t, "ListKeys Limit 1001", err, "ValidationException")
	})

	t.Run("UpdateKeyDescription", func(t *testing.T) {
		must[*kms.UpdateKeyDescriptionOutput](t, "UpdateKeyDescription")(c.UpdateKeyDescription(ctx,
			&kms.UpdateKeyDescriptionInput{KeyId: aws.String(sym), Description: aws.String("updated")}))
		out := must[*kms.DescribeKeyOutput](t, "DescribeKey")(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(sym)}))
		if d := aws.ToString(out.KeyMetadata.Description); d != "updated" {
			t.Errorf("Description = %q after UpdateKeyDescription, want \"updated\"", d)
		}
	})

	t.Run("Aliases", func(t *testing.T) {
		must[*kms.CreateAliasOutput](t, "CreateAlias")(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/conf"), TargetKeyId: aws.String(sym)}))
		_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/conf"), TargetKeyId: aws.String(sym2)})
		wantErrorType[*types.AlreadyExistsException](t, "CreateAlias twice", err)
		_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/reserved"), TargetKeyId: aws.String(sym)})
		wantErrorType[*types.InvalidAliasNameException](t, "CreateAlias alias/aws/...", err)
		_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/x"), TargetKeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab")})
		wantErrorType[*types.NotFoundException](t, "CreateAlias to a missing key", err)

		out := must[*kms.ListAliasesOutput](t, "ListAliases")(c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(sym)}))
		if len(out.Aliases) != 1 {
			t.Fatalf("ListAliases(%s) = %d aliases, want 1", sym, len(out.Aliases))
		}
		a := out.Aliases[0]
		if aws.ToString(a.AliasName) != "alias/conf" || aws.ToString(a.AliasArn) != "arn:aws:kms:us-east-1:111122223333:alias/conf" ||
			aws.ToString(a.TargetKeyId) != sym {
			t.Errorf("ListAliases entry = %+v", a)
		}
		near(t, "alias CreationDate", a.CreationDate, now, time.Minute)
		near(t, "alias LastUpdatedDate", a.LastUpdatedDate, now, time.Minute)
		all := must[*kms.ListAliasesOutput](t, "ListAliases")(c.ListAliases(ctx, &kms.ListAliasesInput{}))
		if !slices.ContainsFunc(all.Aliases, func(a types.AliasListEntry) bool { return aws.ToString(a.AliasName) == "alias/conf" }) {
			t.Errorf("ListAliases() lacks alias/conf: %+v", all.Aliases)
		}

		desc := must[*kms.DescribeKeyOutput](t, "DescribeKey alias")(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/conf")}))
		if aws.ToString(desc.KeyMetadata.KeyId) != sym {
			t.Errorf("DescribeKey(alias/conf) = %s, want %s", aws.ToString(desc.KeyMetadata.KeyId), sym)
		}
		must[*kms.UpdateAliasOutput](t, "UpdateAlias")(c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/conf"), TargetKeyId: aws.String(sym2)}))
		desc = must[*kms.DescribeKeyOutput](t, "DescribeKey alias")(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("arn:aws:kms:us-east-1:111122223333:alias/conf")}))
		if aws.ToString(desc.KeyMetadata.KeyId) != sym2 {
			t.Errorf("DescribeKey(alias ARN) after UpdateAlias = %s, want %s", aws.ToString(desc.KeyMetadata.KeyId), sym2)
		}
		_, err = c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/none"), TargetKeyId: aws.String(sym2)})
		wantErrorType[*types.NotFoundException](t, "UpdateAlias of a missing alias", err)
		must[*kms.DeleteAliasOutput](t, "DeleteAlias")(c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/conf")}))
		_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/conf")})
		wantErrorType[*types.NotFoundException](t, "DescribeKey of a deleted alias", err)
		_, err = c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/conf")})
		wantErrorType[*types.NotFoundException](t, "DeleteAlias twice", err)
		// Leave an alias for the crypto calls.
		must[*kms.CreateAliasOutput](t, "CreateAlias")(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/sym"), TargetKeyId: aws.String(sym)}))
	})

	t.Run("Tags", func(t *testing.T) {
		must[*kms.TagResourceOutput](t, "TagResource")(c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(sym),
			Tags: []types.Tag{{TagKey: aws.String("env"), TagValue: aws.String("test")}, {TagKey: aws.String("app"), TagValue: aws.String("")}}}))
		tags := func() string {
			out := must[*kms.ListResourceTagsOutput](t, "ListResourceTags")(c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(keyARN(sym))}))
			var s []string
			for _, tg := range out.Tags {
				s = append(s, aws.ToString(tg.TagKey)+"="+aws.ToString(tg.TagValue))
			}
			return strings.Join(s, ",")
		}
		if got := tags(); got != "app=,env=test,team=security" {
			t.Errorf("tags = %q, want app=,env=test,team=security", got)
		}
		must[*kms.UntagResourceOutput](t, "UntagResource")(c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(sym), TagKeys: []string{"team", "app"}}))
		if got := tags(); got != "env=test" {
			t.Errorf("tags after UntagResource = %q, want env=test", got)
		}
		_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(sym), Tags: []types.Tag{{TagKey: aws.String("aws:reserved"), TagValue: aws.String("x")}}})
		wantErrorType[*types.TagException](t, "TagResource aws:", err)
	})

	var oldBlob []byte
	ec := map[string]string{"tenant": "t1", "purpose": "conformance"}
	t.Run("EncryptDecrypt", func(t *testing.T) {
		enc := must[*kms.EncryptOutput](t, "Encrypt")(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/sym"), Plaintext: []byte("hello, kms"), EncryptionContext: ec}))
		if aws.ToString(enc.KeyId) != keyARN(sym) || enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault || len(enc.CiphertextBlob) == 0 {
			t.Errorf("Encrypt = key %s, algorithm %s, %d bytes", aws.ToString(enc.KeyId), enc.EncryptionAlgorithm, len(enc.CiphertextBlob))
		}
		oldBlob = enc.CiphertextBlob
		for _, keyID := range []*string{nil, aws.String(sym), aws.String("alias/sym"), aws.String(keyARN(sym))} {
			dec := must[*kms.DecryptOutput](t, "Decrypt")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: keyID}))
			if string(dec.Plaintext) != "hello, kms" || aws.ToString(dec.KeyId) != keyARN(sym) || dec.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
				t.Errorf("Decrypt (KeyId %v) = %q under %s (%s)", aws.ToString(keyID), dec.Plaintext, aws.ToString(dec.KeyId), dec.EncryptionAlgorithm)
			}
		}
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"tenant": "t2", "purpose": "conformance"}})
		wantErrorType[*types.InvalidCiphertextException](t, "Decrypt with another context", err)
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		wantErrorType[*types.InvalidCiphertextException](t, "Decrypt without the context", err)
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String(sym2)})
		wantErrorType[*types.IncorrectKeyException](t, "Decrypt naming another key", err)
		tampered := bytes.Clone(enc.CiphertextBlob)
		tampered[len(tampered)-1] ^= 1
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: tampered, EncryptionContext: ec})
		wantErrorType[*types.InvalidCiphertextException](t, "Decrypt of a tampered blob", err)
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("certainly not a ciphertext blob of any KMS at all")})
		wantErrorType[*types.InvalidCiphertextException](t, "Decrypt of garbage", err)
		_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym), Plaintext: make([]byte, 4097)})
		wantErrorCode(t, "Encrypt of 4097 bytes", err, "ValidationException")
		_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym), Plaintext: []byte("x"), DryRun: aws.Bool(true)})
		wantErrorType[*types.DryRunOperationException](t, "Encrypt DryRun", err)
		_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/missing"), Plaintext: []byte("x")})
		wantErrorType[*types.NotFoundException](t, "Encrypt under a missing alias", err)
	})

	t.Run("ReEncrypt", func(t *testing.T) {
		dstEC := map[string]string{"moved": "yes"}
		out := must[*kms.ReEncryptOutput](t, "ReEncrypt")(c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: oldBlob,
			SourceEncryptionContext: ec, DestinationKeyId: aws.String(sym2), DestinationEncryptionContext: dstEC}))
		if aws.ToString(out.SourceKeyId) != keyARN(sym) || aws.ToString(out.KeyId) != keyARN(sym2) ||
			out.SourceEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault ||
			out.DestinationEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
			t.Errorf("ReEncrypt = %+v", out)
		}
		dec := must[*kms.DecryptOutput](t, "Decrypt re-encrypted")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: dstEC}))
		if string(dec.Plaintext) != "hello, kms" || aws.ToString(dec.KeyId) != keyARN(sym2) {
			t.Errorf("Decrypt of the re-encrypted blob = %q under %s", dec.Plaintext, aws.ToString(dec.KeyId))
		}
		_, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: oldBlob, SourceEncryptionContext: ec, SourceKeyId: aws.String(sym2), DestinationKeyId: aws.String(sym)})
		wantErrorType[*types.IncorrectKeyException](t, "ReEncrypt naming the wrong source key", err)
		_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: oldBlob, DestinationKeyId: aws.String(sym2)})
		wantErrorType[*types.InvalidCiphertextException](t, "ReEncrypt without the source context", err)
	})

	t.Run("GenerateDataKey", func(t *testing.T) {
		for _, tc := range []struct {
			spec types.DataKeySpec
			n    *int32
			want int
		}{{types.DataKeySpecAes256, nil, 32}, {types.DataKeySpecAes128, nil, 16}, {"", aws.Int32(64), 64}, {"", aws.Int32(1), 1}} {
			out := must[*kms.GenerateDataKeyOutput](t, "GenerateDataKey")(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
				KeyId: aws.String("alias/sym"), KeySpec: tc.spec, NumberOfBytes: tc.n, EncryptionContext: ec}))
			if len(out.Plaintext) != tc.want || aws.ToString(out.KeyId) != keyARN(sym) {
				t.Errorf("GenerateDataKey(%s %v) = %d bytes under %s, want %d", tc.spec, aws.ToInt32(tc.n), len(out.Plaintext), aws.ToString(out.KeyId), tc.want)
			}
			dec := must[*kms.DecryptOutput](t, "Decrypt data key")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec}))
			if !bytes.Equal(dec.Plaintext, out.Plaintext) {
				t.Errorf("the data key decrypts to another value")
			}
		}
		wp := must[*kms.GenerateDataKeyWithoutPlaintextOutput](t, "GenerateDataKeyWithoutPlaintext")(c.GenerateDataKeyWithoutPlaintext(ctx,
			&kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(sym), KeySpec: types.DataKeySpecAes256}))
		if aws.ToString(wp.KeyId) != keyARN(sym) {
			t.Errorf("GenerateDataKeyWithoutPlaintext KeyId = %s", aws.ToString(wp.KeyId))
		}
		dec := must[*kms.DecryptOutput](t, "Decrypt")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wp.CiphertextBlob}))
		if len(dec.Plaintext) != 32 {
			t.Errorf("the data key without plaintext decrypts to %d bytes, want 32", len(dec.Plaintext))
		}
		_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(sym), KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
		wantErrorCode(t, "GenerateDataKey with KeySpec and NumberOfBytes", err, "ValidationException")
		_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(sym), NumberOfBytes: aws.Int32(1025)})
		wantErrorCode(t, "GenerateDataKey of 1025 bytes", err, "ValidationException")
		_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(rsaKey), KeySpec: types.DataKeySpecAes256})
		wantErrorType[*types.InvalidKeyUsageException](t, "GenerateDataKey under an RSA key", err)
		_, err = c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(rsaKey), KeySpec: types.DataKeySpecAes256})
		wantErrorType[*types.InvalidKeyUsageException](t, "GenerateDataKeyWithoutPlaintext under an RSA key", err)
	})

	t.Run("GenerateDataKeyPair", func(t *testing.T) {
		out := must[*kms.GenerateDataKeyPairOutput](t, "GenerateDataKeyPair")(c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{
			KeyId: aws.String(sym), KeyPairSpec: types.DataKeyPairSpecEccNistP256, EncryptionContext: ec}))
		if out.KeyPairSpec != types.DataKeyPairSpecEccNistP256 || aws.ToString(out.KeyId) != keyARN(sym) {
			t.Errorf("GenerateDataKeyPair = spec %s, key %s", out.KeyPairSpec, aws.ToString(out.KeyId))
		}
		priv, err := x509.ParsePKCS8PrivateKey(out.PrivateKeyPlaintext)
		if err != nil {
			t.Fatalf("PrivateKeyPlaintext is not PKCS #8: %v", err)
		}
		pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
		if err != nil {
			t.Fatalf("PublicKey is not SubjectPublicKeyInfo: %v", err)
		}
		ecPriv, ok := priv.(*ecdsa.PrivateKey)
		if !ok || !ecPriv.PublicKey.Equal(pub) {
			t.Errorf("the data key pair's public key does not match its private key")
		}
		dec := must[*kms.DecryptOutput](t, "Decrypt private key")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec}))
		if !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
			t.Errorf("PrivateKeyCiphertextBlob does not decrypt to PrivateKeyPlaintext")
		}

		wp := must[*kms.GenerateDataKeyPairWithoutPlaintextOutput](t, "GenerateDataKeyPairWithoutPlaintext")(c.GenerateDataKeyPairWithoutPlaintext(ctx,
			&kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String("alias/sym"), KeyPairSpec: types.DataKeyPairSpecRsa2048}))
		if wp.KeyPairSpec != types.DataKeyPairSpecRsa2048 {
			t.Errorf("GenerateDataKeyPairWithoutPlaintext spec = %s", wp.KeyPairSpec)
		}
		rpub, err := x509.ParsePKIXPublicKey(wp.PublicKey)
		if err != nil {
			t.Fatalf("PublicKey: %v", err)
		}
		dec = must[*kms.DecryptOutput](t, "Decrypt RSA private key")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wp.PrivateKeyCiphertextBlob}))
		rpriv, err := x509.ParsePKCS8PrivateKey(dec.Plaintext)
		if err != nil {
			t.Fatalf("decrypted private key: %v", err)
		}
		if k, ok := rpriv.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 || !k.PublicKey.Equal(rpub) {
			t.Errorf("the RSA_2048 data key pair does not hold together")
		}
		_, err = c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(rsaKey), KeyPairSpec: types.DataKeyPairSpecEccNistP256})
		wantErrorType[*types.InvalidKeyUsageException](t, "GenerateDataKeyPair under an RSA key", err)
		_, err = c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(sym), KeyPairSpec: "ECC_SECG_P256K2"})
		wantErrorCode(t, "GenerateDataKeyPair of an unknown spec", err, "ValidationException")
	})

	t.Run("GenerateRandom", func(t *testing.T) {
		a := must[*kms.GenerateRandomOutput](t, "GenerateRandom")(c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(64)}))
		b := must[*kms.GenerateRandomOutput](t, "GenerateRandom")(c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(64)}))
		if len(a.Plaintext) != 64 || bytes.Equal(a.Plaintext, b.Plaintext) {
			t.Errorf("GenerateRandom gave %d bytes, equal twice: %v", len(a.Plaintext), bytes.Equal(a.Plaintext, b.Plaintext))
		}
		_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1025)})
		wantErrorCode(t, "GenerateRandom of 1025 bytes", err, "ValidationException")
		_, err = c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8), CustomKeyStoreId: aws.String("cks-1234567890abcdef0")})
		wantErrorType[*types.UnsupportedOperationException](t, "GenerateRandom in a custom key store", err)
	})

	t.Run("RSA", func(t *testing.T) {
		out := must[*kms.GetPublicKeyOutput](t, "GetPublicKey")(c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(rsaKey)}))
		if out.KeySpec != types.KeySpecRsa2048 || out.KeyUsage != types.KeyUsageTypeEncryptDecrypt || aws.ToString(out.KeyId) != keyARN(rsaKey) ||
			!slices.Contains(out.EncryptionAlgorithms, types.EncryptionAlgorithmSpecRsaesOaepSha256) {
			t.Errorf("GetPublicKey = %+v", out)
		}
		pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
		if err != nil {
			t.Fatalf("GetPublicKey PublicKey: %v", err)
		}
		rpub, ok := pub.(*rsa.PublicKey)
		if !ok || rpub.N.BitLen() != 2048 {
			t.Fatalf("GetPublicKey gave %T, want a 2048-bit RSA key", pub)
		}
		// Encrypted here with the public key, decrypted by the server.
		for _, tc := range []struct {
			alg  types.EncryptionAlgorithmSpec
			hash hash.Hash
		}{
			{types.EncryptionAlgorithmSpecRsaesOaepSha256, sha256.New()},
			{types.EncryptionAlgorithmSpecRsaesOaepSha1, sha1.New()},
		} {
			blob, err := rsa.EncryptOAEP(tc.hash, rand.Reader, rpub, []byte("to the HSM"), nil)
			if err != nil {
				t.Fatal(err)
			}
			dec := must[*kms.DecryptOutput](t, "Decrypt RSA")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: aws.String(rsaKey), EncryptionAlgorithm: tc.alg}))
			if string(dec.Plaintext) != "to the HSM" || dec.EncryptionAlgorithm != tc.alg {
				t.Errorf("Decrypt with %s = %q (%s)", tc.alg, dec.Plaintext, dec.EncryptionAlgorithm)
			}
		}
		enc := must[*kms.EncryptOutput](t, "Encrypt RSA")(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(rsaKey), Plaintext: []byte("rsa"),
			EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1}))
		if enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecRsaesOaepSha1 || len(enc.CiphertextBlob) != 256 {
			t.Errorf("Encrypt RSA = %s, %d bytes", enc.EncryptionAlgorithm, len(enc.CiphertextBlob))
		}
		dec := must[*kms.DecryptOutput](t, "Decrypt RSA")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: aws.String(rsaKey),
			EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1}))
		if string(dec.Plaintext) != "rsa" {
			t.Errorf("Decrypt RSA = %q", dec.Plaintext)
		}
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: aws.String(rsaKey), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		wantErrorType[*types.InvalidCiphertextException](t, "Decrypt RSA with the other OAEP hash", err)
		_, err = c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(sym)})
		wantErrorType[*types.UnsupportedOperationException](t, "GetPublicKey of a symmetric key", err)
	})

	t.Run("Rotation", func(t *testing.T) {
		st := must[*kms.GetKeyRotationStatusOutput](t, "GetKeyRotationStatus")(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(sym)}))
		if st.KeyRotationEnabled {
			t.Errorf("a new key has rotation enabled")
		}
		must[*kms.EnableKeyRotationOutput](t, "EnableKeyRotation")(c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(sym), RotationPeriodInDays: aws.Int32(90)}))
		st = must[*kms.GetKeyRotationStatusOutput](t, "GetKeyRotationStatus")(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(keyARN(sym))}))
		if !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 90 || aws.ToString(st.KeyId) != keyARN(sym) {
			t.Errorf("GetKeyRotationStatus = enabled %v, period %v, key %s", st.KeyRotationEnabled, aws.ToInt32(st.RotationPeriodInDays), aws.ToString(st.KeyId))
		}
		near(t, "NextRotationDate", st.NextRotationDate, now.AddDate(0, 0, 90), time.Hour)

		before := must[*kms.DescribeKeyOutput](t, "DescribeKey")(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(sym)}))
		rot := must[*kms.RotateKeyOnDemandOutput](t, "RotateKeyOnDemand")(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(sym)}))
		if aws.ToString(rot.KeyId) != keyARN(sym) {
			t.Errorf("RotateKeyOnDemand KeyId = %s", aws.ToString(rot.KeyId))
		}
		after := must[*kms.DescribeKeyOutput](t, "DescribeKey")(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(sym)}))
		if aws.ToString(before.KeyMetadata.CurrentKeyMaterialId) == aws.ToString(after.KeyMetadata.CurrentKeyMaterialId) {
			t.Errorf("CurrentKeyMaterialId %q did not change on rotation", aws.ToString(after.KeyMetadata.CurrentKeyMaterialId))
		}
		list := must[*kms.ListKeyRotationsOutput](t, "ListKeyRotations")(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(sym)}))
		if len(list.Rotations) != 1 || list.Truncated {
			t.Fatalf("ListKeyRotations = %d rotations (truncated %v), want 1", len(list.Rotations), list.Truncated)
		}
		r := list.Rotations[0]
		if r.RotationType != types.RotationTypeOnDemand || aws.ToString(r.KeyId) != keyARN(sym) ||
			aws.ToString(r.KeyMaterialId) != aws.ToString(after.KeyMetadata.CurrentKeyMaterialId) {
			t.Errorf("ListKeyRotations entry = %+v", r)
		}
		near(t, "RotationDate", r.RotationDate, now, time.Minute)

		// Earlier material still decrypts; ReEncrypt moves to the newest.
		dec := must[*kms.DecryptOutput](t, "Decrypt after rotation")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: oldBlob, EncryptionContext: ec}))
		if string(dec.Plaintext) != "hello, kms" || aws.ToString(dec.KeyMaterialId) != aws.ToString(before.KeyMetadata.CurrentKeyMaterialId) {
			t.Errorf("Decrypt after rotation = %q with material %s", dec.Plaintext, aws.ToString(dec.KeyMaterialId))
		}
		re := must[*kms.ReEncryptOutput](t, "ReEncrypt to newest")(c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: oldBlob,
			SourceEncryptionContext: ec, DestinationKeyId: aws.String(sym), DestinationEncryptionContext: ec}))
		if aws.ToString(re.SourceKeyMaterialId) == aws.ToString(re.DestinationKeyMaterialId) ||
			aws.ToString(re.DestinationKeyMaterialId) != aws.ToString(after.KeyMetadata.CurrentKeyMaterialId) {
			t.Errorf("ReEncrypt material %s → %s, want the newest %s", aws.ToString(re.SourceKeyMaterialId),
				aws.ToString(re.DestinationKeyMaterialId), aws.ToString(after.KeyMetadata.CurrentKeyMaterialId))
		}

		must[*kms.DisableKeyRotationOutput](t, "DisableKeyRotation")(c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(sym)}))
		st = must[*kms.GetKeyRotationStatusOutput](t, "GetKeyRotationStatus")(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(sym)}))
		if st.KeyRotationEnabled {
			t.Errorf("rotation still enabled after DisableKeyRotation")
		}
		_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(sym), RotationPeriodInDays: aws.Int32(30)})
		wantErrorCode(t, "EnableKeyRotation every 30 days", err, "ValidationException")
		_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(rsaKey)})
		wantErrorType[*types.UnsupportedOperationException](t, "EnableKeyRotation of an RSA key", err)
		_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(rsaKey)})
		wantErrorType[*types.UnsupportedOperationException](t, "RotateKeyOnDemand of an RSA key", err)
	})

	t.Run("KeyPolicies", func(t *testing.T) {
		names := must[*kms.ListKeyPoliciesOutput](t, "ListKeyPolicies")(c.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(sym)}))
		if !slices.Equal(names.PolicyNames, []string{"default"}) || names.Truncated {
			t.Errorf("ListKeyPolicies = %v", names.PolicyNames)
		}
		got := must[*kms.GetKeyPolicyOutput](t, "GetKeyPolicy")(c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(sym), PolicyName: aws.String("default")}))
		var doc map[string]any
		if err := json.Unmarshal([]byte(aws.ToString(got.Policy)), &doc); err != nil || doc["Version"] != "2012-10-17" || aws.ToString(got.PolicyName) != "default" {
			t.Errorf("GetKeyPolicy = %q (%s), %v", aws.ToString(got.Policy), aws.ToString(got.PolicyName), err)
		}
		policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
		must[*kms.PutKeyPolicyOutput](t, "PutKeyPolicy")(c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(sym), PolicyName: aws.String("default"), Policy: aws.String(policy)}))
		got = must[*kms.GetKeyPolicyOutput](t, "GetKeyPolicy")(c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(sym)}))
		if aws.ToString(got.Policy) != policy {
			t.Errorf("GetKeyPolicy after PutKeyPolicy = %q, want %q", aws.ToString(got.Policy), policy)
		}
		_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(sym), Policy: aws.String("{not json")})
		wantErrorType[*types.MalformedPolicyDocumentException](t, "PutKeyPolicy of a malformed policy", err)
		_, err = c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(sym), PolicyName: aws.String("other")})
		wantErrorType[*types.NotFoundException](t, "GetKeyPolicy of another policy name", err)
	})

	t.Run("EnableDisable", func(t *testing.T) {
		must[*kms.DisableKeyOutput](t, "DisableKey")(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(sym2)}))
		d := must[*kms.DescribeKeyOutput](t, "DescribeKey")(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(sym2)}))
		if d.KeyMetadata.KeyState != types.KeyStateDisabled || d.KeyMetadata.Enabled {
			t.Errorf("after DisableKey: state %s, enabled %v", d.KeyMetadata.KeyState, d.KeyMetadata.Enabled)
		}
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym2), Plaintext: []byte("x")})
		wantErrorType[*types.DisabledException](t, "Encrypt under a disabled key", err)
		_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(sym2), KeySpec: types.DataKeySpecAes256})
		wantErrorType[*types.DisabledException](t, "GenerateDataKey under a disabled key", err)
		must[*kms.EnableKeyOutput](t, "EnableKey")(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(sym2)}))
		must[*kms.EncryptOutput](t, "Encrypt after EnableKey")(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym2), Plaintext: []byte("x")}))
	})

	t.Run("Deletion", func(t *testing.T) {
		blob := must[*kms.EncryptOutput](t, "Encrypt")(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym2), Plaintext: []byte("y")})).CiphertextBlob
		_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(sym2), PendingWindowInDays: aws.Int32(3)})
		wantErrorCode(t, "ScheduleKeyDeletion in 3 days", err, "ValidationException")
		out := must[*kms.ScheduleKeyDeletionOutput](t, "ScheduleKeyDeletion")(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(sym2), PendingWindowInDays: aws.Int32(7)}))
		if out.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(out.PendingWindowInDays) != 7 || aws.ToString(out.KeyId) != keyARN(sym2) {
			t.Errorf("ScheduleKeyDeletion = state %s, window %d, key %s", out.KeyState, aws.ToInt32(out.PendingWindowInDays), aws.ToString(out.KeyId))
		}
		near(t, "DeletionDate", out.DeletionDate, time.Now().AddDate(0, 0, 7), time.Minute)
		d := must[*kms.DescribeKeyOutput](t, "DescribeKey")(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(sym2)}))
		if d.KeyMetadata.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(d.KeyMetadata.PendingDeletionWindowInDays) != 7 {
			t.Errorf("DescribeKey of a key pending deletion: state %s, window %d", d.KeyMetadata.KeyState, aws.ToInt32(d.KeyMetadata.PendingDeletionWindowInDays))
		}
		near(t, "KeyMetadata.DeletionDate", d.KeyMetadata.DeletionDate, aws.ToTime(out.DeletionDate), time.Second)
		_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym2), Plaintext: []byte("x")})
		wantErrorType[*types.KMSInvalidStateException](t, "Encrypt under a key pending deletion", err)
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
		wantErrorType[*types.KMSInvalidStateException](t, "Decrypt under a key pending deletion", err)
		_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(sym2)})
		wantErrorType[*types.KMSInvalidStateException](t, "ScheduleKeyDeletion twice", err)
		_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: aws.String(sym2)})
		wantErrorType[*types.KMSInvalidStateException](t, "CreateAlias to a key pending deletion", err)

		cancel := must[*kms.CancelKeyDeletionOutput](t, "CancelKeyDeletion")(c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(sym2)}))
		if aws.ToString(cancel.KeyId) != keyARN(sym2) {
			t.Errorf("CancelKeyDeletion KeyId = %s", aws.ToString(cancel.KeyId))
		}
		d = must[*kms.DescribeKeyOutput](t, "DescribeKey")(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(sym2)}))
		if d.KeyMetadata.KeyState != types.KeyStateDisabled || d.KeyMetadata.DeletionDate != nil {
			t.Errorf("after CancelKeyDeletion: state %s, deletion date %v; want Disabled, none", d.KeyMetadata.KeyState, d.KeyMetadata.DeletionDate)
		}
		_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(sym2)})
		wantErrorType[*types.KMSInvalidStateException](t, "CancelKeyDeletion of a key not pending deletion", err)
		must[*kms.EnableKeyOutput](t, "EnableKey")(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(sym2)}))
		dec := must[*kms.DecryptOutput](t, "Decrypt after cancelling")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob}))
		if string(dec.Plaintext) != "y" {
			t.Errorf("Decrypt after cancelled deletion = %q", dec.Plaintext)
		}
	})

	t.Run("RequestID", func(t *testing.T) {
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/missing")})
		if id := requestIDOf(err); !uuidPattern.MatchString(id) {
			t.Errorf("the SDK found request id %q in an error, want a UUID", id)
		}
	})
}

// --- security -----------------------------------------------------------------

// testServeSecurity sends refused requests of every kind to a server with a
// policy file, then checks the audit log records each, verifies, and
// breaks when a line is edited.
func testServeSecurity(t *testing.T, bin string) {
	policy := `{"principals": [{"name": "app", "accessKeyId": "AKIDAPPSERVETEST0001", "secretAccessKey": "app/secret/for/serve/tests",
  "allow": [{"actions": ["kms:Encrypt"], "keys": ["alias/app"]}]}]}`
	policyFile := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policyFile, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, serveOpts{args: []string{"--policy", policyFile}})
	ctx := context.Background()
	root := p.client(serveRoot)
	appKey := must[*kms.CreateKeyOutput](t, "CreateKey")(root.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	otherKey := must[*kms.CreateKeyOutput](t, "CreateKey")(root.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	must[*kms.CreateAliasOutput](t, "CreateAlias")(root.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: appKey}))

	// refused maps request ids to the principal and error the audit log
	// must show.
	type refusal struct{ what, principal, code string }
	refused := map[string]refusal{}
	expectSDK := func(what, principal string, err error, code string) {
		t.Helper()
		wantErrorCode(t, what, err, code)
		id := requestIDOf(err)
		if id == "" {
			t.Errorf("%s: no request id in %v", what, err)
		}
		refused[id] = refusal{what, principal, code}
	}
	expectRaw := func(what string, res rawResult, code string) {
		t.Helper()
		if res.code != code {
			t.Errorf("%s: status %d, error %q (%s); want %s", what, res.status, res.code, res.body, code)
		}
		refused[res.requestID] = refusal{what, "-", code}
	}
	body := []byte(`{"NumberOfBytes":16}`)
	now := time.Now()

	expectRaw("unsigned request", p.raw("GenerateRandom", body, nil), "MissingAuthenticationToken")
	_, err := p.client(aws.Credentials{AccessKeyID: serveRootID, SecretAccessKey: "not-the-root-secret"}).ListKeys(ctx, &kms.ListKeysInput{})
	expectSDK("wrong secret", "-", err, "InvalidSignatureException")
	_, err = p.client(aws.Credentials{AccessKeyID: "AKIDNOBODYSERVE00001", SecretAccessKey: serveRootSecret}).ListKeys(ctx, &kms.ListKeysInput{})
	expectSDK("unknown access key", "-", err, "UnrecognizedClientException")
	_, err = p.client(serveRoot, func(o *kms.Options) { o.Region = "eu-west-1" }).ListKeys(ctx, &kms.ListKeysInput{})
	expectSDK("wrong region", "-", err, "InvalidSignatureException")

	// Body altered after signing: signed for 16 bytes, sent asking for 17.
	r, _ := http.NewRequest(http.MethodPost, p.url+"/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService.GenerateRandom")
	signer(t, body, serveRoot, serveRegion, "kms", now)(r)
	altered, _ := http.NewRequest(http.MethodPost, p.url+"/", strings.NewReader(`{"NumberOfBytes":17}`))
	altered.Header = r.Header.Clone()
	expectRaw("body altered after signing", p.send(altered), "InvalidSignatureException")

	expectRaw("wrong service", p.raw("GenerateRandom", body, signer(t, body, serveRoot, serveRegion, "s3", now)), "InvalidSignatureException")
	expectRaw("wrong region (raw)", p.raw("GenerateRandom", body, signer(t, body, serveRoot, "us-west-2", "kms", now)), "InvalidSignatureException")
	expectRaw("signed 20 minutes ago", p.raw("GenerateRandom", body, signer(t, body, serveRoot, serveRegion, "kms", now.Add(-20*time.Minute))), "RequestExpired")
	expectRaw("signed 20 minutes ahead", p.raw("GenerateRandom", body, signer(t, body, serveRoot, serveRegion, "kms", now.Add(20*time.Minute))), "RequestExpired")
	if res := p.raw("GenerateRandom", body, signer(t, body, serveRoot, serveRegion, "kms", now)); res.status != http.StatusOK {
		t.Errorf("the same request signed properly: %d %s", res.status, res.body)
	}

	// The principal may Encrypt under alias/app only.
	app := p.client(aws.Credentials{AccessKeyID: "AKIDAPPSERVETEST0001", SecretAccessKey: "app/secret/for/serve/tests"})
	enc, err := app.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/app"), Plaintext: []byte("allowed")})
	if err != nil {
		t.Fatalf("app Encrypt under alias/app: %v", err)
	}
	_, err = app.Encrypt(ctx, &kms.EncryptInput{KeyId: appKey, Plaintext: []byte("allowed by key id")})
	if err != nil {
		t.Errorf("app Encrypt under the key id alias/app names: %v", err)
	}
	_, err = app.Encrypt(ctx, &kms.EncryptInput{KeyId: otherKey, Plaintext: []byte("x")})
	expectSDK("app Encrypt under another key", "app", err, "AccessDeniedException")
	_, err = app.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	expectSDK("app Decrypt", "app", err, "AccessDeniedException")
	_, err = app.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/app"), KeySpec: types.DataKeySpecAes256})
	expectSDK("app GenerateDataKey", "app", err, "AccessDeniedException")
	_, err = app.ListKeys(ctx, &kms.ListKeysInput{})
	expectSDK("app ListKeys", "app", err, "AccessDeniedException")
	_, err = app.CreateKey(ctx, &kms.CreateKeyInput{})
	expectSDK("app CreateKey", "app", err, "AccessDeniedException")
	_, err = app.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String("alias/app")})
	expectSDK("app ScheduleKeyDeletion", "app", err, "AccessDeniedException")

	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d on SIGTERM; output:\n%s", code, p.stderr.String())
	}

	// Every refused request is in the audit log, with its result.
	logFile := filepath.Join(p.home, "audit.log")
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	type event struct {
		Seq       int64  `json:"seq"`
		RequestID string `json:"requestId"`
		Principal string `json:"principal"`
		Operation string `json:"operation"`
		Result    string `json:"result"`
	}
	byID := map[string]event{}
	lineOf := map[string]int{}
	for i, line := range lines {
		var ev event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %d %q: %v", i+1, line, err)
		}
		if ev.Seq != int64(i+1) {
			t.Errorf("audit line %d has seq %d", i+1, ev.Seq)
		}
		byID[ev.RequestID] = ev
		lineOf[ev.RequestID] = i + 1
	}
	for id, want := range refused {
		ev, ok := byID[id]
		if !ok {
			t.Errorf("%s (request %s) is not in the audit log", want.what, id)
			continue
		}
		if ev.Result != want.code || ev.Principal != want.principal {
			t.Errorf("%s: audit event principal %q, result %q; want %q, %q", want.what, ev.Principal, ev.Result, want.principal, want.code)
		}
	}
	for _, secret := range []string{serveRootSecret, "app/secret/for/serve/tests", "allowed"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit log holds %q", secret)
		}
	}
	if st, err := os.Stat(logFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("audit.log: %v (%v), want mode 0600", st, err)
	}
	if _, err := os.Stat(filepath.Join(p.home, "audit.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("audit.key lies beside the log (stat err = %v): the key belongs sealed in the keystore", err)
	}

	// envelope audit verify passes on the untouched log ...
	verify := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, append([]string{"audit", "verify"}, args...)...)
		cmd.Env = serveEnviron(p.home, false)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}
	wantOK := fmt.Sprintf("%s: %d lines, chain intact\n", logFile, len(lines))
	if code, out, errOut := verify(logFile); code != 0 || !strings.HasPrefix(out, wantOK) {
		t.Errorf("envelope audit verify = status %d, %q (stderr %q); want 0, %q", code, out, errOut, wantOK)
	}
	if code, out, errOut := verify(); code != 0 || !strings.Contains(out, "chain intact") {
		t.Errorf("envelope audit verify (default log) = status %d, %q (stderr %q)", code, out, errOut)
	}

	// ... and fails, naming the line, once a byte inside a value changes:
	// here the result of the "app ListKeys" refusal, turned into success.
	var target string
	for id, r := range refused {
		if r.what == "app ListKeys" {
			target = id
		}
	}
	n := lineOf[target]
	if n == 0 {
		t.Fatal("no audit line to edit")
	}
	edited := strings.Replace(lines[n-1], `"result":"AccessDeniedException"`, `"result":"AccessDeniedExceptioN"`, 1)
	if edited == lines[n-1] {
		t.Fatalf("audit line %d has no AccessDeniedException result: %s", n, lines[n-1])
	}
	lines[n-1] = edited
	if err := os.WriteFile(logFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := verify(logFile)
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("line %d:", n)) || out != "" {
		t.Errorf("envelope audit verify of a log edited at line %d = status %d, stdout %q, stderr %q; want 1 naming line %d", n, code, out, errOut, n)
	}
}

// --- --insecure-dev -----------------------------------------------------------

func testServeInsecureDev(t *testing.T, bin string) {
	for _, host := range []string{"0.0.0.0", "[::]", "192.0.2.1", "example.com"} {
		home := t.TempDir()
		addr := fmt.Sprintf("%s:%d", host, freePort(t))
		cmd := exec.Command(bin, "serve", "--insecure-dev", "--addr", addr)
		cmd.Env = serveEnviron(home, true)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := make(chan struct{})
		go func() { cmd.Run(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("envelope serve --insecure-dev --addr %s did not exit; it should refuse to start", addr)
		}
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), "--insecure-dev") || !strings.Contains(stderr.String(), "loopback") {
			t.Errorf("envelope serve --insecure-dev --addr %s = status %d, stderr %q; want 2 and a message about loopback", addr, code, stderr.String())
		}
		if _, err := os.Stat(filepath.Join(home, "keystore.db")); err == nil {
			t.Errorf("the refused --insecure-dev --addr %s still created a keystore", addr)
		}
	}

	p := startServe(t, bin, serveOpts{args: []string{"--insecure-dev"}})
	res := p.raw("CreateKey", []byte(`{"Description":"dev"}`), nil)
	if res.status != http.StatusOK {
		t.Fatalf("unsigned CreateKey with --insecure-dev: %d %s", res.status, res.body)
	}
	res = p.raw("ListKeys", []byte(`{}`), nil)
	var keys struct{ Keys []struct{ KeyId string } }
	if err := json.Unmarshal(res.body, &keys); res.status != http.StatusOK || err != nil || len(keys.Keys) != 1 {
		t.Errorf("unsigned ListKeys with --insecure-dev = %d %s", res.status, res.body)
	}
	// A signature, when present, is still checked.
	_, err := p.client(aws.Credentials{AccessKeyID: serveRootID, SecretAccessKey: "wrong"}).ListKeys(context.Background(), &kms.ListKeysInput{})
	wantErrorCode(t, "a bad signature with --insecure-dev", err, "InvalidSignatureException")
	// The SDK with the real root credentials works too.
	if _, err := p.client(serveRoot).ListKeys(context.Background(), &kms.ListKeysInput{}); err != nil {
		t.Errorf("signed ListKeys with --insecure-dev: %v", err)
	}
}

// testServeRootCredentialsFile starts a server without ENVELOPE_ROOT_*: it
// makes root-credentials.json (mode 0600), which the SDK then signs with.
func testServeRootCredentialsFile(t *testing.T, bin string) {
	p := startServe(t, bin, serveOpts{noRootEnv: true})
	file := filepath.Join(p.home, "root-credentials.json")
	st, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no root credentials file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("root-credentials.json mode %v, want 0600", st.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var creds struct{ AccessKeyID, SecretAccessKey string }
	if err := json.Unmarshal(b, &creds); err != nil || creds.AccessKeyID == "" || len(creds.SecretAccessKey) < 40 {
		t.Fatalf("root-credentials.json = %s (%v)", b, err)
	}
	if strings.Contains(p.stderr.String(), creds.SecretAccessKey) {
		t.Errorf("the server logged the root secret")
	}
	c := p.client(aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey})
	if _, err := c.ListKeys(context.Background(), &kms.ListKeysInput{}); err != nil {
		t.Errorf("ListKeys with the generated root credentials: %v", err)
	}
	_, err = p.client(serveRoot).ListKeys(context.Background(), &kms.ListKeysInput{})
	wantErrorCode(t, "ListKeys with credentials the server does not know", err, "UnrecognizedClientException")
}

// --- load -------------------------------------------------------------------------

// testServeLoadSmoke runs 64 clients doing GenerateDataKey + Decrypt pairs
// for 10 s (2 s with -short) and requires zero errors.
func testServeLoadSmoke(t *testing.T, bin string) {
	const clients = 64
	duration := 10 * time.Second
	if testing.Short() {
		duration = 2 * time.Second
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, bin, serveOpts{args: []string{"--metrics-addr", metricsAddr}})
	ctx := context.Background()
	key := must[*kms.CreateKeyOutput](t, "CreateKey")(p.client(serveRoot).CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	must[*kms.CreateAliasOutput](t, "CreateAlias")(p.client(serveRoot).CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/load"), TargetKeyId: key}))

	transport := &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: 2 * clients, IdleConnTimeout: time.Minute}
	defer transport.CloseIdleConnections()
	var pairs, failures atomic.Int64
	var firstErr sync.Once
	var firstErrText string
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		c := p.client(serveRoot, func(o *kms.Options) { o.HTTPClient = &http.Client{Transport: transport, Timeout: 30 * time.Second} })
		ec := map[string]string{"worker": strconv.Itoa(i)}
		wg.Go(func() {
			fail := func(err error) {
				failures.Add(1)
				firstErr.Do(func() { firstErrText = err.Error() })
			}
			for time.Now().Before(deadline) {
				dk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/load"), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
				if err != nil {
					fail(err)
					continue
				}
				dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
				if err != nil {
					fail(err)
					continue
				}
				if !bytes.Equal(dec.Plaintext, dk.Plaintext) {
					fail(errors.New("Decrypt returned another data key"))
					continue
				}
				pairs.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := pairs.Load()
	t.Logf("load smoke: %d clients, %d GenerateDataKey+Decrypt pairs in %v: %.0f ops/s (%.0f pairs/s)",
		clients, n, elapsed.Round(time.Millisecond), float64(2*n)/elapsed.Seconds(), float64(n)/elapsed.Seconds())
	if f := failures.Load(); f != 0 {
		t.Errorf("%d failed calls under load; first: %s", f, firstErrText)
	}
	if n == 0 {
		t.Fatalf("no pair completed")
	}

	// The counters saw every call.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, op := range []string{"GenerateDataKey", "Decrypt"} {
		want := fmt.Sprintf(`envelope_kms_requests_total{operation=%q,result="Success"} %d`+"\n", op, n)
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}

	// The audit chain held under concurrency.
	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d", code)
	}
	cmd := exec.Command(bin, "audit", "verify", filepath.Join(p.home, "audit.log"))
	cmd.Env = serveEnviron(p.home, false)
	out, err := cmd.CombinedOutput()
	want := fmt.Sprintf("%d lines, chain intact", 3+2*n) // a start record, a CreateKey, a CreateAlias, the pairs
	if err != nil || !strings.Contains(string(out), want) {
		t.Errorf("envelope audit verify after the load = %v, %q; want %q", err, out, want)
	}
}

// --- shutdown -------------------------------------------------------------------

func testServeGracefulShutdown(t *testing.T, bin string) {
	p := startServe(t, bin, serveOpts{})
	// Leave an idle keep-alive connection open: shutdown must not wait for
	// it.
	c := p.client(serveRoot)
	if _, err := c.ListKeys(context.Background(), &kms.ListKeysInput{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d on SIGTERM, want 0; output:\n%s", code, p.stderr.String())
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if out := p.stderr.String(); !strings.Contains(out, "shutting down") || !strings.Contains(out, "stopped") {
		t.Errorf("the server did not log its shutdown:\n%s", out)
	}
	if conn, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after the server exited", p.addr)
	}
	// The audit log of the stopped server is complete and verifies.
	cmd := exec.Command(bin, "audit", "verify")
	cmd.Env = serveEnviron(p.home, false)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "2 lines, chain intact") {
		t.Errorf("envelope audit verify = %v, %q", err, out)
	}
}

// testServeShutdownInFlight sends SIGTERM while a handler is reading a
// request body: the server lets it finish and answer, then exits 0. The
// request asks "Expect: 100-continue", so the server's "100 Continue" shows
// the handler has started before the signal is sent.
func testServeShutdownInFlight(t *testing.T, bin string) {
	p := startServe(t, bin, serveOpts{})
	body := []byte(`{"NumberOfBytes":16}`)
	req, err := http.NewRequest(http.MethodPost, p.url+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.GenerateRandom")
	signer(t, body, serveRoot, serveRegion, "kms", time.Now())(req)
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n", p.addr, len(body))
	if err := req.Header.Write(&head); err != nil {
		t.Fatal(err)
	}
	head.WriteString("\r\n")

	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	cont, err := http.ReadResponse(br, req)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("waiting for 100 Continue: %v, %v", cont, err)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	// Poll, with a deadline, until the server is shutting down.
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for !strings.Contains(p.stderr.String(), "shutting down") {
		select {
		case <-p.exited:
			t.Fatalf("the server exited with a request in flight; output:\n%s", p.stderr.String())
		case <-deadline.C:
			t.Fatalf("the server did not start shutting down; output:\n%s", p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatalf("finishing the request during shutdown: %v", err)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("reading the answer to the in-flight request: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct{ Plaintext []byte }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || len(out.Plaintext) != 16 {
		t.Errorf("in-flight GenerateRandom during shutdown = %d %s", resp.StatusCode, b)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("envelope serve exited with status %d, want 0; output:\n%s", code, p.stderr.String())
	}
}

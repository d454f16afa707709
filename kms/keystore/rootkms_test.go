package keystore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi"
	"github.com/envelopekms/envelope/kms/awsclient"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// upstream is another envelope server, real, on loopback: a keystore served
// over the AWS KMS API, which takes signed requests only.
type upstream struct {
	ks    *keystore.Keystore
	url   string
	creds awsapi.RootCredentials
}

// startUpstream starts an upstream server, stopped when the test ends. It
// sets the AWS environment, so the test cannot run in parallel.
func startUpstream(t *testing.T) *upstream {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_CA_BUNDLE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ks := open(t, filepath.Join(dir, "upstream"), keystore.Options{})
	t.Cleanup(func() { ks.Close() })
	u := &upstream{ks: ks, creds: awsapi.NewRootCredentials()}
	srv, err := awsapi.New(awsapi.Config{Backend: ks, Region: ks.Region(), Root: u.creds})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	u.url = "http://" + ln.Addr().String()
	return u
}

// key creates a symmetric key on the upstream and returns its ARN.
func (u *upstream) key(t *testing.T) string {
	t.Helper()
	out, err := u.ks.CreateKey(t.Context(), &kms.CreateKeyInput{Description: "seals root keys"})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata.Arn
}

// rootKMS returns the upstream, at url, as the root key source with keyID,
// signing with secret.
func rootKMS(t *testing.T, url, accessKeyID, secret, keyID string) *keystore.RootKMS {
	t.Helper()
	cl, err := awsclient.NewEndpoint(t.Context(), url, awsclient.WithCredentials(accessKeyID, secret), awsclient.WithRegion(kms.DefaultRegion),
		awsclient.WithSDKOptions(func(o *awskms.Options) { o.Retryer = aws.NopRetryer{} }))
	if err != nil {
		t.Fatal(err)
	}
	return &keystore.RootKMS{API: cl, KeyID: keyID, Name: cl.Endpoint()}
}

// wantKMSError checks that err is the upstream's failure, answered with
// the AWS error code ("" for no answer at all).
func wantKMSError(t *testing.T, what string, err error, code string) {
	t.Helper()
	var ue *keystore.RootKMSError
	if !errors.As(err, &ue) {
		t.Fatalf("%s err = %v, want a *RootKMSError", what, err)
	}
	var ke *kms.Error
	var re *awsclient.RequestError
	switch {
	case code == "" && !errors.As(err, &re):
		t.Fatalf("%s err = %v, want an unanswered request (*awsclient.RequestError)", what, err)
	case code != "" && (!errors.As(err, &ke) || ke.Code != code):
		t.Fatalf("%s err = %v, want the upstream's %s", what, err, code)
	}
}

// TestRootKMS: a keystore whose root key an upstream KMS (another envelope
// server, signed requests on loopback) seals keeps only the sealed root
// key, bound to the keystore by the encryption context, and opens only
// when the upstream unseals it with the key that sealed it.
func TestRootKMS(t *testing.T) {
	u := startUpstream(t)
	ctx := t.Context()
	keyARN, otherARN := u.key(t), u.key(t)
	if _, err := u.ks.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/root", TargetKeyId: keyARN}); err != nil {
		t.Fatal(err)
	}
	good := rootKMS(t, u.url, u.creds.AccessKeyID, u.creds.SecretAccessKey, keyARN)
	dir := filepath.Join(t.TempDir(), "ks")

	ks := open(t, dir, keystore.Options{RootKMS: good})
	if !ks.Created || ks.RootSource != keystore.SourceKMS {
		t.Errorf("Open(RootKMS): Created %v, RootSource %q; want true, %q", ks.Created, ks.RootSource, keystore.SourceKMS)
	}
	id, blob := newKey(t, ks)
	closeKS(t, ks)
	if _, err := os.Stat(filepath.Join(dir, keystore.RootKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a keystore sealed by an upstream KMS has a root.key (%v)", err)
	}

	t.Run("Reopen", func(t *testing.T) {
		for _, ref := range []string{keyARN, "alias/root"} {
			ks := open(t, dir, keystore.Options{RootKMS: rootKMS(t, u.url, u.creds.AccessKeyID, u.creds.SecretAccessKey, ref)})
			check(t, ks, id, blob)
			closeKS(t, ks)
		}
	})
	t.Run("OtherSources", func(t *testing.T) {
		se := wantSourceError(t, "Open()", openErr(t, dir, keystore.Options{}), keystore.SourceKMS, "")
		if se.KMSKey != keyARN || !strings.Contains(se.Error(), "its root key comes from an upstream KMS (key "+keyARN+"), and none was given") {
			t.Errorf("err = %q (KMSKey %q), want it to name the upstream key %s", se, se.KMSKey, keyARN)
		}
		wantSourceError(t, "Open(passphrase)", openErr(t, dir, keystore.Options{Passphrase: []byte("p")}), keystore.SourceKMS, keystore.SourcePassphrase)
	})
	t.Run("UpstreamRefuses", func(t *testing.T) {
		err := openErr(t, dir, keystore.Options{RootKMS: rootKMS(t, u.url, u.creds.AccessKeyID, u.creds.SecretAccessKey, otherARN)})
		wantKMSError(t, "Open(another upstream key)", err, kms.CodeIncorrectKey)
		if !strings.Contains(err.Error(), "keystore: "+dir+": the upstream KMS "+u.url+" could not unseal the root key: ") {
			t.Errorf("err = %q, want it to name the keystore and the upstream", err)
		}
		err = openErr(t, dir, keystore.Options{RootKMS: rootKMS(t, u.url, u.creds.AccessKeyID, "not-the-secret", keyARN)})
		wantKMSError(t, "Open(wrong credentials)", err, "InvalidSignatureException")
		if _, err := u.ks.DisableKey(ctx, &kms.DisableKeyInput{KeyId: keyARN}); err != nil {
			t.Fatal(err)
		}
		wantKMSError(t, "Open(upstream key disabled)", openErr(t, dir, keystore.Options{RootKMS: good}), kms.CodeDisabled)
		// Nor is a keystore created with it.
		newDir := t.TempDir()
		wantKMSError(t, "creating with the upstream key disabled", openErr(t, newDir, keystore.Options{RootKMS: good}), kms.CodeDisabled)
		if err := openErr(t, newDir, keystore.Options{MustExist: true}); !errors.Is(err, keystore.ErrNoKeystore) {
			t.Errorf("after a refused creation: Open(MustExist) err = %v, want ErrNoKeystore", err)
		}
		if _, err := u.ks.EnableKey(ctx, &kms.EnableKeyInput{KeyId: keyARN}); err != nil {
			t.Fatal(err)
		}
		ks := open(t, dir, keystore.Options{RootKMS: good})
		check(t, ks, id, blob)
		closeKS(t, ks)
	})
	t.Run("UpstreamUnreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + ln.Addr().String()
		ln.Close()
		err = openErr(t, dir, keystore.Options{RootKMS: rootKMS(t, down, u.creds.AccessKeyID, u.creds.SecretAccessKey, keyARN)})
		wantKMSError(t, "Open(upstream down)", err, "")
		if !strings.Contains(err.Error(), "the upstream KMS "+down+" could not unseal the root key") {
			t.Errorf("err = %q, want it to name the upstream", err)
		}
	})
	t.Run("SealedAndBound", func(t *testing.T) {
		// The keystore keeps the root key sealed by the upstream, which
		// unseals it only with the keystore's encryption context.
		store, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			KeyARN   string `json:"keyArn"`
			Keystore string `json:"keystore"`
			Sealed   []byte `json:"sealed"`
		}
		err = store.View(ctx, func(tx kms.Tx) error {
			b, err := tx.GetMeta("root-kms")
			if err != nil {
				return err
			}
			return json.Unmarshal(b, &rec)
		})
		store.Close()
		if err != nil {
			t.Fatal(err)
		}
		if rec.KeyARN != keyARN || len(rec.Keystore) != 32 {
			t.Errorf("the sealed root key's record: key %q, keystore id %q; want %s and 16 random bytes", rec.KeyARN, rec.Keystore, keyARN)
		}
		_, err = u.ks.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: rec.Sealed})
		if kms.CodeOf(err) != kms.CodeInvalidCiphertext {
			t.Errorf("upstream Decrypt of the sealed root key without its context err = %v, want InvalidCiphertextException", err)
		}
		out, err := u.ks.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: rec.Sealed,
			EncryptionContext: map[string]string{"envelope:keystore": rec.Keystore, "envelope:purpose": "root-key"}})
		if err != nil || len(out.Plaintext) != 32 {
			t.Fatalf("upstream Decrypt of the sealed root key with its context = %v, %v; want 32 bytes", out, err)
		}
		for _, f := range dirFiles(t, dir) {
			if bytes.Contains(f.data, out.Plaintext) {
				t.Errorf("%s holds the root key in the clear", f.name)
			}
		}
	})
}

// file is a file's name and content.
type file struct {
	name string
	data []byte
}

// dirFiles returns every file under dir.
func dirFiles(t *testing.T, dir string) []file {
	t.Helper()
	var files []file
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files = append(files, file{path, b})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

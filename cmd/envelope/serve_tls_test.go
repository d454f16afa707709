package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestServeTLS runs envelope serve with --tls-cert and --tls-key and talks
// to it over HTTPS with the AWS SDK, trusting only that certificate.
func TestServeTLS(t *testing.T) {
	bin := buildEnvelope(t)
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "serve", "--addr", addr, "--tls-cert", certFile, "--tls-key", keyFile)
	cmd.Env = serveEnviron(filepath.Join(dir, "home"), true)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("envelope serve: %v\n%s", err, out.String())
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Error("envelope serve did not stop on SIGTERM")
		}
	}()
	url := "https://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS answer: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// ALPN settles on HTTP/1.1 even for a client that prefers HTTP/2.
	h2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := h2.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz offering h2: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/1.1" || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("GET /healthz offering h2 = %d %s (ALPN %q), want 200 HTTP/1.1 (http/1.1)", resp.StatusCode, resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	// Plain HTTP is refused on the TLS port.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on the TLS port")
		}
		resp.Body.Close()
	}
	client := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), HTTPClient: hc,
		Credentials: aws.NewCredentialsCache(staticCreds{})})
	ctx := context.Background()
	ck, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey over HTTPS: %v", err)
	}
	if _, err := client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ck.KeyMetadata.KeyId, NumberOfBytes: aws.Int32(32)}); err != nil {
		t.Fatalf("GenerateDataKey over HTTPS: %v", err)
	}
}

type staticCreds struct{}

func (staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: serveRootID, SecretAccessKey: serveRootSecret}, nil
}

// Command esdkgo is envelope's interoperability peer for the ECDH keyrings:
// a small CLI around the official AWS Encryption SDK for Go and its Material
// Providers Library, the reference implementation of the raw and KMS ECDH
// keyrings (the JavaScript ESDK has none). It is a module of its own, so
// that envelope's go.mod never depends on the SDK.
//
//	esdkgo golden DIR
//	    write ECDH test vectors into DIR: key pairs (made once, then kept),
//	    messages and manifest.json (see testdata/golden/ecdh/README.md)
//	esdkgo encrypt -keyring JSON [-suite 0x0578] [-frame N] [-context k=v]... IN OUT
//	esdkgo decrypt -keyring JSON [-context k=v]... IN OUT
//
// A keyring is described in JSON: {"type": T, "curve": "ECC_NIST_P256",
// ...} with T one of raw-static (private, recipient), raw-ephemeral
// (recipient), raw-discovery (private), kms-static (key, recipient) and
// kms-discovery (key). private is a PKCS #8 PEM file, recipient an SPKI
// PEM file, key a KMS key ARN. The KMS keyrings call the AWS-KMS-API
// endpoint of $ESDKGO_KMS_ENDPOINT (an envelope server) with the
// credentials of $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY.
package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	primitivestypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/primitives/awscryptographyprimitivessmithygeneratedtypes"
	esdk "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygenerated"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "esdkgo:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: esdkgo golden DIR | encrypt ... | decrypt ...")
	}
	switch args[0] {
	case "golden":
		if len(args) != 2 {
			return errors.New("usage: esdkgo golden DIR")
		}
		return golden(args[1])
	case "encrypt", "decrypt":
		return crypt(args[0], args[1:])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// keyringSpec describes a keyring of the Material Providers Library.
type keyringSpec struct {
	Type      string `json:"type"`
	Curve     string `json:"curve"`
	Private   string `json:"private,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	Key       string `json:"key,omitempty"`
}

type contextFlag map[string]string

func (c contextFlag) String() string { return fmt.Sprint(map[string]string(c)) }
func (c contextFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("context %q: want name=value", s)
	}
	c[k] = v
	return nil
}

func crypt(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	krJSON := fs.String("keyring", "", "the keyring, in JSON")
	suite := fs.String("suite", "", "encrypt: the algorithm suite id, such as 0x0578")
	frame := fs.Int64("frame", 0, "encrypt: the frame length")
	ec := contextFlag{}
	fs.Var(ec, "context", "an encryption context pair name=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("usage: esdkgo %s -keyring JSON IN OUT", cmd)
	}
	var spec keyringSpec
	if err := json.Unmarshal([]byte(*krJSON), &spec); err != nil {
		return fmt.Errorf("-keyring: %v", err)
	}
	kr, err := newKeyring(spec)
	if err != nil {
		return err
	}
	in, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	client, err := esdk.NewClient(esdktypes.AwsEncryptionSdkConfig{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	var out []byte
	if cmd == "encrypt" {
		input := esdktypes.EncryptInput{Plaintext: in, EncryptionContext: ec, Keyring: kr}
		if *suite != "" {
			id := mpltypes.ESDKAlgorithmSuiteId(*suite)
			input.AlgorithmSuiteId = &id
		}
		if *frame != 0 {
			input.FrameLength = frame
		}
		res, err := client.Encrypt(ctx, input)
		if err != nil {
			return err
		}
		out = res.Ciphertext
	} else {
		res, err := client.Decrypt(ctx, esdktypes.DecryptInput{Ciphertext: in, EncryptionContext: ec, Keyring: kr})
		if err != nil {
			return err
		}
		out = res.Plaintext
	}
	return os.WriteFile(fs.Arg(1), out, 0o600)
}

// newKeyring makes the keyring spec describes.
func newKeyring(spec keyringSpec) (mpltypes.IKeyring, error) {
	mp, err := mpl.NewClient(mpltypes.MaterialProvidersConfig{})
	if err != nil {
		return nil, err
	}
	curve := primitivestypes.ECDHCurveSpec(spec.Curve)
	ctx := context.Background()
	switch spec.Type {
	case "raw-static", "raw-ephemeral", "raw-discovery":
		var scheme mpltypes.RawEcdhStaticConfigurations
		switch spec.Type {
		case "raw-static":
			priv, err := os.ReadFile(spec.Private)
			if err != nil {
				return nil, err
			}
			pub, err := readDER(spec.Recipient)
			if err != nil {
				return nil, err
			}
			scheme = &mpltypes.RawEcdhStaticConfigurationsMemberRawPrivateKeyToStaticPublicKey{
				Value: mpltypes.RawPrivateKeyToStaticPublicKeyInput{SenderStaticPrivateKey: priv, RecipientPublicKey: pub}}
		case "raw-ephemeral":
			pub, err := readDER(spec.Recipient)
			if err != nil {
				return nil, err
			}
			scheme = &mpltypes.RawEcdhStaticConfigurationsMemberEphemeralPrivateKeyToStaticPublicKey{
				Value: mpltypes.EphemeralPrivateKeyToStaticPublicKeyInput{RecipientPublicKey: pub}}
		default:
			priv, err := os.ReadFile(spec.Private)
			if err != nil {
				return nil, err
			}
			scheme = &mpltypes.RawEcdhStaticConfigurationsMemberPublicKeyDiscovery{
				Value: mpltypes.PublicKeyDiscoveryInput{RecipientStaticPrivateKey: priv}}
		}
		return mp.CreateRawEcdhKeyring(ctx, mpltypes.CreateRawEcdhKeyringInput{CurveSpec: curve, KeyAgreementScheme: scheme})
	case "kms-static", "kms-discovery":
		endpoint := os.Getenv("ESDKGO_KMS_ENDPOINT")
		if endpoint == "" {
			return nil, errors.New("the KMS keyrings need $ESDKGO_KMS_ENDPOINT")
		}
		kc := kms.New(kms.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(endpoint),
			Credentials: credentials.NewStaticCredentialsProvider(
				os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		})
		var scheme mpltypes.KmsEcdhStaticConfigurations
		if spec.Type == "kms-static" {
			pub, err := readDER(spec.Recipient)
			if err != nil {
				return nil, err
			}
			scheme = &mpltypes.KmsEcdhStaticConfigurationsMemberKmsPrivateKeyToStaticPublicKey{
				Value: mpltypes.KmsPrivateKeyToStaticPublicKeyInput{SenderKmsIdentifier: spec.Key, RecipientPublicKey: pub}}
		} else {
			scheme = &mpltypes.KmsEcdhStaticConfigurationsMemberKmsPublicKeyDiscovery{
				Value: mpltypes.KmsPublicKeyDiscoveryInput{RecipientKmsIdentifier: spec.Key}}
		}
		return mp.CreateAwsKmsEcdhKeyring(ctx, mpltypes.CreateAwsKmsEcdhKeyringInput{
			CurveSpec: curve, KeyAgreementScheme: scheme, KmsClient: kc})
	}
	return nil, fmt.Errorf("unknown keyring type %q", spec.Type)
}

// readDER reads a PEM public key and returns its DER.
func readDER(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return b.Bytes, nil
}

// vector is one entry of the golden manifest.
type vector struct {
	Name             string            `json:"name"`
	Message          string            `json:"message"`
	Plaintext        string            `json:"plaintext"`
	Suite            string            `json:"suite"`
	Writer           keyringSpec       `json:"writer"`
	Keys             []string          `json:"keys"`
	WrongKeys        []string          `json:"wrongKeys"`
	Context          map[string]string `json:"context"`
	FrameLength      int64             `json:"frameLength"`
	CommitmentPolicy string            `json:"commitmentPolicy"`
}

var curves = []struct {
	name, spec string
	curve      ecdh.Curve
}{
	{"p256", "ECC_NIST_P256", ecdh.P256()},
	{"p384", "ECC_NIST_P384", ecdh.P384()},
	{"p521", "ECC_NIST_P521", ecdh.P521()},
}

// golden writes the ECDH test vectors into dir.
func golden(dir string) error {
	keys := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keys, 0o755); err != nil {
		return err
	}
	for _, c := range curves {
		for _, who := range []string{"alice", "bob", "carol"} {
			if err := keyPair(keys, who+"-"+c.name, c.curve); err != nil {
				return err
			}
		}
	}
	plaintexts := map[string][]byte{
		"hello.txt":  []byte("Hello from the AWS Encryption SDK for Go, through an ECDH keyring.\n"),
		"empty.bin":  {},
		"frames.bin": make([]byte, 1200),
	}
	for i := range plaintexts["frames.bin"] {
		plaintexts["frames.bin"][i] = byte(i * 7)
	}
	for name, data := range plaintexts {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	ctx := map[string]string{"purpose": "golden", "tenant": "acme"}
	k := func(s string) string { return "keys/" + s }
	var vs []vector
	for _, c := range curves {
		alice, bob, carol := "alice-"+c.name, "bob-"+c.name, "carol-"+c.name
		// Static: alice's private key to bob's public key. Bob reads it
		// with his private key and alice's public key, or with his
		// private key alone (discovery); alice with her own pair.
		vs = append(vs, vector{
			Name: "static-" + c.name, Plaintext: "hello.txt", Suite: "0x0578", Context: ctx,
			Writer: keyringSpec{Type: "raw-static", Curve: c.spec, Private: k(alice + ".pem"), Recipient: k(bob + ".pub.pem")},
			Keys: []string{
				"ecdh:private=" + k(bob+".pem") + ",recipient=" + k(alice+".pub.pem"),
				"ecdh:private=" + k(bob+".pem"),
				"ecdh:private=" + k(alice+".pem") + ",recipient=" + k(bob+".pub.pem"),
			},
			WrongKeys: []string{
				"ecdh:private=" + k(carol+".pem"),
				"ecdh:private=" + k(bob+".pem") + ",recipient=" + k(carol+".pub.pem"),
				"ecdh:private=" + k(alice+".pem"), // alice is the sender, not the recipient
			},
		})
		// Ephemeral: a fresh key pair to bob's public key; only bob's
		// private key reads it.
		vs = append(vs, vector{
			Name: "ephemeral-" + c.name, Plaintext: "frames.bin", Suite: "0x0478", FrameLength: 512, Context: ctx,
			Writer:    keyringSpec{Type: "raw-ephemeral", Curve: c.spec, Recipient: k(bob + ".pub.pem")},
			Keys:      []string{"ecdh:private=" + k(bob+".pem")},
			WrongKeys: []string{"ecdh:private=" + k(carol+".pem"), "ecdh:private=" + k(alice+".pem") + ",recipient=" + k(bob+".pub.pem")},
		})
	}
	// Suites and contexts, on P-256.
	for _, s := range []struct{ suite, policy string }{
		{"0x0178", "forbid-encrypt-allow-decrypt"}, {"0x0214", "forbid-encrypt-allow-decrypt"}, {"0x0014", "forbid-encrypt-allow-decrypt"},
	} {
		vs = append(vs, vector{
			Name: "static-p256-suite-" + s.suite, Plaintext: "frames.bin", Suite: s.suite, FrameLength: 512, Context: ctx, CommitmentPolicy: s.policy,
			Writer: keyringSpec{Type: "raw-static", Curve: "ECC_NIST_P256", Private: k("alice-p256.pem"), Recipient: k("bob-p256.pub.pem")},
			Keys:   []string{"ecdh:private=" + k("bob-p256.pem") + ",recipient=" + k("alice-p256.pub.pem")},
		})
	}
	vs = append(vs,
		vector{
			Name: "ephemeral-p384-empty-context", Plaintext: "empty.bin", Suite: "0x0578", Context: map[string]string{},
			Writer: keyringSpec{Type: "raw-ephemeral", Curve: "ECC_NIST_P384", Recipient: k("bob-p384.pub.pem")},
			Keys:   []string{"ecdh:private=" + k("bob-p384.pem")},
		},
		vector{
			Name: "static-p521-nonascii-context", Plaintext: "hello.txt", Suite: "0x0478",
			Context: map[string]string{"Zürich": "𐀂 value", "a": "b", "B": "c"},
			Writer:  keyringSpec{Type: "raw-static", Curve: "ECC_NIST_P521", Private: k("carol-p521.pem"), Recipient: k("alice-p521.pub.pem")},
			Keys:    []string{"ecdh:private=" + k("alice-p521.pem")},
		},
	)
	for i := range vs {
		v := &vs[i]
		v.Message = v.Name + ".esdk"
		if v.CommitmentPolicy == "" {
			v.CommitmentPolicy = "require-encrypt-require-decrypt"
		}
		if err := writeVector(dir, v); err != nil {
			return fmt.Errorf("%s: %w", v.Name, err)
		}
	}
	data, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), append(data, '\n'), 0o644)
}

// writeVector encrypts v's plaintext with its writer keyring, checks that
// the SDK decrypts it again with the recipient's private key, and writes
// the message.
func writeVector(dir string, v *vector) error {
	pt, err := os.ReadFile(filepath.Join(dir, v.Plaintext))
	if err != nil {
		return err
	}
	w := v.Writer
	w.Private, w.Recipient = join(dir, w.Private), join(dir, w.Recipient)
	kr, err := newKeyring(w)
	if err != nil {
		return err
	}
	cfg := esdktypes.AwsEncryptionSdkConfig{}
	if v.CommitmentPolicy == "forbid-encrypt-allow-decrypt" {
		p := mpltypes.ESDKCommitmentPolicyForbidEncryptAllowDecrypt
		cfg.CommitmentPolicy = &p
	}
	client, err := esdk.NewClient(cfg)
	if err != nil {
		return err
	}
	id := mpltypes.ESDKAlgorithmSuiteId(v.Suite)
	in := esdktypes.EncryptInput{Plaintext: pt, EncryptionContext: v.Context, Keyring: kr, AlgorithmSuiteId: &id}
	if v.FrameLength != 0 {
		in.FrameLength = &v.FrameLength
	}
	res, err := client.Encrypt(context.Background(), in)
	if err != nil {
		return err
	}
	// The SDK's own discovery keyring with the recipient's private key
	// must read it.
	recipient := strings.TrimSuffix(w.Recipient, ".pub.pem") + ".pem"
	dkr, err := newKeyring(keyringSpec{Type: "raw-discovery", Curve: v.Writer.Curve, Private: recipient})
	if err != nil {
		return err
	}
	if _, err := client.Decrypt(context.Background(), esdktypes.DecryptInput{Ciphertext: res.Ciphertext, Keyring: dkr}); err != nil {
		return fmt.Errorf("the SDK does not decrypt its own message: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, v.Message), res.Ciphertext, 0o644)
}

func join(dir, p string) string {
	if p == "" {
		return ""
	}
	return filepath.Join(dir, p)
}

// keyPair writes NAME.pem (PKCS #8) and NAME.pub.pem (SPKI) into dir,
// unless they exist.
func keyPair(dir, name string, c ecdh.Curve) error {
	privPath, pubPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub.pem")
	if _, err := os.Stat(privPath); err == nil {
		return nil
	}
	k, err := c.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	spki, err := x509.MarshalPKIXPublicKey(k.PublicKey())
	if err != nil {
		return err
	}
	if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644)
}

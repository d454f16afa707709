package awskms_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
)

// A keyring over envelope's embedded KMS: the message's data key is wrapped
// by a KMS key, and the message records that key's ARN.
func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "envelope-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ks, err := keystore.Open(ctx, dir, keystore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer ks.Close()
	key, err := ks.CreateKey(ctx, &kms.CreateKeyInput{Description: "example"})
	if err != nil {
		log.Fatal(err)
	}

	kr, err := awskms.New(ks, key.KeyMetadata.Arn)
	if err != nil {
		log.Fatal(err)
	}
	ec := map[string]string{"purpose": "example"}
	msg, err := envelope.EncryptBytes(ctx, []byte("hello, KMS"), kr, envelope.WithContext(ec))
	if err != nil {
		log.Fatal(err)
	}
	h, err := envelope.ReadHeader(bytes.NewReader(msg))
	if err != nil {
		log.Fatal(err)
	}
	edk := h.EncryptedDataKeys[0]
	fmt.Println(edk.ProviderID, string(edk.ProviderInfo) == key.KeyMetadata.Arn)

	// Any keyring naming the key's ARN decrypts; so does a discovery keyring.
	d, err := awskms.NewDiscovery(ks, &awskms.DiscoveryFilter{Partition: "aws", Accounts: []string{kms.DefaultAccountID}})
	if err != nil {
		log.Fatal(err)
	}
	pt, _, err := envelope.DecryptBytes(ctx, msg, d, envelope.WithContext(ec))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", pt)
	// Output:
	// aws-kms true
	// hello, KMS
}

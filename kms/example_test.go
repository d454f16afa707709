package kms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// A service over a SQLite store: make a data key, keep only its encrypted
// copy, and get the key back later from the service.
func Example() {
	dir, err := os.MkdirTemp("", "kms-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(filepath.Join(dir, "keystore.db"))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	rootKey := make([]byte, 32)
	rand.Read(rootKey) // in real use, kept safe: see package keystore
	root, err := kms.NewAESRootKey(rootKey)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	svc, err := kms.New(ctx, store, root, kms.Options{})
	if err != nil {
		panic(err)
	}

	key, err := svc.CreateKey(ctx, &kms.CreateKeyInput{Description: "example"})
	if err != nil {
		panic(err)
	}
	ec := map[string]string{"file": "report.pdf"}
	dk, err := svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: key.KeyMetadata.KeyId, KeySpec: "AES_256", EncryptionContext: ec})
	if err != nil {
		panic(err)
	}
	fmt.Println("data key bytes:", len(dk.Plaintext))

	// Later: the encrypted data key names its KMS key; the context must match.
	back, err := svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
	if err != nil {
		panic(err)
	}
	fmt.Println("same data key:", bytes.Equal(back.Plaintext, dk.Plaintext))

	_, err = svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
	fmt.Println("without the context:", kms.CodeOf(err))
	// Output:
	// data key bytes: 32
	// same data key: true
	// without the context: InvalidCiphertextException
}

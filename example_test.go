package envelope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
)

// Encrypt a message in memory with a raw AES key and read it back.
func Example() {
	key := make([]byte, 32) // in real use, from a KMS or a key file
	rand.Read(key)
	kr, err := keyring.NewRawAES("myapp", "key-2026", key)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	ec := map[string]string{"purpose": "example"}

	msg, err := envelope.EncryptBytes(ctx, []byte("hello, envelope"), kr, envelope.WithContext(ec))
	if err != nil {
		log.Fatal(err)
	}
	pt, h, err := envelope.DecryptBytes(ctx, msg, kr, envelope.WithContext(ec))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(pt))
	fmt.Println(h.Suite.Name, h.EncryptedDataKeys[0])
	// Output:
	// hello, envelope
	// AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 raw AES key namespace="myapp" name="key-2026"
}

// Stream any amount of data: memory stays at about one frame.
func ExampleEncrypt() {
	kr, _ := keyring.NewRawAES("myapp", "key-2026", bytes.Repeat([]byte{7}, 32))
	ctx := context.Background()

	var sealed bytes.Buffer
	w, err := envelope.Encrypt(ctx, &sealed, kr, envelope.WithFrameSize(4096))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(w, strings.NewReader(strings.Repeat("log line\n", 10000))); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // writes the final frame and signature
		log.Fatal(err)
	}

	r, err := envelope.Decrypt(ctx, &sealed, kr)
	if err != nil {
		log.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "bytes,", r.Header().FrameLength, "per frame")
	// Output: 90000 bytes, 4096 per frame
}

// Look at a message's header without any key.
func ExampleReadHeader() {
	f, err := os.Open("testdata/pinned/0x0578-aes256.esdk")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	h, err := envelope.ReadHeader(f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Suite, h.Context["purpose"], len(h.EncryptedDataKeys), "wrapped key")
	// Output: 0x0578 AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 pinned 1 wrapped key
}

// Refuse signed messages when plaintext is acted upon as it streams.
func ExampleWithUnsignedOnly() {
	kr, _ := keyring.NewRawAES("myapp", "key-2026", bytes.Repeat([]byte{7}, 32))
	msg, _ := envelope.EncryptBytes(context.Background(), []byte("x"), kr) // default suite is signed
	_, err := envelope.Decrypt(context.Background(), bytes.NewReader(msg), kr, envelope.WithUnsignedOnly())
	fmt.Println(err)
	// Output: the message is signed, and signed messages were refused (suite 0x0578 AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384)
}

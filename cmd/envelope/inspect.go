package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/envelopekms/envelope"
)

const inspectHelp = `Usage: envelope inspect [FILE]

Print the header of a message (FILE or standard input) as JSON. No key is
needed and nothing is decrypted, so nothing printed is authenticated yet.

Flags:
%s  -h, --help   show this help

Output fields: version, suite {id, name, committing, signed}, messageId
(base64), encryptionContext, encryptedDataKeys [{providerId, providerInfo
(base64), key (a description), ciphertextLength}], contentType ("framed" or
"non-framed") and frameLength.

Example:
  envelope inspect backup.tar.esdk | jq .encryptionContext
`

type inspectSuite struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Committing bool   `json:"committing"`
	Signed     bool   `json:"signed"`
}

type inspectEDK struct {
	ProviderID       string `json:"providerId"`
	ProviderInfo     string `json:"providerInfo"`
	Key              string `json:"key"`
	CiphertextLength int    `json:"ciphertextLength"`
}

type inspectHeader struct {
	Version           int               `json:"version"`
	Suite             inspectSuite      `json:"suite"`
	MessageID         string            `json:"messageId"`
	EncryptionContext map[string]string `json:"encryptionContext"`
	EncryptedDataKeys []inspectEDK      `json:"encryptedDataKeys"`
	ContentType       string            `json:"contentType"`
	FrameLength       int               `json:"frameLength"`
}

func (c *cli) inspect(args []string) error {
	fs := c.newFlagSet("inspect")
	var limits limitFlags
	limits.registerHeader(fs, false)
	if ok, err := c.parse(fs, args, inspectHelp); !ok {
		return err
	}
	opts, err := limits.options()
	if err != nil {
		return err
	}
	in, err := c.openInput(fs.Args())
	if err != nil {
		return err
	}
	defer in.Close()
	h, err := envelope.ReadHeader(in.r, opts...)
	if err != nil {
		err = fmt.Errorf("reading the header of %s: %w", in.name, err)
		if h := decryptAdvice(err); h != "" {
			return &hintError{err, h}
		}
		return err
	}
	out := inspectHeader{
		Version:           h.Version,
		Suite:             inspectSuite{h.Suite.ID.String(), h.Suite.Name, h.Suite.Committing, h.Suite.Signed()},
		MessageID:         base64.StdEncoding.EncodeToString(h.MessageID),
		EncryptionContext: h.Context,
		ContentType:       "framed",
		FrameLength:       h.FrameLength,
	}
	if !h.Framed {
		out.ContentType = "non-framed"
	}
	for _, k := range h.EncryptedDataKeys {
		out.EncryptedDataKeys = append(out.EncryptedDataKeys, inspectEDK{
			ProviderID:       k.ProviderID,
			ProviderInfo:     base64.StdEncoding.EncodeToString(k.ProviderInfo),
			Key:              k.String(),
			CiphertextLength: len(k.Ciphertext),
		})
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

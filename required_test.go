package envelope_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
)

// requiredVector is one entry of testdata/golden/manifest-required-ec.json:
// a message whose header stores only part of its encryption context and
// authenticates the rest (requiredKeys), as the ESDK's required encryption
// context manager writes it. They are built from the specification by
// interop/js/required-ec.js (node's crypto, no ESDK or envelope code): the
// JavaScript ESDK 5.0.2 has no such manager.
type requiredVector struct {
	goldenVector
	RequiredKeys []string `json:"requiredKeys"`
}

func loadRequiredVectors(t *testing.T) []requiredVector {
	t.Helper()
	data, err := os.ReadFile("testdata/golden/manifest-required-ec.json")
	if err != nil {
		t.Fatalf("required-context vectors missing: %v", err)
	}
	var vs []requiredVector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 5 {
		t.Fatalf("manifest-required-ec.json lists %d vectors, want at least 5", len(vs))
	}
	return vs
}

// TestGoldenRequiredContext: messages with a required encryption context
// decrypt when the caller gives the pairs (the reproduced context), and
// fail clearly when a pair is missing or wrong.
func TestGoldenRequiredContext(t *testing.T) {
	ctx := context.Background()
	for _, v := range loadRequiredVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join("testdata", "golden", v.Message))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", "golden", v.Plaintext))
			if err != nil {
				t.Fatal(err)
			}
			policy, err := suite.ParseCommitmentPolicy(v.CommitmentPolicy)
			if err != nil {
				t.Fatal(err)
			}
			kr := goldenKeyring(t, v.Keys)
			h, err := envelope.ReadHeader(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range v.RequiredKeys {
				if _, stored := h.Context[k]; stored {
					t.Fatalf("the header stores the required key %q", k)
				}
			}

			got, hdr, err := envelope.DecryptBytes(ctx, msg, kr, envelope.WithCommitmentPolicy(policy), envelope.WithContext(v.Context))
			if err != nil {
				t.Fatalf("DecryptBytes with the whole context: err = %v, want nil", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("DecryptBytes: wrong plaintext")
			}
			wantReq := map[string]string{}
			for _, k := range v.RequiredKeys {
				wantReq[k] = v.Context[k]
			}
			if !maps.Equal(hdr.RequiredContext, wantReq) {
				t.Errorf("Header().RequiredContext = %v, want %v", hdr.RequiredContext, wantReq)
			}

			// Through the required-context manager too.
			rc, err := materials.NewRequiredContext(materials.NewDefault(kr), v.RequiredKeys...)
			if err != nil {
				t.Fatal(err)
			}
			if got, _, err := envelope.DecryptBytes(ctx, msg, nil, envelope.WithMaterialsManager(rc),
				envelope.WithCommitmentPolicy(policy), envelope.WithContext(v.Context)); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("DecryptBytes with RequiredContext: err = %v", err)
			}

			// A required pair left out: the default manager cannot know it
			// was required and fails to unwrap or to verify; the
			// required-context manager says which key is missing.
			less := maps.Clone(v.Context)
			delete(less, v.RequiredKeys[0])
			if _, _, err := envelope.DecryptBytes(ctx, msg, kr, envelope.WithCommitmentPolicy(policy), envelope.WithContext(less)); !errors.Is(err, envelope.ErrNoDataKey) && !errors.Is(err, envelope.ErrTampered) {
				t.Errorf("without %q: err = %v, want ErrNoDataKey or ErrTampered", v.RequiredKeys[0], err)
			}
			if _, _, err := envelope.DecryptBytes(ctx, msg, nil, envelope.WithMaterialsManager(rc),
				envelope.WithCommitmentPolicy(policy), envelope.WithContext(less)); !errors.Is(err, envelope.ErrContextMismatch) {
				t.Errorf("RequiredContext without %q: err = %v, want ErrContextMismatch", v.RequiredKeys[0], err)
			}

			// A required pair with another value.
			wrong := maps.Clone(v.Context)
			wrong[v.RequiredKeys[0]] += "!"
			_, _, err = envelope.DecryptBytes(ctx, msg, kr, envelope.WithCommitmentPolicy(policy), envelope.WithContext(wrong))
			if !errors.Is(err, envelope.ErrNoDataKey) && !errors.Is(err, envelope.ErrTampered) {
				t.Errorf("with a wrong %q: err = %v, want ErrNoDataKey or ErrTampered", v.RequiredKeys[0], err)
			}

			// A pair the message neither stores nor authenticates.
			extra := maps.Clone(v.Context)
			extra["owner"] = "alice"
			_, _, err = envelope.DecryptBytes(ctx, msg, kr, envelope.WithCommitmentPolicy(policy), envelope.WithContext(extra))
			var cm *envelope.ContextMismatchError
			if !errors.As(err, &cm) || cm.Key != "owner" || !cm.Missing {
				t.Errorf("with an extra pair: err = %v, want a ContextMismatchError for \"owner\"", err)
			}
		})
	}
}

// TestRequiredContextRoundTrip: messages written with the required-context
// manager store only the other pairs, decrypt with the whole context, and
// keep their required pairs through Rewrap.
func TestRequiredContextRoundTrip(t *testing.T) {
	ctx := context.Background()
	full := map[string]string{"tenant": "acme", "purpose": "test", "region": "eu"}
	pt := bytes.Repeat([]byte("required context "), 1000)
	rsaKR := rsaTestKeyring(t)
	for _, tc := range []struct {
		name  string
		suite suite.ID
		kr    keyring.Keyring
		keys  []string
	}{
		{"0x0578 aes one key", suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, fixedKeyring(), []string{"tenant"}},
		{"0x0478 aes all keys", suite.AES256GCMHKDFSHA512CommitKey, fixedKeyring(), []string{"tenant", "purpose", "region"}},
		{"0x0478 rsa", suite.AES256GCMHKDFSHA512CommitKey, rsaKR, []string{"region", "tenant"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := materials.NewRequiredContext(materials.NewDefault(tc.kr), tc.keys...)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := envelope.EncryptBytes(ctx, pt, nil, envelope.WithMaterialsManager(rc),
				envelope.WithSuite(tc.suite), envelope.WithContext(full), envelope.WithFrameSize(4096))
			if err != nil {
				t.Fatal(err)
			}
			h, err := envelope.ReadHeader(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			for k := range full {
				_, stored := h.Context[k]
				if stored == slices.Contains(tc.keys, k) {
					t.Errorf("key %q stored = %v, want %v", k, stored, !stored)
				}
			}
			got, _, err := envelope.DecryptBytes(ctx, msg, tc.kr, envelope.WithContext(full))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("DecryptBytes with the whole context: err = %v", err)
			}
			stored := maps.Clone(full)
			for _, k := range tc.keys {
				delete(stored, k)
			}
			if _, _, err := envelope.DecryptBytes(ctx, msg, tc.kr, envelope.WithContext(stored)); err == nil {
				t.Fatal("decrypted without the required pairs")
			}

			// Rewrap keeps the pairs required and bound.
			var out bytes.Buffer
			if _, err := envelope.Rewrap(ctx, &out, bytes.NewReader(msg), tc.kr, fixedKeyring(), envelope.WithContext(full)); err != nil {
				t.Fatalf("Rewrap: %v", err)
			}
			nh, err := envelope.ReadHeader(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.keys {
				if _, ok := nh.Context[k]; ok {
					t.Errorf("the rewrapped header stores the required key %q", k)
				}
			}
			if got, _, err := envelope.DecryptBytes(ctx, out.Bytes(), fixedKeyring(), envelope.WithContext(full)); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("the rewrapped message: err = %v", err)
			}
			if _, _, err := envelope.DecryptBytes(ctx, out.Bytes(), fixedKeyring(), envelope.WithContext(stored)); err == nil {
				t.Fatal("the rewrapped message decrypted without the required pairs")
			}
		})
	}
	t.Run("missing on encrypt", func(t *testing.T) {
		rc, err := materials.NewRequiredContext(materials.NewDefault(fixedKeyring()), "tenant")
		if err != nil {
			t.Fatal(err)
		}
		_, err = envelope.EncryptBytes(ctx, pt, nil, envelope.WithMaterialsManager(rc), envelope.WithContext(map[string]string{"purpose": "x"}))
		if !errors.Is(err, envelope.ErrContextMismatch) {
			t.Fatalf("err = %v, want ErrContextMismatch", err)
		}
	})
}

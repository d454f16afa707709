package kms_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
)

// TestConcurrentUse runs many goroutines on one service, mixing data keys,
// decryption, re-encryption and rotation (on demand, and automatic as the
// clock moves), and then checks that every blob ever issued decrypts.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testConcurrentUse(t, b.env(t))
		})
	}
}

func testConcurrentUse(t *testing.T, e *env) {
	const (
		workers = 16
		ops     = 100
		nkeys   = 8
	)
	ctx := t.Context()
	var keys []string
	for i := range nkeys {
		id := e.symKey(t)
		if i%2 == 0 {
			if _, err := e.svc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: i32(90)}); err != nil {
				t.Fatal(err)
			}
		}
		e.alias(t, fmt.Sprintf("alias/c%d", i), id)
		keys = append(keys, id)
	}
	// On-demand rotations are reserved before the call, so the quota of 25
	// per key is never hit.
	var budget [nkeys]atomic.Int32

	var (
		mu     sync.Mutex
		blobs  []issued
		counts = map[string]int{}
	)
	record := func(b issued) {
		mu.Lock()
		blobs = append(blobs, b)
		mu.Unlock()
	}
	pick := func(r *rand.Rand) (issued, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(blobs) == 0 {
			return issued{}, false
		}
		return blobs[r.IntN(len(blobs))], true
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			fail := func(format string, args ...any) {
				errs <- fmt.Errorf("worker %d: "+format, append([]any{w}, args...)...)
			}
			for i := range ops {
				k := r.IntN(nkeys)
				ec := map[string]string{"worker": fmt.Sprint(w), "op": fmt.Sprint(i)}
				op := r.IntN(100)
				var name string
				switch {
				case op < 40:
					name = "GenerateDataKey"
					ref := keys[k]
					if r.IntN(2) == 0 {
						ref = fmt.Sprintf("alias/c%d", k)
					}
					out, err := e.svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ref, KeySpec: "AES_256", EncryptionContext: ec})
					if err != nil {
						fail("GenerateDataKey: %v", err)
						return
					}
					record(issued{blob: out.CiphertextBlob, ec: ec, pt: out.Plaintext, material: out.KeyMaterialId})
				case op < 70:
					name = "Decrypt"
					b, ok := pick(r)
					if !ok {
						continue
					}
					out, err := e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: b.blob, EncryptionContext: b.ec})
					if err != nil {
						fail("Decrypt: %v", err)
						return
					}
					if !bytes.Equal(out.Plaintext, b.pt) || out.KeyMaterialId != b.material {
						fail("Decrypt returned another plaintext or material (%s, want %s)", out.KeyMaterialId, b.material)
						return
					}
				case op < 82:
					name = "ReEncrypt"
					b, ok := pick(r)
					if !ok {
						continue
					}
					out, err := e.svc.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: b.blob, SourceEncryptionContext: b.ec,
						DestinationKeyId: keys[k], DestinationEncryptionContext: ec})
					if err != nil {
						fail("ReEncrypt: %v", err)
						return
					}
					if out.SourceKeyMaterialId != b.material {
						fail("ReEncrypt source material %s, want %s", out.SourceKeyMaterialId, b.material)
						return
					}
					record(issued{blob: out.CiphertextBlob, ec: ec, pt: b.pt, material: out.DestinationKeyMaterialId})
				case op < 90:
					name = "RotateKeyOnDemand"
					if budget[k].Add(1) > 25 {
						continue
					}
					if _, err := e.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: keys[k]}); err != nil {
						fail("RotateKeyOnDemand: %v", err)
						return
					}
				case op < 95:
					name = "clock"
					e.clock.AdvanceDays(10)
				default:
					name = "Encrypt"
					pt := []byte(fmt.Sprintf("worker %d op %d", w, i))
					out, err := e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: keys[k], Plaintext: pt, EncryptionContext: ec})
					if err != nil {
						fail("Encrypt: %v", err)
						return
					}
					// Encrypt does not report the material; find it on
					// the way back.
					dec, err := e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
					if err != nil || !bytes.Equal(dec.Plaintext, pt) {
						fail("Decrypt(fresh Encrypt) = %v", err)
						return
					}
					record(issued{blob: out.CiphertextBlob, ec: ec, pt: pt, material: dec.KeyMaterialId})
				}
				mu.Lock()
				counts[name]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("operations: %v; %d blobs; clock moved %v", counts, len(blobs), e.clock.Now().Sub(epoch))

	e.checkIssued(t, blobs)

	// Every key's rotations are consistent: unique material ids, at most 25
	// on demand, and automatic ones only on keys with rotation enabled.
	seen := map[string]bool{}
	for i, id := range keys {
		var rots []kms.RotationsListEntry
		marker := ""
		for {
			out, err := e.svc.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id, Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			rots = append(rots, out.Rotations...)
			if !out.Truncated {
				break
			}
			marker = out.NextMarker
		}
		onDemand, automatic := 0, 0
		for _, r := range rots {
			if seen[r.KeyMaterialId] {
				t.Errorf("material id %s appears twice", r.KeyMaterialId)
			}
			seen[r.KeyMaterialId] = true
			switch r.RotationType {
			case "ON_DEMAND":
				onDemand++
			case "AUTOMATIC":
				automatic++
			}
		}
		if want := int(min(budget[i].Load(), 25)); onDemand != want {
			t.Errorf("key %d: %d on-demand rotations, want %d", i, onDemand, want)
		}
		if (i%2 == 1 && automatic > 0) || (i%2 == 0 && e.clock.Now().After(epoch.AddDate(0, 0, 91)) && automatic == 0) {
			t.Errorf("key %d (automatic rotation %v): %d automatic rotations after %v", i, i%2 == 0, automatic, e.clock.Now().Sub(epoch))
		}
		n, err := kms.VersionsForTest(e.svc, id)
		if err != nil || n != len(rots)+1 {
			t.Errorf("key %d has %d versions (%v), want %d", i, n, err, len(rots)+1)
		}
	}
}

package postgres_test

import (
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/postgres"
	"github.com/envelopekms/envelope/kms/store/sqlite"
	"github.com/envelopekms/envelope/kms/store/storetest"
)

// benchStores opens a new store of each kind for b.
func benchStores(b *testing.B) map[string]kms.Store {
	url := storetest.PostgresURL(b)
	pg := openStore(b, url)
	lite, err := sqlite.Open(filepath.Join(b.TempDir(), "keystore.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lite.Close() })
	return map[string]kms.Store{"postgres": pg, "sqlite": lite}
}

// reportLatency reports the median and 99th percentile of d.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCreateKey measures kms.Service.CreateKey (one Update: key,
// material, key again; on PostgreSQL, SERIALIZABLE with its notification)
// on each store, with its median and 99th percentile latency.
func BenchmarkCreateKey(b *testing.B) {
	for _, name := range []string{"postgres", "sqlite"} {
		b.Run(name, func(b *testing.B) {
			store := benchStores(b)[name]
			svc := newService(b, store, testRoot(b), 0)
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := svc.CreateKey(b.Context(), &kms.CreateKeyInput{}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
		})
	}
}

// BenchmarkRotateKeyOnDemand measures kms.Service.RotateKeyOnDemand (an
// Update that reads and locks the key, writes material and the key) on each
// store; keys are replaced before they reach the quota of 25 rotations.
func BenchmarkRotateKeyOnDemand(b *testing.B) {
	for _, name := range []string{"postgres", "sqlite"} {
		b.Run(name, func(b *testing.B) {
			store := benchStores(b)[name]
			svc := newService(b, store, testRoot(b), 0)
			var lat []time.Duration
			id, n := "", 25
			for b.Loop() {
				if n == 25 {
					b.StopTimer()
					out, err := svc.CreateKey(b.Context(), &kms.CreateKeyInput{})
					if err != nil {
						b.Fatal(err)
					}
					id, n = out.KeyMetadata.KeyId, 0
					b.StartTimer()
				}
				start := time.Now()
				if _, err := svc.RotateKeyOnDemand(b.Context(), &kms.RotateKeyOnDemandInput{KeyId: id}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				n++
			}
			reportLatency(b, lat)
		})
	}
}

// BenchmarkWarmPair measures a GenerateDataKey+Decrypt pair on a warm
// kms.Service (default cache TTL) over each store, and reports the round
// trips to PostgreSQL per pair.
func BenchmarkWarmPair(b *testing.B) {
	for _, name := range []string{"postgres", "sqlite"} {
		b.Run(name, func(b *testing.B) {
			var store kms.Store
			var writes atomic.Int64
			if name == "postgres" {
				s, err := postgres.OpenCountingForTest(b.Context(), storetest.PostgresURL(b), &writes)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				store = s
			} else {
				store = benchStores(b)[name]
			}
			svc := newService(b, store, testRoot(b), 0)
			out, err := svc.CreateKey(b.Context(), &kms.CreateKeyInput{})
			if err != nil {
				b.Fatal(err)
			}
			id := out.KeyMetadata.KeyId
			pair := func() {
				dk, err := svc.GenerateDataKey(b.Context(), &kms.GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256"})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := svc.Decrypt(b.Context(), &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob}); err != nil {
					b.Fatal(err)
				}
			}
			pair()
			start := writes.Load()
			for b.Loop() {
				pair()
			}
			b.ReportMetric(float64(writes.Load()-start)/float64(b.N), "roundtrips/op")
		})
	}
}

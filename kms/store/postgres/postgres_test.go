package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/postgres"
	"github.com/envelopekms/envelope/kms/store/storetest"
)

// backend is the PostgreSQL store for the shared suite: a database of its
// own on the test server for each test.
var backend = storetest.Backend{
	New:  storetest.PostgresURL,
	Open: func(url string) (kms.Store, error) { return postgres.Open(context.Background(), url) },
}

func TestMain(m *testing.M) {
	if code, ok := storetest.Child(backend.Open); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestStore runs the shared store suite: the kms.Store contract and its
// guarantees under concurrency, from goroutines and from two processes.
func TestStore(t *testing.T) {
	storetest.Run(t, backend)
}

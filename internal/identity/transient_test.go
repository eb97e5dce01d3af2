package identity_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// A failure of the profile store's database (here: a query on a closed
// connection pool, as after a cut connection) is transient, so the request
// is retried rather than failed; an invalid query is not.
func TestIsTransientOfStoreFailures(t *testing.T) {
	db := sqldbtest.OpenDSN(t, sqldbtest.SQLiteDSN(t))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, qerr := db.QueryContext(context.Background(), "SELECT 1")
	if qerr == nil {
		t.Fatal("a query on a closed database succeeded")
	}
	storeErr := fmt.Errorf("identity: find: identity 0 (email/raw): %w", qerr)
	if !identity.IsTransient(storeErr) {
		t.Errorf("IsTransient(%v) = false, want true", storeErr)
	}
	invalid := fmt.Errorf("identity: find: %w: unknown identity type", identity.ErrInvalid)
	if identity.IsTransient(invalid) {
		t.Errorf("IsTransient(%v) = true, want false", invalid)
	}
	if identity.IsTransient(nil) {
		t.Error("IsTransient(nil) = true")
	}
}

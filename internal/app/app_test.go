package app_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
)

// TestRegisterSearchAttributesOnAFreshServer: the worker registers what a new
// namespace lacks, and a second start changes nothing.
func TestRegisterSearchAttributesOnAFreshServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{Dir: t.TempDir(), BareNamespace: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	tc, err := client.Dial(client.Options{HostPort: srv.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	for range 2 {
		if err := app.RegisterSearchAttributes(ctx, tc, "default"); err != nil {
			t.Fatal(err)
		}
	}
	have, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range dsr.SearchAttributes() {
		if got, ok := have.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s: %v (present %v), want %v", name, got, ok, typ)
		}
	}
}

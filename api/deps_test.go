package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestAPILinksNoWorkerCode keeps the import arrows one way: the API binary
// (api -> httpapi -> requests -> dsr, ledger, opendsr, Temporal client) must
// not link workflow or activity code, nor the clients only activities use.
func TestAPILinksNoWorkerCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !slices.Contains(deps, "github.com/dsrflow/dsrflow/internal/requests") {
		t.Fatalf("go list -deps found %d packages, without internal/requests: the test reads nothing", len(deps))
	}
	for _, banned := range []string{
		"github.com/dsrflow/dsrflow/workflows",
		"github.com/dsrflow/dsrflow/activities",
		"github.com/dsrflow/dsrflow/internal/mixpanel",
		"github.com/dsrflow/dsrflow/internal/callback",
		"github.com/dsrflow/dsrflow/internal/devstack",
	} {
		if slices.Contains(deps, banned) {
			t.Errorf("the API links %s", banned)
		}
	}
}

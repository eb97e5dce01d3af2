package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/keyring"
)

// TestProfilesImportController: profiles go to --controller (default
// DSR_CONTROLLER), an erased person is reported suppressed by line, and a
// bad controller id is a usage error.
func TestProfilesImportController(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "p.jsonl", `{"profile_id":"p1","identities":{"email":"VAL-ann@example.com"}}
{"profile_id":"p2","identities":{"email":"VAL-bob@example.com"}}
`)
	code, out, errOut := runCLI(t, dir, "profiles", "import", "--controller", "globex", file)
	if code != exitOK || !strings.Contains(out, "2 profiles imported for controller globex") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	ring, err := keyring.Parse(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	store, err := identity.Open(context.Background(), filepath.Join(dir, "dsrflow.db"), identity.WithKeys(ring))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	q := []identity.Query{{Type: "email", Value: "VAL-ann@example.com"}}
	if ms, err := store.Find(context.Background(), "acme", q); err != nil || len(ms) != 0 {
		t.Fatalf("acme (DSR_CONTROLLER) sees globex's profile: %v %v", ms, err)
	}
	if _, err := store.Erase(context.Background(), identity.EraseInput{Owner: "acme", RequestID: "r1",
		Identities: []identity.Identity{{Type: "email", Value: "VAL-ann@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, dir, "profiles", "import", file)
	if code != exitOK || !strings.Contains(out, "1 profiles imported for controller acme, 1 suppressed") || !strings.Contains(errOut, "line 1: suppressed") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "VAL-") {
		t.Errorf("output holds a value: %s %s", out, errOut)
	}
	if code, _, errOut := runCLI(t, dir, "profiles", "import", "--controller", "a b", file); code != exitUsage {
		t.Errorf("bad controller: exit %d (%s), want %d", code, errOut, exitUsage)
	}
}

package activities_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/results"
)

// TestPurgeExpired: records past their retention and bundles past the results
// TTL go; the rest stays.
func TestPurgeExpired(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := ledger.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bundles, err := results.OpenStore(filepath.Join(dir, "results"), results.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for id, expires := range map[string]time.Time{"old": now.Add(-time.Hour), "kept": now.Add(time.Hour)} {
		if _, _, err := store.CreateRequest(ctx, ledger.Request{ControllerID: "acme", RequestID: id, Type: "erasure", Regulation: "gdpr",
			ReceivedTime: now.Add(-48 * time.Hour), ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]time.Time{}
	for _, age := range []time.Duration{10 * 24 * time.Hour, time.Hour} {
		tok, err := results.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bundles.Write(ctx, tok, func(w io.Writer) error { _, err := w.Write([]byte("zip")); return err }); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(tok))
		path := filepath.Join(dir, "results", hex.EncodeToString(sum[:])+".zip")
		if err := os.Chtimes(path, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		tokens[tok] = now.Add(-age)
	}

	a := &activities.Activities{Settings: activities.Settings{ResultsTTL: 7 * 24 * time.Hour}, Ledger: store, Results: bundles, Keys: newRing(t, "k1")}
	var env testsuite.WorkflowTestSuite
	act := env.NewTestActivityEnvironment()
	act.RegisterActivity(a)
	v, err := act.ExecuteActivity(a.PurgeExpired)
	if err != nil {
		t.Fatal(err)
	}
	var purged int64
	if err := v.Get(&purged); err != nil || purged != 1 {
		t.Fatalf("purged %d records (%v), want 1", purged, err)
	}
	if _, err := store.Get(ctx, ledger.Key{ControllerID: "acme", RequestID: "old"}); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("an expired record is still there: %v", err)
	}
	if _, err := store.Get(ctx, ledger.Key{ControllerID: "acme", RequestID: "kept"}); err != nil {
		t.Errorf("a live record was purged: %v", err)
	}
	for tok, written := range tokens {
		_, _, err := bundles.Open(tok)
		old := now.Sub(written) > 8*24*time.Hour
		if old && !errors.Is(err, results.ErrNotFound) {
			t.Errorf("a bundle past the TTL is still there: %v", err)
		}
		if !old && err != nil {
			t.Errorf("a live bundle was deleted: %v", err)
		}
	}
}

// TestPurgeRemovesDownloadLeftovers: the hourly sweep removes the download
// spools and unfinished bundle writes a killed worker left, once they are
// older than any build can take, and keeps a download in progress.
func TestPurgeRemovesDownloadLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := ledger.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys := newRing(t, "k1")
	resultsDir := filepath.Join(dir, "results")
	bundles, err := results.OpenStore(resultsDir, results.StoreOptions{Wrap: keys.WrapWriter, Unwrap: keys.UnwrapReader})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	// A worker killed mid-download: its spool stays, never removed.
	killed, err := bundles.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := killed.Write([]byte("PK\x03\x04 half an export")); err != nil {
		t.Fatal(err)
	}
	if _, err := killed.Export(); err != nil {
		t.Fatal(err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(resultsDir, ".download-*"))
	// An older version's download directory, with a plaintext export.
	oldDir := filepath.Join(resultsDir, ".download-4242")
	if err := os.Mkdir(oldDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(oldDir, "export-0.zip"), []byte("plaintext export"), 0o600); err != nil {
		t.Fatal(err)
	}
	leftovers = append(leftovers, oldDir)
	for _, p := range leftovers {
		if err := os.Chtimes(p, now.Add(-4*time.Hour), now.Add(-4*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// A download in progress.
	live, err := bundles.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()

	a := &activities.Activities{Settings: activities.Settings{ResultsTTL: 7 * 24 * time.Hour}, Ledger: store, Results: bundles, Keys: keys}
	var env testsuite.WorkflowTestSuite
	act := env.NewTestActivityEnvironment()
	act.RegisterActivity(a)
	if _, err := act.ExecuteActivity(a.PurgeExpired); err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s not purged: %v", filepath.Base(p), err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(resultsDir, ".download-*")); len(left) != 1 {
		t.Errorf("left %v, want only the download in progress", left)
	}
}

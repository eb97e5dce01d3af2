package activities_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
	"github.com/dsrflow/dsrflow/internal/results"
)

// exportSecret is personal data in the test's Mixpanel export.
const exportSecret = "jane.roe@example.com"

// storedExport is a Mixpanel export of n events in a stored (uncompressed)
// zip entry, so that a clear copy on disk would show exportSecret.
func storedExport(t *testing.T, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "events.jsonl", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		fmt.Fprintf(w, `{"event":"Page View","properties":{"time":%d,"distinct_id":"u-1","email":%q}}`+"\n", 1704067200+i, exportSecret)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// resultsFixture is the BuildResults activity with a real ledger, an
// encrypting results store and a Mixpanel export served over HTTP by serve.
type resultsFixture struct {
	a          *activities.Activities
	dir        string // the results directory
	exportURL  string
	store      *ledger.Store
	keys       *keyring.Ring
	controller string
	request    string
}

func newResultsFixture(t *testing.T, serve http.HandlerFunc) *resultsFixture {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	store, err := ledger.Open(ctx, filepath.Join(root, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys := newRing(t, "k1")
	profiles, err := identity.Open(ctx, filepath.Join(root, "ledger.db"), identity.WithKeys(keys))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { profiles.Close() })
	dir := filepath.Join(root, "results")
	bundles, err := results.OpenStore(dir, results.StoreOptions{Wrap: keys.WrapWriter, Unwrap: keys.UnwrapReader})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(serve)
	t.Cleanup(srv.Close)
	mp, err := mixpanel.New(mixpanel.Options{BaseURL: srv.URL, ProjectToken: config.NewSecret("project"), OAuthToken: config.NewSecret("oauth")})
	if err != nil {
		t.Fatal(err)
	}
	f := &resultsFixture{
		a: &activities.Activities{
			Settings: activities.Settings{PublicURL: "https://dsr.example", ResultsTTL: 7 * 24 * time.Hour},
			Ledger:   store, Profiles: profiles, Results: bundles, Keys: keys, Mixpanel: map[string]*mixpanel.Client{"mixpanel": mp},
		},
		dir: dir, exportURL: srv.URL + "/export.zip?sig=s3cr3t", store: store, keys: keys,
		controller: "acme", request: "9f1c2d3e-4b5a-4c6d-8e7f-0011223344bb",
	}
	if _, _, err := store.CreateRequest(ctx, ledger.Request{ControllerID: f.controller, RequestID: f.request, Type: "access", Regulation: "gdpr"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *resultsFixture) build(t *testing.T) (dsr.BuildResultsResult, error) {
	t.Helper()
	var env testsuite.WorkflowTestSuite
	act := env.NewTestActivityEnvironment()
	act.RegisterActivity(f.a)
	v, err := act.ExecuteActivity(f.a.BuildResults, dsr.BuildResultsInput{
		ControllerID: f.controller, RequestID: f.request,
		Exports: []dsr.Export{{Destination: "mixpanel", ResultURL: f.exportURL}},
	})
	if err != nil {
		return dsr.BuildResultsResult{}, err
	}
	var info dsr.BuildResultsResult
	return info, v.Get(&info)
}

// scanDir returns the names of the files under dir, and whether any holds needle.
func scanDir(t *testing.T, dir, needle string) (names []string, found bool) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, d.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = found || bytes.Contains(b, []byte(needle))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names, found
}

// TestBuildResultsNeverStoresTheExportInClear: while the export downloads
// (checked half-way, as a worker killed then would leave it) and after the
// bundle is built, no file of the results directory holds the export's
// personal data in clear; the bundle holds all of it, and no download is
// left behind.
func TestBuildResultsNeverStoresTheExportInClear(t *testing.T) {
	export := storedExport(t, 5000) // about 500 KB
	var f *resultsFixture
	var midway []string
	var midwayClear bool
	f = newResultsFixture(t, func(w http.ResponseWriter, _ *http.Request) {
		half := len(export) / 2
		_, _ = w.Write(export[:half])
		w.(http.Flusher).Flush()
		// Wait for the worker to have written most of the half to disk.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			names, _ := scanDir(t, f.dir, exportSecret)
			if size := spoolBytes(t, f.dir); len(names) > 0 && size > int64(half)/2 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		midway, midwayClear = scanDir(t, f.dir, exportSecret)
		_, _ = w.Write(export[half:])
	})
	info, err := f.build(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(midway) == 0 || !strings.HasPrefix(midway[0], ".download-") || midwayClear {
		t.Fatalf("half-way through the download the results directory held %v (export in clear: %v), want an encrypted .download- file",
			midway, midwayClear)
	}
	names, clear := scanDir(t, f.dir, exportSecret)
	if clear || len(names) != 1 || strings.HasPrefix(names[0], ".") {
		t.Fatalf("after the build the results directory holds %v (export in clear: %v), want the encrypted bundle only", names, clear)
	}
	if info.Count != 5000 || !info.Matched {
		t.Fatalf("results %+v, want 5000 records", info)
	}
	r, _, err := f.a.Results.Open(info.Token)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bundle, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(bundle), int64(len(bundle)))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "mixpanel-events-0001.jsonl" {
		t.Fatalf("bundle: %v", err)
	}
}

// spoolBytes is the size of the download spools in dir.
func spoolBytes(t *testing.T, dir string) int64 {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, ".download-*"))
	var n int64
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestBuildResultsFailureLeavesNoDownload: a download cut off half-way fails
// the build and leaves nothing in the results directory.
func TestBuildResultsFailureLeavesNoDownload(t *testing.T) {
	export := storedExport(t, 5000)
	f := newResultsFixture(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(export)))
		_, _ = w.Write(export[:len(export)/2])
		panic(http.ErrAbortHandler) // the connection drops
	})
	if _, err := f.build(t); err == nil {
		t.Fatal("a cut-off download built a bundle")
	}
	if names, _ := scanDir(t, f.dir, exportSecret); len(names) != 0 {
		t.Fatalf("a failed build left %v", names)
	}
}

package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/dsrflow/dsrflow/internal/config"
)

// readmeVariables returns every variable named in the first column of the
// README's configuration table.
func readmeVariables(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no ## Configuration section")
	}
	section, _, _ := strings.Cut(rest, "\n## ")
	name := regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")
	vars := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			vars[m[1]] = true
		}
	}
	if len(vars) < 10 {
		t.Fatalf("found only %d variables in the README's configuration table: %v", len(vars), vars)
	}
	return vars
}

// loaderVariables returns every variable config.Load looks up, with and
// without a DSR_DESTINATIONS file (which replaces the MIXPANEL_* destination).
func loaderVariables(t *testing.T) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	read := map[string]bool{}
	record := func(set map[string]string) func(string) string {
		return func(k string) string {
			mu.Lock()
			defer mu.Unlock()
			read[k] = true
			return set[k]
		}
	}
	if _, err := config.Load(record(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(record(map[string]string{"MIXPANEL_API_URL": "http://127.0.0.1:9410"})); err != nil {
		t.Fatal(err)
	}
	dests := filepath.Join(t.TempDir(), "destinations.json")
	if err := os.WriteFile(dests, []byte(`[{"name":"eu","region":"eu"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(record(map[string]string{"DSR_DESTINATIONS": dests})); err != nil {
		t.Fatal(err)
	}
	return read
}

// TestREADMEConfigurationTableMatchesTheLoader: every variable the README
// documents is read by config.Load, and every variable config.Load reads is
// documented (VAR_FILE counts as documented with VAR, as the README says).
func TestREADMEConfigurationTableMatchesTheLoader(t *testing.T) {
	documented := readmeVariables(t)
	read := loaderVariables(t)
	var unread, undocumented []string
	for v := range documented {
		if !read[v] {
			unread = append(unread, v)
		}
	}
	for v := range read {
		if v == "" || documented[v] || documented[strings.TrimSuffix(v, "_FILE")] {
			continue
		}
		undocumented = append(undocumented, v)
	}
	sort.Strings(unread)
	sort.Strings(undocumented)
	if len(unread) > 0 {
		t.Errorf("documented in the README but never read by config.Load: %v", unread)
	}
	if len(undocumented) > 0 {
		t.Errorf("read by config.Load but missing from the README's configuration table: %v", undocumented)
	}
}

func TestWorkerCacheSizeIsRead(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil || c.WorkerCacheSize != 2000 {
		t.Fatalf("default WORKER_CACHE_SIZE: %d %v, want 2000", c.WorkerCacheSize, err)
	}
	c, err = config.Load(env(map[string]string{"WORKER_CACHE_SIZE": "50"}))
	if err != nil || c.WorkerCacheSize != 50 {
		t.Fatalf("WORKER_CACHE_SIZE=50: %d %v", c.WorkerCacheSize, err)
	}
	if _, err := config.Load(env(map[string]string{"WORKER_CACHE_SIZE": "0"})); err == nil || !strings.Contains(err.Error(), "WORKER_CACHE_SIZE") {
		t.Errorf("WORKER_CACHE_SIZE=0: %v, want an error naming it", err)
	}
}

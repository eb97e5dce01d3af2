package devstack_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dsrflow/dsrflow/internal/devstack"
)

// TestClusterScriptSearchAttributes: scripts/cluster.sh registers exactly
// the search attributes the workflows use.
func TestClusterScriptSearchAttributes(t *testing.T) {
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "scripts", "cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`--name (\w+) --type (\w+)`).FindAllStringSubmatch(string(b), -1) {
		got = append(got, m[1]+"="+m[2])
	}
	slices.Sort(got)
	if want := devstack.SearchAttributeFlags(); !slices.Equal(got, want) {
		t.Errorf("scripts/cluster.sh registers %v, the workflows use %v", got, want)
	}
}

// TestClusterConfigTemplates renders scripts/cluster/temporal.yaml with the
// server built by `make tools` as each service does, and validates the
// dynamic config file.
func TestClusterConfigTemplates(t *testing.T) {
	server, err := devstack.Bin("temporal-server")
	if err != nil {
		t.Fatal(err)
	}
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// render-config reads --config alone, not under --root.
	cmd := exec.Command(server, "--config", filepath.Join(root, "scripts", "cluster"), "--env", "temporal", "render-config")
	cmd.Env = append(devstack.BaseEnv(), "CLUSTER_SHARDS=7", "CLUSTER_DB=t_temporal", "CLUSTER_VISIBILITY_DB=t_visibility",
		"CLUSTER_PG_PASSWORD=not-in-the-output", "CLUSTER_FRONTEND_PORT=17233", "CLUSTER_METRICS_PORT=18000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("render-config: %v\n%s", err, out)
	}
	for _, want := range []string{"numHistoryShards: 7", "databaseName: t_temporal", "databaseName: t_visibility",
		"grpcPort: 17233", "rpcAddress: 127.0.0.1:17233", "listenAddress: 127.0.0.1:18000"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the rendered config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "not-in-the-output") {
		t.Error("the rendered config shows the database password")
	}
	dc := filepath.Join(root, "scripts", "cluster", "dynamicconfig.yaml")
	if out, err := exec.Command(server, "validate-dynamic-config", dc).CombinedOutput(); err != nil || strings.Contains(string(out), "error") {
		t.Errorf("validate-dynamic-config: %v\n%s", err, out)
	}
}

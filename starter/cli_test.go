package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// temporalAddr is a dev server shared by the CLI tests (no worker: submitting
// only needs the ledger and a workflow start).
var temporalAddr string

// testKeys is the key ring of the CLI tests.
var testKeys, _ = keyring.Generate("test")

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dsr-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	srv, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{Dir: dir})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	temporalAddr = srv.Address
	code := m.Run()
	srv.Stop()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// runCLI runs dsr with args against the ledger in dir, created when missing
// (the CLI itself never creates one).
func runCLI(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	db := filepath.Join(dir, "dsrflow.db")
	if _, err := os.Stat(db); err != nil {
		store, err := ledger.Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		store.Close()
	}
	t.Setenv("TEMPORAL_ADDRESS", temporalAddr)
	t.Setenv("DSR_DB", db)
	t.Setenv("DSR_CONTROLLER", "acme")
	t.Setenv("DSR_ENCRYPTION_KEYS", testKeys)
	t.Setenv("DSR_RESULTS_DIR", filepath.Join(dir, "results"))
	t.Setenv("DSR_API_URL", "")
	t.Setenv("DSR_API_TOKEN", "")
	return runDSR(args...)
}

// runDSR runs dsr with args in the environment as it is.
func runDSR(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBulkSubmitReportsBadRowsAndIsSafeToRerun(t *testing.T) {
	dir := t.TempDir()
	csv := writeFile(t, dir, "subjects.csv", strings.Join([]string{
		"controller_customer_id,email,regulation",
		"cust-1,ann@example.com,gdpr",
		"cust-2,,ccpa",
		",not-an-email,gdpr",           // line 4: malformed email
		"cust-4,bob@example.com,hipaa", // line 5: unknown regulation
		"cust-5,\"unterminated,gdpr",   // line 6: bad CSV quoting (and everything after it on the line)
	}, "\n")+"\n")
	code, out, errOut := runCLI(t, dir, "submit", "--csv", csv, "--type", "erasure", "--skip-waiting-period")
	if code != exitFailure {
		t.Fatalf("exit %d, want %d (some rows failed)\n%s%s", code, exitFailure, out, errOut)
	}
	if !strings.Contains(out, "2 submitted, 0 already submitted, 3 rejected (of 5 rows)") {
		t.Errorf("summary %q, want 2 submitted", out)
	}
	for _, line := range []string{"line 4:", "line 5:"} {
		if !strings.Contains(errOut, line) {
			t.Errorf("stderr does not report %s\n%s", line, errOut)
		}
	}
	for _, secret := range []string{"not-an-email", "bob@example.com", "cust-4"} {
		if strings.Contains(errOut, secret) {
			t.Errorf("an identity value leaked into the error report: %s", secret)
		}
	}

	// A re-run submits nothing twice.
	code, out, _ = runCLI(t, dir, "submit", "--csv", csv, "--type", "erasure", "--skip-waiting-period")
	if code != exitFailure || !strings.Contains(out, "0 submitted, 2 already submitted, 3 rejected") {
		t.Fatalf("re-run: exit %d, %q; want the 2 good rows recognised as already submitted", code, out)
	}

	// Every good row has a ledger record and a started workflow.
	store, err := ledger.Open(context.Background(), filepath.Join(dir, "dsrflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stats, err := store.Stats(context.Background())
	if err != nil || stats[dsr.StatusPending] != 2 {
		t.Fatalf("ledger holds %v (%v), want the 2 good rows pending", stats, err)
	}
	tc, err := client.Dial(client.Options{HostPort: temporalAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	for line, fields := range map[int][]string{2: {"cust-1", "ann@example.com", "gdpr"}, 3: {"cust-2", "", "ccpa"}} {
		id := rowRequestID("acme", "subjects.csv", line, fields)
		if _, err := store.Get(context.Background(), ledger.Key{ControllerID: "acme", RequestID: id}); err != nil {
			t.Errorf("line %d: no ledger record: %v", line, err)
		}
		if _, err := tc.DescribeWorkflowExecution(context.Background(), dsr.WorkflowID("acme", id), ""); err != nil {
			t.Errorf("line %d: no workflow: %v", line, err)
		}
	}
}

// TestBulkRefusesInvalidUTF8: a CSV cell that is not UTF-8 is reported by
// line and not submitted (JSON would have turned it into another identity).
func TestBulkRefusesInvalidUTF8(t *testing.T) {
	dir := t.TempDir()
	csv := writeFile(t, dir, "latin1.csv", "controller_customer_id,regulation\ncust-M\xfcller,gdpr\n")
	code, out, errOut := runCLI(t, dir, "submit", "--csv", csv, "--type", "erasure", "--skip-waiting-period")
	if code != exitFailure || !strings.Contains(out, "0 submitted") || !strings.Contains(errOut, "line 2:") || !strings.Contains(errOut, "UTF-8") {
		t.Fatalf("exit %d, want the row refused\n%s%s", code, out, errOut)
	}
	if strings.Contains(errOut, "cust-M") {
		t.Errorf("the identity value leaked into the report: %s", errOut)
	}
}

func TestSubmitOneFromFlags(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, dir, "submit", "--regulation", "gdpr", "--type", "erasure",
		"--identity", "controller_customer_id=user-42", "--skip-waiting-period", "--id", "7d0f4a3c-1b2e-4c5d-8e9f-0a1b2c3d4e5f")
	if code != exitOK || !strings.Contains(out, "submitted 7d0f4a3c-1b2e-4c5d-8e9f-0a1b2c3d4e5f") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, dir, "status", "7d0f4a3c-1b2e-4c5d-8e9f-0a1b2c3d4e5f")
	if code != exitOK || !strings.Contains(out, "pending") || strings.Contains(out, "user-42") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"submit", "--no-such-flag"},
		{"submit", "--identity", "novalue"},
		{"status"},
	} {
		code, _, errOut := runCLI(t, dir, args...)
		if code == exitOK {
			t.Errorf("%v: exit 0", args)
		}
		if !strings.Contains(errOut, "dsr:") {
			t.Errorf("%v: stderr %q does not say what went wrong", args, errOut)
		}
	}
	if code, _, _ := runCLI(t, dir, "submit", "--no-such-flag"); code != exitUsage {
		t.Errorf("unknown flag: exit %d, want %d", code, exitUsage)
	}
	if code, _, errOut := runCLI(t, dir, "submit", "--identity", "email=bad", "--regulation", "gdpr"); code != exitUsage || !strings.Contains(errOut, "--identity #1 value") {
		t.Errorf("invalid identity: exit %d, %q", code, errOut)
	}
}

func TestRowRequestIDIsStableAndValid(t *testing.T) {
	a := rowRequestID("acme", "f.csv", 2, []string{"x", "y"})
	b := rowRequestID("acme", "f.csv", 2, []string{"x", "y"})
	distinct := []string{
		rowRequestID("acme", "f.csv", 3, []string{"x", "y"}),
		rowRequestID("globex", "f.csv", 2, []string{"x", "y"}),
		rowRequestID("acme", "g.csv", 2, []string{"x", "y"}),
		rowRequestID("acme", "f.csv", 2, []string{"x", "z"}),
		rowRequestID("acme", "f.csv", 2, []string{"xy"}),
	}
	if a != b || slices.Contains(distinct, a) {
		t.Fatalf("ids %s %s %v: want stable per row and distinct across controllers, files, lines and rows", a, b, distinct)
	}
	// An independent RFC 9562 v5: SHA-1 over namespace and name, version and variant set.
	h := sha1.New()
	h.Write(bulkNamespace[:])
	h.Write([]byte("acme\x00f.csv\x002\x00x\x00y"))
	sum := h.Sum(nil)[:16]
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	want := fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	if a != want {
		t.Errorf("rowRequestID = %s, want the UUID v5 %s", a, want)
	}
}

func TestListQuery(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	q, err := listQuery("acme", "failed", "erasure", "gdpr", true, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DsrController = 'acme'", "DsrStatus IN ('failed', 'failed (callbacks pending)')",
		"DsrType = 'erasure'", "DsrRegulation = 'gdpr'", "DsrDueTime < '2026-11-23T12:00:00Z'",
		"DsrStatus IN ('pending', 'pending (waiting period)', 'pending (held for an operator)', 'in_progress', 'failed', 'failed (callbacks pending)')"} {
		if !strings.Contains(q, want) {
			t.Errorf("query %q lacks %q", q, want)
		}
	}
	for _, bad := range [][4]string{{"acme", "done", "", ""}, {"acme", "", "delete", ""}, {"acme", "", "", "hipaa"}, {"ac'me", "", "", ""}} {
		if _, err := listQuery(bad[0], bad[1], bad[2], bad[3], false, now); err == nil {
			t.Errorf("listQuery%v accepted", bad)
		}
	}
}

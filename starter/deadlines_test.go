package main

import (
	"strings"
	"testing"
	"time"
)

// TestListDueWithin lists, from the dev server's visibility, the open
// requests due within a time: a GDPR request (due in a month) is due within
// 35 days, a CCPA one (45 days) is not, and neither within 7 days.
func TestListDueWithin(t *testing.T) {
	dir := t.TempDir()
	ids := map[string]string{"gdpr": "0b6f7c1e-2a3d-4e5f-8a9b-0c1d2e3f4a01", "ccpa": "0b6f7c1e-2a3d-4e5f-8a9b-0c1d2e3f4a02"}
	for reg, id := range ids {
		if code, out, errOut := runCLI(t, dir, "submit", "--controller", "duewithin", "--regulation", reg, "--type", "erasure",
			"--identity", "controller_customer_id=due-"+reg, "--id", id); code != exitOK {
			t.Fatalf("submit %s: exit %d\n%s%s", reg, code, out, errOut)
		}
	}
	list := func(within string) string {
		t.Helper()
		var out, errOut string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			var code int
			code, out, errOut = runCLI(t, dir, "list", "--controller", "duewithin", "--due-within", within)
			if code != exitOK {
				t.Fatalf("list --due-within %s: exit %d\n%s", within, code, errOut)
			}
			if within != "35d" || strings.Contains(out, ids["gdpr"]) || time.Now().After(deadline) {
				return out // visibility may lag a moment behind the start
			}
		}
	}
	if out := list("35d"); !strings.Contains(out, ids["gdpr"]) || strings.Contains(out, ids["ccpa"]) {
		t.Errorf("due within 35 days:\n%s\nwant the GDPR request only", out)
	}
	if out := list("7d"); strings.Contains(out, ids["gdpr"]) || strings.Contains(out, ids["ccpa"]) {
		t.Errorf("due within 7 days:\n%s\nwant none", out)
	}
	if out := list("1200h"); !strings.Contains(out, ids["gdpr"]) || !strings.Contains(out, ids["ccpa"]) {
		t.Errorf("due within 50 days:\n%s\nwant both", out)
	}
	for _, bad := range []string{"soon", "-3d", "0d"} {
		if code, _, _ := runCLI(t, dir, "list", "--due-within", bad); code != exitUsage {
			t.Errorf("--due-within %s: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

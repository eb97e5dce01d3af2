package check_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const (
	rulesFile     = "../prometheus/dsrflow-alerts.yml"
	dashboardFile = "../grafana/dsrflow-dashboard.json"
)

var promql = parser.NewParser(parser.Options{})

// metricNames parses a PromQL expression and returns the metric names it selects.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("%s: %q selects series without a metric name", where, expr)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	if len(names) == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "dsrflow_") && !strings.HasPrefix(n, "temporal_") {
			t.Errorf("%s: %q selects %s, which dsrflow does not export", where, expr, n)
		}
	}
	return names
}

func TestAlertRules(t *testing.T) {
	content, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation, promql, nil)
	for _, err := range errs {
		t.Errorf("%s: %v", rulesFile, err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s has a recording rule %q: only alerts belong here", g.Name, r.Record)
				continue
			}
			alerts = append(alerts, r.Alert)
			if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
			metricNames(t, r.Alert, r.Expr)
		}
	}
	// What the operations kit promises to watch.
	for _, want := range []string{"DsrRequestsOverdue", "DsrRequestsDueWithin7Days", "DsrHeldForAnOperator", "DsrHeldForAnOperatorNearDue",
		"DsrMixpanelUnauthorized", "DsrMixpanelFailing", "DsrMixpanelRateLimited", "DsrCallbacksFailing"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// TestAlertRulesCatchBrokenRules makes sure the check above can fail.
func TestAlertRulesCatchBrokenRules(t *testing.T) {
	for _, bad := range []string{
		"groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: sum(rate(dsrflow_x[5m]\n",
		"groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n          summary: \"{{ $value \"\n",
		"groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up\n        forr: 5m\n",
	} {
		if _, errs := rulefmt.Parse([]byte(bad), false, model.UTF8Validation, promql, nil); len(errs) == 0 {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

func TestDashboard(t *testing.T) {
	content, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	}
	type panel struct {
		ID      int      `json:"id"`
		Type    string   `json:"type"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
	}
	var dash struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(content, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	ids := map[int]bool{}
	seen := map[string]bool{}
	queries := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			for _, n := range metricNames(t, p.Title, tg.Expr) {
				seen[n] = true
			}
		}
	}
	for _, want := range []string{"dsrflow_open_requests", "dsrflow_requests_awaiting_operator", "dsrflow_mixpanel_calls_total",
		"dsrflow_callback_attempts_total", "temporal_workflow_task_schedule_to_start_latency_seconds_bucket"} {
		if !seen[want] {
			t.Errorf("the dashboard shows no %s", want)
		}
	}
	t.Logf("%d panels, %d queries over %d metrics", len(dash.Panels), queries, len(seen))
}

// Command bench measures dsrflow end to end on this machine: for each stack
// of BENCH_STACKS it brings up its own Temporal, the Mixpanel emulator with
// fast task steps and no rate limit, the workers and the API, submits BENCH_N
// skip-wait erasures over HTTP, waits until every one is completed, and
// reports intake rate and latency, completion time, Mixpanel calls against
// the ideal, Temporal history events and actions per request, the peak memory
// and CPU time of every process, next to the same figures for an empty
// Temporal workflow on the same server. The stacks:
//
//   - dev: the Temporal CLI's dev server (one process, SQLite), one worker,
//     the ledger on SQLite (or BENCH_DB);
//   - cluster: Temporal's four services as separate processes on PostgreSQL
//     (devstack.StartCluster, BENCH_SHARDS history shards, default 4), two
//     workers, the ledger on PostgreSQL (or BENCH_DB);
//   - cluster-1w: the same with one worker.
//
// BENCH_STACKS=dev,cluster,cluster-1w is the default. With
// BENCH_WAITING_PERIOD (e.g. 2m) the erasures keep their waiting period, so
// all their timers fire together once it ends; the run then reports the time
// from the window's end to the last completion. It writes
// bench/results/latest.json (one entry per stack) and latest.svg (a chart).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// Run is every stack's results of one `make bench`; it is written as JSON.
type Run struct {
	When     time.Time `json:"when"`
	Requests int       `json:"requests"`
	// WaitingPeriod is BENCH_WAITING_PERIOD ("" for skip-wait erasures).
	WaitingPeriod string    `json:"waiting_period,omitempty"`
	Stacks        []Results `json:"stacks"`
}

// Results is what one stack measured.
type Results struct {
	// Stack is dev, cluster or cluster-1w; Workers its worker processes.
	Stack   string `json:"stack"`
	Workers int    `json:"workers"`
	// HistoryShards is the cluster's numHistoryShards (0 on the dev server).
	HistoryShards int       `json:"history_shards,omitempty"`
	When          time.Time `json:"when"`
	Requests      int       `json:"requests"`
	Concurrency   int       `json:"concurrency"`
	// Ledger is the DSR_DB the run used (password redacted).
	Ledger string `json:"ledger"`
	// WindowEndToLastSeconds is, with a waiting period, the time from the
	// end of the last request's window to the last completion.
	WindowEndToLastSeconds float64 `json:"window_end_to_last_completion_seconds,omitempty"`
	// PeakRSSMB and CPUSeconds are per process: worker-1.., api, and
	// temporal (dev server) or temporal-frontend, -history, -matching, -worker.
	PeakRSSMB  map[string]float64 `json:"peak_rss_mb"`
	CPUSeconds map[string]float64 `json:"cpu_seconds"`
	// TemporalCPUSeconds is the CPU time of Temporal's processes during the
	// erasures (before the empty-workflow baseline).
	TemporalCPUSeconds float64 `json:"temporal_cpu_seconds"`

	IntakePerSecond float64 `json:"intake_per_second"`
	PostP50Ms       float64 `json:"post_p50_ms"`
	PostP99Ms       float64 `json:"post_p99_ms"`
	IntakeErrors    int     `json:"intake_errors"`

	CompletedSeconds     float64 `json:"completed_seconds"`
	CompletionsPerSecond float64 `json:"completions_per_second"`
	Completed            int     `json:"completed"`

	MixpanelCreates         int      `json:"mixpanel_creates"`
	MixpanelCreatesIdeal    int      `json:"mixpanel_creates_ideal"`
	MixpanelStatusCalls     int      `json:"mixpanel_status_calls"`
	MixpanelTasks           int      `json:"mixpanel_tasks"`
	TaskSizes               []string `json:"task_sizes"`
	CreatesPer1000          float64  `json:"mixpanel_creates_per_1000_requests"`
	StatusCallsPer1000      float64  `json:"mixpanel_status_calls_per_1000_requests"`
	PollsPerTask            float64  `json:"polls_per_task"`
	DSREventsPerRequest     float64  `json:"dsr_history_events_per_request"`
	SharedEventsPerRequest  float64  `json:"batch_and_task_history_events_per_request"`
	ActionsPerRequest       float64  `json:"actions_per_request"`
	WorkerPeakRSSMB         float64  `json:"worker_peak_rss_mb"`
	APIPeakRSSMB            float64  `json:"api_peak_rss_mb"`
	EmptyWorkflows          int      `json:"empty_workflows"`
	EmptyStartsPerSecond    float64  `json:"empty_starts_per_second"`
	EmptyCompletionsPerSec  float64  `json:"empty_completions_per_second"`
	EmptyEventsPerWorkflow  float64  `json:"empty_history_events_per_workflow"`
	EmptyActionsPerWorkflow float64  `json:"empty_actions_per_workflow"`
	CompletionRatioToEmpty  float64  `json:"completion_rate_ratio_to_empty"`
	Timeline                []Point  `json:"timeline"`
	HistorySampledWorkflows int      `json:"history_sampled_workflows"`
}

// Point is the completed count at a moment of the run.
type Point struct {
	Seconds   float64 `json:"s"`
	Submitted int     `json:"submitted"`
	Completed int     `json:"completed"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func run() error {
	n := envInt("BENCH_N", 10000)
	conc := envInt("BENCH_CONCURRENCY", 16)
	stacks := strings.Split(os.Getenv("BENCH_STACKS"), ",")
	if os.Getenv("BENCH_STACKS") == "" {
		stacks = []string{"dev", "cluster", "cluster-1w"}
	}
	var wait time.Duration
	if v := os.Getenv("BENCH_WAITING_PERIOD"); v != "" {
		var err error
		if wait, err = time.ParseDuration(v); err != nil || wait <= 0 {
			return fmt.Errorf("BENCH_WAITING_PERIOD=%q: want a duration such as 2m", v)
		}
	}
	all := Run{When: time.Now().UTC(), Requests: n}
	if wait > 0 {
		all.WaitingPeriod = wait.String()
	}
	for _, name := range stacks {
		res, err := runStack(context.Background(), strings.TrimSpace(name), n, conc, wait)
		if err != nil {
			return fmt.Errorf("stack %s: %w", name, err)
		}
		all.Stacks = append(all.Stacks, res)
	}
	printTable(all)
	return write(all)
}

// runStack brings up one stack, measures it and stops it.
func runStack(ctx context.Context, name string, n, conc int, wait time.Duration) (Results, error) {
	res := Results{Stack: name, When: time.Now().UTC(), Requests: n, Concurrency: conc,
		PeakRSSMB: map[string]float64{}, CPUSeconds: map[string]float64{}}
	switch name {
	case "dev":
		res.Workers = 1
	case "cluster":
		res.Workers = 2
	case "cluster-1w":
		res.Workers = 1
	default:
		return res, fmt.Errorf("unknown stack %q: want dev, cluster or cluster-1w", name)
	}
	dir, err := os.MkdirTemp("", "dsrflow-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("\n== %s: starting the stack in %s ...\n", name, dir)
	db := filepath.Join(dir, "dsrflow.db")
	temporal := map[string]*devstack.Process{}
	var cluster *devstack.Cluster
	if name != "dev" {
		res.HistoryShards = envInt("BENCH_SHARDS", 4)
		if cluster, err = devstack.StartCluster(ctx, devstack.ClusterOptions{Dir: dir, Shards: res.HistoryShards}); err != nil {
			return res, err
		}
		defer cluster.Stop()
		db = cluster.LedgerDSN
		for svc, p := range cluster.Services {
			temporal["temporal-"+svc] = p
		}
	}
	if v := os.Getenv("BENCH_DB"); v != "" {
		db = v // e.g. a postgres:// URL, to compare the ledger backends
	}
	env := map[string]string{
		"DSR_BATCH_MAX_WAIT": "15s", "MIXPANEL_POLL_INTERVAL": "2s", "MIXPANEL_RATE_LIMIT": "0", "API_RATE_LIMIT": "0",
		"DSR_DB": db,
	}
	if wait > 0 {
		env["DSR_WAITING_PERIOD"] = wait.String()
	}
	opts := devstack.StackOptions{
		Dir: dir, Env: env,
		Emulator: emulator.Options{Step: 200 * time.Millisecond, RateLimit: emulator.NoRateLimit},
	}
	if cluster != nil {
		opts.TemporalAddress = cluster.Address
	}
	stack, err := devstack.StartStack(ctx, opts)
	if err == nil && res.Workers > 1 {
		err = stack.StartMoreWorkers(ctx, res.Workers-1)
	}
	if stack != nil {
		defer stack.Stop()
	}
	if err != nil {
		return res, err
	}
	if p := stack.Temporal.Process(); p != nil {
		temporal["temporal"] = p
	}
	procs := map[string]*devstack.Process{"worker-1": stack.Worker, "api": stack.API}
	for i, w := range stack.Workers {
		procs[fmt.Sprintf("worker-%d", i+2)] = w
	}
	for k, p := range temporal {
		procs[k] = p
	}
	res.Ledger = sqldb.Redact(db)
	cpuBefore := 0.0
	for _, p := range temporal {
		cpuBefore += p.CPUSeconds()
	}

	store, err := ledger.Open(ctx, db)
	if err != nil {
		return res, err
	}
	defer store.Close()

	fmt.Printf("submitting %d erasures with %d concurrent clients ...\n", n, conc)
	start := time.Now()
	var submitted atomic.Int64
	timeline := make(chan []Point, 1)
	stopWatch := make(chan struct{})
	go func() { timeline <- watch(ctx, store, start, &submitted, n, stopWatch) }()
	ids, latencies, errs := submit(stack.APIURL, n, conc, wait == 0, &submitted)
	intake := time.Since(start)
	windowEnd := time.Now().Add(wait)
	res.IntakeErrors = errs
	res.IntakePerSecond = float64(len(ids)) / intake.Seconds()
	res.PostP50Ms, res.PostP99Ms = percentile(latencies, 0.50), percentile(latencies, 0.99)
	fmt.Printf("intake: %.0f requests/s, POST p50 %.1f ms p99 %.1f ms, %d errors\n", res.IntakePerSecond, res.PostP50Ms, res.PostP99Ms, errs)

	points := <-timeline
	close(stopWatch)
	res.Timeline = points
	if len(points) > 0 {
		last := points[len(points)-1]
		res.Completed = last.Completed
		res.CompletedSeconds = last.Seconds
		res.CompletionsPerSecond = float64(last.Completed) / last.Seconds
		if wait > 0 {
			res.WindowEndToLastSeconds = start.Add(time.Duration(last.Seconds * float64(time.Second))).Sub(windowEnd).Seconds()
		}
	}
	fmt.Printf("completed %d of %d in %.0f s (%.1f/s)\n", res.Completed, n, res.CompletedSeconds, res.CompletionsPerSecond)
	for _, p := range temporal {
		res.TemporalCPUSeconds += p.CPUSeconds()
	}
	res.TemporalCPUSeconds -= cpuBefore

	calls := stack.Emulator.Calls()
	res.MixpanelCreates, res.MixpanelStatusCalls = calls["deletion.create"], calls["deletion.status"]
	tasks := stack.Emulator.Tasks()
	res.MixpanelTasks = len(tasks)
	for _, t := range tasks {
		res.TaskSizes = append(res.TaskSizes, fmt.Sprintf("%s:%d", t.ComplianceType, len(t.DistinctIDs)))
	}
	res.MixpanelCreatesIdeal = idealCreates(n)
	res.CreatesPer1000 = 1000 * float64(res.MixpanelCreates) / float64(n)
	res.StatusCallsPer1000 = 1000 * float64(res.MixpanelStatusCalls) / float64(n)
	if len(tasks) > 0 {
		res.PollsPerTask = float64(res.MixpanelStatusCalls) / float64(len(tasks))
	}
	for k, p := range procs {
		res.PeakRSSMB[k] = float64(p.PeakRSS()) / (1 << 20)
		res.CPUSeconds[k] = p.CPUSeconds()
	}
	res.WorkerPeakRSSMB, res.APIPeakRSSMB = res.PeakRSSMB["worker-1"], res.PeakRSSMB["api"]

	tc, err := client.Dial(client.Options{HostPort: stack.Temporal.Address})
	if err != nil {
		return res, err
	}
	defer tc.Close()
	if err := historyCosts(ctx, tc, ids, tasks, n, &res); err != nil {
		return res, err
	}
	if err := emptyBaseline(ctx, tc, min(n, 2000), conc, &res); err != nil {
		return res, err
	}
	if res.EmptyCompletionsPerSec > 0 {
		res.CompletionRatioToEmpty = res.CompletionsPerSecond / res.EmptyCompletionsPerSec
	}
	return res, nil
}

// submit POSTs n erasures (skipping the waiting period if skipWait) with conc
// clients and returns the ids accepted.
func submit(apiURL string, n, conc int, skipWait bool, submitted *atomic.Int64) (ids []string, latencies []float64, errs int) {
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				id := devstack.NewRequestID()
				reg := "gdpr"
				if i%2 == 1 {
					reg = "ccpa"
				}
				body, _ := json.Marshal(map[string]any{
					"subject_request_id": id, "subject_request_type": "erasure", "regulation": reg,
					"submitted_time":     time.Now().UTC().Format(time.RFC3339),
					"subject_identities": []map[string]string{{"identity_type": "controller_customer_id", "identity_value": fmt.Sprintf("bench-user-%d", i), "identity_format": "raw"}},
					"extensions":         map[string]any{"localhost": map[string]any{"skip_waiting_period": skipWait}},
				})
				req, _ := http.NewRequest(http.MethodPost, apiURL+"/v1/requests", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+devstack.APIToken)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := httpClient.Do(req)
				ms := float64(time.Since(t0).Microseconds()) / 1000
				ok := err == nil && resp.StatusCode == http.StatusCreated
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				latencies = append(latencies, ms)
				if ok {
					ids = append(ids, id)
					submitted.Add(1)
				} else {
					errs++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids, latencies, errs
}

// watch samples the ledger's completed count every second until every
// request is completed (or 30 minutes pass).
func watch(ctx context.Context, store *ledger.Store, start time.Time, submitted *atomic.Int64, n int, stop <-chan struct{}) []Point {
	var points []Point
	deadline := start.Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		stats, err := store.Stats(ctx)
		if err == nil {
			p := Point{Seconds: time.Since(start).Seconds(), Submitted: int(submitted.Load()), Completed: stats[dsr.StatusCompleted]}
			points = append(points, p)
			if p.Completed >= n {
				return points
			}
		}
		select {
		case <-stop:
			return points
		case <-time.After(time.Second):
		}
	}
	return points
}

// idealCreates is one create per flush of at most DSR_BATCH_MAX_SIZE (1000)
// requests, per regulation (half the requests each), each flush fitting one
// task of 1999 ids.
func idealCreates(n int) int {
	gdpr, ccpa := (n+1)/2, n/2
	return int(math.Ceil(float64(gdpr)/1000)) + int(math.Ceil(float64(ccpa)/1000))
}

// historyCosts counts history events of a sample of DSR workflows, and of
// every batch and task workflow (shared by all requests).
func historyCosts(ctx context.Context, tc client.Client, ids []string, tasks []emulator.TaskInfo, n int, res *Results) error {
	sample := ids
	if len(sample) > 200 {
		sample = sample[:200]
	}
	total, totalActions := 0, 0
	for _, id := range sample {
		e, a, err := countCost(ctx, tc, dsr.WorkflowID(devstack.Controller, id), "")
		if err != nil {
			return err
		}
		total, totalActions = total+e, totalActions+a
	}
	res.HistorySampledWorkflows = len(sample)
	if len(sample) > 0 {
		res.DSREventsPerRequest = float64(total) / float64(len(sample))
		res.ActionsPerRequest = float64(totalActions) / float64(len(sample))
	}
	shared, sharedActions := 0, 0
	for _, reg := range []string{"gdpr", "ccpa"} {
		e, a, err := countAllRuns(ctx, tc, dsr.BatchWorkflowID("mixpanel", reg))
		if err != nil {
			return err
		}
		shared, sharedActions = shared+e, sharedActions+a
	}
	for _, t := range tasks {
		e, a, err := countCost(ctx, tc, dsr.TaskWorkflowID("mixpanel", t.ID), "")
		if err != nil {
			return err
		}
		shared, sharedActions = shared+e, sharedActions+a
	}
	res.SharedEventsPerRequest = float64(shared) / float64(n)
	res.ActionsPerRequest += float64(sharedActions) / float64(n)
	return nil
}

// countCost counts a run's history events and its billable actions as
// Temporal Cloud counts them: a start, each activity attempt, timer, signal,
// search-attribute upsert, update, continue-as-new and local-activity marker
// is one; a child workflow start is two.
func countCost(ctx context.Context, tc client.Client, workflowID, runID string) (events, actions int, err error) {
	it := tc.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return events, actions, err
		}
		events++
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, enumspb.EVENT_TYPE_TIMER_STARTED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
			enumspb.EVENT_TYPE_MARKER_RECORDED, enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
			actions++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			actions += int(max(e.GetActivityTaskStartedEventAttributes().GetAttempt(), 1))
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			actions += 2
		}
	}
	return events, actions, nil
}

// countAllRuns counts the events and actions of every run of a workflow (continue-as-new chains).
func countAllRuns(ctx context.Context, tc client.Client, workflowID string) (events, actions int, err error) {
	resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowId = '" + workflowID + "'", PageSize: 1000})
	if err != nil {
		return 0, 0, err
	}
	for _, e := range resp.Executions {
		ev, ac, err := countCost(ctx, tc, workflowID, e.GetExecution().GetRunId())
		if err != nil {
			return 0, 0, err
		}
		events, actions = events+ev, actions+ac
	}
	return events, actions, nil
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[int(math.Min(float64(len(s)-1), math.Floor(p*float64(len(s)))))]
}

// printTable prints the figures of every stack side by side.
func printTable(run Run) {
	type row struct {
		label, target string
		value         func(r Results) string
	}
	rows := []row{
		{"workers, history shards", "", func(r Results) string { return fmt.Sprintf("%d, %d", r.Workers, r.HistoryShards) }},
		{"intake", ">= 100/s", func(r Results) string {
			return fmt.Sprintf("%.0f/s (%d errors)", r.IntakePerSecond, r.IntakeErrors)
		}},
		{"POST latency", "p99 < 250 ms", func(r Results) string { return fmt.Sprintf("p50 %.0f, p99 %.0f ms", r.PostP50Ms, r.PostP99Ms) }},
		{"end to end", "", func(r Results) string {
			return fmt.Sprintf("%d/%d in %.0f s", r.Completed, r.Requests, r.CompletedSeconds)
		}},
		{"completions", "cluster >= 0.8x dev", func(r Results) string { return fmt.Sprintf("%.1f/s", r.CompletionsPerSecond) }},
	}
	if run.WaitingPeriod != "" {
		rows = append(rows, row{"window end -> last done", "", func(r Results) string { return fmt.Sprintf("%.0f s", r.WindowEndToLastSeconds) }})
	}
	rows = append(rows, []row{
		{"Mixpanel creates", "= ideal", func(r Results) string { return fmt.Sprintf("%d (ideal %d)", r.MixpanelCreates, r.MixpanelCreatesIdeal) }},
		{"Mixpanel status calls", "per task", func(r Results) string {
			return fmt.Sprintf("%d, %.1f/task", r.MixpanelStatusCalls, r.PollsPerTask)
		}},
		{"history per erasure", "<= 30 events", func(r Results) string {
			return fmt.Sprintf("%.1f +%.2f shared", r.DSREventsPerRequest, r.SharedEventsPerRequest)
		}},
		{"actions per erasure", "Cloud pricing unit", func(r Results) string { return fmt.Sprintf("%.1f", r.ActionsPerRequest) }},
		{"worker-1 peak RSS", "< 512 MB", func(r Results) string { return fmt.Sprintf("%.0f MB", r.PeakRSSMB["worker-1"]) }},
		{"API peak RSS", "", func(r Results) string { return fmt.Sprintf("%.0f MB", r.PeakRSSMB["api"]) }},
		{"Temporal peak RSS", "all its processes", func(r Results) string { return fmt.Sprintf("%.0f MB", temporalSum(r.PeakRSSMB)) }},
		{"Temporal CPU", "during the erasures", func(r Results) string {
			return fmt.Sprintf("%.0f s (%.0f%% of a core)", r.TemporalCPUSeconds, 100*r.TemporalCPUSeconds/max(r.CompletedSeconds, 1))
		}},
		{"workers' CPU", "", func(r Results) string { return fmt.Sprintf("%.0f s", prefixSum(r.CPUSeconds, "worker-")) }},
		{"empty workflow", "Temporal's ceiling", func(r Results) string {
			return fmt.Sprintf("%.0f starts/s, %.1f done/s", r.EmptyStartsPerSecond, r.EmptyCompletionsPerSec)
		}},
		{"ratio to empty", "", func(r Results) string { return fmt.Sprintf("%.2f", r.CompletionRatioToEmpty) }},
	}...)
	fmt.Printf("\n%-24s", "")
	for _, r := range run.Stacks {
		fmt.Printf(" %-28s", r.Stack)
	}
	fmt.Println(" target")
	for _, row := range rows {
		fmt.Printf("%-24s", row.label)
		for _, r := range run.Stacks {
			fmt.Printf(" %-28s", row.value(r))
		}
		fmt.Printf(" %s\n", row.target)
	}
	for _, r := range run.Stacks {
		var parts []string
		for _, k := range sortedKeys(r.PeakRSSMB) {
			parts = append(parts, fmt.Sprintf("%s %.0f MB/%.0f s", k, r.PeakRSSMB[k], r.CPUSeconds[k]))
		}
		fmt.Printf("%s processes (peak RSS/CPU): %s\n", r.Stack, strings.Join(parts, ", "))
	}
	fmt.Println()
}

// temporalSum adds the values of Temporal's processes (keys "temporal" and "temporal-*").
func temporalSum(m map[string]float64) float64 { return prefixSum(m, "temporal") }

func prefixSum(m map[string]float64, prefix string) float64 {
	sum := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			sum += v
		}
	}
	return sum
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func write(r Run) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "bench", "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), b, 0o644); err != nil {
		return err
	}
	if err := writeChart(filepath.Join(dir, "latest.svg"), r); err != nil {
		return err
	}
	fmt.Printf("wrote %s and latest.svg\n", strings.TrimPrefix(filepath.Join(dir, "latest.json"), root+"/"))
	return nil
}

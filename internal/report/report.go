// Package report builds the monthly compliance report from the ledger: the
// requests received in a month by type, regulation and final status; median
// and 95th percentile time to complete against the statutory limits; overdue
// and extended requests; and the Mixpanel task outcomes. It renders one
// self-contained HTML page (inline CSS and SVG charts, no scripts, no external
// assets) that holds no identity value or hash.
package report

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// Report is one month's figures.
type Report struct {
	// Month is "YYYY-MM"; From and To bound the received times, [From, To), in UTC.
	Month       string
	From, To    time.Time
	GeneratedAt time.Time
	Total       int
	// Counts are the requests by type, regulation and current status.
	Counts []Count
	// ByStatus, ByType and ByRegulation are the same requests counted one way each.
	ByStatus, ByType, ByRegulation []Tally
	// Timing is the time to complete, per regulation.
	Timing []Timing
	// Overdue lists requests completed after their due time, or still open past it.
	Overdue []Late
	// Extended lists requests whose due time was extended.
	Extended []Extended
	// Tasks are the Mixpanel task outcomes per destination.
	Tasks []TaskOutcome
}

// Count is how many requests share a type, regulation and status.
type Count struct {
	Type, Regulation, Status string
	N                        int
}

// Tally is a count under one label.
type Tally struct {
	Label string
	N     int
}

// Timing is the time from receipt to completion of one regulation's
// completed requests, against the statutory limit.
type Timing struct {
	Regulation string
	// Limit is the statutory period, in words ("1 month", "45 days").
	Limit                string
	Completed            int
	Median, P95, Slowest time.Duration
	// OnTime counts completions no later than the due time (an extended one
	// counts against the extended due time).
	OnTime int
}

// Late is a request past its due time.
type Late struct {
	RequestID, ControllerID, Type, Regulation, Status string
	DueTime                                           time.Time
	// FinalTime is zero while the request is open.
	FinalTime time.Time
	// By is how late it was completed, or is now.
	By time.Duration
}

// Extended is a request whose due time was extended.
type Extended struct {
	RequestID, ControllerID, Regulation, Status string
	OriginalDueTime, DueTime                    time.Time
	Reason                                      string
}

// TaskOutcome is how a destination's tasks ended for the month's requests:
// requests per Mixpanel task status ("none" when no task was made, e.g. the
// request was skipped or is still queued).
type TaskOutcome struct {
	Destination string
	ByStatus    []Tally
}

// ParseMonth reads "YYYY-MM" and returns the month's bounds in UTC.
func ParseMonth(month string) (from, to time.Time, err error) {
	from, err = time.Parse("2006-01", month)
	if err != nil || from.Format("2006-01") != month {
		return time.Time{}, time.Time{}, fmt.Errorf("month %q: want YYYY-MM", month)
	}
	return from, from.AddDate(0, 1, 0), nil
}

// Limit returns a regulation's statutory period in words.
func Limit(regulation string) string {
	if regulation == "ccpa" {
		return "45 days"
	}
	return "1 month"
}

// Build reads the month's requests from the ledger and computes the report as
// of now (what is overdue among open requests depends on it).
func Build(ctx context.Context, store *ledger.Store, month string, now time.Time) (Report, error) {
	from, to, err := ParseMonth(month)
	if err != nil {
		return Report{}, err
	}
	records, err := store.ReceivedBetween(ctx, from, to)
	if err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	return compute(month, from, to, records, now), nil
}

// compute builds the report from the month's ledger records.
func compute(month string, from, to time.Time, records []ledger.MonthRecord, now time.Time) Report {
	r := Report{Month: month, From: from, To: to, GeneratedAt: now.UTC(), Total: len(records)}
	counts := map[Count]int{}
	byStatus, byType, byRegulation := map[string]int{}, map[string]int{}, map[string]int{}
	durations := map[string][]time.Duration{}
	onTime := map[string]int{}
	tasks := map[string]map[string]int{}
	for _, rec := range records {
		status := string(rec.Status)
		counts[Count{Type: rec.Type, Regulation: rec.Regulation, Status: status}]++
		byStatus[status]++
		byType[rec.Type]++
		byRegulation[rec.Regulation]++
		final := !rec.FinalTime.IsZero()
		if rec.Status == dsr.StatusCompleted && final {
			durations[rec.Regulation] = append(durations[rec.Regulation], rec.FinalTime.Sub(rec.ReceivedTime))
			if !rec.FinalTime.After(rec.DueTime) {
				onTime[rec.Regulation]++
			}
		}
		if late := lateness(rec, now); late > 0 {
			r.Overdue = append(r.Overdue, Late{RequestID: rec.RequestID, ControllerID: rec.ControllerID, Type: rec.Type,
				Regulation: rec.Regulation, Status: status, DueTime: rec.DueTime, FinalTime: rec.FinalTime, By: late})
		}
		if e := rec.Extension; e != nil {
			r.Extended = append(r.Extended, Extended{RequestID: rec.RequestID, ControllerID: rec.ControllerID, Regulation: rec.Regulation,
				Status: status, OriginalDueTime: e.OriginalDueTime, DueTime: e.DueTime, Reason: e.Reason})
		}
		for _, f := range rec.Forwardings {
			if tasks[f.Destination] == nil {
				tasks[f.Destination] = map[string]int{}
			}
			st := string(f.TaskStatus)
			if st == "" {
				st = "none"
			}
			tasks[f.Destination][st]++
		}
	}
	for c, n := range counts {
		c.N = n
		r.Counts = append(r.Counts, c)
	}
	sort.Slice(r.Counts, func(i, j int) bool {
		a, b := r.Counts[i], r.Counts[j]
		return a.Type+"/"+a.Regulation+"/"+a.Status < b.Type+"/"+b.Regulation+"/"+b.Status
	})
	r.ByStatus, r.ByType, r.ByRegulation = tallies(byStatus), tallies(byType), tallies(byRegulation)
	for _, reg := range sortedKeys(byRegulation) {
		d := durations[reg]
		t := Timing{Regulation: reg, Limit: Limit(reg), Completed: len(d), OnTime: onTime[reg]}
		if len(d) > 0 {
			slices.Sort(d)
			t.Median, t.P95, t.Slowest = Percentile(d, 0.5), Percentile(d, 0.95), d[len(d)-1]
		}
		r.Timing = append(r.Timing, t)
	}
	sort.Slice(r.Overdue, func(i, j int) bool { return r.Overdue[i].By > r.Overdue[j].By })
	sort.Slice(r.Extended, func(i, j int) bool { return r.Extended[i].DueTime.Before(r.Extended[j].DueTime) })
	for _, dest := range sortedKeys(tasks) {
		r.Tasks = append(r.Tasks, TaskOutcome{Destination: dest, ByStatus: tallies(tasks[dest])})
	}
	return r
}

// lateness is how far past its due time a request was completed, or is at
// now while open; 0 when it is not late. Cancelled requests are never late.
func lateness(rec ledger.MonthRecord, now time.Time) time.Duration {
	if rec.DueTime.IsZero() || rec.Status == dsr.StatusCancelled {
		return 0
	}
	end := rec.FinalTime
	if end.IsZero() {
		end = now
	}
	return max(end.Sub(rec.DueTime), 0)
}

// Percentile returns the nearest-rank q-quantile (0 < q <= 1) of sorted
// durations: the smallest value with at least q of the values at or below it.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func tallies(m map[string]int) []Tally {
	out := make([]Tally, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, Tally{Label: k, N: m[k]})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

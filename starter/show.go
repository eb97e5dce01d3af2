package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// requestView is a request as `dsr status` shows it: the API's answer, and
// what only the ledger holds when the CLI works on the database.
type requestView struct {
	resp opendsr.StatusResponse
	ext  opendsr.StatusExtension
	// rec and history are nil through the API.
	rec     *ledger.Request
	history []ledger.Transition
}

// newRequestView reads dsrflow's extension of the answer.
func newRequestView(resp opendsr.StatusResponse, domain string) requestView {
	v := requestView{resp: resp}
	if raw, ok := resp.Extensions[domain]; ok {
		_ = json.Unmarshal(raw, &v.ext) // our own extension: a bad one shows as empty
	} else {
		for _, raw := range resp.Extensions { // through the API the domain may differ from ours
			if json.Unmarshal(raw, &v.ext) == nil && !v.ext.DueTime.IsZero() {
				break
			}
		}
	}
	return v
}

// printStatus writes the request for a person: its status in words, the
// cancellation window while it is open (with the command that uses it), the
// results and one line per destination.
func printStatus(w io.Writer, v requestView, controllerFlag string, now time.Time) {
	id := v.resp.SubjectRequestID
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "request\t%s\n", id)
	fmt.Fprintf(tw, "controller\t%s\n", v.resp.ControllerID)
	if v.rec != nil {
		fmt.Fprintf(tw, "type\t%s %s\n", v.rec.Regulation, v.rec.Type)
	}
	status := v.resp.RequestStatus
	if v.ext.StatusReason != "" {
		status += " (" + v.ext.StatusReason + ")"
	}
	fmt.Fprintf(tw, "status\t%s\n", status)
	if end := v.ext.CancellableUntil; !end.IsZero() && end.After(now) {
		fmt.Fprintf(tw, "waiting period\tends %s (in %s); cancel until then with: dsr cancel %s%s\n",
			stamp(end.Time), until(now, end.Time), id, controllerFlag)
	}
	if v.rec != nil {
		fmt.Fprintf(tw, "received\t%s\n", stamp(v.rec.ReceivedTime))
	}
	fmt.Fprintf(tw, "expected completion\t%s\n", stamp(v.resp.ExpectedCompletionTime.Time))
	if !v.ext.DueTime.IsZero() {
		fmt.Fprintf(tw, "statutory due\t%s\n", stamp(v.ext.DueTime.Time))
	}
	if v.resp.ResultsURL != "" {
		fmt.Fprintf(tw, "results\t%s\n", v.resp.ResultsURL)
		fmt.Fprintf(tw, "results count\t%d records\n", v.resp.ResultsCount)
		if exp := v.ext.ResultsExpiresAt; !exp.IsZero() {
			if exp.After(now) {
				fmt.Fprintf(tw, "results expire\t%s (in %s); download with: dsr results %s%s -o FILE\n", stamp(exp.Time), until(now, exp.Time), id, controllerFlag)
			} else {
				fmt.Fprintf(tw, "results expired\t%s\n", stamp(exp.Time))
			}
		}
	}
	tw.Flush()
	if len(v.ext.Forwarding) > 0 {
		fmt.Fprintln(w, "\nforwarding:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range v.ext.Forwarding {
			fmt.Fprintf(tw, "  %s\t%s\n", f.Destination, forwardingLine(v.resp.RequestStatus, f))
		}
		tw.Flush()
	}
	printResolution(w, v.ext.Resolution)
	if len(v.history) > 0 {
		fmt.Fprintln(w, "\nhistory:")
		for _, t := range v.history {
			fmt.Fprintf(w, "  %s  %s -> %s  %s\n", t.At.Format(time.RFC3339), dash(string(t.From)), t.To, t.Reason)
		}
	}
}

// forwardingLine says in one line where a request stands at one destination,
// consistent with the request's own status.
func forwardingLine(requestStatus string, f opendsr.Forwarding) string {
	task := ""
	if f.TaskID != "" {
		task = "Mixpanel task " + f.TaskID
		if f.TaskStatus != "" {
			task += " " + f.TaskStatus
		}
	}
	switch f.Status {
	case string(dsr.ForwardingSkipped):
		return "skipped: " + f.StatusMessage
	case string(dsr.ForwardingFailed):
		return joinNonEmpty("failed: "+f.StatusMessage, task)
	case string(dsr.ForwardingSent):
		if requestStatus == string(dsr.StatusCompleted) {
			return joinNonEmpty("done: "+f.StatusMessage, task)
		}
		return joinNonEmpty("sent: "+f.StatusMessage, task)
	}
	// Pending at the destination: what that means depends on the request.
	switch requestStatus {
	case string(dsr.StatusCompleted):
		return joinNonEmpty("done", task)
	case string(dsr.StatusCancelled):
		return "not sent: the request was cancelled"
	case string(dsr.StatusFailed):
		if task != "" {
			return "stopped: " + task
		}
		return "not sent: the request failed (see status)"
	}
	if task != "" {
		return "sent: " + task + ", waiting for it to finish"
	}
	return "waiting: " + dash(f.StatusMessage)
}

func joinNonEmpty(a, b string) string {
	if b == "" {
		return a
	}
	return a + " (" + b + ")"
}

// printResolution writes the identity resolution trace; where no profile
// matched it says that the request's own identities were used, and how many.
func printResolution(w io.Writer, trace json.RawMessage) {
	if len(trace) == 0 {
		return
	}
	var r identity.Resolution
	if err := json.Unmarshal(trace, &r); err != nil {
		return
	}
	fmt.Fprintf(w, "\nidentity resolution: %s — %s\n", r.Rule, r.Reason)
	for _, m := range r.Matched {
		fmt.Fprintf(w, "  identity %d (%s, %s) matched %s\n", m.Index, m.Type, m.Format, dash(strings.Join(m.Profiles, ", ")))
	}
	if len(r.Candidates) > 0 {
		fmt.Fprintf(w, "  candidates: %s (choose with: dsr resolve ID --profile P)\n", strings.Join(r.Candidates, ", "))
	}
	ownIDs := r.Rule == identity.RuleNoMatch || r.Rule == identity.RuleDeviceOnlyProtected
	for _, p := range r.Plans {
		switch {
		case p.Skipped:
			fmt.Fprintf(w, "  %s: skipped (%s)\n", p.Destination, p.Reason)
		case ownIDs:
			fmt.Fprintf(w, "  %s: %d of the request's own identities sent as distinct ids (%s)\n", p.Destination, len(p.DistinctIDs), p.Reason)
		default:
			fmt.Fprintf(w, "  %s: distinct ids %s\n", p.Destination, strings.Join(p.DistinctIDs, ", "))
		}
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// until is the time left, rounded for reading.
func until(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	default:
		return d.Round(time.Second).String()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

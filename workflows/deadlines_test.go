package workflows_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// syncBuffer is a log sink safe for the workflow's and the test's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sentCallback is a delivered callback and when it was sent.
type sentCallback struct {
	at     time.Time
	status dsr.Status
	reason string
	due    time.Time
}

// heldHarness is a GDPR erasure held on an ambiguous identity from the
// start, due 30 days after it, that records its callbacks, extensions and
// warning log lines.
type heldHarness struct {
	*dsrHarness
	start      time.Time
	logs       *syncBuffer
	sent       []sentCallback
	extensions []dsr.RecordExtensionInput
}

func newHeldHarness(t *testing.T) *heldHarness {
	logs := &syncBuffer{}
	suite := &testsuite.WorkflowTestSuite{}
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	h := &heldHarness{dsrHarness: newDSRHarnessIn(t, suite, true), logs: logs}
	h.start = h.env.Now().UTC()
	h.in.Regulation, h.in.DueTime, h.in.ExpectedCompletionTime = dsr.RegulationGDPR, h.start.Add(30*24*time.Hour), h.start.Add(2*24*time.Hour)
	h.resolve = func(in dsr.ResolveIdentitiesInput) (dsr.ResolveIdentitiesResult, error) {
		if in.ChosenProfile == "" {
			return dsr.ResolveIdentitiesResult{Hold: true, Candidates: []string{"p-1", "p-2"}}, nil
		}
		return dsr.ResolveIdentitiesResult{Plans: h.plans, Enqueued: true, Profiles: []string{in.ChosenProfile}}, nil
	}
	h.deliver = func(c dsr.DeliverCallbacksInput) error {
		h.sent = append(h.sent, sentCallback{at: h.env.Now().UTC(), status: c.Status, reason: c.StatusReason, due: c.DueTime})
		return nil
	}
	h.env.OnActivity(a.RecordExtension, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.RecordExtensionInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.extensions = append(h.extensions, in)
		return nil
	})
	return h
}

func (h *heldHarness) chooseAt(after time.Duration) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(dsr.UpdateResolve, "resolve", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { h.t.Errorf("resolve refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, dsr.ResolveChoice{ProfileID: "p-1"})
	}, after)
}

func (h *heldHarness) extendAt(after time.Duration, id, reason string, result *dsr.ExtendResult, refused *error) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(dsr.UpdateExtend, id, &testsuite.TestUpdateCallback{
			OnReject: func(err error) { *refused = err },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if err != nil {
					*refused = err
					return
				}
				*result = v.(dsr.ExtendResult)
			},
		}, dsr.Extension{Reason: reason, Operator: "ops"})
	}, after)
}

// warnings returns the callbacks whose reason says what is needed before the due time.
func (h *heldHarness) warnings() []sentCallback {
	var out []sentCallback
	for _, c := range h.sent {
		if strings.Contains(c.reason, "days left") {
			out = append(out, c)
		}
	}
	return out
}

func TestAmbiguousHoldWarnsSevenDaysBeforeTheDueTime(t *testing.T) {
	h := newHeldHarness(t)
	h.chooseAt(26 * 24 * time.Hour)
	h.taskEnds(27*24*time.Hour, "SUCCESS")
	h.run()

	warned := h.warnings()
	if len(warned) != 1 {
		t.Fatalf("warning callbacks = %+v, want one", warned)
	}
	w := warned[0]
	if want := h.in.DueTime.Add(-7 * 24 * time.Hour); w.at.Before(want) || w.at.After(want.Add(time.Minute)) {
		t.Errorf("warning sent at %s, want 7 days before the due time %s", w.at, h.in.DueTime)
	}
	for _, s := range []string{"ambiguous identity", "7 days left", "dsr resolve", "dsr extend"} {
		if !strings.Contains(w.reason, s) {
			t.Errorf("warning reason %q does not say %q", w.reason, s)
		}
	}
	if w.status != dsr.StatusPending {
		t.Errorf("warning callback status %s, want pending", w.status)
	}
	if logs := h.logs.String(); strings.Count(logs, "waits for an operator close to its statutory due time") != 1 || !strings.Contains(logs, "level=WARN") {
		t.Errorf("want one warning log line, got:\n%s", logs)
	}
	if strings.Contains(h.logs.String(), "cust-1") {
		t.Error("the warning log holds the identity value")
	}
}

func TestHoldResolvedEarlyDoesNotWarn(t *testing.T) {
	h := newHeldHarness(t)
	h.chooseAt(2 * 24 * time.Hour)
	h.taskEnds(3*24*time.Hour, "SUCCESS")
	h.run()
	if w := h.warnings(); len(w) != 0 || h.logs.String() != "" {
		t.Errorf("a hold resolved 28 days before the due time warned: %+v\n%s", w, h.logs.String())
	}
	if last := h.statuses[len(h.statuses)-1]; last != dsr.StatusCompleted {
		t.Errorf("ledger statuses %v, want to end completed", h.statuses)
	}
}

func TestExtensionMovesTheDueTimeOnceAndRearmsTheWarning(t *testing.T) {
	h := newHeldHarness(t)
	var first, second dsr.ExtendResult
	var firstErr, secondErr, emptyErr error
	var empty dsr.ExtendResult
	h.extendAt(24*time.Hour, "extend-empty", " ", &empty, &emptyErr)
	h.extendAt(25*time.Hour, "extend-1", "the subject's data spans many projects", &first, &firstErr)
	h.extendAt(26*time.Hour, "extend-2", "again", &second, &secondErr)
	newDue := time.Date(h.in.DueTime.Year(), h.in.DueTime.Month()+2, h.in.DueTime.Day(), h.in.DueTime.Hour(), h.in.DueTime.Minute(), h.in.DueTime.Second(), h.in.DueTime.Nanosecond(), time.UTC)
	if newDue.Day() != h.in.DueTime.Day() {
		newDue = dsr.ExtendedDueTime(dsr.RegulationGDPR, h.in.DueTime) // month-end clamp, tested in dsr
	}
	// Chosen 5 days before the new due time: after the re-armed warning.
	h.chooseAt(newDue.Sub(h.start) - 5*24*time.Hour)
	h.taskEnds(newDue.Sub(h.start)-4*24*time.Hour, "SUCCESS")
	h.run()

	if emptyErr == nil {
		t.Error("an extension without a reason was accepted")
	}
	if firstErr != nil || !first.DueTime.Equal(newDue) || !first.OriginalDueTime.Equal(h.in.DueTime) {
		t.Fatalf("extension = %+v, %v; want %s -> %s", first, firstErr, h.in.DueTime, newDue)
	}
	if secondErr == nil || !strings.Contains(secondErr.Error(), "already extended") {
		t.Errorf("second extension: %v, want refused as already extended", secondErr)
	}
	if len(h.extensions) != 1 || h.extensions[0].Reason != "the subject's data spans many projects" || !h.extensions[0].DueTime.Equal(newDue) || h.extensions[0].Operator != "ops" {
		t.Errorf("ledger extensions = %+v", h.extensions)
	}
	var told bool
	for _, c := range h.sent {
		if strings.Contains(c.reason, "extended to") && c.due.Equal(newDue) && strings.Contains(c.reason, "many projects") {
			told = true
		}
	}
	if !told {
		t.Errorf("no callback announced the new due time: %+v", h.sent)
	}
	// The warning came 7 days before the new due time, not the old one.
	warned := h.warnings()
	if len(warned) != 1 || warned[0].at.Before(newDue.Add(-7*24*time.Hour)) || warned[0].at.After(newDue.Add(-7*24*time.Hour+time.Minute)) {
		t.Errorf("warnings = %+v, want one 7 days before %s", warned, newDue)
	}
	if last := h.sent[len(h.sent)-1]; last.status != dsr.StatusCompleted || !last.due.Equal(newDue) {
		t.Errorf("final callback %+v, want completed with the extended due time", last)
	}
}

func TestExtendedDueTime(t *testing.T) {
	for _, c := range []struct {
		regulation string
		due, want  time.Time
	}{
		{dsr.RegulationGDPR, time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC), time.Date(2027, 1, 15, 10, 0, 0, 0, time.UTC)},
		{dsr.RegulationGDPR, time.Date(2026, 12, 31, 10, 0, 0, 0, time.UTC), time.Date(2027, 2, 28, 10, 0, 0, 0, time.UTC)},
		{dsr.RegulationGDPR, time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)},
		{dsr.RegulationCCPA, time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC), time.Date(2026, 12, 30, 10, 0, 0, 0, time.UTC)},
	} {
		if got := dsr.ExtendedDueTime(c.regulation, c.due); !got.Equal(c.want) {
			t.Errorf("%s %s: %s, want %s", c.regulation, c.due, got, c.want)
		}
	}
}

func TestFailureAwaitingRetryWarnsSevenDaysBeforeTheDueTime(t *testing.T) {
	h := newHeldHarness(t)
	h.resolve = nil // resolves at once; the task is revoked: a failure an operator can fix
	h.taskEnds(time.Hour, "REVOKED")
	h.run() // nobody retries: the request closes after the 30-day retry window

	warned := h.warnings()
	if len(warned) != 1 {
		t.Fatalf("warning callbacks = %+v, want one", warned)
	}
	w := warned[0]
	if want := h.in.DueTime.Add(-7 * 24 * time.Hour); w.at.Before(want) || w.at.After(want.Add(time.Minute)) {
		t.Errorf("warning at %s, want 7 days before the due time %s", w.at, h.in.DueTime)
	}
	if w.status != dsr.StatusFailed || !strings.Contains(w.reason, "dsr retry") || !strings.Contains(w.reason, "REVOKED") {
		t.Errorf("warning = %+v, want a failed notice that says to retry", w)
	}
}

package workflows_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/workflows"
)

// replayer replays with the test stacks' key ring: saved histories are encrypted as production ones are.
func replayer() worker.WorkflowReplayer {
	ring, err := keyring.Parse(devstack.TestEncryptionKeys)
	if err != nil {
		panic(err)
	}
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: keyring.DataConverter(ring), FailureConverter: keyring.FailureConverter(ring),
	})
	if err != nil {
		panic(err)
	}
	r.RegisterWorkflowWithOptions(workflows.DSR, workflow.RegisterOptions{Name: dsr.WorkflowDSR})
	r.RegisterWorkflowWithOptions(workflows.Batch, workflow.RegisterOptions{Name: dsr.WorkflowBatch})
	r.RegisterWorkflowWithOptions(workflows.MixpanelTask, workflow.RegisterOptions{Name: dsr.WorkflowMixpanelTask})
	r.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: dsr.WorkflowRetention})
	return r
}

var quiet = log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// TestReplaySavedHistories replays histories recorded on a real dev server
// (testdata/histories, refreshed with DSR_SAVE_HISTORIES, see e2e) against
// today's workflow code: a change that alters commands without
// workflow.GetVersion fails here.
func TestReplaySavedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*.json")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, f := range files {
		if strings.Contains(f, "nondeterministic") {
			continue
		}
		types[strings.SplitN(strings.TrimSuffix(filepath.Base(f), ".json"), "-", 2)[0]] = true
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := replayer().ReplayWorkflowHistoryFromJSONFile(quiet, f); err != nil {
				t.Fatalf("replay: %v", err)
			}
		})
	}
	for _, want := range []string{"dsr", "batch", "mixpanel", "retention"} {
		if !types[want] {
			t.Errorf("no saved history of the %s workflow in testdata/histories", want)
		}
	}
}

// TestReplayDetectsNonDeterminism proves the replay test can fail: the fixture
// is a saved DSR history whose first activity was renamed.
func TestReplayDetectsNonDeterminism(t *testing.T) {
	f := "testdata/histories/nondeterministic-dsr.json"
	if _, err := os.Stat(f); err != nil {
		t.Fatal(err)
	}
	err := replayer().ReplayWorkflowHistoryFromJSONFile(quiet, f)
	if err == nil || !(strings.Contains(strings.ToLower(err.Error()), "nondetermin") || strings.Contains(err.Error(), "TMPRL1100")) {
		t.Fatalf("replaying an altered history: %v, want a nondeterminism error", err)
	}
}

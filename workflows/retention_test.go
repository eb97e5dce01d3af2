package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/workflows"
)

func TestRetentionPurgesAndSweeps(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.OnActivity(a.PurgeExpired, mock.Anything).Return(int64(7), nil).Once()
	env.OnActivity(a.RequeueStale, mock.Anything).Return(2, nil).Once()
	env.OnActivity(a.ReconcileEnded, mock.Anything).Return(1, nil).Once()
	env.ExecuteWorkflow(workflows.Retention)
	var purged int64
	if err := env.GetWorkflowResult(&purged); err != nil || purged != 7 {
		t.Fatalf("purged %d (%v), want the activity's 7", purged, err)
	}
	env.AssertExpectations(t)
}

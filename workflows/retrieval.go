package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// retrieve handles access and portability requests.
func (r *requestRun) retrieve(ctx workflow.Context) error {
	return r.fail(ctx, "access and portability requests are not supported yet")
}

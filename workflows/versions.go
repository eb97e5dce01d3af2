package workflows

import "go.temporal.io/sdk/workflow"

// changeLifecycle is the workflow.GetVersion change id of issue 13's changes
// (settings read from the worker, Temporal cancellation as a cancel, failure
// isolation by splitting, retry of every failed request). Runs that started
// before it (DefaultVersion) keep the earlier behaviour, so their histories
// replay unchanged.
const changeLifecycle = "lifecycle-13"

// lifecycleV1 is the version of changeLifecycle that introduced them.
const lifecycleV1 workflow.Version = 1

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// emptyWorkflow does nothing: the cost of a workflow on this server, as a yardstick.
func emptyWorkflow(workflow.Context) error { return nil }

// emptyBaseline starts m empty workflows with conc clients on a worker in this
// process and measures starts and completions per second.
func emptyBaseline(ctx context.Context, tc client.Client, m, conc int, res *Results) error {
	const queue = "bench-empty"
	w := worker.New(tc, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(emptyWorkflow, workflow.RegisterOptions{Name: "Empty"})
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	fmt.Printf("baseline: %d empty workflows ...\n", m)
	start := time.Now()
	runs := make([]client.WorkflowRun, m)
	next := make(chan int)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("bench-empty-%d-%d", start.UnixNano(), i), TaskQueue: queue}, "Empty")
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				runs[i] = run
				mu.Unlock()
			}
		}()
	}
	for i := range m {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	res.EmptyWorkflows = m
	res.EmptyStartsPerSecond = float64(m) / time.Since(start).Seconds()
	for _, run := range runs {
		if err := run.Get(ctx, nil); err != nil {
			return err
		}
	}
	res.EmptyCompletionsPerSec = float64(m) / time.Since(start).Seconds()
	events, actions, err := countCost(ctx, tc, runs[0].GetID(), runs[0].GetRunID())
	if err != nil {
		return err
	}
	res.EmptyEventsPerWorkflow, res.EmptyActionsPerWorkflow = float64(events), float64(actions)
	return nil
}

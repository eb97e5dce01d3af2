package chaos_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
)

// The scenarios on a Temporal cluster (devstack.StartCluster: four service
// processes on PostgreSQL, the ledger on PostgreSQL too, two dsrflow workers)
// run with DSR_CHAOS_STACK=cluster (`make chaos CHAOS_STACK=cluster`). They
// check what must hold whatever the machine's load: every request completed
// exactly once, every id in exactly one Mixpanel task. Calls Mixpanel's
// 1 request/s limit answered 429 (retried) are reported, not failed: on two
// worker processes they depend on dispatch jitter (docs/operations.md).

// newClusterScenario starts a cluster and a stack with two workers on it.
func newClusterScenario(t *testing.T, em emulator.Options) (*scenario, *devstack.Cluster) {
	t.Helper()
	if os.Getenv("DSR_CHAOS_STACK") != "cluster" {
		t.Skip("a cluster scenario: runs with DSR_CHAOS_STACK=cluster (make chaos CHAOS_STACK=cluster)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cluster, err := devstack.StartCluster(ctx, devstack.ClusterOptions{Dir: dir})
	if err != nil {
		t.Fatalf("starting the cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(cluster.Logs())
		}
		cluster.Stop()
	})
	stack, err := devstack.StartStack(ctx, devstack.StackOptions{
		Dir: dir, TemporalAddress: cluster.Address, Emulator: em,
		Env: map[string]string{"DSR_BATCH_MAX_WAIT": "2s", "MIXPANEL_POLL_INTERVAL": "1s", "DSR_DB": cluster.LedgerDSN,
			// Headroom under Mixpanel's 1 request/s for the jitter between
			// Temporal's dispatch and the workers' calls (docs/operations.md).
			"MIXPANEL_RATE_LIMIT": "0.8"},
	})
	if err == nil {
		err = stack.StartMoreWorkers(ctx, 1)
	}
	t.Cleanup(func() {
		if t.Failed() && stack != nil {
			t.Log(stack.Logs())
		}
		if stack != nil {
			stack.Stop()
		}
	})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	return &scenario{t: t, stack: stack, dir: dir}, cluster
}

func TestClusterHistoryKilledMidFlush(t *testing.T) {
	// Slow Mixpanel answers keep the first create in flight when history dies.
	s, cluster := newClusterScenario(t, emulator.Options{Step: 5 * time.Second, Latency: 800 * time.Millisecond})
	s.submit(requestsPerScenario())
	s.waitFor("the first deletion task create", 2*time.Minute, func() bool { return s.stack.Emulator.Calls()["deletion.create"] >= 1 })
	cluster.Services["history"].Kill()
	time.Sleep(2 * time.Second) // the frontend and matching notice it is gone
	if err := cluster.StartService(context.Background(), "history"); err != nil {
		t.Fatal(err)
	}
	s.waitAll(s.ids, "completed", 6*time.Minute)
	s.assertExactlyOnce(s.ids)
	s.report("kill -9 of Temporal's history service during a flush, then its restart")
}

func TestClusterWorkerKilledWhilePolling(t *testing.T) {
	// Tasks take 20 s, so both workers poll them for a while; one of the two
	// dies (SIGKILL) once polling started and is not restarted.
	s, _ := newClusterScenario(t, emulator.Options{Step: 20 * time.Second})
	s.submit(requestsPerScenario())
	s.waitFor("a task being polled", 3*time.Minute, func() bool { return s.stack.Emulator.Calls()["deletion.status"] >= 1 })
	s.stack.Worker.Kill()
	s.waitAll(s.ids, "completed", 6*time.Minute)
	s.assertExactlyOnce(s.ids)
	s.report("kill -9 of one of two workers while tasks were polled")
}

func TestClusterPostgresConnectionsKilled(t *testing.T) {
	s, cluster := newClusterScenario(t, emulator.Options{Step: 5 * time.Second, Latency: 300 * time.Millisecond})
	s.submit(requestsPerScenario())
	s.waitFor("the first deletion task create", 2*time.Minute, func() bool { return s.stack.Emulator.Calls()["deletion.create"] >= 1 })
	first, err := cluster.TerminateConnections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.waitFor("a task being polled", 3*time.Minute, func() bool { return s.stack.Emulator.Calls()["deletion.status"] >= 1 })
	second, err := cluster.TerminateConnections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if first == 0 || second == 0 {
		t.Fatalf("terminated %d then %d connections: the fault was not injected", first, second)
	}
	s.waitAll(s.ids, "completed", 6*time.Minute)
	s.assertExactlyOnce(s.ids)
	s.report("pg_terminate_backend of every Temporal and ledger connection during a flush and during polling")
}

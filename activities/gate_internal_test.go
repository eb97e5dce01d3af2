package activities

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestCallGateSpacesCallsFromTheirEnd: calls through the gate never overlap,
// and each starts at least the interval after the previous one returned, so
// a slow call (a request that reached Mixpanel late) cannot be followed by
// one arriving too soon after it.
func TestCallGateSpacesCallsFromTheirEnd(t *testing.T) {
	const interval = 50 * time.Millisecond
	g := newCallGate(interval)
	var mu sync.Mutex
	type span struct{ start, end time.Time }
	var spans []span
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			release, err := g.enter(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			s := span{start: time.Now()}
			time.Sleep(time.Duration(i%2) * 30 * time.Millisecond) // some calls are slow
			s.end = time.Now()
			mu.Lock()
			spans = append(spans, s)
			mu.Unlock()
			release()
			release() // a second release is harmless
		})
	}
	wg.Wait()
	if len(spans) != 6 {
		t.Fatalf("%d calls went through, want 6", len(spans))
	}
	for i := 1; i < len(spans); i++ {
		if gap := spans[i].start.Sub(spans[i-1].end); gap < interval {
			t.Errorf("call %d started %v after call %d returned, want at least %v", i, gap, i-1, interval)
		}
	}
}

// TestCallGateHonoursCancellation: a caller whose context ends while it
// waits gives up without taking the gate from the others.
func TestCallGateHonoursCancellation(t *testing.T) {
	g := newCallGate(time.Hour)
	release, err := g.enter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.enter(ctx); err == nil {
		t.Fatal("entered an hour early")
	}
	// The gate is still usable: its token came back.
	select {
	case <-g.turn:
		g.turn <- struct{}{}
	default:
		t.Fatal("a cancelled wait kept the gate")
	}
}

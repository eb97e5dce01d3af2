package activities

import (
	"context"
	"fmt"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// ResolveIdentities decides, for every active destination, which distinct ids
// it receives, records pending or skipped forwarding rows in the ledger and,
// when asked, joins the destinations' batches. Both steps are idempotent, so a
// retry repeats them safely.
func (a *Activities) ResolveIdentities(ctx context.Context, in ResolveInput) (ResolveResult, error) {
	key := ledger.Key{ControllerID: in.ControllerID, RequestID: in.RequestID}
	var res ResolveResult
	for _, d := range a.Config.ActiveDestinations() {
		p := Plan{Destination: d.Name}
		for _, id := range in.Identities {
			if id.Type == d.IdentityType && (id.Format == "" || id.Format == "raw") {
				p.DistinctIDs = []string{id.Value}
			}
		}
		f := ledger.Forwarding{Destination: d.Name, Status: ledger.ForwardingStatus(dsr.ForwardingPending), StatusMessage: "queued for the next batch", UpdatedAt: a.now()}
		if len(p.DistinctIDs) == 0 {
			p.Skipped, p.Reason = true, fmt.Sprintf("no raw %s identity in the request", d.IdentityType)
			f.Status, f.StatusMessage = ledger.ForwardingStatus(dsr.ForwardingSkipped), p.Reason
		}
		if err := a.Ledger.SetForwarding(ctx, []ledger.Key{key}, f); err != nil {
			return ResolveResult{}, fmt.Errorf("ledger: %w", err)
		}
		res.Plans = append(res.Plans, p)
	}
	if !in.Enqueue {
		return res, nil
	}
	for _, p := range res.Plans {
		if p.Skipped {
			continue
		}
		if err := a.Enqueue(ctx, EnqueueInput{Destination: p.Destination, Regulation: in.Regulation,
			Member: dsr.Member{ControllerID: in.ControllerID, RequestID: in.RequestID, DistinctIDs: p.DistinctIDs}}); err != nil {
			return ResolveResult{}, err
		}
	}
	res.Enqueued = true
	return res, nil
}

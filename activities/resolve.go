package activities

import (
	"context"
	"encoding/json"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// ResolveIdentities resolves the request's identities to its controller's
// profiles (the profile store, or the company's identity service; never
// another controller's), applies the resolution rules for every active
// destination the controller may use (the others are skipped, with the
// reason), records the trace (profile ids and rules, no identity value;
// sealed all the same) and the pending or skipped forwarding rows in the
// ledger, and, when asked and not held for an operator, joins the
// destinations' batches. Every step is idempotent, so a retry repeats them
// safely.
func (a *Activities) ResolveIdentities(ctx context.Context, in dsr.ResolveIdentitiesInput) (dsr.ResolveIdentitiesResult, error) {
	key := ledger.Key{ControllerID: in.ControllerID, RequestID: in.RequestID}
	queries := make([]identity.Query, len(in.Identities))
	for i, id := range in.Identities {
		queries[i] = identity.Query(id)
	}
	matches, err := a.Finder.Find(ctx, in.ControllerID, queries)
	if err != nil {
		if identity.IsTransient(err) {
			return dsr.ResolveIdentitiesResult{}, fmt.Errorf("identity resolver: %w", err)
		}
		return dsr.ResolveIdentitiesResult{}, temporal.NewNonRetryableApplicationError("identity resolver: "+err.Error(), dsr.ErrTypeResolverFailed, nil)
	}
	var dests []config.Destination
	var denied []string
	for _, d := range a.Settings.Destinations {
		if !d.AllowsController(in.ControllerID) {
			denied = append(denied, d.Name)
			continue
		}
		dests = append(dests, d)
	}
	res := identity.Resolve(identity.Input{
		Identities: queries, Matches: matches, LoginTypes: a.Settings.LoginIdentityTypes,
		Destinations: dests, Policy: a.Settings.AmbiguityPolicy, ChosenProfile: in.ChosenProfile,
	})
	if !res.Hold {
		for _, name := range denied {
			res.Plans = append(res.Plans, dsr.Plan{Destination: name, Skipped: true, Reason: ReasonDestinationNotAllowed})
		}
	}
	if err := a.recordResolution(ctx, key, res); err != nil {
		return dsr.ResolveIdentitiesResult{}, err
	}
	out := dsr.ResolveIdentitiesResult{Profiles: res.Profiles, Hold: res.Hold, Candidates: res.Candidates, Reason: res.Reason}
	if res.Hold {
		return out, nil
	}
	for _, p := range res.Plans {
		f := ledger.Forwarding{Destination: p.Destination, Status: dsr.ForwardingPending, StatusMessage: pendingMessage(in.Enqueue), UpdatedAt: a.now()}
		if p.Skipped {
			f.Status, f.StatusMessage = dsr.ForwardingSkipped, p.Reason
		}
		if err := a.Ledger.SetForwarding(ctx, []ledger.Key{key}, f); err != nil {
			return dsr.ResolveIdentitiesResult{}, fmt.Errorf("ledger: %w", err)
		}
		out.Plans = append(out.Plans, p)
	}
	if !in.Enqueue {
		return out, nil
	}
	for _, p := range out.Plans {
		if p.Skipped {
			continue
		}
		if err := a.Enqueue(ctx, dsr.EnqueueInput{Destination: p.Destination, Regulation: in.Regulation,
			Member: dsr.Member{ControllerID: in.ControllerID, RequestID: in.RequestID, DistinctIDs: p.DistinctIDs}}); err != nil {
			return dsr.ResolveIdentitiesResult{}, err
		}
	}
	out.Enqueued = true
	return out, nil
}

// ReasonDestinationNotAllowed is the forwarding reason of a destination
// whose DSR_DESTINATIONS entry does not list the request's controller.
const ReasonDestinationNotAllowed = "skipped: this destination is not available to the request's controller (DSR_DESTINATIONS controllers)"

// pendingMessage is the forwarding message of a destination not yet sent to:
// erasures join a batch, access and portability requests get their own task.
func pendingMessage(enqueue bool) string {
	if enqueue {
		return "queued for the next batch"
	}
	return "waiting for its Mixpanel task"
}

// recordResolution keeps the trace the owning controller reads back: the
// rule, the profile ids and the reasons, without the distinct ids (identity
// values of the profiles), sealed with the key ring all the same.
func (a *Activities) recordResolution(ctx context.Context, key ledger.Key, res identity.Resolution) error {
	trace, err := json.Marshal(res.Redacted())
	if err != nil {
		return err
	}
	return a.recordTrace(ctx, key, trace)
}

// recordTrace seals a resolution trace and records it in the ledger.
func (a *Activities) recordTrace(ctx context.Context, key ledger.Key, trace []byte) error {
	sealed, err := a.Keys.Seal(string(trace))
	if err != nil {
		return err
	}
	doc, err := json.Marshal(sealed)
	if err != nil {
		return err
	}
	if err := a.Ledger.SetResolution(ctx, key, doc); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

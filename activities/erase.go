package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// CompleteErasure is the step that records an erasure's completion (a
// local activity, in place of RecordStatus). In order, each part idempotent
// so that a retry repeats them safely:
//
//  1. removes the results bundles of earlier access or portability requests
//     of the same controller that hold one of the matched profiles, or data
//     of one of their identities or of the request's raw identities (their
//     links answer 410 from then on);
//  2. deletes the matched profiles' identities and attributes from the
//     profile store, leaving keyed hashes on the suppression list, in one
//     transaction recorded under the request (a retry reports the same count);
//  3. records the status completed in the ledger, with the reason saying
//     "local copy erased" and how many rows were removed.
//
// The ledger therefore never says completed while the local copy remains.
func (a *Activities) CompleteErasure(ctx context.Context, in dsr.CompleteErasureInput) (dsr.CompleteErasureResult, error) {
	c := in.Status
	var out dsr.CompleteErasureResult
	raw := rawIdentities(in.Identities)
	bundles, err := a.Profiles.BundleRequests(ctx, c.ControllerID, in.Profiles, raw)
	if err != nil {
		return out, err
	}
	for _, requestID := range bundles {
		removed, err := a.removeBundle(ctx, ledger.Key{ControllerID: c.ControllerID, RequestID: requestID})
		if err != nil {
			return out, err
		}
		if removed {
			out.BundlesRemoved++
		}
	}
	res, err := a.Profiles.Erase(ctx, identity.EraseInput{
		Owner: c.ControllerID, RequestID: c.RequestID, ProfileIDs: in.Profiles, Identities: raw, BundleRequests: bundles,
	})
	if err != nil {
		return out, err
	}
	out.RowsRemoved = res.Rows
	out.Reason = LocalCopyErasedReason(c.Reason, res.Rows)
	c.Reason = out.Reason
	if err := a.RecordStatus(ctx, c); err != nil {
		return out, err
	}
	// Then the ledger forgets the matched profile ids wherever the
	// controller's records name them (an ambiguous hold's candidates, the
	// operator's choice, a skipped destination's message, the sealed traces
	// of the erasure and of the access requests whose bundles went): their
	// keyed hash stands in their place.
	if _, err := a.Ledger.ForgetProfiles(ctx, a.Keys, c.ControllerID, in.Profiles); err != nil {
		return out, err
	}
	if err := a.forgetInTraces(ctx, c.ControllerID, append([]string{c.RequestID}, bundles...), in.Profiles); err != nil {
		return out, err
	}
	return out, nil
}

// forgetInTraces replaces the erased profile ids in the sealed resolution
// traces of the controller's requests named (the erasure's own, and the
// access requests whose bundles held the subject) by their keyed hash.
func (a *Activities) forgetInTraces(ctx context.Context, controller string, requestIDs, profiles []string) error {
	if len(profiles) == 0 {
		return nil
	}
	for _, id := range requestIDs {
		key := ledger.Key{ControllerID: controller, RequestID: id}
		rec, err := a.Ledger.Get(ctx, key)
		if errors.Is(err, ledger.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		var sealed string
		if len(rec.Resolution) == 0 || json.Unmarshal(rec.Resolution, &sealed) != nil {
			continue
		}
		trace, err := a.Keys.Open(sealed)
		if err != nil {
			return fmt.Errorf("open the resolution trace of %s: %w", key, err)
		}
		forgotten := ledger.ForgetMentions(a.Keys, trace, profiles, true)
		if forgotten == trace {
			continue
		}
		if err := a.recordTrace(ctx, key, []byte(forgotten)); err != nil {
			return err
		}
	}
	return nil
}

// rawIdentities returns a request's raw identities (hashed ones cannot be
// suppressed or linked).
func rawIdentities(ids []dsr.Identity) []identity.Identity {
	var raw []identity.Identity
	for _, id := range ids {
		if id.Format == "" || id.Format == opendsr.IdentityFormatRaw {
			raw = append(raw, identity.Identity{Type: id.Type, Value: id.Value})
		}
	}
	return raw
}

// LocalCopyErasedReason is the completion reason of an erasure whose local
// copy was erased.
func LocalCopyErasedReason(reason string, rows int) string {
	return fmt.Sprintf("%s; local copy erased: %d profile store rows removed", reason, rows)
}

// removeBundle deletes the results bundle of a request, if it still has one,
// and makes its link answer 410.
func (a *Activities) removeBundle(ctx context.Context, key ledger.Key) (bool, error) {
	rec, err := a.Ledger.Get(ctx, key)
	if errors.Is(err, ledger.ErrNotFound) || err == nil && rec.ResultsURL == "" {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ledger: %w", err)
	}
	link, err := a.Keys.Open(rec.ResultsURL)
	if err != nil {
		return false, fmt.Errorf("opening the sealed results link of %s: %w", key, err)
	}
	if err := a.Results.Delete(path.Base(link)); err != nil {
		return false, fmt.Errorf("results store: %w", err)
	}
	if err := a.Ledger.ClearResults(ctx, key); err != nil {
		return false, fmt.Errorf("ledger: %w", err)
	}
	return true, nil
}

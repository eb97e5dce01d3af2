package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
	"github.com/dsrflow/dsrflow/internal/results"
)

// CreateRetrievalTask makes one Mixpanel call: create a data-retrieval task.
func (a *Activities) CreateRetrievalTask(ctx context.Context, in dsr.CreateRetrievalTaskInput) (dsr.CreateTaskResult, error) {
	c, release, err := a.mixpanelClient(ctx, in.Destination)
	if err != nil {
		return dsr.CreateTaskResult{}, err
	}
	defer release()
	disclosure := mixpanel.DisclosureData
	switch in.DisclosureType {
	case "categories":
		disclosure = mixpanel.DisclosureCategories
	case "sources":
		disclosure = mixpanel.DisclosureSources
	}
	id, err := c.CreateRetrieval(ctx, in.DistinctIDs, complianceType(in.Regulation), disclosure)
	a.Metrics.mixpanelCall(in.Destination, "retrieval.create", err)
	if err != nil {
		return dsr.CreateTaskResult{}, mixpanelError(err)
	}
	return dsr.CreateTaskResult{TaskID: id, CreatedAt: a.now(), PollInterval: a.Settings.MixpanelPollInterval, MaxTaskAge: a.Settings.MixpanelMaxTaskAge}, nil
}

// BuildResults downloads each finished export (streaming, bounded, and
// encrypted on its way to disk in a results.Spool), turns them and the live
// profiles into the results bundle, stores it under a new unguessable token
// and records the link in the ledger. The spools are removed when it
// returns; the hourly sweep removes those of a killed worker (PurgeExpired).
func (a *Activities) BuildResults(ctx context.Context, in dsr.BuildResultsInput) (dsr.BuildResultsResult, error) {
	key := ledger.Key{ControllerID: in.ControllerID, RequestID: in.RequestID}
	token, err := results.NewToken()
	if err != nil {
		return dsr.BuildResultsResult{}, err
	}
	info := dsr.BuildResultsResult{Token: token, URL: a.Settings.PublicURL + "/v1/results/" + token, ExpiresAt: a.now().Add(a.Settings.ResultsTTL)}
	profiles, err := a.profileRecords(ctx, in.ControllerID, in.Profiles)
	if err != nil {
		return dsr.BuildResultsResult{}, err
	}
	info.Matched = len(profiles) > 0 || len(in.Exports) > 0
	if info.Matched {
		// Recorded before the bundle exists, so that an erasure of the
		// subject always finds (and removes) it.
		if err := a.Profiles.LinkBundle(ctx, in.ControllerID, in.RequestID, in.Profiles, rawIdentities(in.Identities)); err != nil {
			return dsr.BuildResultsResult{}, err
		}
		bundle := results.BundleInput{Profiles: profiles}
		for _, e := range in.Exports {
			sp, err := a.Results.NewSpool()
			if err != nil {
				return dsr.BuildResultsResult{}, fmt.Errorf("results store: %w", err)
			}
			defer sp.Remove()
			if err := a.download(ctx, e, sp); err != nil {
				return dsr.BuildResultsResult{}, err
			}
			export, err := sp.Export()
			if err != nil {
				return dsr.BuildResultsResult{}, fmt.Errorf("results store: %w", err)
			}
			bundle.Exports = append(bundle.Exports, export)
			bundle.Destinations = append(bundle.Destinations, e.Destination)
		}
		var stats results.BundleStats
		if _, err := a.Results.Write(ctx, token, func(w io.Writer) error {
			stats, err = results.Build(ctx, w, bundle)
			return err
		}); err != nil {
			if errors.Is(err, results.ErrEncryptedExport) || errors.Is(err, results.ErrCorruptExport) ||
				errors.Is(err, results.ErrInvalidLine) || errors.Is(err, results.ErrLineTooLong) || errors.Is(err, results.ErrExportTooLarge) {
				return dsr.BuildResultsResult{}, temporal.NewNonRetryableApplicationError("the Mixpanel export could not be read: "+err.Error(), dsr.ErrTypeResultsUnreadable, nil)
			}
			return dsr.BuildResultsResult{}, fmt.Errorf("building the results bundle: %w", err)
		}
		info.Count = stats.Records
	}
	sealedURL, err := a.Keys.Seal(info.URL)
	if err != nil {
		return dsr.BuildResultsResult{}, err
	}
	if err := a.Ledger.SetResults(ctx, key, token, sealedURL, info.Count, info.ExpiresAt); err != nil {
		return dsr.BuildResultsResult{}, fmt.Errorf("ledger: %w", err)
	}
	// Each destination's row says its export was retrieved, so no row of a
	// completed request still reads as waiting.
	for _, e := range in.Exports {
		f := ledger.Forwarding{Destination: e.Destination, Status: dsr.ForwardingSent, StatusMessage: "Mixpanel export retrieved",
			TaskID: e.TaskID, UpdatedAt: a.now()}
		if e.TaskID != "" {
			f.TaskStatus = dsr.TaskSuccess
		}
		if err := a.Ledger.SetForwarding(ctx, []ledger.Key{key}, f); err != nil {
			return dsr.BuildResultsResult{}, fmt.Errorf("ledger: %w", err)
		}
	}
	return info, nil
}

// download streams one export into sp, bounded by the client's size limit.
func (a *Activities) download(ctx context.Context, e dsr.Export, sp *results.Spool) error {
	c, ok := a.Mixpanel[e.Destination]
	if !ok {
		return temporal.NewNonRetryableApplicationError("destination "+e.Destination+" is not configured on this worker", dsr.ErrTypeBadRequest, nil)
	}
	body, err := c.DownloadResult(ctx, e.ResultURL)
	a.Metrics.mixpanelCall(e.Destination, "retrieval.download", err)
	if err != nil {
		if errors.Is(err, mixpanel.ErrResultTooLarge) || errors.Is(err, mixpanel.ErrResultExpired) {
			return temporal.NewNonRetryableApplicationError("downloading the Mixpanel export: "+err.Error(), dsr.ErrTypeResultsUnreadable, nil)
		}
		return fmt.Errorf("downloading the Mixpanel export of %s: %w", e.Destination, err)
	}
	defer body.Close()
	if _, err := io.Copy(sp, &heartbeatReader{ctx: ctx, r: body}); err != nil {
		if errors.Is(err, mixpanel.ErrResultTooLarge) {
			return temporal.NewNonRetryableApplicationError("downloading the Mixpanel export: "+err.Error(), dsr.ErrTypeResultsUnreadable, nil)
		}
		return fmt.Errorf("downloading the Mixpanel export of %s: %w", e.Destination, err)
	}
	return nil
}

// heartbeatReader heartbeats while a long download streams.
type heartbeatReader struct {
	ctx  context.Context
	r    io.Reader
	last time.Time
}

func (h *heartbeatReader) Read(p []byte) (int, error) {
	if time.Since(h.last) > 5*time.Second {
		activity.RecordHeartbeat(h.ctx)
		h.last = time.Now()
	}
	return h.r.Read(p)
}

// profileRecords loads the controller's live profiles for profile.jsonl. A
// profile erased since the request resolved is left out.
func (a *Activities) profileRecords(ctx context.Context, controller string, ids []string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for _, id := range ids {
		p, err := a.Profiles.Get(ctx, controller, id)
		if errors.Is(err, identity.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("profile store: %w", err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// ExpireResults deletes a bundle whose link expired, and its links to the
// subject, and makes the link answer 410.
func (a *Activities) ExpireResults(ctx context.Context, in dsr.ExpireResultsInput) error {
	if err := a.Results.Delete(in.Token); err != nil {
		return fmt.Errorf("results store: %w", err)
	}
	if err := a.Profiles.ForgetBundle(ctx, in.ControllerID, in.RequestID); err != nil {
		return err
	}
	if err := a.Ledger.ClearResults(ctx, ledger.Key{ControllerID: in.ControllerID, RequestID: in.RequestID}); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

package activities

import (
	"context"
	"fmt"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// RecordExtension writes the extension of a request's due time to the ledger
// (a local activity of the DSR workflow's extend update).
func (a *Activities) RecordExtension(ctx context.Context, in dsr.RecordExtensionInput) error {
	key := ledger.Key{ControllerID: in.ControllerID, RequestID: in.RequestID}
	if err := a.Ledger.Extend(ctx, key, ledger.Extension{
		OriginalDueTime: in.OriginalDueTime, DueTime: in.DueTime, ExtendedAt: in.At, Reason: in.Reason, Operator: in.Operator,
	}); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

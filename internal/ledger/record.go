package ledger

import (
	"errors"
	"fmt"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// RecordOf is the ledger row of a request as the intake accepted it: identities and the body as
// keyed hashes, callback URLs sealed, all with keys (the ledger refuses
// anything weaker); the ledger sets its expiry from DSR_RECORD_RETENTION.
func RecordOf(keys *keyring.Ring, in dsr.Request) (Request, error) {
	if keys == nil {
		return Request{}, errors.New("ledger record: no key ring")
	}
	ids := make([]IdentityHash, len(in.Identities))
	for i, id := range in.Identities {
		ids[i] = IdentityHash{Type: id.Type, Format: id.Format,
			Hash: keys.Hash(PurposeIdentity, opendsr.HashIdentity(id.Type, id.Format, id.Value))}
	}
	body := in.BodyHash
	if body != "" && !keyring.IsHash(body) {
		// A workflow started before keyed hashes carries the digest itself.
		body = keys.Hash(PurposeBody, body)
	}
	urls := make([]string, len(in.CallbackURLs))
	for i, u := range in.CallbackURLs {
		sealed, err := keys.Seal(u)
		if err != nil {
			return Request{}, fmt.Errorf("ledger record: %w", err)
		}
		urls[i] = sealed
	}
	return Request{
		ControllerID: in.ControllerID, RequestID: in.RequestID, Type: in.Type, Regulation: in.Regulation,
		Status: dsr.StatusPending, APIVersion: in.APIVersion,
		SubmittedTime: in.SubmittedTime, ReceivedTime: in.ReceivedTime,
		ExpectedCompletionTime: in.ExpectedCompletionTime, DueTime: in.DueTime,
		BodyHash: body, Identities: ids, CallbackURLs: urls,
		SkipWaitingPeriod: in.SkipWaitingPeriod,
	}, nil
}

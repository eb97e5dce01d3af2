package dsr

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// SearchAttributes names every search attribute dsrflow uses, with its type,
// for registration on a fresh server.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKey{SearchStatus, SearchType, SearchRegulation, SearchController, SearchDestinationTask, SearchDueTime} {
		out[k.GetName()] = k.GetValueType()
	}
	return out
}

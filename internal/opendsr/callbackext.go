package opendsr

// CallbackExtension is what dsrflow adds in extensions[<processor domain>]
// of a status callback (OpenDSR's callback body has no field for it).
type CallbackExtension struct {
	// StatusReason says why the request is in its status and, when it waits
	// for a person, what is needed.
	StatusReason string `json:"status_reason,omitempty"`
	// DueTime is the statutory deadline, extended or not.
	DueTime Time `json:"due_time,omitzero"`
	// ReceiptURL is where the controller fetches the signed receipt of a
	// request that reached a final status.
	ReceiptURL string `json:"receipt_url,omitempty"`
}

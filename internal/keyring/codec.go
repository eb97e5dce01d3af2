package keyring

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// Metadata of an encrypted payload.
const (
	// EncodingEncrypted is the "encoding" metadata of an encrypted payload.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID is the metadata entry holding the id of the key that
	// encrypted a payload.
	MetadataKeyID = "encryption-key-id"
)

// payloadAD is the additional data of payload ciphertexts.
var payloadAD = []byte("dsrflow/keyring/payload/v1")

// Codec returns the Temporal payload codec of the ring. Encode encrypts every
// payload (metadata and data, serialized as protobuf) with the active key
// into a payload with metadata encoding=binary/encrypted and
// encryption-key-id=<id>. Decode decrypts with the key named by the
// metadata, passes payloads that are not encrypted through unchanged, and
// fails with ErrUnknownKey for a key id not in the ring and with ErrCorrupt
// for a payload that fails authentication.
func (r *Ring) Codec() converter.PayloadCodec { return codec{r} }

// DataConverter returns Temporal's default data converter with every payload
// encrypted by r's codec. Use it in client.Options.DataConverter of every
// client and worker.
func DataConverter(r *Ring) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), r.Codec())
}

// FailureConverter returns Temporal's default failure converter with
// DataConverter(r), set to encode error messages and stack traces: without
// it, the message of an error returned by an activity or workflow (which may
// name a data subject) is stored in the history in clear. Use it in
// client.Options.FailureConverter of every client and worker, with
// DataConverter.
func FailureConverter(r *Ring) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          DataConverter(r),
		EncodeCommonAttributes: true,
	})
}

// codec is the converter.PayloadCodec of a Ring.
type codec struct{ r *Ring }

// Encode implements converter.PayloadCodec.
func (c codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	k := c.r.active()
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := p.Marshal()
		if err != nil {
			return payloads, fmt.Errorf("keyring: encode payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(k.id),
			},
			Data: k.random.Seal(nil, nil, plain, payloadAD),
		}
		clear(plain)
	}
	return out, nil
}

// Decode implements converter.PayloadCodec.
func (c codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		k, err := c.r.lookup(string(p.GetMetadata()[MetadataKeyID]))
		if err != nil {
			return payloads, fmt.Errorf("keyring: decode payload: %w", err)
		}
		plain, err := k.random.Open(nil, nil, p.GetData(), payloadAD)
		if err != nil {
			return payloads, fmt.Errorf("keyring: decode payload (key %q): %w", k.id, ErrCorrupt)
		}
		dec := &commonpb.Payload{}
		err = dec.Unmarshal(plain)
		clear(plain)
		if err != nil {
			return payloads, fmt.Errorf("keyring: decode payload (key %q): %w: %w", k.id, ErrCorrupt, err)
		}
		out[i] = dec
	}
	return out, nil
}

// maxCodecBody limits the request body of CodecHandler: a page of history
// payloads the Web UI decodes at once.
const maxCodecBody = 16 << 20

// CodecHandler returns the remote codec endpoint of the Temporal Web UI
// (temporal server's --ui-codec-endpoint, or the UI's codec settings): POST
// .../encode and .../decode with a JSON body {"payloads":[...]}, served by
// converter.NewPayloadCodecHTTPHandler with r's codec. It can be mounted at
// any path prefix.
//
// The UI calls the endpoint from the browser, so the handler answers CORS:
// for a request whose Origin is one of allowedOrigins (exact match, e.g.
// "https://temporal.example.com"), it sets Access-Control-Allow-Origin to
// that origin, allows credentials and the headers content-type, x-namespace
// and authorization, and answers an OPTIONS preflight with 204. A request
// with any other Origin is refused with 403; requests without an Origin
// (the temporal CLI, other servers) are not subject to CORS.
//
// Every request but a preflight must pass authorized (e.g. a check of the
// Authorization header or a session cookie), or gets 401. A nil authorized
// refuses every request.
func CodecHandler(r *Ring, authorized func(*http.Request) bool, allowedOrigins []string) http.Handler {
	origins := make([]string, 0, len(allowedOrigins))
	for _, o := range allowedOrigins {
		if o = strings.TrimSuffix(strings.TrimSpace(o), "/"); o != "" {
			origins = append(origins, o)
		}
	}
	return &codecHandler{
		codec:      converter.NewPayloadCodecHTTPHandler(r.Codec()),
		authorized: authorized,
		origins:    origins,
	}
}

// codecHandler wraps the SDK's codec handler with CORS and authentication.
type codecHandler struct {
	codec      http.Handler
	authorized func(*http.Request) bool
	origins    []string
}

// ServeHTTP implements http.Handler.
func (h *codecHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	origin := req.Header.Get("Origin")
	switch {
	case origin != "" && slices.Contains(h.origins, origin):
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Access-Control-Allow-Credentials", "true")
		hdr.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		hdr.Set("Access-Control-Allow-Headers", "content-type,x-namespace,authorization")
		hdr.Set("Access-Control-Max-Age", "600")
	case origin != "":
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if req.Method == http.MethodOptions {
		if origin == "" {
			http.Error(w, "not a CORS preflight", http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if h.authorized == nil || !h.authorized(req) {
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	if req.Method != http.MethodPost {
		hdr.Set("Allow", "POST, OPTIONS")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	// Decoded payloads hold identities: keep them out of caches.
	hdr.Set("Cache-Control", "no-store")
	req.Body = http.MaxBytesReader(w, req.Body, maxCodecBody)
	h.codec.ServeHTTP(w, req)
}

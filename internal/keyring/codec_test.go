package keyring

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

const email = "alice.subject@example.com"

// testPayloads returns payloads of several kinds, made by Temporal's default
// data converter.
func testPayloads(t *testing.T) map[string]*commonpb.Payload {
	t.Helper()
	dc := converter.GetDefaultDataConverter()
	values := map[string]any{
		"json":   map[string]string{"email": email, "name": "Alice"},
		"nil":    nil,
		"binary": []byte{0, 1, 2, 0xff, 0xfe, 'x'},
		"empty":  []byte{},
		"string": email,
	}
	out := make(map[string]*commonpb.Payload, len(values))
	for name, v := range values {
		p, err := dc.ToPayload(v)
		if err != nil {
			t.Fatalf("ToPayload(%s): %v", name, err)
		}
		out[name] = p
	}
	return out
}

// clonePayload copies p deeply.
func clonePayload(t *testing.T, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c := &commonpb.Payload{}
	if err := c.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodecRoundTrip(t *testing.T) {
	r := newRing(t, "k1")
	c := r.Codec()
	for name, p := range testPayloads(t) {
		t.Run(name, func(t *testing.T) {
			orig := clonePayload(t, p)
			enc, err := c.Encode([]*commonpb.Payload{p})
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !p.Equal(orig) {
				t.Error("Encode modified its input")
			}
			if len(enc) != 1 {
				t.Fatalf("Encode returned %d payloads", len(enc))
			}
			e := enc[0]
			if got := string(e.Metadata[converter.MetadataEncoding]); got != EncodingEncrypted {
				t.Errorf("encoding = %q, want %q", got, EncodingEncrypted)
			}
			if got := string(e.Metadata[MetadataKeyID]); got != "k1" {
				t.Errorf("key id = %q, want k1", got)
			}
			if len(e.Metadata) != 2 {
				t.Errorf("metadata has %d entries, want 2 (original metadata must be inside)", len(e.Metadata))
			}
			wire, _ := e.Marshal()
			if bytes.Contains(wire, []byte(email)) || bytes.Contains(wire, []byte("alice")) {
				t.Error("encoded payload contains the email in clear")
			}
			dec, err := c.Decode(enc)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(dec) != 1 || !dec[0].Equal(orig) {
				t.Errorf("Decode = %v, want %v", dec, orig)
			}
		})
	}
}

func TestCodecBatchAndNonces(t *testing.T) {
	r := newRing(t, "k1")
	ps := testPayloads(t)
	in := []*commonpb.Payload{ps["json"], ps["json"], ps["nil"]}
	enc, err := r.Codec().Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != 3 {
		t.Fatalf("Encode returned %d payloads", len(enc))
	}
	if bytes.Equal(enc[0].Data, enc[1].Data) {
		t.Error("the same payload encrypted twice gives the same ciphertext")
	}
	dec, err := r.Codec().Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !dec[i].Equal(in[i]) {
			t.Errorf("payload %d: got %v, want %v", i, dec[i], in[i])
		}
	}
}

func TestCodecDecodePassesPlainPayloads(t *testing.T) {
	r := newRing(t, "k1")
	ps := testPayloads(t)
	in := []*commonpb.Payload{ps["json"], ps["nil"], {Data: []byte("no metadata")}}
	dec, err := r.Codec().Decode(in)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	for i := range in {
		if dec[i] != in[i] {
			t.Errorf("payload %d was changed: %v", i, dec[i])
		}
	}
}

func TestCodecUnknownKey(t *testing.T) {
	oldEntry, oldKey := genKey(t, "old-2025")
	otherEntry, otherKey := genKey(t, "other")
	enc, err := mustParse(t, oldEntry).Codec().Encode([]*commonpb.Payload{testPayloads(t)["json"]})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mustParse(t, otherEntry).Codec().Decode(enc)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Decode with another ring: %v, want ErrUnknownKey", err)
	}
	if !strings.Contains(err.Error(), `"old-2025"`) {
		t.Errorf("error %q does not name the key id", err)
	}
	assertNoKeys(t, "error", err.Error(), keyForms(t, oldKey, otherKey))
	if strings.Contains(err.Error(), "other") {
		t.Errorf("error %q names the ring's keys", err)
	}
}

func TestCodecTampered(t *testing.T) {
	e1, _ := genKey(t, "k1")
	e1b, _ := genKey(t, "k1") // same id, another key
	r := mustParse(t, e1)
	enc, err := r.Codec().Encode([]*commonpb.Payload{testPayloads(t)["json"]})
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(enc[0].Data) {
		bad := clonePayload(t, enc[0])
		bad.Data[i] ^= 0x01
		if _, err := r.Codec().Decode([]*commonpb.Payload{bad}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped byte %d: Decode = %v, want ErrCorrupt", i, err)
		}
	}
	short := clonePayload(t, enc[0])
	short.Data = short.Data[:10]
	if _, err := r.Codec().Decode([]*commonpb.Payload{short}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated: Decode = %v, want ErrCorrupt", err)
	}
	if _, err := mustParse(t, e1b).Codec().Decode(enc); !errors.Is(err, ErrCorrupt) {
		t.Errorf("another key under the same id: Decode = %v, want ErrCorrupt", err)
	}
}

func TestCodecRotation(t *testing.T) {
	oldEntry, _ := genKey(t, "old")
	newEntry, _ := genKey(t, "new")
	oldRing := mustParse(t, oldEntry)
	rotated := mustParse(t, newEntry+","+oldEntry)
	p := testPayloads(t)["json"]

	enc, err := oldRing.Codec().Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := rotated.Codec().Decode(enc)
	if err != nil {
		t.Fatalf("rotated ring cannot decode old data: %v", err)
	}
	if !dec[0].Equal(p) {
		t.Errorf("Decode = %v, want %v", dec[0], p)
	}
	enc, err = rotated.Codec().Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(enc[0].Metadata[MetadataKeyID]); got != "new" {
		t.Errorf("rotated ring encrypts with %q, want new", got)
	}
	if _, err := oldRing.Codec().Decode(enc); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old ring decoding new data: %v, want ErrUnknownKey", err)
	}
}

func TestCodecConcurrent(t *testing.T) {
	r := newRing(t, "k1", "k0")
	p := testPayloads(t)["json"]
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				enc, err := r.Codec().Encode([]*commonpb.Payload{p})
				if err != nil {
					t.Error(err)
					return
				}
				dec, err := r.Codec().Decode(enc)
				if err != nil || !dec[0].Equal(p) {
					t.Errorf("Decode = %v, %v", dec, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

type subject struct {
	Email string
	Name  string
	IDs   []int
}

func TestDataConverterRoundTrip(t *testing.T) {
	dc := DataConverter(newRing(t, "k1"))
	in := subject{Email: email, Name: "Alice", IDs: []int{1, 2}}
	ps, err := dc.ToPayloads(in, "request-7")
	if err != nil {
		t.Fatalf("ToPayloads: %v", err)
	}
	for i, p := range ps.Payloads {
		if string(p.Metadata[converter.MetadataEncoding]) != EncodingEncrypted {
			t.Errorf("payload %d not encrypted: %v", i, p.Metadata)
		}
		if bytes.Contains(p.Data, []byte(email)) {
			t.Errorf("payload %d holds the email in clear", i)
		}
	}
	var out subject
	var id string
	if err := dc.FromPayloads(ps, &out, &id); err != nil {
		t.Fatalf("FromPayloads: %v", err)
	}
	if out.Email != in.Email || out.Name != in.Name || fmt.Sprint(out.IDs) != fmt.Sprint(in.IDs) || id != "request-7" {
		t.Errorf("FromPayloads = %+v, %q", out, id)
	}
	if got := dc.ToString(ps.Payloads[0]); !strings.Contains(got, email) {
		t.Errorf("ToString = %q, want the decoded value", got)
	}

	// A payload written before encryption was on still reads.
	plain, err := converter.GetDefaultDataConverter().ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	out = subject{}
	if err := dc.FromPayload(plain, &out); err != nil || out.Email != email {
		t.Errorf("FromPayload(plain) = %+v, %v", out, err)
	}
}

func TestFailureConverterHidesMessages(t *testing.T) {
	fc := FailureConverter(newRing(t, "k1"))
	errs := []error{
		errors.New("mixpanel: no user " + email),
		temporal.NewApplicationError("erase "+email+" failed", "NotFound", subject{Email: email}),
		fmt.Errorf("activity: %w", temporal.NewNonRetryableApplicationError("bad "+email, "Bad", nil)),
	}
	for _, in := range errs {
		f := fc.ErrorToFailure(in)
		wire, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(wire, []byte(email)) || strings.Contains(f.GetMessage(), "alice") {
			t.Errorf("failure of %q holds the email in clear: message %q", in, f.GetMessage())
		}
		out := fc.FailureToError(f)
		if !strings.Contains(out.Error(), email) {
			t.Errorf("FailureToError = %q, want the original message", out)
		}
		var appErr *temporal.ApplicationError
		if errors.As(out, &appErr) && appErr.HasDetails() {
			var s subject
			if err := appErr.Details(&s); err != nil || s.Email != email {
				t.Errorf("details = %+v, %v", s, err)
			}
		}
	}
}

// uiPayload is a payload in the JSON form the Web UI sends and receives
// (protojson: bytes in standard base64).
type uiPayload struct {
	Metadata map[string]string `json:"metadata"`
	Data     string            `json:"data"`
}

type uiPayloads struct {
	Payloads []uiPayload `json:"payloads"`
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const (
	uiOrigin  = "https://temporal-ui.example.com"
	goodToken = "Bearer good"
)

func newCodecServer(t *testing.T, r *Ring) *httptest.Server {
	t.Helper()
	auth := func(req *http.Request) bool { return req.Header.Get("Authorization") == goodToken }
	srv := httptest.NewServer(CodecHandler(r, auth, []string{uiOrigin + "/", "http://localhost:8233"}))
	t.Cleanup(srv.Close)
	return srv
}

// post sends body to srv's path with the UI's headers and returns the
// response and its body.
func post(t *testing.T, srv *httptest.Server, path, body, origin, auth string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "dsr")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestCodecHandlerRoundTrip(t *testing.T) {
	srv := newCodecServer(t, newRing(t, "k1"))
	plain := `{"email":"` + email + `"}`
	body := `{"payloads":[{"metadata":{"encoding":"` + b64("json/plain") + `"},"data":"` + b64(plain) + `"},` +
		`{"metadata":{"encoding":"` + b64("binary/null") + `"}}]}`

	resp, encBody := post(t, srv, "/encode", body, uiOrigin, goodToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/encode: %s %s", resp.Status, encBody)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != uiOrigin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, uiOrigin)
	}
	if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
		t.Errorf("Access-Control-Allow-Credentials = %q", got)
	}
	var enc uiPayloads
	if err := json.Unmarshal(encBody, &enc); err != nil {
		t.Fatalf("/encode response %s: %v", encBody, err)
	}
	if len(enc.Payloads) != 2 || enc.Payloads[0].Metadata["encoding"] != b64(EncodingEncrypted) ||
		enc.Payloads[0].Metadata[MetadataKeyID] != b64("k1") {
		t.Fatalf("/encode response = %s", encBody)
	}
	if strings.Contains(string(encBody), b64(plain)) || strings.Contains(string(encBody), email) {
		t.Error("/encode response holds the plaintext")
	}

	resp, decBody := post(t, srv, "/decode", string(encBody), uiOrigin, goodToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/decode: %s %s", resp.Status, decBody)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	var dec uiPayloads
	if err := json.Unmarshal(decBody, &dec); err != nil {
		t.Fatalf("/decode response %s: %v", decBody, err)
	}
	if len(dec.Payloads) != 2 ||
		dec.Payloads[0].Metadata["encoding"] != b64("json/plain") || dec.Payloads[0].Data != b64(plain) ||
		dec.Payloads[1].Metadata["encoding"] != b64("binary/null") || dec.Payloads[1].Data != "" {
		t.Errorf("/decode response = %s", decBody)
	}

	// The CLI calls without an Origin.
	if resp, b := post(t, srv, "/api/codec/decode", string(encBody), "", goodToken); resp.StatusCode != http.StatusOK {
		t.Errorf("/decode without Origin: %s %s", resp.Status, b)
	} else if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header set without Origin")
	}
}

func TestCodecHandlerUnauthorized(t *testing.T) {
	srv := newCodecServer(t, newRing(t, "k1"))
	enc, err := newRing(t, "k1").Codec().Encode([]*commonpb.Payload{testPayloads(t)["json"]})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"payloads":[{"metadata":{"encoding":"` + b64(EncodingEncrypted) + `","encryption-key-id":"` + b64("k1") +
		`"},"data":"` + base64.StdEncoding.EncodeToString(enc[0].Data) + `"}]}`
	for _, auth := range []string{"", "Bearer bad"} {
		for _, path := range []string{"/encode", "/decode"} {
			resp, b := post(t, srv, path, body, uiOrigin, auth)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s with auth %q: %s, want 401", path, auth, resp.Status)
			}
			if strings.Contains(string(b), email) {
				t.Errorf("%s with auth %q: response holds the plaintext", path, auth)
			}
			// The browser must be able to read the 401.
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != uiOrigin {
				t.Errorf("401 lacks CORS header: %q", got)
			}
		}
	}
	// Not the UI's origin: refused even with credentials.
	if resp, _ := post(t, srv, "/encode", body, "https://evil.example.com", goodToken); resp.StatusCode != http.StatusForbidden ||
		resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %s, ACAO %q", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/decode", nil)
	req.Header.Set("Authorization", goodToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %s, want 405", resp.Status)
	}
}

func TestCodecHandlerPreflight(t *testing.T) {
	srv := newCodecServer(t, newRing(t, "k1"))
	preflight := func(origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace,authorization")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	for _, origin := range []string{uiOrigin, "http://localhost:8233"} {
		resp := preflight(origin)
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("preflight from %s: %s, want 204", origin, resp.Status)
		}
		h := resp.Header
		if h.Get("Access-Control-Allow-Origin") != origin || h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("preflight from %s: headers %v", origin, h)
		}
		allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
		for _, want := range []string{"content-type", "x-namespace", "authorization"} {
			if !strings.Contains(allowed, want) {
				t.Errorf("Access-Control-Allow-Headers = %q lacks %s", allowed, want)
			}
		}
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("Access-Control-Allow-Methods = %q", h.Get("Access-Control-Allow-Methods"))
		}
		if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary = %q", h.Values("Vary"))
		}
	}
	for _, origin := range []string{"https://evil.example.com", uiOrigin + ".evil.com", "http://temporal-ui.example.com"} {
		resp := preflight(origin)
		if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK {
			t.Errorf("preflight from %s answered: %s", origin, resp.Status)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin = %q", origin, got)
		}
	}
}

func TestCodecHandlerNilAuthorizedRefuses(t *testing.T) {
	h := CodecHandler(newRing(t, "k1"), nil, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/encode", strings.NewReader(`{"payloads":[]}`)))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("nil authorized: %d, want 401", rec.Code)
	}
}

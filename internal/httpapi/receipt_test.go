package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/receipt"
	"github.com/dsrflow/dsrflow/internal/report"
)

// janeHash is the ledger's keyed hash of the subject's email, as the worker keeps it.
func janeHash(t *testing.T) string {
	t.Helper()
	ring, err := keyring.Parse(devstack.TestEncryptionKeys)
	if err != nil {
		t.Fatal(err)
	}
	return ring.Hash("identity", ledger.HashHex("jane@example.com"))
}

func TestReceiptRoute(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, id := range []string{"done-1", "open-1"} {
		r := ledger.Request{ControllerID: "acme", RequestID: id, Type: "erasure", Regulation: "gdpr", ReceivedTime: now, DueTime: now.AddDate(0, 1, 0),
			Identities: []ledger.IdentityHash{{Type: "email", Format: "raw", Hash: janeHash(t)}}}
		if _, _, err := f.ledger.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	done := ledger.Key{ControllerID: "acme", RequestID: "done-1"}
	if err := f.ledger.SetForwarding(ctx, []ledger.Key{done}, ledger.Forwarding{Destination: "mixpanel", Status: dsr.ForwardingSent, TaskID: "t-1", TaskStatus: "SUCCESS"}); err != nil {
		t.Fatal(err)
	}
	if err := f.ledger.SetStatus(ctx, done, dsr.StatusCompleted, "deleted by mixpanel", now); err != nil {
		t.Fatal(err)
	}

	resp, body := f.get(t, "/v1/requests/done-1/receipt", "tok-acme")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("owner: %d %s", resp.StatusCode, body)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != receipt.ContentType || cc != "no-store" {
		t.Fatalf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	if err := opendsr.Verify(f.cert, body, resp.Header.Get(opendsr.HeaderSignature)); err != nil {
		t.Fatalf("response signature: %v", err)
	}
	r, err := receipt.Verify(f.cert, body)
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if r.RequestID != "done-1" || r.Status != "completed" || r.Destinations[0].TaskIDs[0] != "t-1" || r.ProcessorDomain != "dsr.example" {
		t.Fatalf("receipt = %+v", r)
	}

	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/v1/requests/done-1/receipt", "tok-globex", http.StatusNotFound}, // another controller's
		{"/v1/requests/open-1/receipt", "tok-acme", http.StatusNotFound},   // not final
		{"/v1/requests/nope/receipt", "tok-acme", http.StatusNotFound},
		{"/v1/requests/done-1/receipt", "", http.StatusUnauthorized},
	} {
		if resp, body := f.get(t, c.path, c.token); resp.StatusCode != c.want {
			t.Errorf("%s with %q: %d %s, want %d", c.path, c.token, resp.StatusCode, body, c.want)
		}
	}
}

func TestReportAndExtendNeedAnOperator(t *testing.T) {
	f := newFixtureWith(t, config.Config{OperatorTokens: map[string]string{"op-alice": "alice"}})
	now := time.Now().UTC()
	if _, _, err := f.ledger.CreateRequest(context.Background(), ledger.Request{ControllerID: "acme", RequestID: "r-1", Type: "erasure", Regulation: "gdpr",
		ReceivedTime: now, Identities: []ledger.IdentityHash{{Type: "email", Format: "raw", Hash: janeHash(t)}}}); err != nil {
		t.Fatal(err)
	}
	month := now.Format("2006-01")
	resp, body := f.get(t, "/v1/reports/"+month, "op-alice")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		resp.Header.Get("Content-Security-Policy") != report.ContentSecurityPolicy || !strings.Contains(string(body), `<b id="total">1</b>`) {
		t.Fatalf("report: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	if strings.Contains(string(body), janeHash(t)) {
		t.Fatal("the report holds an identity hash")
	}
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/v1/reports/" + month, "tok-acme", http.StatusForbidden},
		{"/v1/reports/" + month, "", http.StatusUnauthorized},
		{"/v1/reports/2026-13", "op-alice", http.StatusBadRequest},
	} {
		if resp, body := f.get(t, c.path, c.token); resp.StatusCode != c.want {
			t.Errorf("GET %s with %q: %d %s, want %d", c.path, c.token, resp.StatusCode, body, c.want)
		}
	}

	post := func(path, token, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, token, body string
		want              int
	}{
		{"/v1/requests/r-1/extend?controller_id=acme", "tok-acme", `{"reason":"x"}`, http.StatusForbidden},
		{"/v1/requests/r-1/extend", "op-alice", `{"reason":"x"}`, http.StatusBadRequest},
		{"/v1/requests/r-1/extend?controller_id=acme", "op-alice", `{"reason":"  "}`, http.StatusBadRequest},
		{"/v1/requests/r-1/extend?controller_id=acme", "op-alice", `not json`, http.StatusBadRequest},
		{"/v1/requests/nope/extend?controller_id=acme", "op-alice", `{"reason":"x"}`, http.StatusNotFound},
		{"/v1/requests/r-1/extend?controller_id=globex", "op-alice", `{"reason":"x"}`, http.StatusNotFound},
	} {
		if got := post(c.path, c.token, c.body); got != c.want {
			t.Errorf("POST %s %s with %q: %d, want %d", c.path, c.body, c.token, got, c.want)
		}
	}
}

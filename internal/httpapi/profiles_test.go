package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/httpapi"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// profilesServer serves the API with a profile store on a fresh SQLite file.
func profilesServer(t *testing.T) (*httptest.Server, *identity.Store) {
	t.Helper()
	dir := t.TempDir()
	keyPath, certPath, err := opendsr.WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := opendsr.LoadSigner(keyPath, certPath)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Parse(devstack.TestEncryptionKeys)
	if err != nil {
		t.Fatal(err)
	}
	store, err := identity.Open(context.Background(), filepath.Join(dir, "profiles.db"), identity.WithKeys(ring))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := config.Config{ProcessorDomain: "dsr.example", APIRateBurst: 100, APIRateLimit: 100,
		APITokens: map[string]string{"tok-acme": "acme", "tok-globex": "globex"}}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Settings: httpapi.SettingsFrom(cfg), Signer: signer, Keys: ring, Profiles: store}).Handler())
	t.Cleanup(srv.Close)
	return srv, store
}

func postProfiles(t *testing.T, srv *httptest.Server, token, contentType, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/profiles", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestPostProfiles(t *testing.T) {
	srv, store := profilesServer(t)
	ctx := context.Background()
	body := `{"profile_id":"p1","identities":{"email":"VAL-ann@example.com","controller_customer_id":"VAL-c1"},"attributes":{"plan":"VAL-pro"}}
{"profile_id":"p2","identities":{"email":"VAL-not-an-email"}}
{"profile_id":"p3","identities":{"controller_customer_id":"VAL-c3"}}
`
	code, b := postProfiles(t, srv, "tok-acme", "application/x-ndjson; charset=utf-8", body)
	if code != http.StatusOK {
		t.Fatalf("POST: %d %s", code, b)
	}
	var rep httpapi.ProfilesReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Imported != 2 || rep.Suppressed != 0 || len(rep.Rejected) != 1 || rep.Rejected[0].Line != 2 || rep.Rejected[0].Reason == "" {
		t.Fatalf("report %s", b)
	}
	if strings.Contains(string(b), "VAL-") {
		t.Errorf("the answer echoes a value: %s", b)
	}
	q := []identity.Query{{Type: "controller_customer_id", Value: "VAL-c1"}}
	if ms, err := store.Find(ctx, "acme", q); err != nil || len(ms) != 1 {
		t.Fatalf("acme's profile: %v %v", ms, err)
	}
	if ms, err := store.Find(ctx, "globex", q); err != nil || len(ms) != 0 {
		t.Fatalf("globex sees acme's profile: %v %v", ms, err)
	}

	// After p1's erasure, a re-sync of the same body suppresses line 1.
	if _, err := store.Erase(ctx, identity.EraseInput{Owner: "acme", RequestID: "r1", ProfileIDs: []string{"p1"}}); err != nil {
		t.Fatal(err)
	}
	code, b = postProfiles(t, srv, "tok-acme", "application/x-ndjson", body)
	if err := json.Unmarshal(b, &rep); code != http.StatusOK || err != nil {
		t.Fatalf("re-sync: %d %s", code, b)
	}
	if rep.Imported != 1 || rep.Suppressed != 1 || !reflect.DeepEqual(rep.SuppressedLines, []int{1}) {
		t.Fatalf("re-sync report %s", b)
	}
	if ms, _ := store.Find(ctx, "acme", q); len(ms) != 0 {
		t.Fatal("the erased profile came back")
	}
	// globex is not bound by acme's suppression list.
	code, b = postProfiles(t, srv, "tok-globex", "application/x-ndjson", body)
	if err := json.Unmarshal(b, &rep); code != http.StatusOK || err != nil || rep.Imported != 2 || rep.Suppressed != 0 {
		t.Fatalf("globex: %d %s", code, b)
	}
}

func TestPostProfilesRefusals(t *testing.T) {
	srv, store := profilesServer(t)
	line := `{"profile_id":"p1","identities":{"email":"VAL-ann@example.com"}}` + "\n"
	for _, c := range []struct {
		name, token, contentType, body string
		code                           int
		reason                         string
	}{
		{"no token", "", "application/x-ndjson", line, http.StatusUnauthorized, opendsr.ReasonUnauthorized},
		{"bad token", "nope", "application/x-ndjson", line, http.StatusUnauthorized, opendsr.ReasonUnauthorized},
		{"json", "tok-acme", "application/json", line, http.StatusBadRequest, opendsr.ReasonUnsupportedMediaType},
		{"empty", "tok-acme", "application/x-ndjson", " \n", http.StatusBadRequest, opendsr.ReasonRequired},
		{"too large", "tok-acme", "application/x-ndjson", strings.Repeat(line, httpapi.MaxProfilesBody/len(line)+1), http.StatusBadRequest, opendsr.ReasonTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, b := postProfiles(t, srv, c.token, c.contentType, c.body)
			var e opendsr.Error
			if err := json.Unmarshal(b, &e); code != c.code || err != nil || len(e.Errors) == 0 || e.Errors[0].Reason != c.reason {
				t.Fatalf("%d %s, want %d %s", code, b, c.code, c.reason)
			}
			if strings.Contains(string(b), "VAL-") {
				t.Errorf("the answer echoes a value: %s", b)
			}
		})
	}
	if n, err := store.Count(context.Background()); err != nil || n != 0 {
		t.Errorf("%d profiles stored after refused calls, want 0 (%v)", n, err)
	}
}

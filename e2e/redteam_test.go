package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// erasedMention is how the ledger names profile id once an erasure of it
// completed: its keyed hash under the test stack's key ring.
func erasedMention(t *testing.T, id string) string {
	t.Helper()
	ring, err := keyring.Parse(devstack.TestEncryptionKeys)
	if err != nil {
		t.Fatal(err)
	}
	return "[erased " + ring.Hash(ledger.PurposeProfile, id) + "]"
}

// redteamSubmit posts a skip-wait request of typ for controller c with a
// callback URL and returns its id.
func redteamSubmit(t *testing.T, c tenant, typ, callbackURL string, ids ...[3]string) string {
	t.Helper()
	id := newID()
	var list []map[string]string
	for _, x := range ids {
		list = append(list, map[string]string{"identity_type": x[0], "identity_format": x[1], "identity_value": x[2]})
	}
	body := map[string]any{
		"subject_request_id": id, "subject_request_type": typ, "regulation": "gdpr",
		"submitted_time": time.Now().UTC().Format(time.RFC3339), "api_version": "1.0",
		"subject_identities": list, "status_callback_urls": []string{callbackURL},
		"extensions": map[string]any{"localhost": map[string]any{"skip_waiting_period": true}},
	}
	if code, b := c.call(t, http.MethodPost, "/v1/requests", "application/json", body); code != http.StatusCreated {
		t.Fatalf("%s POST %s: %d %s", c.id, typ, code, b)
	}
	return id
}

// TestRedTeamNothingLeftAfterErasure runs what a controller does in a day
// (an access request, an erasure, an erasure held as ambiguous and settled
// by an operator, each with a callback URL carrying a secret), while a
// second controller probes every route with the first one's request ids and
// results token. Afterwards every file the stack wrote (databases, results,
// process logs) is scanned for the erased people's identities, their
// profile ids (the controller's own customer keys), distinct ids, the
// callback secret, the results token and every bearer token.
func TestRedTeamNothingLeftAfterErasure(t *testing.T) {
	dir := t.TempDir()
	s := startOwnStack(t, dir, map[string]string{
		"API_TOKENS":           "tok-acme-rt-4471:acme,tok-globex-rt-9902:globex",
		"DSR_AMBIGUITY_POLICY": "hold",
	})
	client := &http.Client{Timeout: 30 * time.Second}
	acme := tenant{stack: s, token: "tok-acme-rt-4471", id: "acme", httpClient: client}
	globex := tenant{stack: s, token: "tok-globex-rt-9902", id: "globex", httpClient: client}

	var mu sync.Mutex
	var callbacks []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		callbacks = append(callbacks, string(b))
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	const cbSecret = "cbsecret-rt-8842"
	cbURL := receiver.URL + "/hook/rt-path-5531?sig=" + cbSecret

	const (
		zedEmail = "zed.redteam-6610@example.com"
		zedCust  = "cust-zed-rt-5521"
		zedDev   = "dev-zed-rt-3390"
		zedAttr  = "plum-zed-rt-1188"
		zedPID   = "pid-zed-rt-7781"
		ambEmail = "amb.redteam-3301@example.com"
		amb1Cust = "cust-amb1-rt-6012"
		amb2Cust = "cust-amb2-rt-6013"
		amb1PID  = "pid-amb1-rt-2201"
		amb2PID  = "pid-amb2-rt-2202"
	)
	profiles := fmt.Sprintf(`{"profile_id":%q,"identities":{"email":%q,"controller_customer_id":%q,"ios_vendor_id":%q},"attributes":{"colour":%q}}
{"profile_id":%q,"identities":{"email":%q,"controller_customer_id":%q}}
{"profile_id":%q,"identities":{"email":%q,"controller_customer_id":%q}}
`, zedPID, zedEmail, zedCust, zedDev, zedAttr, amb1PID, ambEmail, amb1Cust, amb2PID, ambEmail, amb2Cust)
	if out := importAs(t, s, "acme", profiles); !strings.Contains(out, "3 profiles imported") {
		t.Fatalf("import: %s", out)
	}

	// Access, then erasure of zed.
	accessID := redteamSubmit(t, acme, "access", cbURL, [3]string{"email", "raw", zedEmail})
	st, ext, _ := acme.wait(t, accessID, 3*time.Minute)
	if st.RequestStatus != "completed" || st.ResultsURL == "" {
		t.Fatalf("access: %+v %s", st, ext.StatusReason)
	}
	resultsPath := strings.TrimPrefix(st.ResultsURL, s.APIURL)
	resultsToken := strings.TrimPrefix(resultsPath, "/v1/results/")

	// globex probes every route with acme's ids and token.
	probes := []struct{ method, path string }{
		{http.MethodGet, "/v1/requests/" + accessID},
		{http.MethodDelete, "/v1/requests/" + accessID},
		{http.MethodPost, "/v1/requests/" + accessID + "/retry"},
		{http.MethodPost, "/v1/requests/" + accessID + "/resolve"},
		{http.MethodGet, resultsPath},
	}
	unknownToken := strings.Repeat("ab", len(resultsToken)/2)
	for _, p := range probes {
		code, body := globex.call(t, p.method, p.path, "application/json", map[string]string{"profile_id": zedPID})
		if code != http.StatusNotFound && code != http.StatusForbidden {
			t.Errorf("globex %s %s: %d %s", p.method, p.path, code, body)
		}
		// Indistinguishable from a request id or token that does not exist.
		unknown := strings.NewReplacer(accessID, newID(), resultsToken, unknownToken).Replace(p.path)
		ucode, ubody := globex.call(t, p.method, unknown, "application/json", map[string]string{"profile_id": zedPID})
		if ucode != code || string(ubody) != string(body) {
			t.Errorf("globex %s on acme's id answers %d %s, on an unknown one %d %s", p.method, code, body, ucode, ubody)
		}
		for _, v := range []string{zedEmail, zedCust, zedPID, zedAttr, accessID, resultsToken} {
			if strings.Contains(string(body), v) {
				t.Errorf("globex %s %s: the answer holds %q", p.method, p.path, v)
			}
		}
	}

	// globex submitting under acme's request id creates globex's own request
	// (a 409 would tell globex the id exists at another controller).
	clash := map[string]any{
		"subject_request_id": accessID, "subject_request_type": "access", "regulation": "gdpr",
		"submitted_time": time.Now().UTC().Format(time.RFC3339), "api_version": "1.0",
		"subject_identities": []map[string]string{{"identity_type": "email", "identity_format": "raw", "identity_value": "someone.else@example.com"}},
	}
	if code, body := globex.call(t, http.MethodPost, "/v1/requests", "application/json", clash); code != http.StatusCreated {
		t.Errorf("globex submitting under acme's request id: %d %s", code, body)
	}

	erasureID := redteamSubmit(t, acme, "erasure", cbURL, [3]string{"email", "raw", zedEmail})
	if st, ext, _ = acme.wait(t, erasureID, 3*time.Minute); st.RequestStatus != "completed" {
		t.Fatalf("erasure: %s %s", st.RequestStatus, ext.StatusReason)
	}

	// An ambiguous erasure, settled by the operator.
	ambID := redteamSubmit(t, acme, "erasure", cbURL, [3]string{"email", "raw", ambEmail})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body := acme.call(t, http.MethodGet, "/v1/requests/"+ambID, "", nil)
		if code == http.StatusOK && strings.Contains(string(body), "ambiguous identity") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never held as ambiguous: %d %s", code, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if r, err := s.CallAsOperator(http.MethodPost, "/v1/requests/"+ambID+"/resolve", map[string]string{"profile_id": amb1PID}); err != nil || r.Code != http.StatusAccepted {
		t.Fatalf("resolve: %v %d %s", err, r.Code, r.Body)
	}
	if st, ext, _ = acme.wait(t, ambID, 3*time.Minute); st.RequestStatus != "completed" {
		t.Fatalf("ambiguous erasure: %s %s", st.RequestStatus, ext.StatusReason)
	}
	time.Sleep(3 * time.Second) // the last callbacks

	mu.Lock()
	n := len(callbacks)
	mu.Unlock()
	if n == 0 {
		t.Fatalf("no callback arrived: the callback secret was never used")
	}

	// What acme reads back about its own requests names the erased
	// profiles only by their keyed hash (status reason and resolution trace).
	for _, id := range []string{accessID, erasureID, ambID} {
		_, body := acme.call(t, http.MethodGet, "/v1/requests/"+id, "", nil)
		for _, v := range []string{zedPID, amb1PID, zedEmail, zedCust, amb1Cust} {
			if strings.Contains(string(body), v) {
				t.Errorf("acme's status of %s still holds %q: %s", id, v, body)
			}
		}
	}
	secrets := map[string]string{
		"erased email": zedEmail, "erased customer id": zedCust, "erased device id": zedDev,
		"erased attribute": zedAttr, "erased profile id": zedPID,
		"settled profile id": amb1PID, "settled customer id": amb1Cust,
		"callback secret": cbSecret, "callback path": "rt-path-5531",
		"results token": resultsToken,
		"acme token":    "tok-acme-rt-4471", "globex token": "tok-globex-rt-9902",
		"operator token": devstack.OperatorToken,
		"project token":  devstack.ProjectToken, "oauth token": devstack.OAuthToken,
		"email sha256": sha256Of(zedEmail),
	}
	var values []string
	for _, v := range secrets {
		values = append(values, v)
	}
	// The scan sees what the ledger keeps in clear: the other candidate,
	// who was not erased, is still named in the hold's reason.
	if found := scanFiles(t, dir, []string{amb2PID}); len(found) == 0 {
		t.Fatalf("the scan finds the other candidate's profile id nowhere: it cannot prove anything")
	}
	if found := scanFiles(t, dir, values); len(found) > 0 {
		for _, f := range found {
			for name, v := range secrets {
				if strings.HasSuffix(f, ": "+v) {
					t.Errorf("%s left: %s", name, f)
				}
			}
		}
	}

	// (After the scan: globex's import writes the person again, as globex's.)
	// The suppression list is acme's: globex, importing the same person,
	// learns nothing of acme's erasure; acme's own re-import is suppressed.
	zedLine := fmt.Sprintf(`{"profile_id":%q,"identities":{"email":%q}}`+"\n", zedPID, zedEmail)
	code, body := globex.call(t, http.MethodPost, "/v1/profiles", "application/x-ndjson", zedLine)
	if code != http.StatusOK || !strings.Contains(string(body), `"imported":1,"suppressed":0`) {
		t.Errorf("globex importing the person acme erased: %d %s", code, body)
	}
	code, body = acme.call(t, http.MethodPost, "/v1/profiles", "application/x-ndjson", zedLine)
	if code != http.StatusOK || !strings.Contains(string(body), `"imported":0,"suppressed":1`) {
		t.Errorf("acme re-importing the person it erased: %d %s", code, body)
	}
}

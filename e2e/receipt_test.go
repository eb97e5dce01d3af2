package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/receipt"
)

// TestReceiptOfACompletedErasure follows an erasure to completed, takes the
// receipt URL from the completed callback, and checks the receipt offline
// with `dsr receipt verify` against /v1/cert.pem: it verifies, names the
// Mixpanel task and SUCCESS, holds no identity value, and one flipped byte
// makes the check fail.
func TestReceiptOfACompletedErasure(t *testing.T) {
	stack.Emulator.Reset()
	var mu sync.Mutex
	receiptURLs := map[string]string{} // status -> receipt_url in the callback
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var cb opendsr.Callback
		if err := json.Unmarshal(body, &cb); err != nil {
			t.Errorf("callback body: %v", err)
			return
		}
		var ext opendsr.CallbackExtension
		if err := json.Unmarshal(cb.Extensions["localhost"], &ext); err != nil {
			t.Errorf("callback extension: %v (%s)", err, body)
		}
		mu.Lock()
		receiptURLs[cb.RequestStatus] = ext.ReceiptURL
		mu.Unlock()
	}))
	defer srv.Close()

	id := newID()
	customer := "receipt-customer-" + id[:8]
	if resp := apiCall(t, http.MethodPost, "/v1/requests", erasure(id, "gdpr", customer, srv.URL)); resp.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
	if resp := apiCall(t, http.MethodGet, "/v1/requests/"+id+"/receipt", nil); resp.Code != http.StatusNotFound {
		t.Errorf("receipt before the request is final: %d, want 404", resp.Code)
	}
	waitForStatus(t, id, "completed", 90*time.Second)

	var link string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		link = receiptURLs["completed"]
		pendingLink := receiptURLs["pending"]
		mu.Unlock()
		if pendingLink != "" {
			t.Fatalf("the pending callback carries a receipt URL: %s", pendingLink)
		}
		if link != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no completed callback with a receipt_url")
		}
	}
	u, err := url.Parse(link)
	if err != nil || u.Path != "/v1/requests/"+id+"/receipt" || stack.APIURL != u.Scheme+"://"+u.Host {
		t.Fatalf("receipt_url %q (API at %s)", link, stack.APIURL)
	}

	resp := apiCall(t, http.MethodGet, u.Path, nil)
	if resp.Code != http.StatusOK {
		t.Fatalf("GET receipt: %d %s", resp.Code, resp.Body)
	}
	for _, raw := range []string{customer, customer + "@example.com"} {
		if bytes.Contains(resp.Body, []byte(raw)) {
			t.Fatalf("the receipt holds the identity %q", raw)
		}
	}
	cert := apiCall(t, http.MethodGet, "/v1/cert.pem", nil).Body
	dir := t.TempDir()
	certFile, receiptFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "receipt.jws")
	writeBytes(t, certFile, cert)
	writeBytes(t, receiptFile, resp.Body)

	out, err := dsrCommand(t, "receipt", "verify", receiptFile, "--cert", certFile).CombinedOutput()
	if err != nil {
		t.Fatalf("dsr receipt verify of the served receipt: %v\n%s", err, out)
	}
	r, err := receipt.Verify(cert, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// The payload itself: decoded, it names no identity value either.
	payload, _ := json.Marshal(r)
	if strings.Contains(string(payload), customer) {
		t.Fatal("the receipt's payload holds the identity")
	}
	tasks := stack.Emulator.Tasks()
	if len(r.Destinations) != 1 || r.Destinations[0].TaskStatus != "SUCCESS" || len(r.Destinations[0].TaskIDs) != 1 ||
		!hasTask(tasks, r.Destinations[0].TaskIDs[0]) || !strings.Contains(string(out), r.Destinations[0].TaskIDs[0]+" SUCCESS") {
		t.Fatalf("receipt destinations %+v, emulator tasks %+v; verify said %s", r.Destinations, tasks, out)
	}
	if r.Status != "completed" || r.RequestID != id || r.ForwardedTime == nil || r.CompletedTime.IsZero() || len(r.Callbacks) < 2 {
		t.Fatalf("receipt = %+v", r)
	}

	// One flipped byte (inside the signed payload) fails the check.
	changed := bytes.Clone(resp.Body)
	changed[len(changed)/2] ^= 0x01
	writeBytes(t, receiptFile, changed)
	if out, err := dsrCommand(t, "receipt", "verify", receiptFile, "--cert", certFile).CombinedOutput(); err == nil {
		t.Fatalf("dsr receipt verify accepted a changed receipt:\n%s", out)
	}

	// dsr receipt ID -o FILE issues the same receipt from the ledger.
	cliFile := filepath.Join(dir, "cli.jws")
	if out, err := dsrCommand(t, "receipt", id, "-o", cliFile).CombinedOutput(); err != nil {
		t.Fatalf("dsr receipt: %v\n%s", err, out)
	}
	if out, err := dsrCommand(t, "receipt", "verify", cliFile, "--cert", certFile).CombinedOutput(); err != nil {
		t.Fatalf("dsr receipt verify of the CLI's receipt: %v\n%s", err, out)
	}
}

func hasTask(tasks []emulator.TaskInfo, id string) bool {
	for _, task := range tasks {
		if task.ID == id {
			return true
		}
	}
	return false
}

func writeBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

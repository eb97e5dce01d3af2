package receipt_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/receipt"
)

// testRing keys the hashes the ledger keeps, as the worker does.
var testRing = func() *keyring.Ring {
	spec, err := keyring.Generate("test")
	if err != nil {
		panic(err)
	}
	ring, err := keyring.Parse(spec)
	if err != nil {
		panic(err)
	}
	return ring
}()

// janeHash is the ledger's keyed hash of the subject's email.
var janeHash = testRing.Hash("identity", ledger.HashHex("jane@example.com"))

func signer(t *testing.T) *opendsr.Signer {
	t.Helper()
	keyPEM, certPEM, err := opendsr.GenerateSelfSigned("dsrflow test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := opendsr.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s, err := opendsr.NewSigner(key, certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// completedErasure writes the ledger rows of an erasure that Mixpanel task
// t-77 completed, with a delivered and a failed callback.
func completedErasure(t *testing.T, store *ledger.Store, received time.Time) ledger.Key {
	t.Helper()
	ctx := context.Background()
	r := ledger.Request{
		ControllerID: "acme", RequestID: "5d2f8a1e-0000-4000-8000-000000000001", Type: "erasure", Regulation: "gdpr",
		ReceivedTime: received, SubmittedTime: received, DueTime: received.AddDate(0, 1, 0),
		Identities: []ledger.IdentityHash{{Type: "email", Format: "raw", Hash: janeHash}},
	}
	if _, _, err := store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	k := r.Key()
	urlHash := testRing.Hash("callback-url", "https://controller.example/cb") // the ledger keeps URLs as keyed hashes
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.SetStatus(ctx, k, dsr.StatusInProgress, "sent to Mixpanel", received.Add(7*24*time.Hour)))
	must(store.SetForwarding(ctx, []ledger.Key{k}, ledger.Forwarding{Destination: "mixpanel", Status: dsr.ForwardingSent,
		TaskID: "t-77", TaskStatus: "SUCCESS", StatusMessage: "Mixpanel task ended SUCCESS", UpdatedAt: received.Add(8 * 24 * time.Hour)}))
	must(store.SetStatus(ctx, k, dsr.StatusCompleted, "deleted by mixpanel; local copy erased: 2 profile store rows removed", received.Add(8*24*time.Hour)))
	must(store.RecordCallbackAttempt(ctx, k, ledger.CallbackAttempt{URLHash: urlHash,
		Host: "controller.example", RequestStatus: dsr.StatusCompleted, Attempt: 1, At: received.Add(8*24*time.Hour + time.Minute), HTTPStatus: 200, Delivered: true}))
	must(store.RecordCallbackAttempt(ctx, k, ledger.CallbackAttempt{URLHash: urlHash,
		Host: "controller.example", RequestStatus: dsr.StatusPending, Attempt: 1, At: received, HTTPStatus: 500}))
	return k
}

func TestIssueAndVerify(t *testing.T) {
	ctx := context.Background()
	store, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	received := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	k := completedErasure(t, store, received)
	s := signer(t)
	is := &receipt.Issuer{Ledger: store, Signer: s, ProcessorDomain: "dsr.example", WaitingPeriod: 7 * 24 * time.Hour,
		Now: func() time.Time { return received.Add(9 * 24 * time.Hour) }}

	jws, err := is.Issue(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(jws, []byte("jane")) {
		t.Fatal("the receipt holds the raw identity")
	}
	r, err := receipt.Verify(s.CertificatePEM(), jws)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if r.RequestID != k.RequestID || r.ControllerID != "acme" || r.Status != "completed" || r.ProcessorDomain != "dsr.example" {
		t.Fatalf("receipt = %+v", r)
	}
	if len(r.Destinations) != 1 || r.Destinations[0].Project != "mixpanel" || r.Destinations[0].TaskStatus != "SUCCESS" ||
		len(r.Destinations[0].TaskIDs) != 1 || r.Destinations[0].TaskIDs[0] != "t-77" {
		t.Fatalf("destinations = %+v", r.Destinations)
	}
	if !r.WaitingPeriodEnd.Equal(received.Add(7*24*time.Hour)) || r.ForwardedTime == nil || !r.ForwardedTime.Equal(received.Add(7*24*time.Hour)) ||
		!r.CompletedTime.Equal(received.Add(8*24*time.Hour)) {
		t.Fatalf("times: waiting end %s, forwarded %v, completed %s", r.WaitingPeriodEnd, r.ForwardedTime, r.CompletedTime)
	}
	if !r.LocalCopyErased {
		t.Error("the receipt does not say the local copy was erased")
	}
	if len(r.Callbacks) != 1 || r.Callbacks[0].RequestStatus != "completed" {
		t.Fatalf("callbacks delivered = %+v, want only the completed one", r.Callbacks)
	}
	if !bytes.Contains(r.IdentityHashes, []byte(janeHash)) {
		t.Fatalf("identity hashes = %s", r.IdentityHashes)
	}

	// Any change to the document fails: flip one bit of every byte in turn.
	for i := range jws {
		changed := bytes.Clone(jws)
		changed[i] ^= 0x01
		if _, err := receipt.Verify(s.CertificatePEM(), changed); err == nil {
			t.Fatalf("flipping byte %d (%q) still verifies", i, jws[i])
		}
	}
	// Another key does not verify it.
	if _, err := receipt.Verify(signer(t).CertificatePEM(), jws); !errors.Is(err, opendsr.ErrBadJWS) {
		t.Fatalf("other certificate: %v", err)
	}
}

func TestNotFinal(t *testing.T) {
	ctx := context.Background()
	store, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := ledger.Request{ControllerID: "acme", RequestID: "open-1", Type: "erasure", Regulation: "ccpa", ReceivedTime: time.Now()}
	if _, _, err := store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	is := &receipt.Issuer{Ledger: store, Signer: signer(t)}
	if _, err := is.Issue(ctx, r.Key()); !errors.Is(err, receipt.ErrNotFinal) {
		t.Fatalf("open request: %v, want ErrNotFinal", err)
	}
	if err := store.SetStatus(ctx, r.Key(), dsr.StatusCancelled, "cancelled during the waiting period", time.Now()); err != nil {
		t.Fatal(err)
	}
	rc, err := is.Build(ctx, r.Key())
	if err != nil || rc.Status != "cancelled" || rc.LocalCopyErased || rc.ForwardedTime != nil || len(rc.Destinations) != 0 {
		t.Fatalf("receipt of a cancelled request: %+v, %v", rc, err)
	}
	if _, err := is.Issue(ctx, ledger.Key{ControllerID: "acme", RequestID: "nope"}); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unknown request: %v, want ErrNotFound", err)
	}
}

package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// each runs fn once per backend with a Store on a fresh database.
func each(t *testing.T, fn func(t *testing.T, s *ledger.Store, db *sqldb.DB)) {
	t.Helper()
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, err := ledger.New(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s, db)
	})
}

// base is a fixed time with nanoseconds, which the ledger keeps to the microsecond.
func base() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC) }

func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// testKeys is the key ring of the tests' keyed hashes and sealed values.
var testKeys = func() *keyring.Ring {
	spec, err := keyring.Generate("test1")
	if err != nil {
		panic(err)
	}
	r, err := keyring.Parse(spec)
	if err != nil {
		panic(err)
	}
	return r
}()

// keyed is a keyed hash of a made-up value, for purpose.
func keyed(purpose, value string) string { return testKeys.Hash(purpose, ledger.HashHex(value)) }

// sealed seals s with testKeys.
func sealed(s string) string {
	v, err := testKeys.Seal(s)
	if err != nil {
		panic(err)
	}
	return v
}

func newRequest(controller, id string, received time.Time) ledger.Request {
	return ledger.Request{
		ControllerID:           controller,
		RequestID:              id,
		Type:                   "erasure",
		Regulation:             "gdpr",
		APIVersion:             "0.1",
		SubmittedTime:          received.Add(-time.Minute),
		ReceivedTime:           received,
		ExpectedCompletionTime: received.Add(14 * 24 * time.Hour),
		DueTime:                received.Add(30 * 24 * time.Hour),
		BodyHash:               keyed(ledger.PurposeBody, "body of "+id),
		Identities: []ledger.IdentityHash{
			{Type: "email", Format: "raw", Hash: keyed(ledger.PurposeIdentity, "identity 1 of "+id)},
			{Type: "controller_customer_id", Format: "raw", Hash: keyed(ledger.PurposeIdentity, "identity 2 of "+id)},
		},
		CallbackURLs: []string{sealed("https://controller.example/callback?token=secret")},
	}
}

func mustCreate(t testing.TB, s *ledger.Store, r ledger.Request) ledger.Request {
	t.Helper()
	stored, created, err := s.CreateRequest(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatalf("request %s already existed", r.Key())
	}
	return stored
}

func countRows(t *testing.T, db *sqldb.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateRequest(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		in := newRequest("acme", "req-1", base())
		in.SkipWaitingPeriod = true
		in.Status, in.StatusReason = dsr.StatusCompleted, "ignored"

		got, created, err := s.CreateRequest(ctx, in)
		if err != nil || !created {
			t.Fatalf("CreateRequest: created %v, err %v", created, err)
		}
		want := in
		want.Status, want.StatusReason = dsr.StatusPending, "received"
		want.SubmittedTime, want.ReceivedTime = us(in.SubmittedTime), us(in.ReceivedTime)
		want.ExpectedCompletionTime, want.DueTime = us(in.ExpectedCompletionTime), us(in.DueTime)
		want.UpdatedAt = us(in.ReceivedTime)
		want.ExpiresAt = us(in.ReceivedTime.Add(ledger.DefaultRetention))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stored\n%+v\nwant\n%+v", got, want)
		}
		if again, err := s.Get(ctx, in.Key()); err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("Get: %+v, %v", again, err)
		}

		// The same key again, with another body: the stored request, unchanged.
		dup := in
		dup.BodyHash = keyed(ledger.PurposeBody, "another body")
		stored, created, err := s.CreateRequest(ctx, dup)
		if err != nil || created {
			t.Fatalf("duplicate: created %v, err %v", created, err)
		}
		if stored.BodyHash != in.BodyHash {
			t.Fatalf("duplicate changed the body hash")
		}
		tr, err := s.Transitions(ctx, in.Key())
		if err != nil {
			t.Fatal(err)
		}
		wantTr := []ledger.Transition{{At: us(in.ReceivedTime), From: "", To: dsr.StatusPending, Reason: "received"}}
		if !reflect.DeepEqual(tr, wantTr) {
			t.Fatalf("transitions %+v, want %+v", tr, wantTr)
		}

		// A Request travels as JSON (activity results) unchanged.
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var decoded ledger.Request
		if err := json.Unmarshal(b, &decoded); err != nil || !reflect.DeepEqual(decoded, got) {
			t.Fatalf("JSON round trip: %+v (%v)\n%s", decoded, err, b)
		}

		if _, err := s.Get(ctx, ledger.Key{ControllerID: "acme", RequestID: "nope"}); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("Get of an unknown request: %v", err)
		}
		if _, _, err := s.CreateRequest(ctx, ledger.Request{ControllerID: "acme", Type: "erasure", Regulation: "gdpr"}); err == nil {
			t.Error("request without an id accepted")
		}

		// Defaults: received now, expiry after the retention period.
		s2, err := ledger.New(ctx, db, ledger.WithRetention(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		r := newRequest("acme", "req-2", time.Time{})
		before := time.Now()
		stored, _, err = s2.CreateRequest(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if stored.ReceivedTime.Before(us(before)) || stored.ReceivedTime.After(time.Now()) ||
			!stored.ExpiresAt.Equal(stored.ReceivedTime.Add(time.Hour)) {
			t.Errorf("received %v, expires %v", stored.ReceivedTime, stored.ExpiresAt)
		}
	})
}

// Concurrent submissions of one request (client retries) create it once.
func TestCreateRequestConcurrent(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		const n = 10
		var wg sync.WaitGroup
		created := make(chan bool, n)
		for range n {
			wg.Go(func() {
				_, c, err := s.CreateRequest(context.Background(), newRequest("acme", "req-1", base()))
				if err != nil {
					t.Error(err)
				}
				created <- c
			})
		}
		wg.Wait()
		close(created)
		count := 0
		for c := range created {
			if c {
				count++
			}
		}
		if count != 1 || countRows(t, db, "transitions") != 1 {
			t.Fatalf("created %d times, %d transitions", count, countRows(t, db, "transitions"))
		}
	})
}

func TestSetStatus(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		r := mustCreate(t, s, newRequest("acme", "req-1", base()))
		k := r.Key()
		steps := []struct {
			to     dsr.Status
			reason string
		}{
			{dsr.StatusInProgress, "forwarded"},
			{dsr.StatusInProgress, "forwarded"}, // a retry: no-op
			{dsr.StatusFailed, "mixpanel: task FAILURE"},
			{dsr.StatusInProgress, "retry"},
			{dsr.StatusInProgress, "forwarded again"}, // same status, new reason: recorded
			{dsr.StatusCompleted, ""},
			{dsr.StatusCompleted, ""}, // no-op
		}
		for i, st := range steps {
			if err := s.SetStatus(ctx, k, st.to, st.reason, base().Add(time.Duration(i+1)*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Transitions(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		at := func(h int) time.Time { return us(base().Add(time.Duration(h) * time.Hour)) }
		want := []ledger.Transition{
			{At: at(0), From: "", To: dsr.StatusPending, Reason: "received"},
			{At: at(1), From: dsr.StatusPending, To: dsr.StatusInProgress, Reason: "forwarded"},
			{At: at(3), From: dsr.StatusInProgress, To: dsr.StatusFailed, Reason: "mixpanel: task FAILURE"},
			{At: at(4), From: dsr.StatusFailed, To: dsr.StatusInProgress, Reason: "retry"},
			{At: at(5), From: dsr.StatusInProgress, To: dsr.StatusInProgress, Reason: "forwarded again"},
			{At: at(6), From: dsr.StatusInProgress, To: dsr.StatusCompleted, Reason: ""},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("transitions\n%+v\nwant\n%+v", got, want)
		}
		r, err = s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != dsr.StatusCompleted || r.StatusReason != "" || !r.UpdatedAt.Equal(at(6)) {
			t.Errorf("request status %s %q updated %v", r.Status, r.StatusReason, r.UpdatedAt)
		}

		if err := s.SetStatus(ctx, ledger.Key{ControllerID: "acme", RequestID: "nope"}, dsr.StatusFailed, "", time.Time{}); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown request: %v", err)
		}
		if err := s.SetStatus(ctx, k, "done", "", time.Time{}); err == nil {
			t.Error("unknown status accepted")
		}
	})
}

func TestSetForwarding(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		const n = 2000
		keys := make([]ledger.Key, 0, n+1)
		for i := range n {
			keys = append(keys, mustCreate(t, s, newRequest("acme", fmt.Sprintf("req-%04d", i), base())).Key())
		}
		keys = append(keys, keys[0]) // a duplicate is harmless

		sent := ledger.Forwarding{Destination: "mixpanel", Status: dsr.ForwardingSent, TaskID: "task-1", TaskStatus: "PENDING", UpdatedAt: base().Add(time.Hour)}
		start := time.Now()
		if err := s.SetForwarding(ctx, keys, sent); err != nil {
			t.Fatal(err)
		}
		t.Logf("SetForwarding of %d new rows: %v", n, time.Since(start))
		if err := s.SetForwarding(ctx, keys, sent); err != nil { // retried
			t.Fatal(err)
		}
		done := sent
		done.TaskStatus, done.UpdatedAt = "SUCCESS", base().Add(2*time.Hour)
		start = time.Now()
		if err := s.SetForwarding(ctx, keys, done); err != nil {
			t.Fatal(err)
		}
		t.Logf("SetForwarding of %d existing rows: %v", n, time.Since(start))
		skipped := ledger.Forwarding{Destination: "eu-project", Status: dsr.ForwardingSkipped, StatusMessage: "no distinct id", UpdatedAt: base()}
		if err := s.SetForwarding(ctx, keys[:10], skipped); err != nil {
			t.Fatal(err)
		}
		if got := countRows(t, db, "forwarding"); got != n+10 {
			t.Fatalf("%d forwarding rows, want %d", got, n+10)
		}

		done.UpdatedAt, skipped.UpdatedAt = us(done.UpdatedAt), us(skipped.UpdatedAt)
		got, err := s.Forwardings(ctx, keys[5])
		if err != nil {
			t.Fatal(err)
		}
		if want := []ledger.Forwarding{skipped, done}; !reflect.DeepEqual(got, want) {
			t.Fatalf("forwardings %+v, want %+v", got, want)
		}
		got, err = s.Forwardings(ctx, keys[n-1])
		if err != nil {
			t.Fatal(err)
		}
		if want := []ledger.Forwarding{done}; !reflect.DeepEqual(got, want) {
			t.Fatalf("forwardings %+v, want %+v", got, want)
		}

		// Unknown keys are reported; the others are recorded all the same.
		unknown := ledger.Key{ControllerID: "acme", RequestID: "nope"}
		failed := ledger.Forwarding{Destination: "mixpanel", Status: dsr.ForwardingFailed, StatusMessage: "task FAILURE"}
		if err := s.SetForwarding(ctx, []ledger.Key{keys[100], unknown}, failed); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
		if got, _ := s.Forwardings(ctx, keys[100]); len(got) != 1 || got[0].Status != dsr.ForwardingFailed {
			t.Fatalf("forwardings %+v", got)
		}
		if err := s.SetForwarding(ctx, keys, ledger.Forwarding{Destination: "mixpanel", Status: "lost"}); err == nil {
			t.Error("unknown forwarding status accepted")
		}
		if err := s.SetForwarding(ctx, nil, failed); err != nil {
			t.Errorf("no keys: %v", err)
		}
	})
}

func TestResults(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		r := newRequest("acme", "req-1", base())
		r.Type = "access"
		k := mustCreate(t, s, r).Key()
		other := mustCreate(t, s, newRequest("acme", "req-2", base())).Key()
		const token = "download-token-5f2b8c1e9a7d4e3f"
		expires := time.Now().Add(7 * 24 * time.Hour)
		for range 2 { // idempotent
			if err := s.SetResults(ctx, k, token, "sealed-url", 42, expires); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ByResultsToken(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if got.Key() != k || got.ResultsCount != 42 || !got.ResultsExpiresAt.Equal(us(expires)) {
			t.Fatalf("ByResultsToken: %+v", got)
		}
		for _, wrong := range []string{"", token + "x", ledger.HashHex(token)} {
			if _, err := s.ByResultsToken(ctx, wrong); !errors.Is(err, ledger.ErrNotFound) {
				t.Errorf("ByResultsToken(%q): %v", wrong, err)
			}
		}
		if err := s.SetResults(ctx, other, token, "sealed-url", 1, expires); err == nil {
			t.Error("one token accepted for two requests")
		}

		// Only the hash is stored: the token is nowhere in the database.
		var hash string
		if err := db.QueryRowContext(ctx, db.Rebind(`SELECT results_token_hash FROM requests WHERE request_id = ?`), k.RequestID).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if hash != ledger.HashHex(token) {
			t.Fatalf("stored %q, want the token's SHA-256", hash)
		}
		assertNotStored(t, db, token)

		if err := s.ClearResults(ctx, k); err != nil {
			t.Fatal(err)
		}
		// The token still resolves, now expired, so its link can answer 410 Gone.
		if cleared, err := s.ByResultsToken(ctx, token); err != nil || cleared.ResultsExpiresAt.After(time.Now()) {
			t.Errorf("after ClearResults: %v, expires %v", err, cleared.ResultsExpiresAt)
		}
		got, err = s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if got.ResultsCount != 42 || got.ResultsExpiresAt.After(time.Now()) || got.ResultsExpiresAt.IsZero() {
			t.Errorf("after ClearResults: count %d, expires %v", got.ResultsCount, got.ResultsExpiresAt)
		}
		if err := s.SetResults(ctx, ledger.Key{ControllerID: "acme", RequestID: "nope"}, "sealed-url", "t", 1, expires); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown request: %v", err)
		}
		if err := s.ClearResults(ctx, ledger.Key{ControllerID: "acme", RequestID: "nope"}); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown request: %v", err)
		}
	})
}

// assertNotStored checks that secret appears in no row of the database (on
// SQLite: in none of its files).
func assertNotStored(t *testing.T, db *sqldb.DB, secret string) {
	t.Helper()
	ctx := context.Background()
	if db.Dialect == sqldb.Postgres {
		for _, table := range []string{"requests", "transitions", "forwarding", "callback_attempts"} {
			var n int
			q := `SELECT COUNT(*) FROM ` + table + ` AS t WHERE CAST(t AS TEXT) LIKE $1`
			if err := db.QueryRowContext(ctx, q, "%"+secret+"%").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				t.Errorf("%s holds the secret in %d rows", table, n)
			}
		}
		return
	}
	var path string
	if err := db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret", f)
		}
	}
}

func TestResolution(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		k := mustCreate(t, s, newRequest("acme", "req-1", base())).Key()
		trace := json.RawMessage(`{"destinations": {"mixpanel": {"distinct_ids": 2, "rule": "email"}}, "skipped": []}`)
		if err := s.SetResolution(ctx, k, trace); err != nil {
			t.Fatal(err)
		}
		r, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var got, want any
		if err := json.Unmarshal(r.Resolution, &got); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(trace, &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("resolution %s, want %s", r.Resolution, trace)
		}
		if err := s.SetResolution(ctx, k, json.RawMessage(`{"unterminated": `)); err == nil {
			t.Error("invalid JSON accepted")
		}
		if err := s.SetResolution(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Get(ctx, k); r.Resolution != nil {
			t.Errorf("resolution %s after clearing it", r.Resolution)
		}
		if err := s.SetResolution(ctx, ledger.Key{ControllerID: "acme", RequestID: "nope"}, trace); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown request: %v", err)
		}
	})
}

func TestCallbackAttempts(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		k := mustCreate(t, s, newRequest("acme", "req-1", base())).Key()
		url := keyed(ledger.PurposeCallbackURL, "https://controller.example/callback?sig=abc")
		// pending, in_progress, failed, then pending again after a retry: the
		// same status twice, told apart by the change's sequence number.
		attempts := []ledger.CallbackAttempt{
			{URLHash: url, Host: "controller.example", Seq: 1, RequestStatus: dsr.StatusPending, Attempt: 1, At: base(), HTTPStatus: 503, Error: "503 Service Unavailable"},
			{URLHash: url, Host: "controller.example", Seq: 1, RequestStatus: dsr.StatusPending, Attempt: 2, At: base().Add(time.Minute), HTTPStatus: 200, Delivered: true},
			{URLHash: url, Host: "controller.example", Seq: 2, RequestStatus: dsr.StatusInProgress, Attempt: 1, At: base().Add(time.Hour), Error: "dial tcp: connection refused"},
			{URLHash: url, Host: "controller.example", Seq: 3, RequestStatus: dsr.StatusFailed, Attempt: 1, At: base().Add(2 * time.Hour), HTTPStatus: 410, Error: "410 Gone", Permanent: true},
			{URLHash: url, Host: "controller.example", Seq: 4, RequestStatus: dsr.StatusPending, Attempt: 1, At: base().Add(3 * time.Hour), HTTPStatus: 200, Delivered: true},
		}
		for _, a := range attempts {
			if err := s.RecordCallbackAttempt(ctx, k, a); err != nil {
				t.Fatal(err)
			}
		}
		// Recording an attempt with the same numbers again appends a row:
		// nothing is ever overwritten.
		again := attempts[0]
		again.At, again.HTTPStatus, again.Error = base().Add(4*time.Hour), 500, "500 Internal Server Error"
		if err := s.RecordCallbackAttempt(ctx, k, again); err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, again)
		got, err := s.CallbackAttempts(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		for i := range attempts {
			attempts[i].At = us(attempts[i].At)
		}
		if !reflect.DeepEqual(got, attempts) {
			t.Fatalf("attempts\n%+v\nwant\n%+v", got, attempts)
		}
		if err := s.RecordCallbackAttempt(ctx, ledger.Key{ControllerID: "acme", RequestID: "nope"}, attempts[0]); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown request: %v", err)
		}
		for name, bad := range map[string]string{"no URL hash": "", "unkeyed URL hash": ledger.HashHex("https://controller.example/callback?sig=abc")} {
			if err := s.RecordCallbackAttempt(ctx, k, ledger.CallbackAttempt{URLHash: bad, RequestStatus: dsr.StatusPending, Attempt: 1}); err == nil {
				t.Errorf("attempt with %s accepted", name)
			}
		}
	})
}

func TestPurgeExpired(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		now := base().Add(400 * 24 * time.Hour)
		const expired = 1100 // more than two chunks
		var keys []ledger.Key
		for i := range expired + 3 {
			r := newRequest("acme", fmt.Sprintf("req-%04d", i), base())
			if i >= expired {
				r.ExpiresAt = now.Add(time.Duration(i-expired) * time.Second) // not before now
			}
			k := mustCreate(t, s, r).Key()
			keys = append(keys, k)
			if i%100 == 0 || i >= expired {
				if err := s.SetStatus(ctx, k, dsr.StatusCompleted, "", base().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				if err := s.RecordCallbackAttempt(ctx, k, ledger.CallbackAttempt{URLHash: keyed(ledger.PurposeCallbackURL, "u"), Seq: 1, RequestStatus: dsr.StatusCompleted, Attempt: 1, Delivered: true}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.SetForwarding(ctx, keys, ledger.Forwarding{Destination: "mixpanel", Status: dsr.ForwardingSent}); err != nil {
			t.Fatal(err)
		}

		n, err := s.PurgeExpired(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if n != expired {
			t.Fatalf("purged %d, want %d", n, expired)
		}
		for table, want := range map[string]int{"requests": 3, "transitions": 6, "forwarding": 3, "callback_attempts": 3} {
			if got := countRows(t, db, table); got != want {
				t.Errorf("%d rows left in %s, want %d", got, table, want)
			}
		}
		if _, err := s.Get(ctx, keys[0]); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("purged request: %v", err)
		}
		if _, err := s.Get(ctx, keys[expired]); err != nil {
			t.Errorf("request expiring at now was purged: %v", err)
		}
		if n, err := s.PurgeExpired(ctx, now); err != nil || n != 0 {
			t.Errorf("second purge: %d, %v", n, err)
		}
	})
}

func TestStats(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		for i := range 5 {
			k := mustCreate(t, s, newRequest("acme", fmt.Sprintf("req-%d", i), base())).Key()
			if i < 2 {
				if err := s.SetStatus(ctx, k, dsr.StatusInProgress, "", time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[dsr.Status]int{dsr.StatusPending: 3, dsr.StatusInProgress: 2, dsr.StatusCompleted: 0, dsr.StatusCancelled: 0, dsr.StatusFailed: 0}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stats %v, want %v", got, want)
		}
	})
}

// Open migrates; processes starting at once (two Opens at the same moment)
// both succeed, and opening again changes nothing.
func TestOpenConcurrent(t *testing.T) {
	sqldbtest.EachDSN(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		stores := make([]*ledger.Store, 2)
		var wg sync.WaitGroup
		for i := range stores {
			wg.Go(func() {
				s, err := ledger.Open(ctx, dsn)
				if err != nil {
					t.Error(err)
					return
				}
				stores[i] = s
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		mustCreate(t, stores[0], newRequest("acme", "req-1", base()))
		if _, err := stores[1].Get(ctx, ledger.Key{ControllerID: "acme", RequestID: "req-1"}); err != nil {
			t.Fatal(err)
		}
		for _, s := range stores {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		s, err := ledger.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Get(ctx, ledger.Key{ControllerID: "acme", RequestID: "req-1"}); err != nil {
			t.Fatal(err)
		}
	})
}

// The worker and the API write to one SQLite file through two handles:
// 2 x 200 concurrent requests, each created, moved on and called back,
// without a single "database is locked".
func TestSQLiteTwoWriters(t *testing.T) {
	ctx := context.Background()
	path := sqldbtest.SQLiteDSN(t)
	var stores []*ledger.Store
	for range 2 {
		s, err := ledger.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	const perStore = 200
	var wg sync.WaitGroup
	for w, s := range stores {
		for i := range perStore {
			wg.Go(func() {
				r := newRequest("acme", fmt.Sprintf("w%d-req-%03d", w, i), base())
				if _, _, err := s.CreateRequest(ctx, r); err != nil {
					t.Error(err)
					return
				}
				if err := s.SetStatus(ctx, r.Key(), dsr.StatusInProgress, "forwarded", time.Time{}); err != nil {
					t.Error(err)
				}
				a := ledger.CallbackAttempt{URLHash: keyed(ledger.PurposeCallbackURL, "u"), Seq: 2, RequestStatus: dsr.StatusInProgress, Attempt: 1, Delivered: true}
				if err := s.RecordCallbackAttempt(ctx, r.Key(), a); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	stats, err := stores[0].Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats[dsr.StatusInProgress] != 2*perStore {
		t.Fatalf("stats %v", stats)
	}
}

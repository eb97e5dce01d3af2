package activities_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/callback"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// subject is the data subject of these tests: values an attacker holding a
// copy of the ledger may guess.
var subject = []dsr.Identity{
	{Type: "email", Format: "raw", Value: "Ann.Smith@example.com"},
	{Type: "controller_customer_id", Format: "raw", Value: "cust-1042"},
	{Type: "email", Format: "sha256", Value: hex256("ann.smith@example.com")},
}

// callbackSecret is the secret a controller put in its callback URL's query.
const callbackSecret = "cb-secret-7f3a9d"

func hex256(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

// newRing returns a ring of one new key.
func newRing(t testing.TB, id string) *keyring.Ring {
	t.Helper()
	spec := mustGenerate(t, id)
	r, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	specs[r] = spec
	return r
}

// newSender returns a callback sender allowed to reach the test's receiver.
func newSender(t testing.TB) *callback.Sender {
	t.Helper()
	keyPath, certPath, err := opendsr.WriteKeyPair(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := opendsr.LoadSigner(keyPath, certPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := callback.New(callback.Options{Signer: signer, ProcessorDomain: "dsr.example", AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recordAndCallBack writes a request of subject to the ledger as the intake
// and the workflow do (ledger.RecordOf), and delivers one callback to a
// receiver whose URL carries callbackSecret. It returns the callback URL.
func recordAndCallBack(t *testing.T, store *ledger.Store, keys *keyring.Ring, digest string) string {
	t.Helper()
	ctx := context.Background()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(receiver.Close)
	cbURL := receiver.URL + "/dsr/callback?token=" + callbackSecret
	in := dsr.Request{
		ControllerID: "acme", RequestID: "9f1c2d3e-4b5a-4c6d-8e7f-001122334455", Type: dsr.TypeErasure, Regulation: dsr.RegulationGDPR,
		Identities: subject, CallbackURLs: []string{cbURL}, ReceivedTime: time.Now().UTC(),
		BodyHash: keys.Hash(ledger.PurposeBody, digest),
	}
	rec, err := ledger.RecordOf(keys, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.CreateRequest(ctx, rec); err != nil {
		t.Fatal(err)
	}
	a := &activities.Activities{Ledger: store, Keys: keys, Callbacks: newSender(t)}
	var env testsuite.WorkflowTestSuite
	act := env.NewTestActivityEnvironment()
	act.RegisterActivity(a)
	if _, err := act.ExecuteActivity(a.DeliverCallbacks, dsr.DeliverCallbacksInput{
		ControllerID: in.ControllerID, RequestID: in.RequestID, Seq: 1, Status: dsr.StatusPending, URLs: in.CallbackURLs,
	}); err != nil {
		t.Fatal(err)
	}
	return cbURL
}

// dump returns every text the ledger stores about requests and callbacks.
func dump(t *testing.T, db *sqldb.DB) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, q := range []string{
		`SELECT body_hash || ' ' || ` + jsonText(db, "identities") + ` || ' ' || ` + jsonText(db, "callback_urls") + ` FROM requests`,
		`SELECT url_hash || ' ' || host || ' ' || error_message FROM callback_attempts`,
	} {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func jsonText(db *sqldb.DB, col string) string {
	if db.Dialect == sqldb.Postgres {
		return col + "::text"
	}
	return col
}

// guesses returns every unkeyed (or wrongly keyed) hash an attacker would
// try for a candidate value: plain digests of the value, of its normalised
// form, and of the type:format:value constructions, in hex; and HMACs of
// those under keys the attacker can guess.
func guesses(candidate string) []string {
	forms := []string{candidate, strings.ToLower(candidate), strings.TrimSpace(strings.ToLower(candidate))}
	for _, typ := range []string{"email", "controller_customer_id"} {
		for _, format := range []string{"raw", "sha256", ""} {
			forms = append(forms, typ+":"+format+":"+candidate, typ+":"+format+":"+strings.ToLower(candidate), typ+":"+candidate)
		}
	}
	for _, f := range slicesClone(forms) {
		forms = append(forms, hex256(f)) // the digest itself, hashed again
	}
	var out []string
	for _, f := range forms {
		s1 := sha1.Sum([]byte(f))
		m5 := md5.Sum([]byte(f))
		out = append(out, hex256(f), hex.EncodeToString(s1[:]), hex.EncodeToString(m5[:]))
		for _, key := range []string{"", "dsrflow", "secret", "test"} {
			for _, purpose := range []string{"", ledger.PurposeIdentity, ledger.PurposeBody, ledger.PurposeCallbackURL} {
				m := hmac.New(sha256.New, []byte(key))
				m.Write([]byte(purpose))
				if purpose != "" {
					m.Write([]byte{0})
				}
				m.Write([]byte(f))
				out = append(out, hex.EncodeToString(m.Sum(nil)))
			}
		}
	}
	return out
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// TestStoredHashesNeedTheKey is the attack of issue 11: with a copy of the
// ledger (SQLite and PostgreSQL) but not the key ring, a dictionary of
// candidate values reproduces none of the stored hashes, and no value is
// stored in clear; with the key ring, the stored hashes match the subject's
// values and no others.
func TestStoredHashesNeedTheKey(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		store, err := ledger.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		keys := newRing(t, "k1")
		const body = `{"regulation":"gdpr","subject_request_type":"erasure"}`
		cbURL := recordAndCallBack(t, store, keys, ledger.HashHex(body))
		stored := dump(t, db)

		dictionary := []string{"bob@example.com", "ann.smith@example.com", "Ann.Smith@example.com", "cust-1041", "cust-1042", "cust-1043",
			hex256("ann.smith@example.com"), body, cbURL, callbackSecret, "alice@example.com"}
		for _, cand := range dictionary {
			for _, g := range guesses(cand) {
				if strings.Contains(stored, g) {
					t.Fatalf("a guess for %q reproduces a stored hash", cand)
				}
			}
		}
		for _, clear := range []string{"Ann.Smith", "ann.smith", "cust-1042", callbackSecret, "/dsr/callback"} {
			if strings.Contains(strings.ToLower(stored), strings.ToLower(clear)) {
				t.Fatalf("the ledger holds %q in clear:\n%s", clear, stored)
			}
		}

		// With the key, the stored hashes are those of the subject's values.
		r, err := store.Get(ctx, ledger.Key{ControllerID: "acme", RequestID: "9f1c2d3e-4b5a-4c6d-8e7f-001122334455"})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Identities) != len(subject) {
			t.Fatalf("%d identities stored, want %d", len(r.Identities), len(subject))
		}
		for i, id := range subject {
			digest := opendsr.HashIdentity(id.Type, id.Format, id.Value)
			if !ledger.Matches(keys, ledger.PurposeIdentity, digest, r.Identities[i].Hash) {
				t.Errorf("identity %d: the stored hash does not match its value with the key", i)
			}
			if ledger.Matches(keys, ledger.PurposeIdentity, opendsr.HashIdentity(id.Type, id.Format, "x"+id.Value), r.Identities[i].Hash) {
				t.Errorf("identity %d: the stored hash matches another value", i)
			}
			if ledger.Matches(keys, ledger.PurposeBody, digest, r.Identities[i].Hash) {
				t.Errorf("identity %d: an identity hash matches as a body hash", i)
			}
			if ledger.Matches(newRing(t, "k1"), ledger.PurposeIdentity, digest, r.Identities[i].Hash) {
				t.Errorf("identity %d: another key with the same id reproduces the hash", i)
			}
		}
		if !ledger.Matches(keys, ledger.PurposeBody, ledger.HashHex(body), r.BodyHash) {
			t.Error("the body hash does not match the body with the key")
		}
		attempts, err := store.CallbackAttempts(ctx, r.Key())
		if err != nil || len(attempts) != 1 || !ledger.Matches(keys, ledger.PurposeCallbackURL, ledger.HashHex(cbURL), attempts[0].URLHash) {
			t.Fatalf("callback attempts %+v (%v): want one, hashed with the key", attempts, err)
		}
		if u, err := keys.Open(r.CallbackURLs[0]); err != nil || u != cbURL {
			t.Errorf("the sealed callback URL opens to %q, %v", u, err)
		}

		// After a rotation, the hashes made with the old key still match.
		rotated, err := keyring.Parse(mustGenerate(t, "k2") + "," + specOf(t, keys))
		if err != nil {
			t.Fatal(err)
		}
		if !ledger.Matches(rotated, ledger.PurposeBody, ledger.HashHex(body), r.BodyHash) {
			t.Error("after a rotation, the body hash made with the old key no longer matches")
		}
	})
}

// specs remembers the spec of each ring newRing made, for rotations.
var specs = map[*keyring.Ring]string{}

func mustGenerate(t testing.TB, id string) string {
	t.Helper()
	spec, err := keyring.Generate(id)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func specOf(t testing.TB, r *keyring.Ring) string {
	t.Helper()
	spec, ok := specs[r]
	if !ok {
		t.Fatal("ring not made by newRing")
	}
	return spec
}

// TestCallbackURLsNeverInClearInTheDBFile: after a request with a callback
// URL is recorded and called back, neither the SQLite file nor its WAL holds
// the URL's path or its secret.
func TestCallbackURLsNeverInClearInTheDBFile(t *testing.T) {
	dir := t.TempDir()
	store, err := ledger.Open(context.Background(), filepath.Join(dir, "dsrflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys := newRing(t, "k1")
	recordAndCallBack(t, store, keys, ledger.HashHex("body"))
	files, _ := filepath.Glob(filepath.Join(dir, "dsrflow.db*"))
	if len(files) < 2 {
		t.Fatalf("want the database and its WAL while open, got %q", files)
	}
	scan := func(when string) {
		files, _ := filepath.Glob(filepath.Join(dir, "dsrflow.db*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, clear := range []string{callbackSecret, "/dsr/callback", "Ann.Smith", "ann.smith", "cust-1042"} {
				if bytes.Contains(b, []byte(clear)) {
					t.Errorf("%s: %s holds %q in clear", when, filepath.Base(f), clear)
				}
			}
		}
	}
	scan("open")
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	scan("closed")
}

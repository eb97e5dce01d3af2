package ledger_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// TestForgetProfiles: after an erasure, the ledger's reasons name the
// erased profile ids only by their keyed hash, everywhere in the
// controller's records (status reasons, transitions, forwarding messages),
// while other profile ids, look-alike ids and other controllers' records
// stay as they were; a second call changes nothing.
func TestForgetProfiles(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		held := mustCreate(t, s, newRequest("acme", "req-held", base())).Key()
		access := mustCreate(t, s, newRequest("acme", "req-access", base())).Key()
		other := mustCreate(t, s, newRequest("globex", "req-other", base())).Key()
		const erased = "cust_4417-x"
		steps := []struct {
			k      ledger.Key
			to     dsr.Status
			reason string
		}{
			{held, dsr.StatusPending, "ambiguous identity: 3 profiles match (" + erased + ", " + erased + "0, p_2); choose one with dsr resolve"},
			{held, dsr.StatusPending, "identity settled by operator olga: profile " + erased},
			{held, dsr.StatusCompleted, "done for profile " + erased + "; local copy erased: 4 profile store rows removed"},
			{access, dsr.StatusCompleted, "the identities resolve to one profile, " + erased},
			{other, dsr.StatusCompleted, "identity settled by operator olga: profile " + erased},
		}
		for i, st := range steps {
			if err := s.SetStatus(ctx, st.k, st.to, st.reason, base().Add(timeStep(i))); err != nil {
				t.Fatal(err)
			}
		}
		skipped := ledger.Forwarding{Destination: "eu", Status: dsr.ForwardingSkipped, StatusMessage: "no controller_customer_id identity on profile " + erased + " nor in the request"}
		if err := s.SetForwarding(ctx, []ledger.Key{held, other}, skipped); err != nil {
			t.Fatal(err)
		}

		changed, err := s.ForgetProfiles(ctx, testKeys, "acme", []string{erased})
		if err != nil {
			t.Fatal(err)
		}
		// held: status, 3 transitions, forwarding; access: status, 1 transition.
		if changed != 7 {
			t.Errorf("%d rows changed, want 7", changed)
		}
		mention := "[erased " + testKeys.Hash(ledger.PurposeProfile, erased) + "]"
		var texts []string
		for _, k := range []ledger.Key{held, access} {
			r, err := s.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, r.StatusReason)
			trs, err := s.Transitions(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range trs {
				texts = append(texts, tr.Reason)
			}
			fw, err := s.Forwardings(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fw {
				texts = append(texts, f.StatusMessage)
			}
		}
		all := strings.Join(texts, "\n")
		if strings.Contains(strings.ReplaceAll(all, erased+"0", ""), erased) {
			t.Errorf("the erased profile id is still in acme's records:\n%s", all)
		}
		want := "ambiguous identity: 3 profiles match (" + mention + ", " + erased + "0, p_2); choose one with dsr resolve"
		if !strings.Contains(all, want) {
			t.Errorf("the held reason is not\n%s\nin\n%s", want, all)
		}
		if !strings.Contains(all, "identity settled by operator olga: profile "+mention) {
			t.Errorf("the settled reason does not name the keyed hash:\n%s", all)
		}

		// globex's records are globex's.
		r, err := s.Get(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		fw, err := s.Forwardings(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(r.StatusReason, "profile "+erased) || len(fw) != 1 || !strings.Contains(fw[0].StatusMessage, erased) {
			t.Errorf("another controller's records changed: %q %+v", r.StatusReason, fw)
		}

		if again, err := s.ForgetProfiles(ctx, testKeys, "acme", []string{erased}); err != nil || again != 0 {
			t.Errorf("again: %d rows changed, %v", again, err)
		}

		// On SQLite, the old text is not left in the file's free space.
		if db.Dialect == sqldb.SQLite {
			if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				t.Fatal(err)
			}
			var path string
			if err := db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Phrases only acme's records held (globex's keep the id).
			for _, phrase := range []string{"(" + erased + ", ", "done for profile " + erased, "one profile, " + erased} {
				if bytes.Contains(b, []byte(phrase)) {
					t.Errorf("the database file still holds %q", phrase)
				}
			}
		}
	})
}

func timeStep(i int) time.Duration { return time.Duration(i) * time.Minute }

// BenchmarkForgetProfiles measures an erasure's ledger forgetting on SQLite
// when the controller has 20,000 requests (three reasons each) of which
// none names the profile: the cost every erasure completion pays.
func BenchmarkForgetProfiles(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for i := range 20000 {
		k := mustCreate(b, s, newRequest("acme", fmt.Sprintf("req-%06d", i), base())).Key()
		if err := s.SetStatus(ctx, k, dsr.StatusInProgress, fmt.Sprintf("the identities resolve to one profile, p-%06d", i), base()); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, err := s.ForgetProfiles(ctx, testKeys, "acme", []string{"p-none-such"}); err != nil {
			b.Fatal(err)
		}
	}
}

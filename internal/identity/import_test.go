package identity_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// Every identity value in these files contains "VAL" (or "val" in emails),
// so that the tests can tell that no error quotes one.
const jsonlFile = `{"profile_id":"p1","identities":{"email":" VAL-Ann@Example.com ","controller_customer_id":"VAL-c1","ios_vendor_id":["VAL-v1","VAL-v2"]},"attributes":{"plan":"pro","seats":3}}
{"profile_id":"p2","identities":{"email":"VAL-b@example.com"
{"identities":{"email":"VAL-c@example.com"}}
{"profile_id":"p4","identities":{"VAL-phone":"VAL-555"}}
{"profile_id":"p5","identities":{"email":"VAL-not-an-email"}}

{"profile_id":"p7","identities":{"controller_customer_id":"VAL-c7","android_id":null}}
["VAL-array"]
{"profile_id":"p9","identities":{"email":42}}
{"profile_id":"p10","identities":{"email":"VAL-j@example.com"},"VAL-extra":"VAL"}
{"profile_id":"p11","identities":{"email":"VAL-k@example.com"}} {"VAL":1}
{"profile_id":12,"identities":{"email":"VAL-l@example.com"}}
{"profile_id":"p13","identities":{"controller_customer_id":"VAL-c13"},"attributes":"VAL-plan"}
{"profile_id":"p1","identities":{"email":"VAL-ann@example.com","controller_customer_id":"VAL-c1"},"attributes":{"plan":"team"}}
`

var jsonlErrors = []identity.LineError{
	{Line: 2, Problem: "malformed JSON (truncated)"},
	{Line: 3, Problem: "missing profile_id"},
	{Line: 4, Problem: "unknown identity type in identities (supported: controller_customer_id, android_advertising_id, android_id, email, fire_advertising_id, ios_advertising_id, ios_vendor_id, microsoft_advertising_id, microsoft_publisher_id, roku_publisher_id, roku_advertising_id)"},
	{Line: 5, Problem: "email: not an email address"},
	{Line: 8, Problem: "not a JSON object"},
	{Line: 9, Problem: "identities.email: must be a string or a list of strings"},
	{Line: 10, Problem: "unknown field (a record holds profile_id, identities and attributes)"},
	{Line: 11, Problem: "malformed JSON: data after the object"},
	{Line: 12, Problem: "profile_id must be a string"},
	{Line: 13, Problem: "attributes must be a JSON object"},
}

func importString(t *testing.T, s *identity.Store, data string, format identity.Format, opts identity.ImportOptions) identity.ImportReport {
	t.Helper()
	rep, err := s.Import(context.Background(), owner, strings.NewReader(data), format, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// assertNoValue fails when a report's problem quotes an identity value.
func assertNoValue(t *testing.T, rep identity.ImportReport) {
	t.Helper()
	for _, e := range rep.Errors {
		if strings.Contains(strings.ToLower(e.Problem), "val") {
			t.Errorf("line %d: problem quotes a value: %s", e.Line, e.Problem)
		}
	}
}

func TestImportJSONL(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		var progress []int
		opts := identity.ImportOptions{BatchSize: 2, Progress: func(done int) { progress = append(progress, done) }}
		rep := importString(t, s, jsonlFile, identity.JSONL, opts)
		if rep.Imported != 3 || rep.Failed != len(jsonlErrors) || !reflect.DeepEqual(rep.Errors, jsonlErrors) {
			t.Fatalf("report %+v\nwant errors %+v", rep, jsonlErrors)
		}
		assertNoValue(t, rep)
		if len(progress) == 0 || progress[len(progress)-1] != rep.Imported+rep.Failed {
			t.Errorf("progress %v", progress)
		}
		for i := 1; i < len(progress); i++ {
			if progress[i] <= progress[i-1] {
				t.Errorf("progress not increasing: %v", progress)
			}
		}

		// Good lines landed, around bad ones in the same batches; the last
		// record of p1 replaced the first.
		if n := count(t, s); n != 2 {
			t.Fatalf("count %d", n)
		}
		want := identity.Profile{ID: "p1", Identities: ids("controller_customer_id", "VAL-c1", "email", "VAL-ann@example.com"),
			Attributes: map[string]any{"plan": "team"}}
		if got := mustGet(t, s, "p1"); !reflect.DeepEqual(got, want) {
			t.Errorf("p1 %#v", got)
		}
		if got := mustGet(t, s, "p7"); !reflect.DeepEqual(got.Identities, ids("controller_customer_id", "VAL-c7")) {
			t.Errorf("p7 %#v", got)
		}

		// Running it again changes nothing.
		again := importString(t, s, jsonlFile, identity.JSONL, identity.ImportOptions{})
		if again.Imported != rep.Imported || again.Failed != rep.Failed || !reflect.DeepEqual(again.Errors, rep.Errors) {
			t.Fatalf("second run %+v", again)
		}
		if n := count(t, s); n != 2 {
			t.Fatalf("count after re-run %d", n)
		}
		if got := mustGet(t, s, "p1"); !reflect.DeepEqual(got, want) {
			t.Errorf("p1 after re-run %#v", got)
		}
		if got := found(t, s, identity.Query{Type: "ios_vendor_id", Value: "VAL-v1"}); got != nil {
			t.Errorf("replaced identity still found: %v", got)
		}
	})
}

const csvFile = "\uFEFFprofile_id,email,ios_vendor_id,controller_customer_id,attr:plan\n" +
	"p1,VAL-ann@example.com,VAL-v1|VAL-v2 ,VAL-c1,pro\n" +
	",VAL-b@example.com,,VAL-c2,\n" +
	"p3,VAL-not-an-email,,,\n" +
	"p4,VAL-d@example.com,,VAL-c4\n" +
	"p5,VAL-e\"@example.com,,,\n" +
	"p6,\"VAL-multi\nline@example.com\",,VAL-c6,\n" +
	"\n" +
	"p8,,,VAL-c8,free\n"

var csvErrors = []identity.LineError{
	{Line: 3, Problem: "missing profile_id"},
	{Line: 4, Problem: "email: not an email address"},
	{Line: 5, Problem: "4 fields, the header has 5"},
	{Line: 6, Problem: `malformed CSV (column 9): bare " in non-quoted-field`},
	{Line: 7, Problem: "email: not an email address"},
}

func TestImportCSV(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		for run := range 2 { // idempotent
			rep := importString(t, s, csvFile, identity.CSV, identity.ImportOptions{BatchSize: 1})
			if rep.Imported != 2 || rep.Failed != len(csvErrors) || !reflect.DeepEqual(rep.Errors, csvErrors) {
				t.Fatalf("run %d: report %+v\nwant errors %+v", run, rep, csvErrors)
			}
			assertNoValue(t, rep)
			if n := count(t, s); n != 2 {
				t.Fatalf("count %d", n)
			}
			want := identity.Profile{ID: "p1",
				Identities: ids("email", "VAL-ann@example.com", "ios_vendor_id", "VAL-v1", "ios_vendor_id", "VAL-v2", "controller_customer_id", "VAL-c1"),
				Attributes: map[string]any{"plan": "pro"}}
			if got := mustGet(t, s, "p1"); !reflect.DeepEqual(got, want) {
				t.Errorf("p1 %#v", got)
			}
			if got := mustGet(t, s, "p8"); !reflect.DeepEqual(got, identity.Profile{ID: "p8",
				Identities: ids("controller_customer_id", "VAL-c8"), Attributes: map[string]any{"plan": "free"}}) {
				t.Errorf("p8 %#v", got)
			}
		}
	})
}

func TestImportCSVBadHeader(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		for file, want := range map[string]string{
			"profile_id,VAL@example.com\np1,VAL-x\n": "CSV header: column 2 is not profile_id, an identity type",
			"p1,VAL-x@example.com\np2,VAL-y\n":       "CSV header: column 1 is not profile_id", // no header
			"email,controller_customer_id\n":         "CSV header: no profile_id column",
			"profile_id,attr:a,attr:a\n":             "CSV header: column 3 repeats an attribute name",
			"":                                       "CSV: empty file",
		} {
			_, err := s.Import(context.Background(), owner, strings.NewReader(file), identity.CSV, identity.ImportOptions{})
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("file %q: got %v, want %q", file, err, want)
			}
			if err != nil && strings.Contains(err.Error(), "VAL") {
				t.Errorf("error quotes a value: %v", err)
			}
		}
		if n := count(t, s); n != 0 {
			t.Fatalf("count %d", n)
		}
	})
}

func TestImportLongLinesAndErrorCap(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		var b strings.Builder
		fmt.Fprintf(&b, `{"profile_id":"p-long","identities":{"email":"VAL%s@x.com"}}`+"\n", strings.Repeat("x", identity.MaxLineSize))
		for i := range identity.MaxImportErrors + 5 {
			fmt.Fprintf(&b, `{"profile_id":"p-%d"`+"\n", i)
		}
		b.WriteString(`{"profile_id":"p-last","identities":{"email":"last@x.com"}}`) // no final newline
		rep := importString(t, s, b.String(), identity.JSONL, identity.ImportOptions{})
		if rep.Imported != 1 || rep.Failed != identity.MaxImportErrors+6 || len(rep.Errors) != identity.MaxImportErrors {
			t.Fatalf("imported %d failed %d kept %d", rep.Imported, rep.Failed, len(rep.Errors))
		}
		if rep.Errors[0] != (identity.LineError{Line: 1, Problem: fmt.Sprintf("line longer than %d bytes", identity.MaxLineSize)}) ||
			rep.Errors[1].Line != 2 {
			t.Errorf("first errors %+v", rep.Errors[:2])
		}
		mustGet(t, s, "p-last")
	})
}

func TestImportUnknownFormat(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		if _, err := s.Import(context.Background(), owner, strings.NewReader(""), "xml", identity.ImportOptions{}); err == nil {
			t.Fatal("xml accepted")
		}
	})
}

// A bulk import (into an empty store, or asked for) rebuilds the digest
// indexes; an ordinary one keeps them.
func TestImportBulkRebuildsIndexes(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, db *sqldb.DB) {
		for _, opts := range []identity.ImportOptions{{}, {}, {Bulk: true}} {
			importString(t, s, jsonlFile, identity.JSONL, opts)
			if got := indexes(t, db); !reflect.DeepEqual(got, allIndexes) {
				t.Fatalf("indexes after import %v", got)
			}
			if got := found(t, s, identity.Query{Type: "email", Format: "sha256", Value: sha256Hex("val-ann@example.com")}); !reflect.DeepEqual(got, []string{"p1:[0]"}) {
				t.Fatalf("found %v", got)
			}
		}

		// An ordinary import repairs what a dead bulk import left.
		if _, err := db.ExecContext(context.Background(), `DROP INDEX identity_values_md5`); err != nil {
			t.Fatal(err)
		}
		importString(t, s, jsonlFile, identity.JSONL, identity.ImportOptions{})
		if got := indexes(t, db); !reflect.DeepEqual(got, allIndexes) {
			t.Fatalf("indexes after an ordinary import %v", got)
		}
	})
}

// Cancelling an import stops it, and still leaves the indexes in place.
func TestImportCancelled(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, db *sqldb.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		var b strings.Builder
		for i := range 5000 {
			fmt.Fprintf(&b, `{"profile_id":"p-%d","identities":{"controller_customer_id":"c-%d"}}`+"\n", i, i)
		}
		rep, err := s.Import(ctx, owner, strings.NewReader(b.String()), identity.JSONL, identity.ImportOptions{
			BatchSize: 100,
			Progress: func(done int) {
				if done >= 1000 {
					cancel()
				}
			},
		})
		if !errors.Is(err, context.Canceled) || rep.Imported >= 5000 {
			t.Fatalf("import went on: %+v, %v", rep, err)
		}
		if got := indexes(t, db); !reflect.DeepEqual(got, allIndexes) {
			t.Fatalf("indexes after a cancelled import %v", got)
		}
		var n int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM identity_bulk_imports`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d bulk imports left (%v)", n, err)
		}
	})
}

// An import tunes its SQLite connection and puts it back as it was.
func TestImportRestoresConnection(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, db *sqldb.DB) {
		if db.Dialect != sqldb.SQLite {
			t.Skip("SQLite connection settings")
		}
		ctx := context.Background()
		db.SetMaxOpenConns(2) // the import's connection is one of these two
		settings := func() []string {
			var out []string
			conns := make([]*sql.Conn, 2)
			for i := range conns {
				c, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				conns[i] = c
				for _, p := range []string{"temp_store", "cache_size", "wal_autocheckpoint"} {
					var v int
					if err := c.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); err != nil {
						t.Fatal(err)
					}
					out = append(out, fmt.Sprintf("%s=%d", p, v))
				}
			}
			for _, c := range conns {
				_ = c.Close()
			}
			return out
		}
		before := settings()
		importString(t, s, jsonlFile, identity.JSONL, identity.ImportOptions{})
		if after := settings(); !reflect.DeepEqual(after, before) {
			t.Fatalf("connection settings %v after the import, %v before", after, before)
		}
	})
}

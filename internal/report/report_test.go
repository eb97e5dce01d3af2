package report_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/report"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// truth is what the generator wrote, counted without the ledger or package report.
type truth struct {
	total     int
	counts    map[string]int // type/regulation/status
	durations map[string][]time.Duration
	onTime    map[string]int
	overdue   map[string]bool // request ids
	extended  map[string]bool
	tasks     map[string]int // destination/task status
	secrets   []string       // identity values and hashes that must not appear
}

// generate writes a month of requests (and a few just outside it) into the ledger.
func generate(t *testing.T, store *ledger.Store, from, now time.Time) truth {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(15, 2026))
	ring, err := keyring.Parse(devstack.TestEncryptionKeys)
	if err != nil {
		t.Fatal(err)
	}
	tr := truth{counts: map[string]int{}, durations: map[string][]time.Duration{}, onTime: map[string]int{},
		overdue: map[string]bool{}, extended: map[string]bool{}, tasks: map[string]int{}}
	month := from.AddDate(0, 1, 0).Sub(from)
	types := []string{dsr.TypeErasure, dsr.TypeErasure, dsr.TypeErasure, dsr.TypeAccess, dsr.TypePortability}
	outcomes := []dsr.Status{dsr.StatusCompleted, dsr.StatusCompleted, dsr.StatusCompleted, dsr.StatusCompleted,
		dsr.StatusCompleted, dsr.StatusCancelled, dsr.StatusFailed, dsr.StatusPending, dsr.StatusInProgress}
	for i := range 260 {
		received := from.Add(time.Duration(rng.Int64N(int64(month))))
		inMonth := true
		switch i {
		case 0:
			received, inMonth = from.Add(-time.Second), false // the last second of the month before
		case 1:
			received, inMonth = from.Add(month), false // the first instant of the next month
		case 2:
			received = from // the first instant of this one
		}
		typ, reg := types[rng.IntN(len(types))], []string{"gdpr", "ccpa"}[rng.IntN(2)]
		status := outcomes[rng.IntN(len(outcomes))]
		email := fmt.Sprintf("subject-%d@example.com", i)
		hash := ring.Hash("identity", ledger.HashHex(email)) // keyed, as the worker keeps it
		r := ledger.Request{ControllerID: []string{"acme", "globex"}[i%2], RequestID: fmt.Sprintf("7e57%04d-0000-4000-8000-%012d", i, i),
			Type: typ, Regulation: reg, SubmittedTime: received, ReceivedTime: received, DueTime: opendsr.DueTime(reg, received),
			Identities: []ledger.IdentityHash{{Type: "email", Format: "raw", Hash: hash}}}
		if _, _, err := store.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		k := r.Key()
		due := r.DueTime
		if rng.IntN(10) == 0 && status != dsr.StatusCancelled {
			ext := ledger.Extension{DueTime: dsr.ExtendedDueTime(reg, due), ExtendedAt: received.Add(48 * time.Hour), Reason: "many systems hold the data"}
			if err := store.Extend(ctx, k, ext); err != nil {
				t.Fatal(err)
			}
			due = ext.DueTime.UTC().Truncate(time.Microsecond)
			if inMonth {
				tr.extended[r.RequestID] = true
			}
		}
		final := received.Add(time.Hour + time.Duration(rng.Int64N(int64(55*24*time.Hour))))
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		if status != dsr.StatusPending && status != dsr.StatusCancelled {
			must(store.SetStatus(ctx, k, dsr.StatusInProgress, "sent to Mixpanel", received.Add(time.Hour/2)))
		}
		taskStatus := map[dsr.Status]string{dsr.StatusCompleted: "SUCCESS", dsr.StatusFailed: "FAILURE", dsr.StatusInProgress: "PENDING"}[status]
		if taskStatus != "" {
			must(store.SetForwarding(ctx, []ledger.Key{k}, ledger.Forwarding{Destination: "mixpanel", Status: dsr.ForwardingSent, TaskID: fmt.Sprintf("task-%d", i), TaskStatus: dsr.TaskStatus(taskStatus)}))
			if inMonth {
				tr.tasks["mixpanel/"+taskStatus]++
			}
		}
		if typ == dsr.TypeErasure && status == dsr.StatusCompleted {
			must(store.SetForwarding(ctx, []ledger.Key{k}, ledger.Forwarding{Destination: "eu-project", Status: dsr.ForwardingSkipped}))
			if inMonth {
				tr.tasks["eu-project/none"]++
			}
		}
		if status == dsr.StatusCompleted || status == dsr.StatusCancelled || status == dsr.StatusFailed {
			must(store.SetStatus(ctx, k, status, "done", final))
		}
		if !inMonth {
			continue
		}
		tr.total++
		tr.counts[typ+"/"+reg+"/"+string(status)]++
		tr.secrets = append(tr.secrets, email, hash)
		if status == dsr.StatusCompleted {
			tr.durations[reg] = append(tr.durations[reg], final.Truncate(time.Microsecond).Sub(received.Truncate(time.Microsecond)))
			if !final.After(due) {
				tr.onTime[reg]++
			}
		}
		end := final
		if status == dsr.StatusPending || status == dsr.StatusInProgress {
			end = now
		}
		if status != dsr.StatusCancelled && end.After(due) {
			tr.overdue[r.RequestID] = true
		}
	}
	return tr
}

func TestMonthlyReportMatchesTheLedger(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		store, err := ledger.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		now := time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
		tr := generate(t, store, from, now)

		r, err := report.Build(ctx, store, "2026-11", now)
		if err != nil {
			t.Fatal(err)
		}
		if r.Total != tr.total {
			t.Errorf("total %d, want %d", r.Total, tr.total)
		}
		got := map[string]int{}
		for _, c := range r.Counts {
			got[c.Type+"/"+c.Regulation+"/"+c.Status] = c.N
		}
		if fmt.Sprint(got) != fmt.Sprint(tr.counts) {
			t.Errorf("counts\n %v\nwant\n %v", got, tr.counts)
		}
		want := map[string][2]time.Duration{}
		for _, reg := range []string{"gdpr", "ccpa"} {
			d := slices.Clone(tr.durations[reg])
			slices.Sort(d)
			// Nearest rank: the ceil(q*n)-th smallest.
			want[reg] = [2]time.Duration{d[(len(d)+1)/2-1], d[(95*len(d)+99)/100-1]}
		}
		for _, tm := range r.Timing {
			if tm.Completed != len(tr.durations[tm.Regulation]) || tm.Median != want[tm.Regulation][0] || tm.P95 != want[tm.Regulation][1] || tm.OnTime != tr.onTime[tm.Regulation] {
				t.Errorf("%s timing %+v, want %d completed, median %s, p95 %s, %d on time", tm.Regulation, tm,
					len(tr.durations[tm.Regulation]), want[tm.Regulation][0], want[tm.Regulation][1], tr.onTime[tm.Regulation])
			}
		}
		if len(r.Timing) != 2 {
			t.Errorf("timing for %d regulations, want 2", len(r.Timing))
		}
		gotOverdue, gotExtended := map[string]bool{}, map[string]bool{}
		for _, l := range r.Overdue {
			gotOverdue[l.RequestID] = true
		}
		for _, e := range r.Extended {
			gotExtended[e.RequestID] = true
		}
		if fmt.Sprint(gotOverdue) != fmt.Sprint(tr.overdue) || len(tr.overdue) == 0 {
			t.Errorf("overdue %d %v\nwant %d %v", len(gotOverdue), gotOverdue, len(tr.overdue), tr.overdue)
		}
		if fmt.Sprint(gotExtended) != fmt.Sprint(tr.extended) || len(tr.extended) == 0 {
			t.Errorf("extended %v, want %v", gotExtended, tr.extended)
		}
		gotTasks := map[string]int{}
		for _, d := range r.Tasks {
			for _, s := range d.ByStatus {
				gotTasks[d.Destination+"/"+s.Label] = s.N
			}
		}
		if fmt.Sprint(gotTasks) != fmt.Sprint(tr.tasks) {
			t.Errorf("tasks %v, want %v", gotTasks, tr.tasks)
		}

		var page bytes.Buffer
		if err := report.Render(&page, r, "dsr.example"); err != nil {
			t.Fatal(err)
		}
		checkPage(t, page.Bytes(), tr, r)
	})
}

// checkPage parses the HTML: it loads with no network (no element or style
// refers to anything outside the page), shows the figures, and holds no
// identity value or hash.
func checkPage(t *testing.T, page []byte, tr truth, r report.Report) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*html.Node{}
	svgs := 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "link", "img", "iframe", "object", "embed", "image", "use", "base", "form", "audio", "video", "source":
				t.Errorf("the page has a <%s> element", n.Data)
			case "svg":
				svgs++
			case "style":
				if css := text(n); strings.Contains(css, "url(") || strings.Contains(css, "@import") {
					t.Error("the style sheet loads something")
				}
			}
			for _, a := range n.Attr {
				switch strings.ToLower(a.Key) {
				case "src", "href", "srcset", "action", "poster", "data", "background", "formaction":
					t.Errorf("<%s %s=%q> refers to something outside the page", n.Data, a.Key, a.Val)
				case "id":
					byID[a.Val] = n
				}
				if strings.Contains(a.Val, "url(") || a.Namespace == "xlink" {
					t.Errorf("<%s %s=%q> may load something", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if svgs < 3 {
		t.Errorf("%d inline SVG charts, want 3", svgs)
	}
	number := func(id string) string {
		t.Helper()
		n, ok := byID[id]
		if !ok {
			t.Errorf("no element #%s", id)
			return ""
		}
		return strings.TrimSpace(text(n))
	}
	if got := number("total"); got != strconv.Itoa(tr.total) {
		t.Errorf("#total = %s, want %d", got, tr.total)
	}
	for key, n := range tr.counts {
		if got := number("n-" + strings.ReplaceAll(key, "/", "-")); got != strconv.Itoa(n) {
			t.Errorf("count %s = %s, want %d", key, got, n)
		}
	}
	if got := number("overdue-count"); got != strconv.Itoa(len(tr.overdue)) {
		t.Errorf("#overdue-count = %s, want %d", got, len(tr.overdue))
	}
	if got := number("extended-count"); got != strconv.Itoa(len(tr.extended)) {
		t.Errorf("#extended-count = %s, want %d", got, len(tr.extended))
	}
	for _, tm := range r.Timing {
		for id, d := range map[string]time.Duration{"median-" + tm.Regulation: tm.Median, "p95-" + tm.Regulation: tm.P95} {
			if n, ok := byID[id]; !ok || attr(n, "data-seconds") != strconv.FormatInt(int64(d.Seconds()), 10) {
				t.Errorf("#%s does not show %s", id, d)
			}
		}
	}
	for key, n := range tr.tasks {
		if got := number("task-" + strings.ReplaceAll(key, "/", "-")); got != strconv.Itoa(n) {
			t.Errorf("task outcome %s = %s, want %d", key, got, n)
		}
	}
	for _, s := range tr.secrets {
		if bytes.Contains(page, []byte(s)) {
			t.Fatalf("the page holds %q", s)
		}
	}
}

func text(n *html.Node) string {
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return sb.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 20; i++ {
		d = append(d, time.Duration(i)*time.Hour)
	}
	if m, p := report.Percentile(d, 0.5), report.Percentile(d, 0.95); m != 10*time.Hour || p != 19*time.Hour {
		t.Errorf("median %s p95 %s, want 10h 19h", m, p)
	}
	if p := report.Percentile(d[:1], 0.95); p != time.Hour {
		t.Errorf("p95 of one = %s", p)
	}
}

func TestParseMonth(t *testing.T) {
	if from, to, err := report.ParseMonth("2026-12"); err != nil || !from.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || !to.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("2026-12: %s %s %v", from, to, err)
	}
	for _, bad := range []string{"2026-13", "2026-1", "26-11", "november", ""} {
		if _, _, err := report.ParseMonth(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

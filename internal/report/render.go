package report

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// ContentSecurityPolicy is what a served report allows: its inline styles,
// nothing else (no scripts, no fetches).
const ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'"

// Render writes the report as one self-contained HTML page for the processor
// named processor.
func Render(w io.Writer, r Report, processor string) error {
	if err := page.Execute(w, struct {
		Report
		Processor string
	}{r, processor}); err != nil {
		return fmt.Errorf("report: rendering: %w", err)
	}
	return nil
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"statuses": dsr.StatusNames,
	"count": func(r Report, typ, reg, status string) int {
		for _, c := range r.Counts {
			if c.Type == typ && c.Regulation == reg && c.Status == status {
				return c.N
			}
		}
		return 0
	},
	"rows":      rows,
	"days":      days,
	"date":      func(t time.Time) string { return dash(t, time.DateOnly) },
	"datetime":  func(t time.Time) string { return dash(t, "2006-01-02 15:04 UTC") },
	"seconds":   func(d time.Duration) int64 { return int64(d.Seconds()) },
	"percent":   percent,
	"statusBar": statusBars,
	"timingBar": timingBars,
	"taskBar":   taskBars,
}).Parse(pageHTML))

// row is one type and regulation of the counts table.
type row struct{ Type, Regulation string }

func rows(r Report) []row {
	var out []row
	seen := map[row]bool{}
	for _, c := range r.Counts {
		k := row{c.Type, c.Regulation}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// days writes a duration in days with one decimal.
func days(d time.Duration) string {
	return fmt.Sprintf("%.1f d", d.Hours()/24)
}

func dash(t time.Time, layout string) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(layout)
}

func percent(n, of int) string {
	if of == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(of))
}

// bar is one bar of a chart.
type bar struct {
	Label string
	Value float64
	Text  string
	Class string
}

func statusBars(r Report) template.HTML {
	var bars []bar
	for _, t := range r.ByStatus {
		bars = append(bars, bar{Label: t.Label, Value: float64(t.N), Text: fmt.Sprint(t.N), Class: "s-" + t.Label})
	}
	return barChart("Requests by status", bars)
}

func timingBars(r Report) template.HTML {
	var bars []bar
	for _, t := range r.Timing {
		reg := strings.ToUpper(t.Regulation)
		bars = append(bars,
			bar{Label: reg + " median", Value: t.Median.Hours() / 24, Text: days(t.Median), Class: "median"},
			bar{Label: reg + " p95", Value: t.P95.Hours() / 24, Text: days(t.P95), Class: "p95"},
			bar{Label: reg + " limit", Value: limitDays(t.Regulation), Text: t.Limit, Class: "limit"})
	}
	return barChart("Days from receipt to completion, against the statutory limit", bars)
}

// limitDays is a regulation's statutory period in days, for the chart: a
// GDPR month is drawn at 30 days (it is 28 to 31).
func limitDays(regulation string) float64 {
	if regulation == "ccpa" {
		return 45
	}
	return 30
}

func taskBars(r Report) template.HTML {
	var bars []bar
	for _, d := range r.Tasks {
		for _, t := range d.ByStatus {
			bars = append(bars, bar{Label: d.Destination + " " + t.Label, Value: float64(t.N), Text: fmt.Sprint(t.N), Class: "t-" + strings.ToLower(t.Label)})
		}
	}
	return barChart("Mixpanel task outcomes (requests)", bars)
}

// barChart draws horizontal bars as inline SVG. Every text is escaped.
func barChart(title string, bars []bar) template.HTML {
	const labelW, chartW, rowH, top = 190, 420, 24, 28
	if len(bars) == 0 {
		return template.HTML(`<p class="empty">` + html.EscapeString(title) + `: nothing this month.</p>`)
	}
	maxV := 0.0
	for _, b := range bars {
		maxV = max(maxV, b.Value)
	}
	if maxV == 0 {
		maxV = 1
	}
	height := top + rowH*len(bars) + 10
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" role="img" width="%d" height="%d" viewBox="0 0 %d %d">`,
		labelW+chartW+80, height, labelW+chartW+80, height)
	fmt.Fprintf(&sb, `<title>%s</title><text x="0" y="16" class="ct">%s</text>`, html.EscapeString(title), html.EscapeString(title))
	for i, b := range bars {
		y := top + i*rowH
		w := int(float64(chartW) * b.Value / maxV)
		fmt.Fprintf(&sb, `<text x="%d" y="%d" class="cl" text-anchor="end">%s</text>`, labelW-8, y+15, html.EscapeString(b.Label))
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%d" height="%d" class="bar %s"/>`, labelW, y+3, max(w, 1), rowH-8, html.EscapeString(b.Class))
		fmt.Fprintf(&sb, `<text x="%d" y="%d" class="cv">%s</text>`, labelW+w+6, y+15, html.EscapeString(b.Text))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) // built above with every text escaped
}

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dsrflow compliance report {{.Month}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d8dce5; padding-bottom: .2rem; }
.sub { color: #5b6475; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0; } th, td { padding: .25rem .6rem; border-bottom: 1px solid #e6e9f0; text-align: right; }
th:first-child, td:first-child, td.l { text-align: left; } th { background: #f3f5f9; font-weight: 600; }
.kpi { display: flex; gap: 1rem; flex-wrap: wrap; } .kpi div { background: #f3f5f9; border-radius: 6px; padding: .6rem 1rem; min-width: 8rem; }
.kpi b { display: block; font-size: 1.4rem; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2330; } svg .ct { font-weight: 600; }
.bar { fill: #4c6ef5; } .s-completed, .t-success { fill: #2f9e44; } .s-failed, .t-failure, .t-revoked { fill: #e03131; } .s-cancelled { fill: #868e96; }
.s-pending, .s-in_progress, .t-pending, .t-staging, .t-started, .t-none { fill: #f59f00; } .median { fill: #4c6ef5; } .p95 { fill: #364fc7; }
.limit { fill: #ced4da; }
.empty, .note { color: #5b6475; }
</style>
</head>
<body>
<h1>Data subject requests — {{.Month}}</h1>
<p class="sub">{{.Processor}} · requests received {{date .From}} to {{date .To}} (exclusive), as of {{datetime .GeneratedAt}}. Requests are named by their ids: this report holds no identity values.</p>

<div class="kpi">
<div><b id="total">{{.Total}}</b>requests</div>
{{range .ByStatus}}<div><b id="status-{{.Label}}">{{.N}}</b>{{.Label}}</div>{{end}}
<div><b id="overdue-count">{{len .Overdue}}</b>overdue</div>
<div><b id="extended-count">{{len .Extended}}</b>extended</div>
</div>

<h2>Requests by type, regulation and status</h2>
{{if .Counts}}<table>
<tr><th>type</th><th>regulation</th>{{range statuses}}<th>{{.}}</th>{{end}}</tr>
{{range $row := rows .Report}}<tr><td class="l">{{$row.Type}}</td><td class="l">{{$row.Regulation}}</td>{{range $s := statuses}}<td id="n-{{$row.Type}}-{{$row.Regulation}}-{{$s}}">{{count $.Report $row.Type $row.Regulation $s}}</td>{{end}}</tr>
{{end}}</table>
{{statusBar .Report}}{{else}}<p class="empty">No requests were received this month.</p>{{end}}

<h2>Time to complete against the statutory limits</h2>
<table>
<tr><th>regulation</th><th>limit</th><th>completed</th><th>median</th><th>95th percentile</th><th>slowest</th><th>on time</th></tr>
{{range .Timing}}<tr><td class="l">{{.Regulation}}</td><td>{{.Limit}}</td><td id="completed-{{.Regulation}}">{{.Completed}}</td>
<td id="median-{{.Regulation}}" data-seconds="{{seconds .Median}}">{{days .Median}}</td><td id="p95-{{.Regulation}}" data-seconds="{{seconds .P95}}">{{days .P95}}</td>
<td data-seconds="{{seconds .Slowest}}">{{days .Slowest}}</td><td id="ontime-{{.Regulation}}" data-n="{{.OnTime}}">{{.OnTime}} ({{percent .OnTime .Completed}})</td></tr>
{{end}}</table>
<p class="note">From receipt to the completed status. Percentiles are nearest-rank. On time: completed no later than the due time (GDPR Art. 12(3): one month, drawn as 30 days; CCPA: 45 days; or the extended due time).</p>
{{timingBar .Report}}

<h2>Overdue requests</h2>
{{if .Overdue}}<table id="overdue">
<tr><th>request</th><th>controller</th><th>type</th><th>regulation</th><th>status</th><th>due</th><th>completed</th><th>late by</th></tr>
{{range .Overdue}}<tr><td class="l">{{.RequestID}}</td><td class="l">{{.ControllerID}}</td><td class="l">{{.Type}}</td><td class="l">{{.Regulation}}</td><td class="l">{{.Status}}</td><td>{{datetime .DueTime}}</td><td>{{datetime .FinalTime}}</td><td>{{days .By}}</td></tr>
{{end}}</table>{{else}}<p class="empty">None.</p>{{end}}

<h2>Extended due times</h2>
{{if .Extended}}<table id="extended">
<tr><th>request</th><th>controller</th><th>regulation</th><th>status</th><th>original due</th><th>extended to</th><th>reason</th></tr>
{{range .Extended}}<tr><td class="l">{{.RequestID}}</td><td class="l">{{.ControllerID}}</td><td class="l">{{.Regulation}}</td><td class="l">{{.Status}}</td><td>{{date .OriginalDueTime}}</td><td>{{date .DueTime}}</td><td class="l">{{.Reason}}</td></tr>
{{end}}</table>{{else}}<p class="empty">None.</p>{{end}}

<h2>Mixpanel task outcomes</h2>
{{if .Tasks}}<table>
<tr><th>destination</th><th>task status</th><th>requests</th></tr>
{{range $d := .Tasks}}{{range .ByStatus}}<tr><td class="l">{{$d.Destination}}</td><td class="l">{{.Label}}</td><td id="task-{{$d.Destination}}-{{.Label}}">{{.N}}</td></tr>
{{end}}{{end}}</table>
{{taskBar .Report}}{{else}}<p class="empty">No request of this month reached a destination.</p>{{end}}
</body>
</html>
`

package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"

	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// csvRow is one data row of a bulk file.
type csvRow struct {
	line   int
	fields []string
}

// csvLayout says what each column of a bulk file holds.
type csvLayout struct {
	identities                                   map[int]opendsr.Identity // column -> type and format
	regulation, requestType, skipWait, submitted int
}

// submitCSV submits one request per row with bounded concurrency. Rows whose
// derived request id is already in the ledger are skipped, so a re-run after a
// crash submits only what is missing. Bad rows are reported by line number.
func (c *cli) submitCSV(ctx context.Context, f submitFlags) error {
	file, err := os.Open(f.csv)
	if err != nil {
		return err
	}
	defer file.Close()
	total, err := countRows(file)
	if err != nil {
		return err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := csv.NewReader(file)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return usageError{fmt.Errorf("%s: cannot read the header row: %w", f.csv, err)}
	}
	layout, err := parseLayout(header)
	if err != nil {
		return usageError{fmt.Errorf("%s: %w", f.csv, err)}
	}
	b, err := c.backend(ctx)
	if err != nil {
		return err
	}
	cfg, _ := c.config()

	progress := newProgress(c.stderr, total, "submitting", "rows")
	var mu sync.Mutex
	var problems []string
	report := func(line int, msg string) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf("line %d: %s", line, msg))
		mu.Unlock()
		progress.add(outcomeRejected)
	}
	base := filepath.Base(f.csv)
	rows := make(chan csvRow)
	var wg sync.WaitGroup
	for range max(f.concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for row := range rows {
				created, msg := submitRow(ctx, b, f, cfg.ProcessorDomain, layout, base, row)
				switch {
				case msg != "":
					report(row.line, msg)
				case created:
					progress.add(outcomeSubmitted)
				default:
					progress.add(outcomeExisting)
				}
			}
		}()
	}
	for ctx.Err() == nil {
		fields, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			report(line, "not valid CSV: "+csvProblem(err))
			continue
		}
		rows <- csvRow{line: line, fields: fields}
	}
	close(rows)
	wg.Wait()
	progress.finish()

	for _, p := range problems {
		fmt.Fprintln(c.stderr, p)
	}
	n := progress.counts()
	fmt.Fprintf(c.stdout, "%d submitted, %d already submitted, %d rejected (of %d rows)\n",
		n[outcomeSubmitted], n[outcomeExisting], n[outcomeRejected], total)
	if ctx.Err() != nil {
		return errors.New("interrupted: run the same command again to submit the remaining rows")
	}
	if n[outcomeRejected] > 0 {
		return fmt.Errorf("%d rows were rejected: fix the lines above and run the same command again", n[outcomeRejected])
	}
	return nil
}

// submitRow submits one row. It returns whether a new request was recorded,
// or a problem description that holds no identity value.
func submitRow(ctx context.Context, b backend, f submitFlags, domain string, layout csvLayout, base string, row csvRow) (bool, string) {
	fields := row.fields
	req := opendsr.Request{
		SubjectRequestID:   rowRequestID(f.controller, base, row.line, fields),
		SubjectRequestType: column(fields, layout.requestType, f.requestType),
		Regulation:         column(fields, layout.regulation, f.regulation),
		SubmittedTime:      column(fields, layout.submitted, time.Now().UTC().Format(time.RFC3339)),
		APIVersion:         opendsr.APIVersion1,
		StatusCallbackURLs: f.callbacks,
	}
	for col := 0; col < len(fields); col++ {
		if id, ok := layout.identities[col]; ok && strings.TrimSpace(fields[col]) != "" {
			id.IdentityValue = strings.TrimSpace(fields[col])
			req.SubjectIdentities = append(req.SubjectIdentities, id)
		}
	}
	skip := f.skipWait
	if v := column(fields, layout.skipWait, ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, "skip_waiting_period must be true or false"
		}
		skip = b
	}
	if skip {
		req.Extensions = skipWaitExtension(domain)
	}
	key := ledger.Key{ControllerID: f.controller, RequestID: req.SubjectRequestID}
	if exists, err := b.Exists(ctx, key); err != nil {
		return false, "looking the request up: " + err.Error()
	} else if exists {
		return false, ""
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return false, err.Error()
	}
	created, _, err := b.Submit(ctx, f.controller, req, raw)
	var oerr *opendsr.Error
	if errors.As(err, &oerr) {
		return false, describe(oerr).Error()
	}
	if err != nil {
		return false, err.Error()
	}
	return created, ""
}

// bulkNamespace is the UUID v5 namespace of bulk CSV request ids.
var bulkNamespace = uuid.MustParse("5b0c3f2e-8a7d-4c1e-9f6b-2d4e8a1c7b39")

// rowRequestID derives a name-based UUID v5 from the controller, file name,
// line and row, so the same file submitted again gives the same ids.
func rowRequestID(controller, file string, line int, fields []string) string {
	parts := append([]string{controller, file, strconv.Itoa(line)}, fields...)
	return uuid.NewSHA1(bulkNamespace, []byte(strings.Join(parts, "\x00"))).String()
}

func parseLayout(header []string) (csvLayout, error) {
	l := csvLayout{identities: map[int]opendsr.Identity{}, regulation: -1, requestType: -1, skipWait: -1, submitted: -1}
	for i, name := range header {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))
		switch name {
		case "regulation":
			l.regulation = i
		case "type", "subject_request_type":
			l.requestType = i
		case "skip_waiting_period":
			l.skipWait = i
		case "submitted_time":
			l.submitted = i
		default:
			typ, format, _ := strings.Cut(name, ":")
			if !slices.Contains(opendsr.IdentityTypes(), typ) || (format != "" && !slices.Contains(opendsr.IdentityFormats(), format)) {
				return l, fmt.Errorf("column %d (%q) is not an identity type (%s), TYPE:FORMAT, regulation, type, skip_waiting_period or submitted_time",
					i+1, name, strings.Join(opendsr.IdentityTypes(), ", "))
			}
			l.identities[i] = opendsr.Identity{IdentityType: typ, IdentityFormat: format}
		}
	}
	if len(l.identities) == 0 {
		return l, errors.New("the header names no identity type column, e.g. controller_customer_id or email")
	}
	return l, nil
}

func column(fields []string, col int, def string) string {
	if col < 0 || col >= len(fields) || strings.TrimSpace(fields[col]) == "" {
		return def
	}
	return strings.TrimSpace(fields[col])
}

// csvProblem describes a CSV parse error without quoting the row.
func csvProblem(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return "unreadable row"
}

// countRows counts data rows (lines after the header) for the progress total.
func countRows(r io.Reader) (int, error) {
	buf := make([]byte, 64*1024)
	n, lastNewline := 0, true
	for {
		k, err := r.Read(buf)
		for _, b := range buf[:k] {
			if b == '\n' {
				n++
			}
		}
		if k > 0 {
			lastNewline = buf[k-1] == '\n'
		}
		if errors.Is(err, io.EOF) {
			if !lastNewline {
				n++
			}
			return max(n-1, 0), nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// outcome is what became of one row (or line) a progress counts.
type outcome int

// The outcomes of a row.
const (
	outcomeSubmitted outcome = iota
	outcomeExisting
	outcomeRejected
	// outcomeRead is a line read whose fate the caller learns later (profile import).
	outcomeRead
	outcomes
)

// progress shows a bar on a terminal, plain lines otherwise, with the rows
// done, what became of them and the rate. It is safe for concurrent use.
type progress struct {
	mu          sync.Mutex
	bar         *progressbar.ProgressBar
	out         io.Writer
	verb, unit  string
	total       int
	done        int
	n           [outcomes]int
	start       time.Time
	now         func() time.Time
	lastPrinted int
}

func newProgress(out io.Writer, total int, verb, unit string) *progress {
	p := &progress{out: out, total: total, verb: verb, unit: unit, start: time.Now(), now: time.Now}
	if isTerminal(out) {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(out), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionSetDescription(verb),
			progressbar.OptionThrottle(100*time.Millisecond))
	}
	return p
}

// add counts one row with its outcome.
func (p *progress) add(o outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.n[o]++
	if p.bar != nil {
		p.bar.Describe(p.verb + " " + p.tally() + rateText(p.done, p.now().Sub(p.start)))
		_ = p.bar.Add(1)
		return
	}
	if step := max(p.total/10, 1); p.done-p.lastPrinted >= step || p.done == p.total {
		p.lastPrinted = p.done
		fmt.Fprintf(p.out, "%s: %d/%d %s, %s%s\n", p.verb, p.done, p.total, p.unit, p.tally(), rateText(p.done, p.now().Sub(p.start)))
	}
}

// tally says what became of the rows so far.
func (p *progress) tally() string {
	if p.n[outcomeRead] > 0 {
		return fmt.Sprintf("%d read", p.n[outcomeRead])
	}
	return fmt.Sprintf("%d submitted, %d already submitted, %d rejected",
		p.n[outcomeSubmitted], p.n[outcomeExisting], p.n[outcomeRejected])
}

// counts returns the rows counted per outcome.
func (p *progress) counts() [outcomes]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// rateText is " (N/s)", or "" for the first second: a rate over a few
// microseconds means nothing.
func rateText(n int, elapsed time.Duration) string {
	if elapsed < time.Second {
		return ""
	}
	return fmt.Sprintf(" (%.0f/s)", float64(n)/elapsed.Seconds())
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.out)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

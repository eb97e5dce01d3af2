package emulator

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strings"
	"time"
)

// serveHelpers serves /_emulator/*: no credentials, no rate limit, no faults.
func (e *Emulator) serveHelpers(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if name, ok := strings.CutPrefix(p, "/_emulator/results/"); ok && r.Method == http.MethodGet {
		e.serveResult(w, r, name)
		return
	}
	switch {
	case p == "/_emulator/healthz" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case p == "/_emulator/tasks" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, e.Tasks())
	case p == "/_emulator/calls" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, e.Calls())
	case p == "/_emulator/log" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, e.CallLog())
	case p == "/_emulator/faults" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, faultsToJSON(e.Faults()))
	case p == "/_emulator/faults" && r.Method == http.MethodPost:
		e.postFaults(w, r)
	case p == "/_emulator/reset" && r.Method == http.MethodPost:
		e.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusNotFound, "not found")
	}
}

// faultsJSON is the wire form of Faults for /_emulator/faults. A POST changes
// only the fields it names; latency is a Go duration ("250ms").
type faultsJSON struct {
	Rate429      *float64 `json:"rate_429,omitempty"`
	Rate500      *float64 `json:"rate_500,omitempty"`
	Latency      *string  `json:"latency,omitempty"`
	RateLimit    *float64 `json:"rate_limit,omitempty"`
	Unauthorized *bool    `json:"unauthorized,omitempty"`
	Forbidden    *bool    `json:"forbidden,omitempty"`
	FailPrefix   *string  `json:"fail_prefix,omitempty"`
}

func faultsToJSON(f Faults) faultsJSON {
	lat := f.Latency.String()
	return faultsJSON{
		Rate429: &f.Rate429, Rate500: &f.Rate500, Latency: &lat,
		RateLimit: &f.RateLimit, Unauthorized: &f.Unauthorized, Forbidden: &f.Forbidden, FailPrefix: &f.FailPrefix,
	}
}

func (e *Emulator) postFaults(w http.ResponseWriter, r *http.Request) {
	var in faultsJSON
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid faults JSON: "+err.Error())
		return
	}
	for _, rate := range []*float64{in.Rate429, in.Rate500} {
		if rate != nil && (*rate < 0 || *rate > 1) {
			writeError(w, http.StatusBadRequest, "rate_429 and rate_500 must be between 0 and 1")
			return
		}
	}
	var latency time.Duration
	if in.Latency != nil {
		d, err := time.ParseDuration(*in.Latency)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, `latency must be a duration like "250ms"`)
			return
		}
		latency = d
	}
	e.mu.Lock()
	f := &e.faults
	if in.Rate429 != nil {
		f.Rate429 = *in.Rate429
	}
	if in.Rate500 != nil {
		f.Rate500 = *in.Rate500
	}
	if in.Latency != nil {
		f.Latency = latency
	}
	if in.RateLimit != nil {
		f.RateLimit = *in.RateLimit
	}
	if in.Unauthorized != nil {
		f.Unauthorized = *in.Unauthorized
	}
	if in.Forbidden != nil {
		f.Forbidden = *in.Forbidden
	}
	if in.FailPrefix != nil {
		f.FailPrefix = *in.FailPrefix
	}
	out := faultsToJSON(*f)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// serveResult streams the result zip of a successful retrieval. The URL's sig
// is the only credential, like a cloud storage signed URL.
func (e *Emulator) serveResult(w http.ResponseWriter, r *http.Request, name string) {
	id, ok := strings.CutSuffix(name, ".zip")
	e.mu.Lock()
	e.calls["retrieval.download"]++
	t := e.tasks[id]
	ready := ok && t != nil && t.kind == KindRetrieval && t.status(e.opts.Clock(), e.opts.Step) == StatusSuccess
	e.mu.Unlock()
	if !ready {
		writeError(w, http.StatusNotFound, "no such result")
		return
	}
	if !equal(r.URL.Query().Get("sig"), t.sig) {
		writeError(w, http.StatusForbidden, "invalid signature")
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+t.id+`.zip"`)
	_ = writeResult(w, t.ids, e.opts.EventsPerID)
}

// writeResult writes the zip on the fly: events.jsonl with eventsPerID
// events per id, people.jsonl with one profile per id, both in Mixpanel's
// export format and deterministic per id.
func writeResult(w io.Writer, ids []string, eventsPerID int) error {
	zw := zip.NewWriter(w)
	fw, err := zw.Create("events.jsonl")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(fw)
	for _, id := range ids {
		for i := range eventsPerID {
			if err := enc.Encode(fakeEvent(id, i)); err != nil {
				return err
			}
		}
	}
	if fw, err = zw.Create("people.jsonl"); err != nil {
		return err
	}
	enc = json.NewEncoder(fw)
	for _, id := range ids {
		if err := enc.Encode(fakeProfile(id)); err != nil {
			return err
		}
	}
	return zw.Close()
}

// fakeEvent returns the i-th event of id; the same arguments give the same event.
func fakeEvent(id string, i int) map[string]any {
	eventNames := [...]string{"Sign Up", "Page View", "Purchase", "Log In", "Search", "Add To Cart"}
	browsers := [...]string{"Chrome", "Firefox", "Safari", "Edge"}
	h := hash(fmt.Sprintf("%s\x00%d", id, i))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	return map[string]any{
		"event": eventNames[h%uint64(len(eventNames))],
		"properties": map[string]any{
			"time":        base + int64(h%(365*24*3600)),
			"distinct_id": id,
			"$insert_id":  fmt.Sprintf("%016x", h),
			"$city":       city(h >> 8),
			"$browser":    browsers[(h>>16)%uint64(len(browsers))],
			"mp_lib":      "web",
		},
	}
}

func fakeProfile(id string) map[string]any {
	h := hash(id)
	return map[string]any{
		"$distinct_id": id,
		"$properties": map[string]any{
			"$city":      city(h),
			"$last_seen": time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC).Add(-time.Duration(h%(90*24)) * time.Hour).Format("2006-01-02T15:04:05"),
			"plan":       [...]string{"free", "pro", "team"}[h%3],
		},
	}
}

func city(h uint64) string {
	cities := [...]string{"Berlin", "Lisbon", "Paris", "Dublin", "San Francisco", "Toronto"}
	return cities[h%uint64(len(cities))]
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// Package httpapi serves dsrflow's OpenDSR HTTP API: intake, status, cancel,
// retry, discovery and the signing certificate. Every response is signed.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/requests"
	"github.com/dsrflow/dsrflow/internal/results"
)

// Server is the OpenDSR API. Build it with New.
type Server struct {
	cfg      Settings
	requests *requests.Service
	signer   *opendsr.Signer
	results  results.Bundles
	ledger   *ledger.Store
	keys     *keyring.Ring
	profiles *identity.Store
	logger   *slog.Logger
	gatherer prometheus.Gatherer
	// tokens authenticate controllers; codecTokens operators of the Web UI codec.
	tokens, codecTokens tokenSet
	limits              *controllerLimits
	calls               *prometheus.CounterVec
	latency             *prometheus.HistogramVec

	// operators authenticates operators (OPERATOR_TOKENS, operator.go).
	operators tokenSet
	// failures throttles authentication failures per client address (authlimit.go).
	failures *failureLimits
}

// Options are the Server's dependencies.
type Options struct {
	Settings Settings
	Requests *requests.Service
	Signer   *opendsr.Signer
	// Results and Ledger serve results links.
	Results results.Bundles
	Ledger  *ledger.Store
	// Keys serve the Temporal Web UI's codec endpoint (/codec/encode, /codec/decode).
	Keys   *keyring.Ring
	Logger *slog.Logger
	// Registry receives the API's metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Profiles, when set, serves POST /v1/profiles.
	Profiles *identity.Store
}

// tokenSet maps bearer tokens, kept as SHA-256, to whom they belong. A lookup
// compares against every entry in constant time.
type tokenSet []tokenEntry

type tokenEntry struct {
	hash  [32]byte
	owner string
}

func (ts tokenSet) add(token, owner string) tokenSet {
	return append(ts, tokenEntry{hash: sha256.Sum256([]byte(token)), owner: owner})
}

// match returns the owner of the request's bearer token.
func (ts tokenSet) match(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return "", false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	owner, found := "", 0
	for _, e := range ts {
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
			owner, found = e.owner, 1
		}
	}
	return owner, found == 1
}

// New builds the API server.
func New(o Options) *Server {
	s := &Server{
		cfg: o.Settings, requests: o.Requests, signer: o.Signer, results: o.Results, ledger: o.Ledger, keys: o.Keys,
		logger: o.Logger, gatherer: o.Registry,
		limits:   newControllerLimits(o.Settings.APIRateLimit, o.Settings.APIRateBurst),
		failures: newFailureLimits(authFailureEvery, authFailureBurst),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsrflow_api_requests_total", Help: "API requests, by route and HTTP status.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dsrflow_api_request_seconds", Help: "API request latency, by route.", Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.profiles = o.Profiles
	if o.Registry != nil {
		o.Registry.MustRegister(s.calls, s.latency)
	}
	for tok, controller := range o.Settings.APITokens {
		s.tokens = s.tokens.add(tok, controller)
	}
	for tok, name := range o.Settings.OperatorTokens {
		s.operators = s.operators.add(tok, name)
	}
	for _, tok := range o.Settings.CodecTokens {
		s.codecTokens = s.codecTokens.add(tok.Reveal(), "operator")
	}
	return s
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, base := range []string{"/v1/requests", "/v1/opendsr_requests", "/v1/opengdpr_requests"} {
		s.route(mux, "POST "+base, s.authed(s.submit))
		s.route(mux, "POST "+base+"/", s.authed(s.submit))
		s.route(mux, "GET "+base+"/{id}", s.authed(s.status))
		s.route(mux, "DELETE "+base+"/{id}", s.authed(s.cancel))
		s.route(mux, "POST "+base+"/{id}/retry", s.operatorOrController(s.retry))
		s.route(mux, "POST "+base+"/{id}/resolve", s.operatorOrController(s.resolve))
		s.route(mux, "GET "+base+"/{id}/receipt", s.authed(s.receipt))
		s.route(mux, "POST "+base+"/{id}/extend", s.operatorAuthed(s.extend))
	}
	s.route(mux, "GET /v1/results/{token}", s.authed(s.downloadResults))
	if s.profiles != nil {
		s.route(mux, "POST /v1/profiles", s.authed(s.importProfiles))
	}
	s.route(mux, "GET /v1/reports/{month}", s.operatorAuthed(s.monthlyReport))
	if s.keys != nil {
		codec := http.StripPrefix("/codec", keyring.CodecHandler(s.keys, s.codecAuthorized, s.cfg.CodecOrigins))
		mux.HandleFunc("/codec/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store") // decoded payloads hold request data
			if !s.throttled(w, r) {
				codec.ServeHTTP(w, r)
			}
		})
	}
	s.route(mux, "GET /v1/discovery", s.discovery)
	s.route(mux, "GET /v1/cert.pem", s.certificate)
	s.route(mux, "GET /healthz", s.health)
	if s.gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, &opendsr.Error{Code: http.StatusNotFound, Message: "No such route",
			Errors: []opendsr.ErrorItem{{Domain: opendsr.ErrorDomain, Reason: opendsr.ReasonNotFound, Message: "no such route"}}})
	})
	return mux
}

// route registers a handler with metrics and a log line per request. Every
// answer says Cache-Control: no-store: most carry request data (status,
// results, errors about a request), and the public ones are cheap to fetch again.
func (s *Server) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set("Cache-Control", "no-store")
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r)
		s.calls.WithLabelValues(pattern, strconv.Itoa(rec.code)).Inc()
		s.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		// No identity, token or body in the log: route pattern, status and duration only.
		s.logger.Info("http request", "route", pattern, "status", rec.code,
			"duration_ms", time.Since(start).Milliseconds(), "subject_request_id", loggedRequestID(r))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

type controllerKey struct{}

// authed requires a valid bearer token and rate-limits per controller.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.throttled(w, r) {
			return
		}
		controller, ok := s.tokens.match(r)
		if !ok {
			s.unauthorized(w, r)
			return
		}
		if !s.allow(w, controller) {
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), controllerKey{}, controller)))
	}
}

// unauthorized answers a request without valid credentials and counts the
// failure against the client's address.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	s.failures.failed(r)
	w.Header().Set("WWW-Authenticate", `Bearer realm="dsrflow"`)
	s.writeError(w, opendsr.Unauthorized())
}

// allow applies the per-caller rate limit, answering 429 when it is exceeded.
func (s *Server) allow(w http.ResponseWriter, caller string) bool {
	if wait, allowed := s.limits.allow(caller); !allowed {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		s.writeError(w, opendsr.TooManyRequests())
		return false
	}
	return true
}

// codecAuthorized admits an operator's codec call: an operator token
// (OPERATOR_TOKENS), a token from DSR_CODEC_TOKENS (good for the codec only),
// or (DSR_CODEC_ALLOW_LOOPBACK, for make dev) a browser on this machine.
// A refusal counts as an authentication failure of the client's address.
func (s *Server) codecAuthorized(r *http.Request) bool {
	if _, ok := s.operators.match(r); ok {
		return true
	}
	if _, ok := s.codecTokens.match(r); ok {
		return true
	}
	if s.cfg.CodecAllowLoopback {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsLoopback() {
			return true
		}
	}
	s.failures.failed(r)
	return false
}

func controllerOf(r *http.Request) string {
	c, _ := r.Context().Value(controllerKey{}).(string)
	return c
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	req, raw, derr := opendsr.DecodeRequest(r.Header.Get("Content-Type"), r.Body)
	if derr != nil {
		s.writeError(w, derr)
		return
	}
	res, err := s.requests.Submit(r.Context(), controllerOf(r), req, raw)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, res.Response)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	resp, err := s.requests.Status(r.Context(), keyOf(r))
	s.answer(w, http.StatusOK, resp, err)
}

// cancel maps DELETE to the workflow's cancel update: 202 when in time, 409 when too late.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	resp, err := s.requests.Cancel(r.Context(), keyOf(r))
	s.answer(w, http.StatusAccepted, resp, err)
}

// retry resumes a failed request (after its cause, such as Mixpanel credentials, was fixed).
func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	resp, err := s.requests.Retry(r.Context(), keyOf(r), actorOf(r))
	s.answer(w, http.StatusAccepted, resp, err)
}

// resolve settles an ambiguous identity: {"profile_id": "..."}.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ProfileID string `json:"profile_id"`
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err != nil || !json.Valid(raw) || json.Unmarshal(raw, &body) != nil {
		s.writeError(w, opendsr.BadRequest("The body must be {\"profile_id\": \"...\"}", opendsr.ErrorItem{
			Domain: opendsr.ErrorDomain, Reason: opendsr.ReasonMalformed, Message: "the body is not a JSON object with profile_id", Location: "body"}))
		return
	}
	if oerr := opendsr.StrictJSON(raw); oerr != nil {
		s.writeError(w, oerr)
		return
	}
	resp, oerr := s.requests.Resolve(r.Context(), keyOf(r), body.ProfileID, actorOf(r))
	s.answer(w, http.StatusAccepted, resp, oerr)
}

func keyOf(r *http.Request) ledger.Key {
	return ledger.Key{ControllerID: controllerOf(r), RequestID: r.PathValue("id")}
}

// answer writes v with code, or the error object.
func (s *Server) answer(w http.ResponseWriter, code int, v any, err *opendsr.Error) {
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.writeJSON(w, code, v)
}

// discovery describes the API. Its URLs come from DSR_PUBLIC_URL, never from
// the request's Host header (a signed document must not point at whatever
// host a caller names).
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	d := opendsr.Discovery{
		APIVersion:                   opendsr.APIVersion1,
		SupportedSubjectRequestTypes: dsr.Types(),
		ProcessorCertificate:         s.cfg.PublicURL + "/v1/cert.pem",
	}
	for _, t := range opendsr.IdentityTypes() {
		for _, f := range opendsr.IdentityFormats() {
			d.SupportedIdentities = append(d.SupportedIdentities, opendsr.SupportedIdentity{IdentityType: t, IdentityFormat: f})
		}
	}
	s.writeJSON(w, http.StatusOK, d)
}

func (s *Server) certificate(w http.ResponseWriter, r *http.Request) {
	body := s.signer.CertificatePEM()
	w.Header().Set("Content-Type", "application/x-pem-file")
	if err := s.signer.SetHeaders(w.Header(), s.cfg.ProcessorDomain, body); err != nil {
		s.logger.Error("signing failed", "error", err)
	}
	_, _ = w.Write(body)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) writeError(w http.ResponseWriter, e *opendsr.Error) {
	s.writeJSON(w, e.Code, e)
}

// writeJSON writes a signed JSON response.
func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.logger.Error("encoding a response failed", "error", err)
		code, body = http.StatusInternalServerError, []byte(`{"error":{"code":500,"message":"Internal error","errors":[]}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	if err := s.signer.SetHeaders(w.Header(), s.cfg.ProcessorDomain, body); err != nil {
		s.logger.Error("signing failed", "error", err)
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// controllerLimits is a token bucket per controller.
type controllerLimits struct {
	mu      sync.Mutex
	rate    rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

func newControllerLimits(perSecond float64, burst int) *controllerLimits {
	limit := rate.Limit(perSecond)
	if perSecond <= 0 {
		limit = rate.Inf
	}
	return &controllerLimits{rate: limit, burst: max(burst, 1), buckets: map[string]*rate.Limiter{}}
}

func (c *controllerLimits) allow(controller string) (time.Duration, bool) {
	c.mu.Lock()
	l, ok := c.buckets[controller]
	if !ok {
		l = rate.NewLimiter(c.rate, c.burst)
		c.buckets[controller] = l
	}
	c.mu.Unlock()
	res := l.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d, false
	}
	return 0, true
}

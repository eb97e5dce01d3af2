package identity

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
)

// Finder looks up the profiles carrying any of a request's identities:
// *Store, or *HTTPFinder for a company's own identity service.
type Finder interface {
	// Find returns the matching profiles of controller, each with the
	// indexes of the queries it matched, sorted by profile id. Profiles of
	// other controllers are never returned.
	Find(ctx context.Context, controller string, queries []Query) ([]Match, error)
}

var (
	_ Finder = (*Store)(nil)
	_ Finder = (*HTTPFinder)(nil)
)

// HTTPFinder limits.
const (
	// DefaultResolverTimeout bounds one call to the identity service.
	DefaultResolverTimeout = 5 * time.Second
	// MaxResolverResponse is the largest response body read, in bytes.
	MaxResolverResponse = 4 << 20
)

// HTTPFinder asks a company's own identity service which profiles carry a
// request's identities (DSR_IDENTITY_RESOLVER_URL). It POSTs
//
//	{"controller_id":"acme","identities":[{"identity_type":"email","identity_format":"raw","identity_value":"..."}]}
//
// naming the requesting controller in the body and in the header
// X-DSR-Controller-Id (a service shared by several controllers must answer
// with that controller's profiles only), with one configured header
// (DSR_IDENTITY_RESOLVER_HEADER, "Name: value", typically
// "Authorization: Bearer ..."), and expects 200 with
//
//	{"profiles":[{"profile_id":"p-1","identities":{"email":"...","ios_vendor_id":["..."]},
//	              "attributes":{...},"matched":[0,2]}]}
//
// where matched lists the indexes of the identities that found the profile.
// Identity types dsrflow does not know are ignored. Redirects are not
// followed. Errors are *ResolverError, transient or not (see IsTransient),
// and never contain an identity value, the header's value or the URL.
type HTTPFinder struct {
	endpoint   string
	headerName string
	header     config.Secret // the header's value
	timeout    time.Duration
	client     *http.Client
}

// HTTPFinderOptions tune an HTTPFinder.
type HTTPFinderOptions struct {
	// Timeout bounds each call, connection included; DefaultResolverTimeout
	// when 0.
	Timeout time.Duration
	// Client replaces the default client (tight dial, TLS and header
	// timeouts; no redirects). Its redirect policy is then the caller's.
	Client *http.Client
}

// NewHTTPFinder returns a finder calling endpoint, an http(s) URL, with
// header ("Name: value") on every call; an unset header sends none.
func NewHTTPFinder(endpoint string, header config.Secret, opts HTTPFinderOptions) (*HTTPFinder, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("identity resolver: the URL must be an absolute http(s) URL")
	}
	f := &HTTPFinder{endpoint: endpoint, timeout: opts.Timeout, client: opts.Client}
	if header.IsSet() {
		name, value, ok := strings.Cut(header.Reveal(), ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !validHeaderName(name) || value == "" || strings.ContainsAny(value, "\r\n") {
			return nil, errors.New(`identity resolver: the header must be "Name: value", e.g. "Authorization: Bearer <token>"`)
		}
		f.headerName, f.header = http.CanonicalHeaderKey(name), config.NewSecret(value)
	}
	if f.timeout <= 0 {
		f.timeout = DefaultResolverTimeout
	}
	if f.client == nil {
		f.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   2 * time.Second,
				ResponseHeaderTimeout: f.timeout,
				MaxIdleConnsPerHost:   4,
				IdleConnTimeout:       90 * time.Second,
				ForceAttemptHTTP2:     true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return f, nil
}

// validHeaderName reports whether name is an HTTP token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if c > 0x7e || c <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// String describes the finder without its secrets: the endpoint's host.
func (f *HTTPFinder) String() string {
	if u, err := url.Parse(f.endpoint); err == nil {
		return "identity resolver at " + u.Host
	}
	return "identity resolver"
}

// ResolverError is an HTTPFinder failure.
type ResolverError struct {
	// StatusCode is the HTTP status answered, 0 when there was no answer.
	StatusCode int
	// Transient is true when retrying may succeed: no answer (connection
	// refused, timeout), 408, 429 or 5xx. Everything else (other 4xx, 3xx, a
	// malformed answer, a certificate that does not verify) needs a fix.
	Transient bool
	// RetryAfter is the wait the service asked for (Retry-After), or 0.
	RetryAfter time.Duration

	msg string
	err error
}

// Error describes the failure without identity values or secrets.
func (e *ResolverError) Error() string { return "identity resolver: " + e.msg }

// Unwrap returns the underlying error, if any.
func (e *ResolverError) Unwrap() error { return e.err }

// IsTransient reports whether err is worth retrying: a *ResolverError marked
// transient, or any failure that is not a definite answer (an invalid query,
// wrapping ErrInvalid, or a resolver's permanent refusal), such as the
// profile store's database connection being cut.
func IsTransient(err error) bool {
	var re *ResolverError
	if errors.As(err, &re) {
		return re.Transient
	}
	return err != nil && !errors.Is(err, ErrInvalid)
}

type resolverIdentity struct {
	Type   string `json:"identity_type"`
	Format string `json:"identity_format"`
	Value  string `json:"identity_value"`
}

type resolverProfile struct {
	ProfileID  string                     `json:"profile_id"`
	Identities map[string]json.RawMessage `json:"identities"`
	Attributes map[string]any             `json:"attributes"`
	Matched    []int                      `json:"matched"`
}

// Find asks the identity service for controller's profiles carrying
// queries. An invalid query or controller id fails before any call, with an
// error wrapping ErrInvalid.
func (f *HTTPFinder) Find(ctx context.Context, controller string, queries []Query) ([]Match, error) {
	if err := CheckOwner(controller); err != nil {
		return nil, fmt.Errorf("identity resolver: %w", err)
	}
	body := struct {
		ControllerID string             `json:"controller_id"`
		Identities   []resolverIdentity `json:"identities"`
	}{ControllerID: controller, Identities: make([]resolverIdentity, len(queries))}
	for i, q := range queries {
		if _, err := lookupOf(q); err != nil {
			return nil, fmt.Errorf("identity resolver: identity %d: %w", i, err)
		}
		body.Identities[i] = resolverIdentity{Type: q.Type, Format: q.EffectiveFormat(), Value: strings.TrimSpace(q.Value)}
	}
	if len(queries) == 0 {
		return nil, nil
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, &ResolverError{msg: "encode request", err: err}
	}

	callCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, f.endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, &ResolverError{msg: "build request"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-DSR-Controller-Id", controller)
	if f.headerName != "" {
		req.Header.Set(f.headerName, f.header.Reveal())
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil { // the caller gave up: not the service's fault
			return nil, fmt.Errorf("identity resolver: %w", ctx.Err())
		}
		return nil, f.transportError(err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection; never shown
		e := &ResolverError{
			StatusCode: resp.StatusCode,
			msg:        fmt.Sprintf("POST answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)),
		}
		switch {
		case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests,
			resp.StatusCode >= 500:
			e.Transient = true
			e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			e.msg += " (redirects are not followed: configure the final URL)"
		}
		return nil, e
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResolverResponse+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("identity resolver: %w", ctx.Err())
	case err != nil:
		return nil, f.transportError(err)
	case len(data) > MaxResolverResponse:
		return nil, &ResolverError{StatusCode: resp.StatusCode, msg: fmt.Sprintf("response larger than %d bytes", MaxResolverResponse)}
	}
	matches, problem := parseResolverResponse(data, len(queries))
	if problem != "" {
		return nil, &ResolverError{StatusCode: resp.StatusCode, msg: "malformed response: " + problem}
	}
	return matches, nil
}

// transportError classifies a failure to get an answer. A certificate that
// does not verify needs a fix; anything else (refused, reset, timeout, DNS)
// may pass. The text is the underlying error's, without the URL.
func (f *HTTPFinder) transportError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	msg := "POST failed: " + err.Error()
	if v := f.header.Reveal(); v != "" {
		msg = strings.ReplaceAll(msg, v, "[redacted]")
	}
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		verifyFail *tls.CertificateVerificationError
	)
	permanent := errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verifyFail)
	return &ResolverError{Transient: !permanent, msg: msg, err: err}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// parseResolverResponse reads the service's answer for n queries. The
// problem it returns names fields and profile ids, never identity values.
func parseResolverResponse(data []byte, n int) ([]Match, string) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var body struct {
		Profiles []resolverProfile `json:"profiles"`
	}
	if err := d.Decode(&body); err != nil {
		return nil, "not a JSON object with a profiles list"
	}
	byID := map[string]*Match{}
	for i, rp := range body.Profiles {
		if problem := profileIDProblem(rp.ProfileID); problem != "" {
			return nil, fmt.Sprintf("profiles[%d]: %s", i, problem)
		}
		ids, problem := decodeIdentities(rp.Identities, false)
		if problem != "" {
			return nil, fmt.Sprintf("profile %s: %s", rp.ProfileID, problem)
		}
		if len(rp.Matched) == 0 {
			return nil, fmt.Sprintf("profile %s: matched is empty", rp.ProfileID)
		}
		for _, m := range rp.Matched {
			if m < 0 || m >= n {
				return nil, fmt.Sprintf("profile %s: matched index %d out of range (%d identities sent)", rp.ProfileID, m, n)
			}
		}
		ids = slices.DeleteFunc(ids, func(id Identity) bool { return strings.TrimSpace(id.Value) == "" })
		for i := range ids {
			ids[i].Value = strings.TrimSpace(ids[i].Value)
		}
		m := byID[rp.ProfileID]
		if m == nil {
			m = &Match{Profile: Profile{ID: rp.ProfileID}}
			byID[rp.ProfileID] = m
		}
		m.Profile.Identities = append(m.Profile.Identities, ids...)
		if len(rp.Attributes) > 0 {
			if m.Profile.Attributes == nil {
				m.Profile.Attributes = map[string]any{}
			}
			for k, v := range rp.Attributes {
				m.Profile.Attributes[k] = v
			}
		}
		for _, idx := range rp.Matched {
			if !slices.Contains(m.Inputs, idx) {
				m.Inputs = append(m.Inputs, idx)
			}
		}
	}
	matches := make([]Match, 0, len(byID))
	for _, m := range byID {
		slices.Sort(m.Inputs)
		matches = append(matches, *m)
	}
	sort.Slice(matches, func(i, j int) bool { return matches[i].Profile.ID < matches[j].Profile.ID })
	return matches, ""
}

// Package mixpanel is a client for Mixpanel's GDPR/CCPA API v3: deletion and
// retrieval tasks, their status and cancellation, and the download of a
// retrieval's result.
//
// Every call sends the project token as ?token=, the GDPR OAuth token as
// "Authorization: Bearer", honours the context deadline (or applies a default
// timeout) and reads a bounded response. Errors are typed so that callers
// branch with errors.As and errors.Is; no error text contains a credential, a
// signed result URL or a distinct id.
package mixpanel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
)

// Defaults used when the corresponding Options field is zero.
const (
	// DefaultMaxIDs is the number of distinct ids Mixpanel accepts in one task.
	DefaultMaxIDs = 1999
	// DefaultTimeout bounds one API call whose context has no deadline.
	DefaultTimeout = 30 * time.Second
	// DefaultDownloadTimeout bounds one result download whose context has no deadline.
	DefaultDownloadTimeout = 30 * time.Minute
	// DefaultMaxDownloadBytes bounds the size of a retrieval result.
	DefaultMaxDownloadBytes int64 = 1 << 30
)

// maxJSONBytes bounds every JSON response body the client reads.
const maxJSONBytes = 1 << 20

// Mixpanel's paths, as its OpenAPI document writes them (no trailing slash),
// under apiPrefix on the host.
const (
	apiPrefix      = "/api/app"
	deletionsPath  = "/data-deletions/v3.0"
	retrievalsPath = "/data-retrievals/v3.0"
)

// Options configures a Client.
type Options struct {
	// BaseURL is Mixpanel's host, scheme://host[:port]: https://mixpanel.com,
	// https://eu.mixpanel.com, https://in.mixpanel.com, a gateway, or the
	// emulator such as http://127.0.0.1:9410. The client appends Mixpanel's
	// own paths, /api/app/data-deletions/v3.0 and /api/app/data-retrievals/v3.0.
	// A value ending in /api/app is accepted the same (see config.MixpanelHost).
	BaseURL string
	// ProjectToken is the Mixpanel project token, sent as ?token=.
	ProjectToken config.Secret
	// OAuthToken is the GDPR OAuth token, sent as "Authorization: Bearer".
	OAuthToken config.Secret
	// HTTPClient sends the requests; default: a client with dial, TLS and
	// response-header timeouts. Its redirect policy is wrapped so that the
	// bearer never follows a redirect to another host.
	HTTPClient *http.Client
	// UserAgent defaults to "dsrflow/<version> (+https://github.com/dsrflow/dsrflow)".
	UserAgent string
	// Timeout bounds an API call whose context has no deadline (default 30s).
	Timeout time.Duration
	// DownloadTimeout bounds a result download whose context has no deadline (default 30m).
	DownloadTimeout time.Duration
	// MaxDownloadBytes bounds the size of a result read by DownloadResult (default 1 GiB).
	MaxDownloadBytes int64
}

// Client calls Mixpanel's GDPR API v3. It is safe for concurrent use. It does
// not rate-limit itself: dsrflow enforces Mixpanel's 1 request/s on the task
// queue that runs the calls.
type Client struct {
	base            *url.URL
	baseStr         string
	projectToken    config.Secret
	oauthToken      config.Secret
	hc              *http.Client
	userAgent       string
	timeout         time.Duration
	downloadTimeout time.Duration
	maxDownload     int64
}

// New validates the options and returns a Client.
func New(o Options) (*Client, error) {
	host, err := config.MixpanelHost(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("mixpanel: BaseURL: %w", err)
	}
	base, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("mixpanel: BaseURL: %w", err)
	}
	if !o.ProjectToken.IsSet() || !o.OAuthToken.IsSet() {
		return nil, errors.New("mixpanel: ProjectToken and OAuthToken are required")
	}
	c := &Client{
		base:            base,
		baseStr:         host + apiPrefix,
		projectToken:    o.ProjectToken,
		oauthToken:      o.OAuthToken,
		userAgent:       o.UserAgent,
		timeout:         o.Timeout,
		downloadTimeout: o.DownloadTimeout,
		maxDownload:     o.MaxDownloadBytes,
	}
	if c.userAgent == "" {
		c.userAgent = defaultUserAgent()
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.downloadTimeout <= 0 {
		c.downloadTimeout = DefaultDownloadTimeout
	}
	if c.maxDownload <= 0 {
		c.maxDownload = DefaultMaxDownloadBytes
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	copied := *hc
	next := hc.CheckRedirect
	copied.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if req.Method != via[0].Method {
			// A 301/302/303 turns DELETE or POST into GET; never let a cancel
			// or a create silently become a status read.
			return http.ErrUseLastResponse
		}
		// The Referer would carry the previous URL, ?token= included.
		req.Header.Del("Referer")
		if !sameOrigin(req.URL, c.base) {
			req.Header.Del("Authorization")
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	c.hc = &copied
	return c, nil
}

// String describes the client without credentials. (fmt would print the
// unexported Secret fields raw: their own redaction is not reached.)
func (c Client) String() string { return "mixpanel.Client(" + c.baseStr + ")" }

// GoString is String for %#v.
func (c Client) GoString() string { return c.String() }

// CreateDeletion creates a deletion task for ids and returns its task id. The
// body is distinct_ids and compliance_type only: deletions take no
// disclosure_type, for CCPA either.
// A *ConflictError means some ids already belong to a running deletion task
// and nothing was created.
func (c *Client) CreateDeletion(ctx context.Context, ids []string, ct ComplianceType) (string, error) {
	id, err := c.create(ctx, deletionsPath, ids, ct, nil)
	if err != nil {
		return "", fmt.Errorf("mixpanel: create deletion task: %w", err)
	}
	return id, nil
}

// DeletionStatus returns the state of a deletion task. An unknown task gives
// an error matching ErrTaskNotFound.
func (c *Client) DeletionStatus(ctx context.Context, taskID string) (Task, error) {
	t, err := c.status(ctx, deletionsPath, taskID)
	if err != nil {
		return t, fmt.Errorf("mixpanel: deletion task %s: %w", taskID, err)
	}
	return t, nil
}

// CancelDeletion cancels a deletion task that has not STARTED. Once it has,
// the error matches ErrNotCancellable.
func (c *Client) CancelDeletion(ctx context.Context, taskID string) error {
	if err := c.cancel(ctx, deletionsPath, taskID); err != nil {
		return fmt.Errorf("mixpanel: cancel deletion task %s: %w", taskID, err)
	}
	return nil
}

// CreateRetrieval creates a retrieval (export) task for ids and returns its
// tracking id. dt is sent only for CCPA (default Data) and ignored for GDPR.
func (c *Client) CreateRetrieval(ctx context.Context, ids []string, ct ComplianceType, dt DisclosureType) (string, error) {
	id, err := c.create(ctx, retrievalsPath, ids, ct, &dt)
	if err != nil {
		return "", fmt.Errorf("mixpanel: create retrieval task: %w", err)
	}
	return id, nil
}

// RetrievalStatus returns the state of a retrieval task; once SUCCESS,
// Task.Result is the signed URL of the result zip. (Mixpanel documents no
// cancel for retrievals.)
func (c *Client) RetrievalStatus(ctx context.Context, taskID string) (Task, error) {
	t, err := c.status(ctx, retrievalsPath, taskID)
	if err != nil {
		return t, fmt.Errorf("mixpanel: retrieval task %s: %w", taskID, err)
	}
	return t, nil
}

type createBody struct {
	DistinctIDs    []string       `json:"distinct_ids"`
	ComplianceType ComplianceType `json:"compliance_type"`
	DisclosureType DisclosureType `json:"disclosure_type,omitempty"`
}

// create makes a task. dt is nil for deletions, which take no disclosure
// type; for retrievals it is sent with CCPA only.
func (c *Client) create(ctx context.Context, path string, ids []string, ct ComplianceType, dt *DisclosureType) (string, error) {
	ct, ok := ct.normalize()
	if !ok {
		return "", &BadRequestError{Message: "compliance type must be GDPR or CCPA"}
	}
	if len(ids) == 0 {
		return "", &BadRequestError{Message: "no distinct ids"}
	}
	for _, id := range ids {
		if id == "" {
			return "", &BadRequestError{Message: "empty distinct id"}
		}
	}
	body := createBody{DistinctIDs: ids, ComplianceType: ct}
	if ct == CCPA && dt != nil {
		if body.DisclosureType, ok = dt.normalize(); !ok {
			return "", &BadRequestError{Message: "disclosure type must be Data, Categories or Sources"}
		}
	}
	r, err := c.call(ctx, http.MethodPost, path, body, ids)
	if err != nil {
		return "", err
	}
	if !r.ok() {
		return "", c.statusError(r, ids)
	}
	id, err := parseCreate(r.body)
	if err != nil {
		return "", c.protocolError(r, err)
	}
	return id, nil
}

func (c *Client) status(ctx context.Context, path, taskID string) (Task, error) {
	if taskID == "" {
		return Task{}, &BadRequestError{Message: "empty task id"}
	}
	r, err := c.call(ctx, http.MethodGet, path+"/"+url.PathEscape(taskID), nil, nil)
	if err != nil {
		return Task{}, err
	}
	if r.status == http.StatusNotFound {
		return Task{ID: taskID, Status: dsr.TaskNotFound}, ErrTaskNotFound
	}
	if !r.ok() {
		return Task{}, c.statusError(r, nil)
	}
	t, err := parseStatus(r.body)
	if err != nil {
		return Task{}, c.protocolError(r, err)
	}
	t.ID = taskID
	if t.Status == dsr.TaskNotFound {
		return t, ErrTaskNotFound
	}
	return t, nil
}

func (c *Client) cancel(ctx context.Context, path, taskID string) error {
	if taskID == "" {
		return &BadRequestError{Message: "empty task id"}
	}
	r, err := c.call(ctx, http.MethodDelete, path+"/"+url.PathEscape(taskID), nil, nil)
	if err != nil {
		return err
	}
	switch {
	case r.ok():
		return nil
	case r.status == http.StatusMethodNotAllowed:
		return ErrNotCancellable
	case r.status == http.StatusNotFound:
		return ErrTaskNotFound
	}
	return c.statusError(r, nil)
}

// response is a fully read API response.
type response struct {
	status int
	header http.Header
	body   []byte
	// truncated is set when the body exceeded maxJSONBytes.
	truncated bool
}

func (r response) ok() bool { return r.status >= 200 && r.status < 300 }

// call makes one API request: token in the query, bearer in the header, JSON
// body if any. ids are the distinct ids in the body, scrubbed from errors.
func (c *Client) call(ctx context.Context, method, path string, body any, ids []string) (response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.baseStr + path + "?token=" + url.QueryEscape(c.projectToken.Reveal())
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		// The error would quote the URL, token included.
		return response{}, errors.New("cannot build request: invalid BaseURL or task id")
	}
	req.Header.Set("Authorization", "Bearer "+c.oauthToken.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, c.transportError(err, ids)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBytes+1))
	if err != nil {
		return response{}, c.transportError(err, ids)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: b}
	if len(b) > maxJSONBytes {
		r.body, r.truncated = b[:maxJSONBytes], true
	}
	return r, nil
}

// protocolError reports a 2xx answer the client cannot understand. It is
// transient: a retried create may meet a 409 naming the task it created.
func (c *Client) protocolError(r response, err error) error {
	msg := "unexpected response body: " + err.Error()
	if r.truncated {
		msg = "response body larger than 1 MiB"
	}
	return &TransientError{StatusCode: r.status, Message: c.scrub(msg, nil)}
}

// transportError turns a failed round trip into a *TransientError without the
// URL (and so without the token) that *url.Error quotes. Only a context error
// is kept as the cause, so that no unwrapped error can quote anything either.
func (c *Client) transportError(err error, secrets []string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	te := &TransientError{Message: c.scrub(err.Error(), secrets)}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		te.Err = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		te.Err = context.Canceled
	}
	return te
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}}
}

func defaultUserAgent() string {
	v := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		} else {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v = s.Value[:12]
				}
			}
		}
	}
	return "dsrflow/" + v + " (+https://github.com/dsrflow/dsrflow)"
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/requests"
)

// backend is how the CLI reads and changes requests: through the request
// service (the database and Temporal, as a starter does) or, when DSR_API_URL
// is set, through the HTTP API with DSR_API_TOKEN. Answers are in the API's
// shape, sealed fields opened.
type backend interface {
	Submit(ctx context.Context, controller string, req opendsr.Request, raw []byte) (created bool, resp opendsr.CreatedResponse, err error)
	// Exists reports whether the request is recorded.
	Exists(ctx context.Context, key ledger.Key) (bool, error)
	Status(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, error)
	Cancel(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, error)
	Retry(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, error)
	Resolve(ctx context.Context, key ledger.Key, profile string) (opendsr.StatusResponse, error)
	// Results opens the results bundle behind a status' results_url.
	Results(ctx context.Context, key ledger.Key, resultsURL string) (io.ReadCloser, error)
}

// errNotFound is a request the backend does not know.
var errNotFound = errors.New("no such request")

// backend opens the API backend when DSR_API_URL is set, else the request service.
func (c *cli) backend(ctx context.Context) (backend, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	if cfg.APIURL != "" {
		token := strings.TrimSpace(cfg.APIToken.Reveal())
		if token == "" {
			return nil, usageError{errors.New("DSR_API_URL is set but DSR_API_TOKEN is empty: set it to a controller's API token")}
		}
		return &apiBackend{base: cfg.APIURL, token: token, http: &http.Client{Timeout: time.Minute}}, nil
	}
	svc, err := c.localService(ctx)
	if err != nil {
		return nil, err
	}
	return &localBackend{cli: c, svc: svc}, nil
}

// localBackend works on the database and Temporal through the request service.
// It is safe for concurrent use (bulk submission).
type localBackend struct {
	cli *cli
	// svc reads; full, connected to Temporal on first use, changes requests.
	svc  *requests.Service
	mu   sync.Mutex
	full *requests.Service
}

// withTemporal returns the service connected to Temporal, for what changes a request.
func (b *localBackend) withTemporal(ctx context.Context) (*requests.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.full == nil {
		svc, err := b.cli.service(ctx)
		if err != nil {
			return nil, err
		}
		b.full = svc
	}
	return b.full, nil
}

func (b *localBackend) Submit(ctx context.Context, controller string, req opendsr.Request, raw []byte) (bool, opendsr.CreatedResponse, error) {
	svc, err := b.withTemporal(ctx)
	if err != nil {
		return false, opendsr.CreatedResponse{}, err
	}
	res, oerr := svc.Submit(ctx, controller, req, raw)
	if oerr != nil {
		return false, opendsr.CreatedResponse{}, oerr
	}
	return res.Created, res.Response, nil
}

func (b *localBackend) Exists(ctx context.Context, key ledger.Key) (bool, error) {
	_, err := b.svc.Ledger.Get(ctx, key)
	if errors.Is(err, ledger.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (b *localBackend) Status(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, error) {
	return answer(b.svc.Status(ctx, key))
}

func (b *localBackend) Cancel(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, error) {
	if _, err := answer(b.svc.Status(ctx, key)); err != nil {
		return opendsr.StatusResponse{}, err
	}
	svc, err := b.withTemporal(ctx)
	if err != nil {
		return opendsr.StatusResponse{}, err
	}
	return answer(svc.Cancel(ctx, key))
}

func (b *localBackend) Retry(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, error) {
	if _, err := answer(b.svc.Status(ctx, key)); err != nil {
		return opendsr.StatusResponse{}, err
	}
	svc, err := b.withTemporal(ctx)
	if err != nil {
		return opendsr.StatusResponse{}, err
	}
	return answer(svc.Retry(ctx, key, cliOperator()))
}

func (b *localBackend) Resolve(ctx context.Context, key ledger.Key, profile string) (opendsr.StatusResponse, error) {
	if _, err := answer(b.svc.Status(ctx, key)); err != nil {
		return opendsr.StatusResponse{}, err
	}
	svc, err := b.withTemporal(ctx)
	if err != nil {
		return opendsr.StatusResponse{}, err
	}
	return answer(svc.Resolve(ctx, key, profile, cliOperator()))
}

// Results opens the bundle from the results store (DSR_RESULTS_DIR), as the API serves it.
func (b *localBackend) Results(ctx context.Context, key ledger.Key, resultsURL string) (io.ReadCloser, error) {
	token := resultsURL[strings.LastIndex(resultsURL, "/")+1:]
	cfg, err := b.cli.config()
	if err != nil {
		return nil, err
	}
	store, err := app.ResultsStore(cfg, b.svc.Keys)
	if err != nil {
		return nil, err
	}
	rec, err := b.svc.Ledger.ByResultsToken(ctx, token)
	if err != nil || rec.Key() != key {
		return nil, fmt.Errorf("the results link of %s is not in the ledger", key.RequestID)
	}
	if !rec.ResultsExpiresAt.After(time.Now()) {
		return nil, fmt.Errorf("the results of %s expired at %s", key.RequestID, rec.ResultsExpiresAt.UTC().Format(time.RFC3339))
	}
	bundle, _, err := store.Open(token)
	if err != nil {
		return nil, fmt.Errorf("opening the results bundle in DSR_RESULTS_DIR=%s: %w", cfg.ResultsDir, err)
	}
	return bundle, nil
}

// answer maps the service's error object to a CLI error.
func answer(resp opendsr.StatusResponse, oerr *opendsr.Error) (opendsr.StatusResponse, error) {
	if oerr != nil {
		if oerr.Code == http.StatusNotFound {
			return resp, errNotFound
		}
		return resp, oerr
	}
	return resp, nil
}

// apiBackend talks to dsrflow's HTTP API; the token decides the controller.
type apiBackend struct {
	base, token string
	http        *http.Client
}

func (b *apiBackend) Submit(ctx context.Context, _ string, _ opendsr.Request, raw []byte) (bool, opendsr.CreatedResponse, error) {
	var resp opendsr.CreatedResponse
	if err := b.call(ctx, http.MethodPost, "/v1/requests", raw, &resp); err != nil {
		return false, resp, err
	}
	// The API answers a repeated submission as it did the first; the ledger
	// row predates this call when its received time is well before now.
	return time.Since(resp.ReceivedTime.Time) < time.Minute, resp, nil
}

func (b *apiBackend) Exists(ctx context.Context, key ledger.Key) (bool, error) {
	_, err := b.Status(ctx, key)
	if errors.Is(err, errNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (b *apiBackend) Status(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, error) {
	var resp opendsr.StatusResponse
	return resp, b.call(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(key.RequestID), nil, &resp)
}

func (b *apiBackend) Cancel(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, error) {
	var resp opendsr.StatusResponse
	return resp, b.call(ctx, http.MethodDelete, "/v1/requests/"+url.PathEscape(key.RequestID), nil, &resp)
}

func (b *apiBackend) Retry(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, error) {
	var resp opendsr.StatusResponse
	return resp, b.call(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(key.RequestID)+"/retry", nil, &resp)
}

func (b *apiBackend) Resolve(ctx context.Context, key ledger.Key, profile string) (opendsr.StatusResponse, error) {
	body, _ := json.Marshal(map[string]string{"profile_id": profile})
	var resp opendsr.StatusResponse
	return resp, b.call(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(key.RequestID)+"/resolve", body, &resp)
}

func (b *apiBackend) Results(ctx context.Context, _ ledger.Key, resultsURL string) (io.ReadCloser, error) {
	resp, err := b.do(ctx, http.MethodGet, resultsURL, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Receipt fetches a finished request's signed receipt, as served.
func (b *apiBackend) Receipt(ctx context.Context, key ledger.Key) ([]byte, error) {
	resp, err := b.do(ctx, http.MethodGet, b.base+"/v1/requests/"+url.PathEscape(key.RequestID)+"/receipt", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the API's answer: %w", err)
	}
	return body, nil
}

// call sends a JSON request to the API and decodes its answer into out.
func (b *apiBackend) call(ctx context.Context, method, path string, body []byte, out any) error {
	resp, err := b.do(ctx, method, b.base+path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return nil
}

// do sends a request and returns a 2xx response; other answers become
// errors (the API's error object, errNotFound for 404).
func (b *apiBackend) do(ctx context.Context, method, target string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the API at DSR_API_URL=%s: %w", b.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e opendsr.Error
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound && strings.Contains(target, "/v1/requests/"):
		return nil, errNotFound
	case json.Unmarshal(raw, &e) == nil && e.Code != 0:
		return nil, &e
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, errors.New("the API refused DSR_API_TOKEN (401)")
	}
	return nil, fmt.Errorf("%s %s: HTTP %d", method, target, resp.StatusCode)
}

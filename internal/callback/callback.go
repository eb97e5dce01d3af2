// Package callback delivers signed OpenDSR status callbacks to controllers,
// refusing destinations that would let a controller reach dsrflow's own
// network (SSRF): unless AllowPrivate is set, only https URLs are used and
// every connection is checked, on the IP actually dialled, against loopback,
// private, link-local, CGNAT, multicast and cloud metadata ranges.
package callback

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/dsrflow/dsrflow/internal/netguard"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// DefaultTimeout bounds one delivery attempt when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultUserAgent is sent when Options.UserAgent is empty.
const DefaultUserAgent = "dsrflow-callback/1"

// Sentinel errors. Both make IsPermanent true.
var (
	// ErrForbiddenDestination means the URL's address is one callbacks may not reach.
	ErrForbiddenDestination = errors.New("destination address not allowed")
	// ErrInvalidURL means the callback URL cannot be used.
	ErrInvalidURL = errors.New("invalid callback URL")
)

// Options configure a Sender.
type Options struct {
	// Signer signs every body. Required.
	Signer *opendsr.Signer
	// ProcessorDomain is sent as X-OpenDSR-Processor-Domain. Required.
	ProcessorDomain string
	// AllowPrivate permits http:// URLs and loopback/private addresses
	// (DSR_CALLBACK_ALLOW_PRIVATE; local use and tests only).
	AllowPrivate bool
	// Timeout bounds one attempt, from dialling to the end of the response
	// headers and body; zero means DefaultTimeout.
	Timeout time.Duration
	// UserAgent is the User-Agent header; empty means DefaultUserAgent.
	UserAgent string
	// RootCAs verifies the controllers' certificates; nil means the system
	// roots.
	RootCAs *x509.CertPool
}

// Sender POSTs signed callbacks. It is safe for concurrent use and keeps
// connections alive between calls.
type Sender struct {
	signer    *opendsr.Signer
	domain    string
	allowPriv bool
	userAgent string
	client    *http.Client
}

// New builds a Sender.
func New(opts Options) (*Sender, error) {
	if opts.Signer == nil {
		return nil, errors.New("callback: a signer is required")
	}
	if opts.ProcessorDomain == "" {
		return nil, errors.New("callback: a processor domain is required")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	s := &Sender{signer: opts.Signer, domain: opts.ProcessorDomain, allowPriv: opts.AllowPrivate, userAgent: ua}

	dialer := &net.Dialer{Timeout: min(5*time.Second, timeout), KeepAlive: 30 * time.Second}
	if !opts.AllowPrivate {
		dialer.Control = checkDial
	}
	transport := &http.Transport{
		Proxy:                  nil, // never a proxy from the environment
		DialContext:            dialer.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs},
		TLSHandshakeTimeout:    min(5*time.Second, timeout),
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
	s.client = &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return s, nil
}

// Error is a failed delivery. Its text names the host only, never the
// path or query of the URL (they may hold tokens).
type Error struct {
	// Host is the URL's host name.
	Host string
	// Status is the HTTP status received, or 0 when none was.
	Status int
	// Permanent is true when retrying cannot help.
	Permanent bool
	// Err is the underlying cause, if any.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	host := e.Host
	if host == "" {
		host = "(unknown)"
	}
	if e.Err == nil {
		return fmt.Sprintf("callback to host %s: status %d", host, e.Status)
	}
	return fmt.Sprintf("callback to host %s: %v", host, e.Err)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether a Send error should stop retries: refused
// destinations (forbidden address, unusable URL), redirects, and 4xx
// answers other than 408 and 429. Network failures, timeouts, 408, 429 and
// 5xx are retryable.
func IsPermanent(err error) bool {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Permanent
	}
	return errors.Is(err, ErrForbiddenDestination) || errors.Is(err, ErrInvalidURL)
}

// Send POSTs body to rawURL with Content-Type application/json and the
// signature headers (X-OpenDSR-* and legacy X-OpenGDPR-*). Any 2xx is
// success; redirects are not followed and count as failures. status is the
// HTTP status received, or 0 when there was none. Errors are *Error.
func (s *Sender) Send(ctx context.Context, rawURL string, body []byte) (status int, err error) {
	u, err := s.checkURL(rawURL)
	if err != nil {
		return 0, err
	}
	host := u.Hostname()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, &Error{Host: host, Permanent: true, Err: errors.New("cannot build the request")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.userAgent)
	if err := s.signer.SetHeaders(req.Header, s.domain, body); err != nil {
		return 0, &Error{Host: host, Err: err}
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return 0, &Error{Host: host, Permanent: errors.Is(err, ErrForbiddenDestination), Err: stripURL(err)}
	}
	// Drain a little so the connection can be reused; the body is not used.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()

	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return code, nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return code, &Error{Host: host, Status: code}
	default: // 1xx left over, 3xx (redirects are not followed), other 4xx
		return code, &Error{Host: host, Status: code, Permanent: true}
	}
}

// checkURL parses rawURL and refuses what may never be reached. Its errors
// never include the URL.
func (s *Sender) checkURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &Error{Permanent: true, Err: fmt.Errorf("%w: not parseable", ErrInvalidURL)}
	}
	host := u.Hostname()
	switch {
	case u.Scheme != "https" && !(s.allowPriv && u.Scheme == "http"):
		if s.allowPriv {
			return nil, &Error{Host: host, Permanent: true, Err: fmt.Errorf("%w: scheme must be https or http", ErrInvalidURL)}
		}
		return nil, &Error{Host: host, Permanent: true, Err: fmt.Errorf("%w: scheme must be https", ErrInvalidURL)}
	case host == "":
		return nil, &Error{Permanent: true, Err: fmt.Errorf("%w: no host", ErrInvalidURL)}
	case u.User != nil:
		return nil, &Error{Host: host, Permanent: true, Err: fmt.Errorf("%w: user information is not allowed", ErrInvalidURL)}
	}
	if !s.allowPriv {
		if ip, err := netip.ParseAddr(host); err == nil {
			if why := netguard.Forbidden(ip); why != "" {
				return nil, &Error{Host: host, Permanent: true, Err: fmt.Errorf("%w: %s address", ErrForbiddenDestination, why)}
			}
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// checkDial is the net.Dialer Control hook: it runs after DNS resolution,
// on the address about to be connected, so a name that resolves (or
// rebinds) to a forbidden address is refused.
func checkDial(network, address string, _ syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return fmt.Errorf("%w: network %s", ErrForbiddenDestination, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparseable address", ErrForbiddenDestination)
	}
	if why := netguard.Forbidden(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s address %s", ErrForbiddenDestination, why, ap.Addr())
	}
	return nil
}

// stripURL removes the *url.Error wrapper, whose text repeats the whole URL
// (query string included), keeping its cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

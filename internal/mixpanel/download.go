package mixpanel

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// DownloadResult streams the result zip of a successful retrieval from its
// signed URL (Task.Result). The caller must Close the reader; reading past
// Options.MaxDownloadBytes fails with ErrResultTooLarge.
//
// The signed URL usually lives on another host (cloud storage): the project
// token is never sent, and the bearer only when the URL has the same scheme
// and host as the API base. A 401, 403, 404 or 410 gives ErrResultExpired:
// ask RetrievalStatus for a fresh URL.
func (c *Client) DownloadResult(ctx context.Context, resultURL string) (io.ReadCloser, error) {
	rc, err := c.download(ctx, resultURL)
	if err != nil {
		return nil, fmt.Errorf("mixpanel: download retrieval result: %w", err)
	}
	return rc, nil
}

func (c *Client) download(ctx context.Context, resultURL string) (io.ReadCloser, error) {
	u, err := url.Parse(resultURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Never quote the URL: its signature grants access to personal data.
		return nil, &BadRequestError{Message: "result URL is not an absolute http(s) URL"}
	}
	// The signature in the query grants access: keep it out of errors.
	var secrets []string
	for _, vs := range u.Query() {
		secrets = append(secrets, vs...)
	}
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, c.downloadTimeout)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, &BadRequestError{Message: "result URL is not usable"}
	}
	req.Header.Set("User-Agent", c.userAgent)
	if sameOrigin(u, c.base) {
		req.Header.Set("Authorization", "Bearer "+c.oauthToken.Reveal())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		return nil, c.transportError(err, secrets)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel()
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
			return nil, fmt.Errorf("%w (HTTP %d)", ErrResultExpired, resp.StatusCode)
		}
		return nil, c.statusError(response{status: resp.StatusCode, header: resp.Header, body: b}, secrets)
	}
	if resp.ContentLength > c.maxDownload {
		resp.Body.Close()
		cancel()
		return nil, ErrResultTooLarge
	}
	return &boundedBody{rc: resp.Body, left: c.maxDownload, cancel: cancel}, nil
}

// boundedBody fails with ErrResultTooLarge once more than its limit is read,
// and releases the request's context on Close.
type boundedBody struct {
	rc     io.ReadCloser
	left   int64
	cancel context.CancelFunc
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("mixpanel: %w", ErrResultTooLarge)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - 1, fmt.Errorf("mixpanel: %w", ErrResultTooLarge)
	}
	return n, err
}

func (b *boundedBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}

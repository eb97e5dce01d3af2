package mixpanel

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrTaskNotFound: Mixpanel answered status NOT_FOUND (or HTTP 404) for the task id.
	ErrTaskNotFound = errors.New("task not found")
	// ErrNotCancellable: the task has STARTED or ended and can no longer be cancelled (HTTP 405).
	ErrNotCancellable = errors.New("task can no longer be cancelled")
	// ErrResultExpired: the signed result URL was refused (HTTP 401, 403, 404
	// or 410), usually because it expired; RetrievalStatus gives a fresh one.
	ErrResultExpired = errors.New("retrieval result URL expired or invalid")
	// ErrResultTooLarge: a retrieval result is larger than Options.MaxDownloadBytes.
	ErrResultTooLarge = errors.New("retrieval result exceeds the download limit")
)

// UnauthorizedError is a 401 or 403: the project token or the OAuth token is
// wrong or expired (OAuth tokens expire after a year). Do not retry blindly.
type UnauthorizedError struct {
	StatusCode int
	// Message is Mixpanel's explanation, without credentials or distinct ids.
	Message string
}

// Error describes the failure without credentials or distinct ids.
func (e *UnauthorizedError) Error() string {
	return fmt.Sprintf("unauthorized (HTTP %d): %s", e.StatusCode, e.Message)
}

// RateLimitedError is a 429: more than 1 request/s, or too many outstanding
// tasks in the project. Retry with backoff.
type RateLimitedError struct {
	// RetryAfter is the server's Retry-After, zero when absent (Mixpanel does
	// not document one).
	RetryAfter time.Duration
	Message    string
}

// Error describes the failure without credentials or distinct ids.
func (e *RateLimitedError) Error() string {
	s := "rate limited (HTTP 429)"
	if e.RetryAfter > 0 {
		s += ", retry after " + e.RetryAfter.String()
	}
	return s + ": " + e.Message
}

// ConflictError is a 409 on a deletion: some ids already belong to running
// deletion tasks, and nothing was created. Drop DistinctIDs (the tasks in
// TaskIDs are deleting them) and resubmit the rest. Its message never names
// the distinct ids.
type ConflictError struct {
	// DistinctIDs are the ids of the request already in a running task (personal data).
	DistinctIDs []string
	// TaskIDs are the running tasks that hold them.
	TaskIDs []string
}

// Error describes the failure without credentials or distinct ids.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("conflict (HTTP 409): %d distinct ids already in running deletion tasks %v",
		len(e.DistinctIDs), e.TaskIDs)
}

// BadRequestError is a request Mixpanel (HTTP 400 and other 4xx) or the
// client itself (StatusCode 0) rejects: too many ids, bad compliance type, an
// empty list. Retrying the same request will not help.
type BadRequestError struct {
	// StatusCode is 0 when the client rejected the request before sending it.
	StatusCode int
	Message    string
}

// Error describes the failure without credentials or distinct ids.
func (e *BadRequestError) Error() string {
	if e.StatusCode == 0 {
		return "invalid request: " + e.Message
	}
	return fmt.Sprintf("bad request (HTTP %d): %s", e.StatusCode, e.Message)
}

// TransientError is a failure that may pass: a 5xx, a timeout, a connection
// error, or a 2xx answer the client cannot parse. Retry with backoff.
type TransientError struct {
	// StatusCode is 0 when no response arrived.
	StatusCode int
	Message    string
	// Err is context.DeadlineExceeded or context.Canceled when the call ran
	// out of time or was cancelled; nil otherwise.
	Err error
}

// Error describes the failure without credentials or distinct ids.
func (e *TransientError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("transient error (HTTP %d): %s", e.StatusCode, e.Message)
	}
	return "transient error: " + e.Message
}

// Unwrap returns Err.
func (e *TransientError) Unwrap() error { return e.Err }

// Retryable reports whether err may pass on a later attempt: a rate limit or
// a transient error.
func Retryable(err error) bool {
	var rl *RateLimitedError
	var te *TransientError
	return errors.As(err, &rl) || errors.As(err, &te)
}

// statusError classifies a non-2xx answer. secrets (the request's distinct
// ids, a signature) are scrubbed from the message.
func (c *Client) statusError(r response, secrets []string) error {
	msg := c.scrub(errorMessage(r.body), secrets)
	if msg == "" {
		msg = http.StatusText(r.status)
	}
	switch {
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return &UnauthorizedError{StatusCode: r.status, Message: msg}
	case r.status == http.StatusTooManyRequests:
		return &RateLimitedError{RetryAfter: retryAfter(r.header.Get("Retry-After"), time.Now()), Message: msg}
	case r.status == http.StatusConflict:
		dids, tids := parseConflict(r.body)
		return &ConflictError{DistinctIDs: dids, TaskIDs: tids}
	case r.status == http.StatusRequestTimeout:
		return &TransientError{StatusCode: r.status, Message: msg}
	case r.status >= 400 && r.status < 500:
		return &BadRequestError{StatusCode: r.status, Message: msg}
	}
	return &TransientError{StatusCode: r.status, Message: msg}
}

// retryAfter parses Retry-After as seconds or an HTTP date; zero if absent or
// unparseable, at most a day.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs > 86400 {
			secs = 86400
		}
		d = time.Duration(secs * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), 24*time.Hour)
}

const maxMessageLen = 300

// scrub removes from a message that will end up in an error the tokens,
// the given secrets (the request's distinct ids, a result URL's signature),
// and anything that looks like an email address; it also shortens it.
func (c *Client) scrub(msg string, secrets []string) string {
	for _, tok := range []string{c.projectToken.Reveal(), c.oauthToken.Reveal()} {
		if tok != "" {
			msg = strings.ReplaceAll(msg, tok, "[redacted]")
			msg = strings.ReplaceAll(msg, url.QueryEscape(tok), "[redacted]")
		}
	}
	for _, s := range secrets {
		msg = replaceWord(msg, s, "[redacted]")
	}
	words := strings.Fields(msg)
	for i, w := range words {
		if strings.Contains(w, "@") {
			words[i] = "[redacted]"
		}
	}
	msg = strings.Join(words, " ")
	if len(msg) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

// replaceWord replaces occurrences of old that are not part of a longer
// word (a letter or digit right before or after), so that the id "1" does
// not mangle "10" or "v1".
func replaceWord(s, old, repl string) string {
	if old == "" || !strings.Contains(s, old) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(old)
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if i > 0 && isWordRune(before) || end < len(s) && isWordRune(after) {
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s = s[end:]
	}
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

package sqldb

import (
	"errors"
	"net/url"
	"strings"
)

// redacted replaces a password in Redact's output and in scrubbed errors.
const redacted = "xxxxx"

// Redact returns dsn fit for logs and error messages: a PostgreSQL URL with
// its password (in the user info or a password= parameter) replaced by
// "xxxxx". A SQLite path is returned unchanged; a PostgreSQL URL that does not
// parse is not shown at all.
func Redact(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		scheme, _, _ := strings.Cut(dsn, ":")
		return scheme + "://(URL that does not parse, not shown)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", redacted)
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// secrets returns the forms in which dsn's password could appear in a
// message: as written (percent-encoded) and decoded.
func secrets(dsn string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if dec, err := url.PathUnescape(s); err == nil && dec != s {
			out = append(out, dec)
		}
		if dec, err := url.QueryUnescape(s); err == nil && dec != s {
			out = append(out, dec)
		}
	}
	// Parse by hand so that a URL url.Parse rejects is covered too.
	_, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil
	}
	authority, query := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		query = rest[i+1:]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		if _, pw, ok := strings.Cut(authority[:at], ":"); ok {
			add(pw)
		}
	}
	for _, kv := range strings.Split(query, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, "password") {
			add(v)
		}
	}
	return out
}

// scrub removes dsn and its password from text.
func scrub(text, dsn string) string {
	text = strings.ReplaceAll(text, dsn, Redact(dsn))
	for _, s := range secrets(dsn) {
		text = strings.ReplaceAll(text, s, redacted)
	}
	return text
}

// redactError describes err under what with dsn's password scrubbed from its
// text. With wrap it still unwraps to err (for errors.Is); without, err is
// dropped, for errors that hold the connection string itself.
func redactError(dsn, what string, err error, wrap bool) error {
	msg := what + ": " + scrub(err.Error(), dsn)
	if !wrap {
		return errors.New(msg)
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

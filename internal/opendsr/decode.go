package opendsr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
)

// MaxBodyBytes is the largest request body DecodeRequest accepts (1 MiB).
const MaxBodyBytes = 1 << 20

// DecodeRequest reads an OpenDSR request body. contentType is the request's
// Content-Type header, which must be application/json (a utf-8 charset
// parameter is allowed). It returns the decoded request and the raw body
// (for encoded_request), or a 400 *Error whose reason says what is wrong:
// unsupported_media_type for another media type, too_large for a body over
// MaxBodyBytes, required or malformed for an empty or malformed body or a
// field of the wrong JSON type, and what StrictJSON refuses (invalid UTF-8,
// repeated or case-variant keys). Unknown fields are ignored for forward
// compatibility. DecodeRequest does not validate the request: call Validate next.
func DecodeRequest(contentType string, body io.Reader) (Request, []byte, *Error) {
	if e := checkContentType(contentType); e != nil {
		return Request{}, nil, e
	}
	if body == nil {
		return Request{}, nil, BadRequest("The request body is empty",
			ErrorItem{Reason: ReasonRequired, Message: "The request body is empty", Location: "body"})
	}
	raw, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes+1))
	if err != nil {
		return Request{}, nil, BadRequest("The request body could not be read",
			ErrorItem{Reason: ReasonMalformed, Message: "The request body could not be read", Location: "body"})
	}
	if len(raw) > MaxBodyBytes {
		return Request{}, nil, PayloadTooLarge()
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return Request{}, nil, BadRequest("The request body is empty",
			ErrorItem{Reason: ReasonRequired, Message: "The request body is empty", Location: "body"})
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return Request{}, nil, BadRequest("The request body is not a JSON object",
			ErrorItem{Reason: ReasonMalformed, Message: "The request body is not a JSON object", Location: "body"})
	}
	if e := StrictJSON(trimmed); e != nil {
		return Request{}, nil, e
	}
	var req Request
	if err := json.Unmarshal(trimmed, &req); err != nil {
		return Request{}, nil, decodeError(err)
	}
	return req, raw, nil
}

func checkContentType(contentType string) *Error {
	if contentType == "" {
		return UnsupportedMediaType()
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "application/json" {
		return UnsupportedMediaType()
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return UnsupportedMediaType()
	}
	return nil
}

// decodeError turns a json.Unmarshal error into a 400 that names the field
// and the expected type but never the submitted value.
func decodeError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		loc := typeErr.Field
		if loc == "" {
			loc = "body"
		}
		// Value is "number 123" for numbers: keep only the kind, never the value.
		given, _, _ := strings.Cut(typeErr.Value, " ")
		msg := fmt.Sprintf("%s has the wrong JSON type (%s given, %s expected)", loc, given, jsonKind(typeErr.Type.Kind().String()))
		return BadRequest(msg, ErrorItem{Reason: ReasonInvalid, Message: msg, Location: loc})
	}
	return BadRequest("The request body is not valid JSON",
		ErrorItem{Reason: ReasonMalformed, Message: "The request body is not valid JSON", Location: "body"})
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	case "bool":
		return "boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	default:
		return goKind
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// submitFlags are the options of `dsr submit`.
type submitFlags struct {
	regulation, requestType, controller, id, file, csv string
	identities, callbacks                              []string
	skipWait, jsonOut                                  bool
	concurrency                                        int
}

func (c *cli) submitCommand() *cobra.Command {
	var f submitFlags
	cmd := &cobra.Command{
		Use:   "submit",
		Short: "Submit a request from flags, a JSON file, or many from a CSV",
		Long: `Submit one data subject request from flags or an OpenDSR JSON file, or one per
row of a CSV file (--csv). The request goes through the same validation, ledger
record and workflow start as POST /v1/requests.

  dsr submit --regulation gdpr --type erasure --identity controller_customer_id=user-42 --skip-waiting-period
  dsr submit --identity email=ann@example.com --identity email:sha256=<hex> ...   (TYPE[:FORMAT]=VALUE)
  dsr submit --file request.json
  dsr submit --csv subjects.csv --regulation ccpa --type erasure

A CSV has a header row naming identity types (controller_customer_id, email,
...); optional columns regulation, type and skip_waiting_period override the
flags per row. Request ids derive from the file name, line number and row, so
running the same file again submits only the rows not yet recorded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			if f.controller == "" {
				f.controller = cfg.Controller
			}
			if f.csv != "" {
				return c.submitCSV(cmd.Context(), f)
			}
			req, raw, err := buildRequest(f, cfg.ProcessorDomain)
			if err != nil {
				return err
			}
			b, err := c.backend(cmd.Context())
			if err != nil {
				return err
			}
			created, resp, err := b.Submit(cmd.Context(), f.controller, req, raw)
			if err != nil {
				if f.file == "" {
					return flagError(err)
				}
				return err
			}
			if f.jsonOut {
				return writeJSON(c.stdout, resp)
			}
			verb := "submitted"
			if !created {
				verb = "already submitted"
			}
			fmt.Fprintf(c.stdout, "%s %s (%s %s) for controller %s\n  expected completion: %s\n  follow it:           dsr watch %s\n",
				verb, resp.SubjectRequestID, req.Regulation, req.SubjectRequestType, resp.ControllerID,
				resp.ExpectedCompletionTime.UTC().Format(time.RFC3339), resp.SubjectRequestID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.regulation, "regulation", "gdpr", "gdpr or ccpa")
	fl.StringVar(&f.requestType, "type", "erasure", "erasure, access or portability")
	fl.StringArrayVar(&f.identities, "identity", nil, "subject identity TYPE[:FORMAT]=VALUE (repeatable)")
	fl.StringArrayVar(&f.callbacks, "callback", nil, "status callback URL (repeatable)")
	fl.BoolVar(&f.skipWait, "skip-waiting-period", false, "skip the erasure cancellation window")
	fl.StringVar(&f.controller, "controller", "", "controller id (default DSR_CONTROLLER, else dev)")
	fl.StringVar(&f.id, "id", "", "subject_request_id (default: a new UUID v4)")
	fl.StringVar(&f.file, "file", "", "an OpenDSR request JSON file instead of flags")
	fl.StringVar(&f.csv, "csv", "", "submit one request per row of this CSV file")
	fl.IntVar(&f.concurrency, "concurrency", 8, "requests in flight at once with --csv")
	fl.BoolVar(&f.jsonOut, "json", false, "print the OpenDSR response as JSON")
	return cmd
}

// buildRequest makes the OpenDSR request from a JSON file or from flags, and its raw body.
func buildRequest(f submitFlags, processorDomain string) (opendsr.Request, []byte, error) {
	if f.file != "" {
		b, err := os.ReadFile(f.file)
		if err != nil {
			return opendsr.Request{}, nil, err
		}
		req, raw, oerr := opendsr.DecodeRequest("application/json", strings.NewReader(string(b)))
		if oerr != nil {
			return opendsr.Request{}, nil, describe(oerr)
		}
		return req, raw, nil
	}
	if len(f.identities) == 0 {
		return opendsr.Request{}, nil, usageError{errors.New("give at least one --identity TYPE=VALUE (or --file or --csv)")}
	}
	regulation, err := oneOf("--regulation", f.regulation, dsr.Regulations())
	if err != nil {
		return opendsr.Request{}, nil, err
	}
	requestType, err := oneOf("--type", f.requestType, dsr.Types())
	if err != nil {
		return opendsr.Request{}, nil, err
	}
	req := opendsr.Request{
		SubjectRequestID: f.id, SubjectRequestType: requestType, Regulation: regulation,
		SubmittedTime: time.Now().UTC().Format(time.RFC3339), APIVersion: opendsr.APIVersion1,
		StatusCallbackURLs: f.callbacks,
	}
	if req.SubjectRequestID == "" {
		req.SubjectRequestID = uuid.NewString()
	}
	for _, spec := range f.identities {
		id, err := parseIdentity(spec)
		if err != nil {
			return opendsr.Request{}, nil, usageError{err}
		}
		req.SubjectIdentities = append(req.SubjectIdentities, id)
	}
	if f.skipWait {
		req.Extensions = skipWaitExtension(processorDomain)
	}
	raw, err := json.Marshal(req)
	return req, raw, err
}

func skipWaitExtension(processorDomain string) map[string]json.RawMessage {
	return map[string]json.RawMessage{processorDomain: json.RawMessage(`{"skip_waiting_period":true}`)}
}

// parseIdentity reads TYPE=VALUE or TYPE:FORMAT=VALUE.
func parseIdentity(spec string) (opendsr.Identity, error) {
	key, value, ok := strings.Cut(spec, "=")
	if !ok || key == "" || value == "" {
		return opendsr.Identity{}, errors.New("--identity must be TYPE=VALUE or TYPE:FORMAT=VALUE, e.g. email=ann@example.com")
	}
	typ, format, _ := strings.Cut(strings.ToLower(key), ":")
	if !slices.Contains(opendsr.IdentityTypes(), typ) {
		return opendsr.Identity{}, fmt.Errorf("--identity %s: %q is not an identity type; valid types: %s", key, typ, strings.Join(opendsr.IdentityTypes(), ", "))
	}
	if format != "" && !slices.Contains(opendsr.IdentityFormats(), format) {
		return opendsr.Identity{}, fmt.Errorf("--identity %s: %q is not an identity format; valid formats: %s", key, format, strings.Join(opendsr.IdentityFormats(), ", "))
	}
	return opendsr.Identity{IdentityType: typ, IdentityFormat: format, IdentityValue: value}, nil
}

// oneOf checks a flag's value against its valid values, ignoring case, and
// returns it in lower case.
func oneOf(flag, value string, valid []string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(value))
	if !slices.Contains(valid, v) {
		return "", usageError{fmt.Errorf("%s must be one of %s (got %q)", flag, strings.Join(valid, ", "), value)}
	}
	return v, nil
}

// flagNames maps the fields of a request built from flags to those flags.
var flagNames = []struct{ field, flag string }{
	{"subject_request_id", "--id"},
	{"subject_request_type", "--type"},
	{"regulation", "--regulation"},
	{"status_callback_urls", "--callback"},
	{"subject_identities", "--identity"},
	{"submitted_time", "submitted time"},
	{"identity_value", "value"},
	{"identity_format", "format"},
	{"identity_type", "type"},
}

// flagError rewrites a 400 for a request built from flags so that it names
// the flags, not the JSON fields, and makes it a usage error (exit 2).
func flagError(err error) error {
	var oerr *opendsr.Error
	if !errors.As(err, &oerr) || oerr.Code != 400 {
		return err
	}
	rename := func(msg string) string {
		for i := 0; i < opendsr.MaxIdentities; i++ {
			msg = strings.ReplaceAll(msg, fmt.Sprintf("subject_identities[%d].", i), fmt.Sprintf("--identity #%d ", i+1))
		}
		for _, n := range flagNames {
			msg = strings.ReplaceAll(msg, n.field, n.flag)
		}
		return msg
	}
	out := &opendsr.Error{Code: oerr.Code, Message: rename(oerr.Message)}
	for _, item := range oerr.Errors {
		item.Message = rename(item.Message)
		out.Errors = append(out.Errors, item)
	}
	return usageError{describe(out)}
}

// describe turns an OpenDSR error object into a CLI error that names every problem.
func describe(e *opendsr.Error) error {
	var b strings.Builder
	b.WriteString(e.Message)
	for _, item := range e.Errors {
		if item.Message != "" && item.Message != e.Message {
			b.WriteString("\n  - " + item.Message)
		}
	}
	return errors.New(b.String())
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

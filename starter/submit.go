package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

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
			svc, err := c.service(cmd.Context())
			if err != nil {
				return err
			}
			res, oerr := svc.Submit(cmd.Context(), f.controller, req, raw)
			if oerr != nil {
				return describe(oerr)
			}
			if f.jsonOut {
				return writeJSON(c.stdout, res.Response)
			}
			verb := "submitted"
			if !res.Created {
				verb = "already submitted"
			}
			fmt.Fprintf(c.stdout, "%s %s (%s %s) for controller %s\n  expected completion: %s\n  follow it:           dsr watch %s\n",
				verb, res.Record.RequestID, res.Record.Regulation, res.Record.Type, res.Record.ControllerID,
				res.Record.ExpectedCompletionTime.Format(time.RFC3339), res.Record.RequestID)
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
	req := opendsr.Request{
		SubjectRequestID: f.id, SubjectRequestType: f.requestType, Regulation: f.regulation,
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
	typ, format, _ := strings.Cut(key, ":")
	return opendsr.Identity{IdentityType: typ, IdentityFormat: format, IdentityValue: value}, nil
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

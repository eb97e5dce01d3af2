package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

func (c *cli) controllerFlag(cmd *cobra.Command, into *string) {
	cmd.Flags().StringVar(into, "controller", "", "controller id (default DSR_CONTROLLER, else dev)")
}

func (c *cli) key(controller, id string) (ledger.Key, error) {
	cfg, err := c.config()
	if err != nil {
		return ledger.Key{}, err
	}
	if controller == "" {
		controller = cfg.Controller
	}
	return ledger.Key{ControllerID: controller, RequestID: id}, nil
}

func (c *cli) cancelCommand() *cobra.Command {
	return c.requestAction("cancel ID", "Cancel a request while it waits or is queued (not once it was sent)", "cancelled",
		func(ctx context.Context, b backend, key ledger.Key) (opendsr.StatusResponse, error) {
			return b.Cancel(ctx, key)
		})
}

func (c *cli) retryCommand() *cobra.Command {
	return c.requestAction("retry ID", "Resume a failed request after its cause (e.g. Mixpanel credentials) was fixed", "retried",
		func(ctx context.Context, b backend, key ledger.Key) (opendsr.StatusResponse, error) {
			return b.Retry(ctx, key)
		})
}

// cliOperator names the operator running the CLI for the ledger: their
// login name on this machine.
func cliOperator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "operator " + u.Username + " (dsr CLI)"
	}
	return "an operator (dsr CLI)"
}

// requestAction is a command that does one thing to one request and says so
// (with --json: the request afterwards, in the API's shape).
func (c *cli) requestAction(use, short, done string, act func(context.Context, backend, ledger.Key) (opendsr.StatusResponse, error)) *cobra.Command {
	var controller string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := c.key(controller, args[0])
			if err != nil {
				return err
			}
			b, err := c.backend(cmd.Context())
			if err != nil {
				return err
			}
			resp, err := act(cmd.Context(), b, key)
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(c.stdout, resp)
			}
			fmt.Fprintf(c.stdout, "%s %s\n", done, args[0])
			return nil
		},
	}
	c.controllerFlag(cmd, &controller)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the request afterwards as JSON, in the API's shape")
	return cmd
}

// lookup reads the request id of controller through the CLI's backend.
func (c *cli) lookup(ctx context.Context, controller, id string) (backend, ledger.Key, opendsr.StatusResponse, error) {
	key, err := c.key(controller, id)
	if err != nil {
		return nil, ledger.Key{}, opendsr.StatusResponse{}, err
	}
	b, err := c.backend(ctx)
	if err != nil {
		return nil, key, opendsr.StatusResponse{}, err
	}
	resp, err := b.Status(ctx, key)
	return b, key, resp, err
}

func (c *cli) statusCommand() *cobra.Command {
	var controller string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a request: status, deadlines, forwarding per destination and its history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, key, resp, err := c.lookup(cmd.Context(), controller, args[0])
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(c.stdout, resp)
			}
			cfg, _ := c.config()
			v := newRequestView(resp, cfg.ProcessorDomain)
			if local, ok := b.(*localBackend); ok {
				rec, err := local.svc.Ledger.Get(cmd.Context(), key)
				if err != nil {
					return err
				}
				v.rec = &rec
				if v.history, err = local.svc.Ledger.Transitions(cmd.Context(), key); err != nil {
					return err
				}
			}
			printStatus(c.stdout, v, controllerHint(controller), time.Now())
			return nil
		},
	}
	c.controllerFlag(cmd, &controller)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the request as JSON, in the API's shape (GET /v1/requests/{id}), sealed fields opened")
	return cmd
}

// controllerHint repeats --controller in the commands status suggests.
func controllerHint(controller string) string {
	if controller == "" {
		return ""
	}
	return " --controller " + controller
}

func (c *cli) listCommand() *cobra.Command {
	var controller, status, reqType, regulation string
	var overdue, jsonOut, link bool
	var ui string
	var limit int
	var dueWithin string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List requests from Temporal visibility (filter by status, type, regulation, overdue)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			if controller == "" {
				controller = cfg.Controller
			}
			query, err := listQuery(controller, status, reqType, regulation, overdue, time.Now())
			if err != nil {
				return usageError{err}
			}
			if query, err = withDueWithin(query, dueWithin, time.Now()); err != nil {
				return usageError{err}
			}
			if link {
				fmt.Fprintln(c.stdout, webUIListURL(ui, cfg.TemporalNamespace, query))
				return nil
			}
			tc, err := c.temporalClient(cmd.Context())
			if err != nil {
				return err
			}
			return c.printList(cmd.Context(), tc, cfg.TemporalNamespace, query, limit, jsonOut)
		},
	}
	c.controllerFlag(cmd, &controller)
	fl := cmd.Flags()
	fl.StringVar(&status, "status", "", "pending, in_progress, completed, cancelled or failed")
	fl.StringVar(&reqType, "type", "", "erasure, access or portability")
	fl.StringVar(&regulation, "regulation", "", "gdpr or ccpa")
	fl.BoolVar(&overdue, "overdue", false, "only open requests past their statutory due time")
	fl.StringVar(&dueWithin, "due-within", "", "only open requests due within this time (e.g. 7d, 36h), overdue ones included")
	fl.IntVar(&limit, "limit", 100, "most requests to show")
	fl.BoolVar(&link, "link", false, "print the Temporal Web UI link of this list instead (a saved query)")
	fl.StringVar(&ui, "ui", "http://127.0.0.1:8233", "the Temporal Web UI's address, for --link")
	fl.BoolVar(&jsonOut, "json", false, "print a JSON array of {controller_id, subject_request_id, request_status, subject_request_type, regulation, due_time, destination_tasks}")
	return cmd
}

// listQuery builds the visibility query; every value is checked against a fixed set.
func listQuery(controller, status, reqType, regulation string, overdue bool, now time.Time) (string, error) {
	clauses := []string{fmt.Sprintf("DsrController = '%s'", controller), "WorkflowType = 'DSR'"}
	for _, f := range []struct {
		attr, value string
		allowed     []string
	}{
		{"DsrStatus", status, dsr.StatusNames()},
		{"DsrType", reqType, dsr.Types()},
		{"DsrRegulation", regulation, dsr.Regulations()},
	} {
		if f.value == "" {
			continue
		}
		if !slices.Contains(f.allowed, f.value) {
			return "", fmt.Errorf("%q is not one of %s", f.value, strings.Join(f.allowed, ", "))
		}
		if f.attr == "DsrStatus" {
			clauses = append(clauses, "DsrStatus IN "+quotedList(dsr.SearchStatusValues(f.value)))
			continue
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", f.attr, f.value))
	}
	if overdue {
		var open []string
		for _, s := range []string{string(dsr.StatusPending), string(dsr.StatusInProgress), string(dsr.StatusFailed)} {
			open = append(open, dsr.SearchStatusValues(s)...)
		}
		clauses = append(clauses, fmt.Sprintf("DsrDueTime < '%s'", now.UTC().Format(time.RFC3339)), "DsrStatus IN "+quotedList(open))
	}
	if strings.ContainsAny(controller, "'\\") {
		return "", errors.New("invalid controller id")
	}
	return strings.Join(clauses, " AND "), nil
}

// listItem is one request of `dsr list --json`, with OpenDSR field names.
type listItem struct {
	ControllerID     string `json:"controller_id"`
	SubjectRequestID string `json:"subject_request_id"`
	RequestStatus    string `json:"request_status"`
	Type             string `json:"subject_request_type"`
	Regulation       string `json:"regulation"`
	DueTime          string `json:"due_time,omitempty"`
	DestinationTasks string `json:"destination_tasks,omitempty"`
}

// webUIListURL is the Temporal Web UI's workflow list filtered by query.
func webUIListURL(ui, namespace, query string) string {
	return strings.TrimRight(ui, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows?query=" + strings.ReplaceAll(url.QueryEscape(query), "+", "%20")
}

// quotedList is ('a', 'b') for a visibility query; the values are fixed strings.
func quotedList(values []string) string {
	return "('" + strings.Join(values, "', '") + "')"
}

func (c *cli) printList(ctx context.Context, tc client.Client, namespace, query string, limit int, jsonOut bool) error {
	items := []listItem{}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	if !jsonOut {
		fmt.Fprintln(tw, "REQUEST\tSTATUS\tTYPE\tREGULATION\tDUE\tTASK")
	}
	var token []byte
	shown := 0
	seen := map[string]bool{} // a retried request has several runs: the newest (listed first) counts
	for shown < limit {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: query, PageSize: int32(min(limit-shown, 1000)), NextPageToken: token,
		})
		if err != nil {
			return fmt.Errorf("listing from Temporal visibility: %w", err)
		}
		for _, e := range resp.Executions {
			if seen[e.GetExecution().GetWorkflowId()] {
				continue
			}
			seen[e.GetExecution().GetWorkflowId()] = true
			controller, id, _ := dsr.ParseWorkflowID(e.GetExecution().GetWorkflowId())
			attrs := searchAttributes(e.GetSearchAttributes().GetIndexedFields())
			if reason := dsr.EndedReason(e.GetStatus()); reason != "" && (attrs["DsrStatus"] == string(dsr.StatusPending) || attrs["DsrStatus"] == string(dsr.StatusInProgress)) {
				// The run ended before recording an outcome (terminated): the ledger says failed, or will after the sweep.
				attrs["DsrStatus"] = string(dsr.StatusFailed) + " (" + reason + ")"
			}
			shown++
			if jsonOut {
				status, _, _ := strings.Cut(attrs["DsrStatus"], " (") // "completed (results available)" is completed
				items = append(items, listItem{ControllerID: controller, SubjectRequestID: id, RequestStatus: status,
					Type: attrs["DsrType"], Regulation: attrs["DsrRegulation"], DueTime: attrs["DsrDueTime"], DestinationTasks: attrs["DsrDestinationTask"]})
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", id, attrs["DsrStatus"], attrs["DsrType"], attrs["DsrRegulation"], attrs["DsrDueTime"], dash(attrs["DsrDestinationTask"]))
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	if jsonOut {
		return writeJSON(c.stdout, items)
	}
	return tw.Flush()
}

// searchAttributes decodes the string form of each indexed field.
func searchAttributes(fields map[string]*commonpb.Payload) map[string]string {
	out := map[string]string{}
	for k, p := range fields {
		var s string
		if json.Unmarshal(p.GetData(), &s) == nil {
			out[k] = s
		}
	}
	return out
}

func (c *cli) watchCommand() *cobra.Command {
	var controller string
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a request, printing each status change, until it ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := c.key(controller, args[0])
			if err != nil {
				return err
			}
			b, err := c.backend(cmd.Context())
			if err != nil {
				return err
			}
			return c.watch(cmd.Context(), b, key, every)
		},
	}
	c.controllerFlag(cmd, &controller)
	cmd.Flags().DurationVar(&every, "every", time.Second, "how often to look")
	return cmd
}

func (c *cli) watch(ctx context.Context, b backend, key ledger.Key, every time.Duration) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	last := ""
	for {
		resp, err := b.Status(ctx, key)
		if err != nil {
			return err
		}
		v := newRequestView(resp, cfg.ProcessorDomain)
		line := resp.RequestStatus
		if v.ext.StatusReason != "" {
			line += " (" + v.ext.StatusReason + ")"
		}
		for _, f := range v.ext.Forwarding {
			line += " | " + f.Destination + ": " + forwardingLine(resp.RequestStatus, f)
		}
		if line != last {
			fmt.Fprintf(c.stdout, "%s  %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		switch resp.RequestStatus {
		case string(dsr.StatusCompleted), string(dsr.StatusCancelled):
			return nil
		case string(dsr.StatusFailed):
			return fmt.Errorf("request failed: %s (fix the cause, then: dsr retry %s)", v.ext.StatusReason, key.RequestID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

func (c *cli) keysCommand() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage the response and callback signing key"}
	var dir string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a signing key pair and an encryption key ring, unless they exist",
		Long: `Write into --dir, keeping files that already exist:
  signing-key.pem, signing-cert.pem  an RSA signing key (PKCS#8, mode 0600) and a
                                     self-signed certificate, for DSR_SIGNING_KEY and
                                     DSR_SIGNING_CERT (in production use a certificate
                                     from a CA that controllers trust);
  encryption-keys                    a key ring with one AES-256 key (mode 0600), for
                                     DSR_ENCRYPTION_KEYS_FILE: it encrypts Temporal
                                     payloads, results bundles and sealed ledger fields.
                                     Keep it safe: without it they cannot be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyPath, certPath, err := opendsr.WriteKeyPair(dir)
			if err != nil {
				return err
			}
			ringPath, err := writeKeyRing(dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "DSR_SIGNING_KEY=%s\nDSR_SIGNING_CERT=%s\nDSR_ENCRYPTION_KEYS_FILE=%s\n", keyPath, certPath, ringPath)
			return nil
		},
	}
	gen.Flags().StringVar(&dir, "dir", ".data", "directory to write the key pair into")
	keys.AddCommand(gen)
	return keys
}

// writeKeyRing writes dir/encryption-keys with one new key, unless it exists.
func writeKeyRing(dir string) (string, error) {
	path := filepath.Join(dir, "encryption-keys")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	spec, err := keyring.Generate("k" + time.Now().UTC().Format("20060102"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(spec + "\n"); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// Dev credentials of the emulator when none are configured.
const (
	devProjectToken = "dev-project-token"
	devOAuthToken   = "dev-oauth-token"
)

func (c *cli) emulatorCommand() *cobra.Command {
	var addr, projectToken, oauthToken, failPrefix string
	var step, latency time.Duration
	var rateLimit, rate429, rate500 float64
	var proseShapes bool
	cmd := &cobra.Command{
		Use:   "mixpanel-emulator",
		Short: "Run a local Mixpanel GDPR API (v3) in the foreground",
		Long: `Run a local stand-in for Mixpanel's GDPR API: deletion and retrieval tasks with
Mixpanel's statuses, 401/403/400/409/429 answers and its 1 request/s limit, at
Mixpanel's own paths (/api/app/data-deletions/v3.0, /api/app/data-retrievals/v3.0).
Point dsrflow at it with MIXPANEL_API_URL=http://ADDR, as at Mixpanel's host.

It answers in the shapes of Mixpanel's OpenAPI document; --prose-shapes answers
as Mixpanel's prose API reference shows instead. --fail-ids PREFIX makes every
task holding a distinct id that starts with PREFIX end FAILURE.

Inspect it at /_emulator/tasks, /_emulator/calls and /_emulator/log (every API
call with its time); change faults at runtime with POST /_emulator/faults.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if projectToken == "" {
				projectToken = envOr("MIXPANEL_PROJECT_TOKEN", devProjectToken)
			}
			if oauthToken == "" {
				oauthToken = envOr("MIXPANEL_OAUTH_TOKEN", devOAuthToken)
			}
			limit := rateLimit
			if limit == 0 {
				limit = emulator.NoRateLimit
			}
			em := emulator.New(emulator.Options{
				ProjectToken: projectToken, OAuthToken: oauthToken, Step: step, RateLimit: limit,
				FailPrefix: failPrefix, Rate429: rate429, Rate500: rate500, Latency: latency,
				ProseShapes: proseShapes,
			})
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			if projectToken == devProjectToken || oauthToken == devOAuthToken {
				fmt.Fprintf(c.stderr, "mixpanel emulator: dev credentials MIXPANEL_PROJECT_TOKEN=%s MIXPANEL_OAUTH_TOKEN=%s\n", devProjectToken, devOAuthToken)
			}
			fmt.Fprintf(c.stderr, "mixpanel emulator listening on http://%s (step %s, rate limit %g/s)\n", ln.Addr(), step, rateLimit)
			srv := &http.Server{Handler: em, ReadHeaderTimeout: 5 * time.Second}
			go func() {
				<-cmd.Context().Done()
				shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(shutdown)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:9410", "HOST:PORT to listen on")
	fl.DurationVar(&step, "step", 2*time.Second, "time between task status steps")
	fl.StringVar(&projectToken, "project-token", "", "required project token (default MIXPANEL_PROJECT_TOKEN, else a dev token)")
	fl.StringVar(&oauthToken, "oauth-token", "", "required OAuth token (default MIXPANEL_OAUTH_TOKEN, else a dev token)")
	fl.Float64Var(&rateLimit, "rate-limit", 1, "API requests per second per project (0 = off)")
	fl.StringVar(&failPrefix, "fail-ids", "", "tasks holding a distinct id that starts with this PREFIX end in FAILURE")
	fl.StringVar(&failPrefix, "fail-prefix", "", "")
	_ = fl.MarkDeprecated("fail-prefix", "use --fail-ids")
	fl.BoolVar(&proseShapes, "prose-shapes", false, "answer in the prose API reference's shapes instead of the OpenAPI document's")
	fl.Float64Var(&rate429, "rate-429", 0, "fraction of API calls answered 429")
	fl.Float64Var(&rate500, "rate-500", 0, "fraction of API calls answered 500")
	fl.DurationVar(&latency, "latency", 0, "latency added to every API call")
	return cmd
}

func envOr(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}

package devstack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// Test credentials of a Stack.
const (
	APIToken      = "test-api-token"
	OperatorToken = "test-operator-token"
	Controller    = "acme"
	ProjectToken  = "test-project-token"
	OAuthToken    = "test-oauth-token"
)

// TestEncryptionKeys is the fixed key ring of test stacks, so histories saved
// from them (workflows/testdata/histories) can be replayed later. Never use it
// outside tests.
const TestEncryptionKeys = "test:ZHNyZmxvdy10ZXN0LWtleS1ub3QtZm9yLXByb2R1Y3Q="

// StackOptions configure StartStack.
type StackOptions struct {
	// Dir holds every file of the stack (databases, keys, logs).
	Dir string
	// Env overrides or adds environment variables of the worker and the API.
	Env map[string]string
	// Emulator configures the in-process Mixpanel emulator (credentials are set by the stack).
	Emulator emulator.Options
	// TemporalDynamicConfig adds dev-server dynamic config values.
	TemporalDynamicConfig []string
}

// Stack is a whole dsrflow: the Temporal dev server, the Mixpanel emulator
// (in process, so tests can inspect and fault it), and the worker and API binaries.
type Stack struct {
	Temporal    *Temporal
	Emulator    *emulator.Emulator
	EmulatorURL string
	Worker      *Process
	API         *Process
	// APIURL is the API's base URL, e.g. http://127.0.0.1:43121.
	APIURL string
	// Env is the environment the worker and API run with.
	Env         []string
	dir         string
	emulatorSrv *http.Server
}

// StartStack starts every process and waits until the API answers.
func StartStack(ctx context.Context, o StackOptions) (*Stack, error) {
	s := &Stack{dir: o.Dir}
	var err error
	if s.Temporal, err = StartTemporal(ctx, TemporalOptions{Dir: o.Dir, DynamicConfig: o.TemporalDynamicConfig}); err != nil {
		return nil, err
	}
	em := o.Emulator
	em.ProjectToken, em.OAuthToken = ProjectToken, OAuthToken
	s.Emulator = emulator.New(em)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.EmulatorURL = "http://" + ln.Addr().String()
	s.emulatorSrv = &http.Server{Handler: s.Emulator, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.emulatorSrv.Serve(ln) }()

	keyPath, certPath, err := opendsr.WriteKeyPair(o.Dir)
	if err != nil {
		s.Stop()
		return nil, err
	}
	apiAddr, err := FreeAddr()
	if err != nil {
		s.Stop()
		return nil, err
	}
	metricsAddr, err := FreeAddr()
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.APIURL = "http://" + apiAddr
	env := map[string]string{
		"TEMPORAL_ADDRESS":           s.Temporal.Address,
		"DSR_DB":                     o.Dir + "/dsrflow.db",
		"DSR_BATCH_MAX_WAIT":         "3s",
		"MIXPANEL_API_URL":           s.EmulatorURL,
		"MIXPANEL_PROJECT_TOKEN":     ProjectToken,
		"MIXPANEL_OAUTH_TOKEN":       OAuthToken,
		"MIXPANEL_POLL_INTERVAL":     "1s",
		"API_ADDR":                   apiAddr,
		"API_TOKENS":                 APIToken + ":" + Controller,
		"OPERATOR_TOKENS":            OperatorToken + ":test-operator",
		"DSR_SIGNING_KEY":            keyPath,
		"DSR_SIGNING_CERT":           certPath,
		"DSR_CALLBACK_ALLOW_PRIVATE": "true",
		"DSR_RESULTS_DIR":            o.Dir + "/results",
		"WORKER_METRICS_ADDR":        metricsAddr,
		"DSR_CONTROLLER":             Controller,
		"DSR_ENCRYPTION_KEYS":        TestEncryptionKeys,
	}
	for k, v := range o.Env {
		env[k] = v
	}
	for k, v := range env {
		s.Env = append(s.Env, k+"="+v)
	}
	if err := s.StartWorker(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.StartAPI(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// StartWorker starts (or restarts) the worker binary and waits for its health endpoint.
func (s *Stack) StartWorker(ctx context.Context) error {
	bin, err := Bin("worker")
	if err != nil {
		return err
	}
	if s.Worker, err = Start("worker", s.dir, bin, s.Env); err != nil {
		return err
	}
	return WaitHTTP(ctx, "http://"+s.envValue("WORKER_METRICS_ADDR")+"/healthz", 60*time.Second, s.Worker)
}

// StartAPI starts (or restarts) the API binary and waits for /healthz.
func (s *Stack) StartAPI(ctx context.Context) error {
	bin, err := Bin("api")
	if err != nil {
		return err
	}
	if s.API, err = Start("api", s.dir, bin, s.Env); err != nil {
		return err
	}
	return WaitHTTP(ctx, s.APIURL+"/healthz", 60*time.Second, s.API)
}

// WorkerMetricsURL is the worker's /metrics endpoint.
func (s *Stack) WorkerMetricsURL() string {
	return "http://" + s.envValue("WORKER_METRICS_ADDR") + "/metrics"
}

func (s *Stack) envValue(key string) string { return EnvValue(s.Env, key) }

// Stop stops every process of the stack.
func (s *Stack) Stop() {
	for _, p := range []*Process{s.API, s.Worker} {
		if p != nil {
			p.Stop()
		}
	}
	if s.emulatorSrv != nil {
		_ = s.emulatorSrv.Close()
	}
	if s.Temporal != nil {
		s.Temporal.Stop()
	}
}

// Logs returns the tail of the worker and API logs, for failure messages.
func (s *Stack) Logs() string {
	var b strings.Builder
	for _, p := range []*Process{s.Worker, s.API} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s log ---\n%s\n", p.Name, tail(p.Log(), 4000))
		}
	}
	return b.String()
}

// Package config turns the environment into one typed Config shared by the
// worker, the API and the dsr CLI. Secrets are read from VAR or VAR_FILE and
// held as Secret so that no dump of a Config can reveal them.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Destination is one Mixpanel project that requests are forwarded to.
type Destination struct {
	// Name identifies the destination in workflow IDs, the ledger and the API.
	Name string
	// APIURL is the Mixpanel host the GDPR API is reached at, e.g.
	// https://eu.mixpanel.com (see MixpanelHost); the client appends /api/app/....
	APIURL       string
	ProjectToken Secret
	OAuthToken   Secret
	// IdentityType is the OpenDSR identity type whose value is the Mixpanel distinct_id.
	IdentityType string
	// DeviceIDPrefix, when set, forwards device-only subjects as "<prefix><device id>"
	// (Simplified ID Merge uses "$device:").
	DeviceIDPrefix string
	Active         bool
	// Controllers, when not empty, are the only controllers whose requests
	// may reach this destination (DSR_DESTINATIONS "controllers"); empty
	// means every controller.
	Controllers []string
}

// AllowsController reports whether requests of controller may reach d.
func (d Destination) AllowsController(controller string) bool {
	return len(d.Controllers) == 0 || slices.Contains(d.Controllers, controller)
}

// Config is every setting dsrflow reads. The zero value is not useful: use Load.
type Config struct {
	TemporalAddress   string
	TemporalNamespace string
	// TemporalAPIKey authenticates to Temporal Cloud (implies TLS).
	TemporalAPIKey Secret
	// TemporalTLS turns on TLS; the cert/key pair is for mTLS, the CA for a private CA.
	TemporalTLS                                                bool
	TemporalTLSCertFile, TemporalTLSKeyFile, TemporalTLSCAFile string
	TemporalTLSServerName                                      string
	// TaskQueue is the queue for workflows and ordinary activities.
	TaskQueue string
	// WorkerMetricsAddr serves the worker's /metrics and /healthz.
	WorkerMetricsAddr string
	// WorkerCacheSize bounds the workflows a worker keeps in memory (the rest replay on demand).
	WorkerCacheSize int

	DB string

	WaitingPeriod time.Duration
	BatchMaxSize  int
	BatchMaxWait  time.Duration

	Destinations         []Destination
	MixpanelMaxIDs       int
	MixpanelPollInterval time.Duration
	MixpanelRateLimit    float64
	// MixpanelMaxTaskAge bounds how long one Mixpanel task is polled.
	MixpanelMaxTaskAge time.Duration

	APIAddr string
	// PublicURL is the API's base URL as controllers reach it, for results links.
	PublicURL string
	// APITokens maps a bearer token to the controller id it authenticates.
	APITokens       map[string]string
	ProcessorDomain string
	SigningKeyFile  string
	SigningCertFile string

	// APIRateLimit is requests per second per controller (0 = unlimited); APIRateBurst its burst.
	APIRateLimit float64
	APIRateBurst int

	CallbackAllowPrivate bool

	ResultsDir      string
	ResultsTTL      time.Duration
	RecordRetention time.Duration

	// Controller is the default controller id of the dsr CLI.
	Controller string
	// APIURL, when set, makes the dsr CLI read and change requests through the
	// HTTP API at that URL, authenticated with APIToken, instead of the database.
	APIURL   string
	APIToken Secret

	// LoginIdentityTypes are the identity types that count as login ids.
	LoginIdentityTypes []string
	// AmbiguityPolicy is "hold" (wait for an operator) or "all" (every matching profile).
	AmbiguityPolicy string
	// IdentityResolverURL, when set, replaces the profile store with a company's identity service.
	IdentityResolverURL string
	// IdentityResolverHeader authenticates to it: "Name: value".
	IdentityResolverHeader Secret

	// EncryptionKeys is the key ring spec ("id:base64key,..."; the first
	// encrypts): Temporal payloads, results bundles and sealed ledger fields.
	EncryptionKeys Secret
	// CodecOrigins are the Web UI origins allowed to call the codec endpoint.
	CodecOrigins []string
	// CodecTokens authenticate operators' calls to the codec endpoint.
	CodecTokens []Secret
	// CodecAllowLoopback lets codec calls from the local machine in without a token (make dev).
	CodecAllowLoopback bool

	// OperatorTokens maps a bearer token to the name of the operator it
	// authenticates (OPERATOR_TOKENS): operator routes such as resolve and retry.
	OperatorTokens map[string]string
	// ControllerMayResolve lets a controller resolve and retry its own requests
	// with its API token (DSR_CONTROLLER_MAY_RESOLVE; off by default).
	ControllerMayResolve bool
}

// DefaultDestination is the name of the destination the MIXPANEL_* variables define.
const DefaultDestination = "mixpanel"

// Region hosts of Mixpanel's GDPR API.
var regionHosts = map[string]string{
	"us": "https://mixpanel.com",
	"eu": "https://eu.mixpanel.com",
	"in": "https://in.mixpanel.com",
}

// RegionURL returns the Mixpanel host for a data residency region, e.g.
// https://eu.mixpanel.com; the client appends /api/app/....
func RegionURL(region string) (string, error) {
	u, ok := regionHosts[strings.ToLower(strings.TrimSpace(region))]
	if !ok {
		return "", fmt.Errorf("unknown Mixpanel region %q: use us, eu or in", region)
	}
	return u, nil
}

// mixpanelAPIPrefix is where Mixpanel serves the GDPR API on its host.
const mixpanelAPIPrefix = "/api/app"

// MixpanelHost checks a MIXPANEL_API_URL (or a destination's api_url) and
// returns it as the host the client appends Mixpanel's own paths
// (/api/app/data-deletions/v3.0/...) to: scheme://host[:port], no trailing
// slash. A value that already ends in /api/app (the form older releases
// documented) has that suffix removed; any other path is kept as a gateway's
// prefix. The error never quotes the value, which may hold user info.
func MixpanelHost(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("want an absolute http(s) URL such as https://mixpanel.com or http://127.0.0.1:9410")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", errors.New("must not have user info, a query or a fragment: give scheme://host[:port]")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.Path = strings.TrimRight(strings.TrimSuffix(u.Path, mixpanelAPIPrefix), "/")
	u.RawPath = ""
	return u.String(), nil
}

// FromEnv loads the configuration from the process environment.
func FromEnv() (Config, error) { return Load(os.Getenv) }

// Load builds a Config from a variable lookup function (os.Getenv in production).
func Load(getenv func(string) string) (Config, error) {
	l := loader{getenv: getenv}
	c := Config{
		TemporalAddress:       l.str("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace:     l.str("TEMPORAL_NAMESPACE", "default"),
		TemporalAPIKey:        l.secret("TEMPORAL_API_KEY"),
		TemporalTLS:           l.boolean("TEMPORAL_TLS", false),
		TemporalTLSCertFile:   l.str("TEMPORAL_TLS_CERT", ""),
		TemporalTLSKeyFile:    l.str("TEMPORAL_TLS_KEY", ""),
		TemporalTLSCAFile:     l.str("TEMPORAL_TLS_CA", ""),
		TemporalTLSServerName: l.str("TEMPORAL_TLS_SERVER_NAME", ""),
		TaskQueue:             l.str("DSR_TASK_QUEUE", "dsrflow"),
		WorkerMetricsAddr:     l.str("WORKER_METRICS_ADDR", "127.0.0.1:9090"),
		WorkerCacheSize:       l.integer("WORKER_CACHE_SIZE", 2000),
		DB:                    l.str("DSR_DB", ".data/dsrflow.db"),
		WaitingPeriod:         l.duration("DSR_WAITING_PERIOD", 168*time.Hour),
		BatchMaxSize:          l.integer("DSR_BATCH_MAX_SIZE", 1000),
		BatchMaxWait:          l.duration("DSR_BATCH_MAX_WAIT", time.Hour),
		MixpanelMaxIDs:        l.integer("MIXPANEL_MAX_IDS_PER_TASK", 1999),
		MixpanelPollInterval:  l.duration("MIXPANEL_POLL_INTERVAL", 10*time.Minute),
		MixpanelRateLimit:     l.float("MIXPANEL_RATE_LIMIT", 1),
		MixpanelMaxTaskAge:    l.duration("MIXPANEL_MAX_TASK_AGE", 45*24*time.Hour),
		APIAddr:               l.str("API_ADDR", "127.0.0.1:8080"),
		APITokens:             l.tokens("API_TOKENS", "controller_id"),
		OperatorTokens:        l.tokens("OPERATOR_TOKENS", "operator_name"),
		ControllerMayResolve:  l.boolean("DSR_CONTROLLER_MAY_RESOLVE", false),
		ProcessorDomain:       l.str("DSR_PROCESSOR_DOMAIN", "localhost"),
		SigningKeyFile:        l.str("DSR_SIGNING_KEY", ""),
		SigningCertFile:       l.str("DSR_SIGNING_CERT", ""),
		CallbackAllowPrivate:  l.boolean("DSR_CALLBACK_ALLOW_PRIVATE", false),
		APIRateLimit:          l.float("API_RATE_LIMIT", 100),
		APIRateBurst:          l.integer("API_RATE_BURST", 200),
		ResultsDir:            l.str("DSR_RESULTS_DIR", ".data/results"),
		ResultsTTL:            l.duration("DSR_RESULTS_TTL", 168*time.Hour),
		RecordRetention:       l.duration("DSR_RECORD_RETENTION", 8760*time.Hour),
		Controller:            l.str("DSR_CONTROLLER", "dev"),
		APIURL:                strings.TrimRight(l.str("DSR_API_URL", ""), "/"),
		APIToken:              l.secret("DSR_API_TOKEN"),
	}
	c.LoginIdentityTypes = splitList(l.str("DSR_LOGIN_IDENTITY_TYPES", "controller_customer_id,email"))
	c.AmbiguityPolicy = l.str("DSR_AMBIGUITY_POLICY", "hold")
	c.IdentityResolverURL = l.str("DSR_IDENTITY_RESOLVER_URL", "")
	c.IdentityResolverHeader = l.secret("DSR_IDENTITY_RESOLVER_HEADER")
	c.EncryptionKeys = l.secretOr("DSR_ENCRYPTION_KEYS", ".data/encryption-keys")
	c.CodecOrigins = splitList(l.str("DSR_CODEC_ORIGINS", "http://127.0.0.1:8233,http://localhost:8233"))
	for _, tok := range splitList(l.secret("DSR_CODEC_TOKENS").Reveal()) {
		c.CodecTokens = append(c.CodecTokens, NewSecret(tok))
	}
	c.CodecAllowLoopback = l.boolean("DSR_CODEC_ALLOW_LOOPBACK", false)
	c.PublicURL = strings.TrimRight(l.str("DSR_PUBLIC_URL", "http://"+c.APIAddr), "/")
	c.Destinations = l.destinations()
	if err := errors.Join(l.errs...); err != nil {
		return Config{}, err
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.BatchMaxSize < 1 {
		errs = append(errs, errors.New("DSR_BATCH_MAX_SIZE must be at least 1"))
	}
	if c.MixpanelMaxIDs < 1 {
		errs = append(errs, errors.New("MIXPANEL_MAX_IDS_PER_TASK must be at least 1"))
	}
	if c.MixpanelPollInterval <= 0 || c.BatchMaxWait <= 0 {
		errs = append(errs, errors.New("MIXPANEL_POLL_INTERVAL and DSR_BATCH_MAX_WAIT must be positive"))
	}
	if c.WaitingPeriod < 0 {
		errs = append(errs, errors.New("DSR_WAITING_PERIOD must not be negative"))
	}
	if c.AmbiguityPolicy != "hold" && c.AmbiguityPolicy != "all" {
		errs = append(errs, fmt.Errorf("DSR_AMBIGUITY_POLICY: %q is not hold or all", c.AmbiguityPolicy))
	}
	if c.WorkerCacheSize < 1 {
		errs = append(errs, errors.New("WORKER_CACHE_SIZE must be at least 1"))
	}
	if c.MixpanelRateLimit < 0 {
		errs = append(errs, errors.New("MIXPANEL_RATE_LIMIT must not be negative"))
	}
	seen := map[string]bool{}
	for _, d := range c.Destinations {
		if !validName(d.Name) {
			errs = append(errs, fmt.Errorf("destination name %q: use letters, digits, '-' and '_'", d.Name))
		}
		if seen[d.Name] {
			errs = append(errs, fmt.Errorf("destination %q is defined twice", d.Name))
		}
		seen[d.Name] = true
		for _, c := range d.Controllers {
			if !validName(c) {
				errs = append(errs, fmt.Errorf("destination %q: controllers: %q is not a controller id (letters, digits, '-' and '_')", d.Name, c))
			}
		}
		if d.Controllers != nil && len(d.Controllers) == 0 {
			errs = append(errs, fmt.Errorf("destination %q: controllers is an empty list (leave it out to allow every controller, or set active to false)", d.Name))
		}
	}
	return errors.Join(errs...)
}

// Destination returns the named destination.
func (c Config) Destination(name string) (Destination, bool) {
	for _, d := range c.Destinations {
		if d.Name == name {
			return d, true
		}
	}
	return Destination{}, false
}

// ActiveDestinations returns the destinations requests are forwarded to, sorted by name.
func (c Config) ActiveDestinations() []Destination {
	var out []Destination
	for _, d := range c.Destinations {
		if d.Active {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

type loader struct {
	getenv func(string) string
	errs   []error
}

func (l *loader) str(key, def string) string {
	if v := strings.TrimSpace(l.getenv(key)); v != "" {
		return v
	}
	return def
}

func (l *loader) duration(key string, def time.Duration) time.Duration {
	v := l.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %q is not a duration like 30s, 10m or 168h", key, v))
		return def
	}
	return d
}

func (l *loader) integer(key string, def int) int {
	v := l.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %q is not an integer", key, v))
		return def
	}
	return n
}

func (l *loader) float(key string, def float64) float64 {
	v := l.str(key, "")
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %q is not a number", key, v))
		return def
	}
	return f
}

func (l *loader) boolean(key string, def bool) bool {
	v := l.str(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %q is not true or false", key, v))
		return def
	}
	return b
}

// secret reads KEY, or the file named by KEY_FILE. It never puts the value in an error.
func (l *loader) secret(key string) Secret {
	if key == "" {
		return Secret{} // a destination that names no variable
	}
	if v := strings.TrimSpace(l.getenv(key)); v != "" {
		return NewSecret(v)
	}
	path := strings.TrimSpace(l.getenv(key + "_FILE"))
	if path == "" {
		return Secret{}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s_FILE: cannot read the file: %w", key, err))
		return Secret{}
	}
	return NewSecret(strings.TrimSpace(string(b)))
}

// secretOr reads KEY or KEY_FILE like secret, and else the file defaultFile
// when it exists (the layout `make dev` creates, so the CLI run from the
// checkout root needs no environment).
func (l *loader) secretOr(key, defaultFile string) Secret {
	if v := l.secret(key); v.IsSet() || strings.TrimSpace(l.getenv(key+"_FILE")) != "" {
		return v
	}
	b, err := os.ReadFile(defaultFile)
	if err != nil {
		return Secret{}
	}
	return NewSecret(strings.TrimSpace(string(b)))
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// tokens parses "token:owner,token:owner" (or KEY_FILE with the same
// content), where owner is a controller id or an operator name, as label says.
func (l *loader) tokens(key, label string) map[string]string {
	raw := l.secret(key).Reveal()
	out := map[string]string{}
	for i, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		tok, controller, ok := strings.Cut(part, ":")
		if !ok || tok == "" || !validName(controller) {
			l.errs = append(l.errs, fmt.Errorf("%s: entry %d is not token:%s (%s uses letters, digits, '-' and '_')", key, i+1, label, label))
			continue
		}
		out[tok] = controller
	}
	return out
}

// destinationFile is one entry of the DSR_DESTINATIONS JSON file.
type destinationFile struct {
	Name            string `json:"name"`
	Region          string `json:"region"`
	APIURL          string `json:"api_url"`
	ProjectTokenEnv string `json:"project_token_env"`
	OAuthTokenEnv   string `json:"oauth_token_env"`
	IdentityType    string `json:"identity_type"`
	DeviceIDPrefix  string `json:"device_id_prefix"`
	Active          *bool  `json:"active"`
	// Controllers lists the controllers allowed to use the destination (default: all).
	Controllers []string `json:"controllers"`
}

func (l *loader) destinations() []Destination {
	if path := l.str("DSR_DESTINATIONS", ""); path != "" {
		return l.destinationsFromFile(path)
	}
	apiURL := l.str("MIXPANEL_API_URL", "")
	if apiURL == "" {
		u, err := RegionURL(l.str("MIXPANEL_REGION", "us"))
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("MIXPANEL_REGION: %w", err))
		}
		apiURL = u
	} else if h, err := MixpanelHost(apiURL); err != nil {
		l.errs = append(l.errs, fmt.Errorf("MIXPANEL_API_URL: %w", err))
	} else {
		apiURL = h
	}
	return []Destination{{
		Name:           DefaultDestination,
		APIURL:         apiURL,
		ProjectToken:   l.secret("MIXPANEL_PROJECT_TOKEN"),
		OAuthToken:     l.secret("MIXPANEL_OAUTH_TOKEN"),
		IdentityType:   l.str("MIXPANEL_IDENTITY_TYPE", "controller_customer_id"),
		DeviceIDPrefix: l.str("MIXPANEL_DEVICE_ID_PREFIX", ""),
		Active:         true,
	}}
}

func (l *loader) destinationsFromFile(path string) []Destination {
	b, err := os.ReadFile(path)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("DSR_DESTINATIONS: %w", err))
		return nil
	}
	var entries []destinationFile
	if err := json.Unmarshal(b, &entries); err != nil {
		l.errs = append(l.errs, fmt.Errorf("DSR_DESTINATIONS: %s is not a JSON list of destinations: %w", path, err))
		return nil
	}
	out := make([]Destination, 0, len(entries))
	for _, e := range entries {
		apiURL := e.APIURL
		if apiURL == "" {
			u, err := RegionURL(orDefault(e.Region, "us"))
			if err != nil {
				l.errs = append(l.errs, fmt.Errorf("DSR_DESTINATIONS %q: %w", e.Name, err))
			}
			apiURL = u
		} else if h, err := MixpanelHost(apiURL); err != nil {
			l.errs = append(l.errs, fmt.Errorf("DSR_DESTINATIONS %q: api_url: %w", e.Name, err))
		} else {
			apiURL = h
		}
		out = append(out, Destination{
			Name:           e.Name,
			APIURL:         apiURL,
			ProjectToken:   l.secret(e.ProjectTokenEnv),
			OAuthToken:     l.secret(e.OAuthTokenEnv),
			IdentityType:   orDefault(e.IdentityType, "controller_customer_id"),
			DeviceIDPrefix: e.DeviceIDPrefix,
			Active:         e.Active == nil || *e.Active,
			Controllers:    e.Controllers,
		})
	}
	return out
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

package config_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.WaitingPeriod != 168*time.Hour || c.BatchMaxSize != 1000 || c.BatchMaxWait != time.Hour ||
		c.MixpanelMaxIDs != 1999 || c.MixpanelPollInterval != 10*time.Minute || c.MixpanelRateLimit != 1 ||
		c.RecordRetention != 8760*time.Hour || c.ResultsTTL != 168*time.Hour || c.DB != ".data/dsrflow.db" {
		t.Errorf("defaults: %+v", c)
	}
	d := c.ActiveDestinations()
	if len(d) != 1 || d[0].APIURL != "https://mixpanel.com/api/app" || d[0].IdentityType != "controller_customer_id" {
		t.Errorf("default destination: %+v", d)
	}
}

func TestRegions(t *testing.T) {
	for region, want := range map[string]string{"us": "https://mixpanel.com/api/app", "eu": "https://eu.mixpanel.com/api/app", "in": "https://in.mixpanel.com/api/app"} {
		c, err := config.Load(env(map[string]string{"MIXPANEL_REGION": region}))
		if err != nil || c.Destinations[0].APIURL != want {
			t.Errorf("%s: %v %q", region, err, c.Destinations[0].APIURL)
		}
	}
	c, _ := config.Load(env(map[string]string{"MIXPANEL_REGION": "eu", "MIXPANEL_API_URL": "http://127.0.0.1:9410/"}))
	if c.Destinations[0].APIURL != "http://127.0.0.1:9410" {
		t.Errorf("MIXPANEL_API_URL must win: %q", c.Destinations[0].APIURL)
	}
	if _, err := config.Load(env(map[string]string{"MIXPANEL_REGION": "mars"})); err == nil {
		t.Error("unknown region accepted")
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	_, err := config.Load(env(map[string]string{"DSR_WAITING_PERIOD": "a week", "DSR_BATCH_MAX_SIZE": "many"}))
	if err == nil || !strings.Contains(err.Error(), "DSR_WAITING_PERIOD") || !strings.Contains(err.Error(), "DSR_BATCH_MAX_SIZE") {
		t.Errorf("err = %v", err)
	}
}

func TestSecretsFromFilesAndNeverPrinted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth")
	if err := os.WriteFile(path, []byte("oauth-SECRET-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(env(map[string]string{
		"MIXPANEL_OAUTH_TOKEN_FILE": path, "MIXPANEL_PROJECT_TOKEN": "project-SECRET-value",
		"API_TOKENS": "api-SECRET-value:acme", "TEMPORAL_API_KEY": "temporal-SECRET-key",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Destinations[0].OAuthToken.Reveal() != "oauth-SECRET-value" || c.APITokens["api-SECRET-value"] != "acme" {
		t.Fatalf("secrets not loaded")
	}
	type holder struct{ s config.Secret } // an unexported field: fmt does not call String
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "dest", c.Destinations[0], "key", c.TemporalAPIKey)
	js, _ := json.Marshal(c.Destinations[0])
	dumps := []string{fmt.Sprintf("%v %+v %#v %s %q", c.Destinations[0], c.Destinations[0], c.Destinations[0], c.TemporalAPIKey, c.TemporalAPIKey),
		fmt.Sprintf("%v %+v %#v", holder{c.TemporalAPIKey}, holder{c.TemporalAPIKey}, holder{c.TemporalAPIKey}), string(js), logged.String()}
	for _, d := range dumps {
		if strings.Contains(d, "SECRET") {
			t.Errorf("a secret leaked: %s", d)
		}
	}
}

func TestAPITokens(t *testing.T) {
	c, err := config.Load(env(map[string]string{"API_TOKENS": "t1:acme, t2:globex"}))
	if err != nil || c.APITokens["t1"] != "acme" || c.APITokens["t2"] != "globex" {
		t.Fatalf("%v %v", err, len(c.APITokens))
	}
	_, err = config.Load(env(map[string]string{"API_TOKENS": "t1:bad controller"}))
	if err == nil || strings.Contains(err.Error(), "t1") {
		t.Errorf("a bad entry must fail without echoing the token: %v", err)
	}
}

func TestOperatorTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "operators")
	if err := os.WriteFile(path, []byte("op-SECRET-1:alice,op-SECRET-2:bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(env(map[string]string{"OPERATOR_TOKENS_FILE": path}))
	if err != nil || c.OperatorTokens["op-SECRET-1"] != "alice" || c.OperatorTokens["op-SECRET-2"] != "bob" || c.ControllerMayResolve {
		t.Fatalf("%v %d %v", err, len(c.OperatorTokens), c.ControllerMayResolve)
	}
	c, err = config.Load(env(map[string]string{"OPERATOR_TOKENS": "op-SECRET-1:alice", "DSR_CONTROLLER_MAY_RESOLVE": "true"}))
	if err != nil || c.OperatorTokens["op-SECRET-1"] != "alice" || !c.ControllerMayResolve {
		t.Fatalf("%v %v", err, c.ControllerMayResolve)
	}
	_, err = config.Load(env(map[string]string{"OPERATOR_TOKENS": "op-SECRET-1:alice smith"}))
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "operator_name") {
		t.Errorf("a bad entry must fail without echoing the token: %v", err)
	}
}

func TestDestinationsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "destinations.json")
	body := `[{"name":"eu-app","region":"eu","project_token_env":"EU_TOKEN","oauth_token_env":"EU_OAUTH","identity_type":"email"},
	          {"name":"old","api_url":"http://127.0.0.1:1","active":false}]`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(env(map[string]string{"DSR_DESTINATIONS": path, "EU_TOKEN": "tok", "EU_OAUTH": "oauth"}))
	if err != nil {
		t.Fatal(err)
	}
	active := c.ActiveDestinations()
	if len(c.Destinations) != 2 || len(active) != 1 || active[0].Name != "eu-app" ||
		active[0].APIURL != "https://eu.mixpanel.com/api/app" || active[0].ProjectToken.Reveal() != "tok" || active[0].IdentityType != "email" {
		t.Errorf("destinations: %+v", c.Destinations)
	}
}

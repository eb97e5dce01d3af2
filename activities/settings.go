package activities

import (
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/identity"
)

// Settings are the worker's settings that activities read. The worker
// builds them once from its configuration (SettingsFrom).
type Settings struct {
	// TaskQueue is the queue of workflows and ordinary activities.
	TaskQueue string
	// Destinations are the active destinations, sorted by name.
	Destinations []config.Destination
	// LoginIdentityTypes are the identity types that count as login ids.
	LoginIdentityTypes []string
	// AmbiguityPolicy says what resolution does when several profiles match.
	AmbiguityPolicy identity.Policy
	// BatchMaxSize and BatchMaxWait are a batch's flush rules.
	BatchMaxSize int
	BatchMaxWait time.Duration
	// MixpanelMaxIDs bounds the ids of one Mixpanel task.
	MixpanelMaxIDs int
	// MixpanelPollInterval and MixpanelMaxTaskAge govern polling a task.
	MixpanelPollInterval time.Duration
	MixpanelMaxTaskAge   time.Duration
	// MixpanelRateLimit is the GDPR API calls per second per destination (0: none).
	MixpanelRateLimit float64
	// PublicURL is the API's base URL, for results links and receipt URLs.
	PublicURL string
	// ProcessorDomain is the key of dsrflow's entry in a callback's extensions.
	ProcessorDomain string
	// ResultsTTL is how long a results link works.
	ResultsTTL time.Duration
}

// SettingsFrom takes the activities' settings from the worker's configuration.
func SettingsFrom(cfg config.Config) Settings {
	return Settings{
		TaskQueue:            cfg.TaskQueue,
		Destinations:         cfg.ActiveDestinations(),
		LoginIdentityTypes:   cfg.LoginIdentityTypes,
		AmbiguityPolicy:      identity.Policy(cfg.AmbiguityPolicy),
		BatchMaxSize:         cfg.BatchMaxSize,
		BatchMaxWait:         cfg.BatchMaxWait,
		MixpanelMaxIDs:       cfg.MixpanelMaxIDs,
		MixpanelPollInterval: cfg.MixpanelPollInterval,
		MixpanelMaxTaskAge:   cfg.MixpanelMaxTaskAge,
		MixpanelRateLimit:    cfg.MixpanelRateLimit,
		PublicURL:            cfg.PublicURL,
		ProcessorDomain:      cfg.ProcessorDomain,
		ResultsTTL:           cfg.ResultsTTL,
	}
}

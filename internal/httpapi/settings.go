package httpapi

import (
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
)

// Settings are the parts of the configuration the API server reads.
type Settings struct {
	// ProcessorDomain is sent as X-OpenDSR-Processor-Domain.
	ProcessorDomain string
	// PublicURL is the API's base URL as controllers reach it.
	PublicURL string
	// WaitingPeriod is an erasure's cancellation window (named in receipts).
	WaitingPeriod time.Duration
	// APITokens maps a bearer token to its controller; OperatorTokens to an operator's name.
	APITokens      map[string]string
	OperatorTokens map[string]string
	// ControllerMayResolve lets a controller resolve and retry its own requests.
	ControllerMayResolve bool
	// APIRateLimit and APIRateBurst bound each controller's calls.
	APIRateLimit float64
	APIRateBurst int
	// CodecOrigins, CodecTokens and CodecAllowLoopback govern the Web UI codec endpoint.
	CodecOrigins       []string
	CodecTokens        []config.Secret
	CodecAllowLoopback bool
}

// SettingsFrom takes the API server's settings from the configuration.
func SettingsFrom(cfg config.Config) Settings {
	return Settings{
		ProcessorDomain: cfg.ProcessorDomain, PublicURL: cfg.PublicURL, WaitingPeriod: cfg.WaitingPeriod,
		APITokens: cfg.APITokens, OperatorTokens: cfg.OperatorTokens, ControllerMayResolve: cfg.ControllerMayResolve,
		APIRateLimit: cfg.APIRateLimit, APIRateBurst: cfg.APIRateBurst,
		CodecOrigins: cfg.CodecOrigins, CodecTokens: cfg.CodecTokens, CodecAllowLoopback: cfg.CodecAllowLoopback,
	}
}

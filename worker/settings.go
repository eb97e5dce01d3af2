package main

import (
	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/identity"
)

// activitySettings is the part of the configuration activities read, built
// once here (not in internal/app, which the API links: the API must not link
// activity code).
func activitySettings(cfg config.Config) activities.Settings {
	return activities.Settings{
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
		ResultsTTL:           cfg.ResultsTTL,
	}
}

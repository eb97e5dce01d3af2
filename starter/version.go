package main

import (
	"runtime/debug"

	"github.com/dsrflow/dsrflow/internal/app"
)

// Set by the build (see the Makefile):
// -ldflags "-X main.version=... -X main.commit=...".
var (
	version = ""
	commit  = ""
)

// versionString is "VERSION (commit COMMIT)": what the build set, else the
// module version and VCS revision Go recorded, else app.Version.
func versionString() string {
	v, c := version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		revision, dirty := "", false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if c == "" && revision != "" {
			c = revision
			if dirty {
				c += "-dirty"
			}
		}
	}
	if v == "" {
		v = app.Version
	}
	if c == "" {
		c = "unknown"
	}
	return v + " (commit " + c + ")"
}

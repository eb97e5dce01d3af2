// Package e2e holds dsrflow's end-to-end tests: they start the Temporal dev
// server (bin/temporal), the Mixpanel emulator and the worker and API binaries
// (bin/worker, bin/api), and drive them over HTTP as a controller would.
package e2e

// Package chaos holds dsrflow's fault-injection tests: the worker and the API
// killed with SIGKILL mid-flight, Mixpanel answering 429 and 500, and rejected
// credentials, each on its own real stack. `make test` runs them with a few
// requests each; `make chaos` with more (DSR_CHAOS_N) and prints a report.
package chaos

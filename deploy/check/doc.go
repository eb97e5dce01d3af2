// Package check validates dsrflow's operations kit in deploy/ as promtool
// would: the Prometheus alerting rules parse and validate with the Prometheus
// rule parser (rulefmt, PromQL and the annotation templates), and every query
// of the rules and of the Grafana dashboard parses and selects only metrics
// named dsrflow_* or temporal_* (the e2e suite checks those names against a
// running worker's and API's /metrics).
//
// It is a module of its own so that the Prometheus server's dependencies stay
// out of dsrflow's build: run it with `cd deploy/check && go test ./...`
// (make test does).
package check

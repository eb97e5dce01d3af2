// Package e2e holds dsrflow's end-to-end tests: they start the Temporal dev
// server (bin/temporal), the Mixpanel emulator and the worker and API binaries
// (bin/worker, bin/api), and drive them over HTTP as a controller would.
//
// The environment picks the Temporal they run on:
//
//   - by default, the dev server;
//   - DSR_E2E_STACK=cluster: a Temporal cluster (bin/temporal-server, four
//     service processes) on fresh PostgreSQL databases, the ledger included
//     (devstack.StartCluster; the server is DSR_TEST_POSTGRES's);
//   - DSR_E2E_TEMPORAL_ADDRESS=host:port: a Temporal already running there,
//     whose default namespace has dsrflow's search attributes (no server is
//     started or stopped).
//
// DSR_E2E_DB sets the ledger (DSR_DB) on any of them; by default it is a
// SQLite file (on the cluster, a PostgreSQL database of its own).
package e2e

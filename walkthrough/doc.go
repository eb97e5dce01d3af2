// Package walkthrough checks that what a newcomer is told to do works as
// written: `make dev` (scripts/dev.sh) brings the whole stack up and prints
// its banner, the README's walkthrough commands (bin/dsr submit, bin/dsr
// watch, the emulator's task list, the Web UI, the same request with curl)
// take a request to a completed Mixpanel deletion, every sh block of
// README.md runs as written (only the default ports rewritten), the Web UI's
// Current Details of a forwarded request link its batch and Mixpanel task
// workflows, Ctrl-C stops every
// process, and a second `make dev` keeps the first one's data. It also checks
// that docker-compose.yml and the deploy/ examples are valid.
//
// The tests run the binaries built by `make build tools` (bin/), on free
// ports, with a temporary data directory. The package has no non-test code.
package walkthrough

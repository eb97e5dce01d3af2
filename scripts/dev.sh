#!/usr/bin/env bash
# scripts/dev.sh — the whole dsrflow stack on this machine (`make dev`).
#
# Starts, each with its output prefixed by a label:
#   [temporal]  the Temporal dev server (bin/temporal) with the Web UI, SQLite file in $DEV_DATA
#   [emulator]  the Mixpanel GDPR API emulator (bin/dsr mixpanel-emulator)
#   [worker]    bin/worker
#   [api]       bin/api (the OpenDSR HTTP API)
# waits until all answer, prints one banner with the URLs and what to try, and
# stops everything on Ctrl-C or SIGTERM. $DEV_DATA (default .data/) is kept
# between runs: the ledger, Temporal's database, the signing key and the logs
# (logs/<name>.log, this run only).
#
# Settings already in the environment win, so the stack can be pointed
# elsewhere (e.g. MIXPANEL_POLL_INTERVAL=1m make dev). Ports, for running more
# than one stack at a time (the walkthrough test does):
#   DEV_TEMPORAL_PORT (7233)  DEV_UI_PORT (8233)  DEV_API_PORT (8080)
#   DEV_EMULATOR_PORT (9410)  DEV_METRICS_PORT (9090)  DEV_DATA (.data)
#
# Needs bin/ from `make tools build` (`make dev` does that first).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=lib/stack.sh
. scripts/lib/stack.sh
LOGS="$DEV_DATA/logs"
START_TIMEOUT=90 # seconds each process may take to answer
STOP_SECONDS=10  # and to stop
STACK=dev
# Lines left out of the terminal (they stay in the log): the dev server's
# connection warnings, a wall of them while it shuts down.
QUIET_NAMES='^temporal$'
TEMPORAL_QUIET='msg="(network dial error|Failed to poll for task[.]?)"'

for bin in temporal worker api dsr; do
    [[ -x bin/$bin ]] || die "bin/$bin is missing: run \`make tools build\` (or just \`make dev\`)"
done

# ---------------------------------------------------------------- environment
# Dev values; anything already set in the environment wins.
: "${DSR_DB:=$DEV_DATA/dsrflow.db}"
: "${DSR_RESULTS_DIR:=$DEV_DATA/results}"
: "${WORKER_METRICS_ADDR:=$HOST:$DEV_METRICS_PORT}"
export WORKER_METRICS_ADDR
dev_environment

# The Temporal CLI reads TEMPORAL_* client settings from the environment too;
# the dev server and its health check must not pick up a production address,
# TLS setting or API key from the user's shell.
TEMPORAL_CLI=(env -u TEMPORAL_ADDRESS -u TEMPORAL_NAMESPACE -u TEMPORAL_API_KEY -u TEMPORAL_TLS
    -u TEMPORAL_TLS_CERT -u TEMPORAL_TLS_KEY -u TEMPORAL_TLS_CA -u TEMPORAL_TLS_SERVER_NAME
    -u TEMPORAL_PROFILE -u TEMPORAL_CONFIG_FILE bin/temporal)

trap 'stop' EXIT
trap 'stop; say "stopped; data kept in $DEV_DATA/"; exit 0' INT TERM

# --------------------------------------------------------------------- start
for spec in "TEMPORAL:$DEV_TEMPORAL_PORT" "UI:$DEV_UI_PORT" "API:$DEV_API_PORT" \
    "EMULATOR:$DEV_EMULATOR_PORT" "METRICS:$DEV_METRICS_PORT"; do
    if port_open "${spec#*:}"; then
        die "port ${spec#*:} on $HOST is in use (DEV_${spec%%:*}_PORT). Is another \`make dev\` running? Stop it, or choose another port, e.g. DEV_${spec%%:*}_PORT=$((${spec#*:} + 1)) make dev"
    fi
done

(umask 077 && mkdir -p "$DEV_DATA" "$LOGS")
chmod 700 "$DEV_DATA"
if $generate_keys; then
    # Writes only the files that are missing (signing key and certificate, and
    # the payload encryption key ring where this build has one).
    had_keys=false
    [[ -e $DSR_SIGNING_KEY ]] && had_keys=true
    bin/dsr keys generate --dir "$DEV_DATA" >/dev/null
    $had_keys || say "generated dev keys in $DEV_DATA/"
fi
if [[ -z ${DSR_ENCRYPTION_KEYS:-}${DSR_ENCRYPTION_KEYS_FILE:-} && -e $DEV_DATA/encryption-keys ]]; then
    export DSR_ENCRYPTION_KEYS_FILE=$DEV_DATA/encryption-keys
fi

temporal_args=(server start-dev --ip "$HOST" --port "$DEV_TEMPORAL_PORT" --ui-port "$DEV_UI_PORT"
    --db-filename "$DEV_DATA/temporal.db"
    --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal
    --search-attribute DsrStatus=Keyword --search-attribute DsrType=Keyword
    --search-attribute DsrRegulation=Keyword --search-attribute DsrController=Keyword
    --search-attribute DsrDestinationTask=Keyword --search-attribute DsrDueTime=Datetime
    --ui-codec-endpoint "http://$(probe_addr "$API_ADDR")/codec"
    --log-level warn)
if [[ $TEMPORAL_NAMESPACE != default ]]; then
    temporal_args+=(--namespace "$TEMPORAL_NAMESPACE")
fi

say "starting Temporal, the Mixpanel emulator, the worker and the API (logs in $LOGS/)"
start temporal "${TEMPORAL_CLI[@]}" "${temporal_args[@]}"
start emulator bin/dsr mixpanel-emulator --addr "$HOST:$DEV_EMULATOR_PORT" --step 2s
wait_until 1 "the Mixpanel emulator" http_ok "$HOST:$DEV_EMULATOR_PORT" /_emulator/healthz
wait_until 0 "the Temporal dev server" temporal_ok
start worker bin/worker
wait_until 2 "the worker" http_ok "$(probe_addr "$WORKER_METRICS_ADDR")" /healthz
start api bin/api
wait_until 3 "the API" http_ok "$(probe_addr "$API_ADDR")" /healthz

# -------------------------------------------------------------------- banner
api_url="http://$(probe_addr "$API_ADDR")"
token=${API_TOKENS%%,*}
controller=${token#*:}
token=${token%%:*}
cli_env=""
[[ $TEMPORAL_ADDRESS == 127.0.0.1:7233 ]] || cli_env+=" TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS"
[[ $DSR_DB == .data/dsrflow.db ]] || cli_env+=" DSR_DB=$DSR_DB"
[[ $DSR_RESULTS_DIR == .data/results ]] || cli_env+=" DSR_RESULTS_DIR=$DSR_RESULTS_DIR"
[[ $controller == dev ]] || cli_env+=" DSR_CONTROLLER=$controller"
if [[ -n ${DSR_ENCRYPTION_KEYS_FILE:-} && $DSR_ENCRYPTION_KEYS_FILE != .data/encryption-keys ]]; then
    cli_env+=" DSR_ENCRYPTION_KEYS_FILE=$DSR_ENCRYPTION_KEYS_FILE"
fi

cat <<EOF

================================================================================
 dsrflow dev stack is ready

   Temporal Web UI     http://$HOST:$DEV_UI_PORT
   OpenDSR API         $api_url          token: $token (controller $controller)
   Mixpanel emulator   http://$HOST:$DEV_EMULATOR_PORT/_emulator/tasks
   worker metrics      http://$(probe_addr "$WORKER_METRICS_ADDR")/metrics
   Temporal frontend   $TEMPORAL_ADDRESS (namespace $TEMPORAL_NAMESPACE)
   data and logs       $DEV_DATA/  (kept between runs)

 Dev timings: batches flush DSR_BATCH_MAX_WAIT=$DSR_BATCH_MAX_WAIT after the first request and
 Mixpanel tasks are polled every MIXPANEL_POLL_INTERVAL=$MIXPANEL_POLL_INTERVAL, so an erasure
 completes in under a minute (production defaults: 1h and 10m).
EOF
if [[ $TEMPORAL_ADDRESS != "$HOST:$DEV_TEMPORAL_PORT" ]]; then
    cat <<EOF

 WARNING: TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS comes from your environment: the worker
 and the API use that cluster, not the dev server started here.
EOF
fi
if [[ -n $cli_env ]]; then
    cat <<EOF

 This stack is not on the default ports or data directory: in the terminal where
 you run bin/dsr, first:
   export$cli_env
EOF
fi
cat <<EOF

 Try it, in another terminal at the checkout root:

   bin/dsr submit --regulation gdpr --type erasure --identity controller_customer_id=user-42 --skip-waiting-period
   bin/dsr watch <the request id it printed>

EOF
banner_tail

# ------------------------------------------------------------------------ run
supervise

#!/usr/bin/env bash
# scripts/cluster.sh — the whole dsrflow stack on a real Temporal cluster (`make cluster`).
#
# Like `make dev` (scripts/dev.sh): the same ports, banner and README commands,
# labelled logs, Ctrl-C stops everything, data kept. But Temporal is the
# server built from go.temporal.io/server v1.29.1 (bin/temporal-server), its
# four services as separate processes on the local PostgreSQL:
#   [history] [matching] [frontend] [t-worker]  Temporal's services, started in
#               that order (the first one to start on a fresh database writes
#               the cluster metadata; starting them together races on it)
#   [ui]        the Temporal Web UI server (bin/temporal-ui-server)
#   [emulator]  the Mixpanel GDPR API emulator
#   [worker-1] [worker-2]  two dsrflow workers on the same task queues
#   [api]       the OpenDSR HTTP API
# The configuration is rendered by the servers themselves from
# scripts/cluster/temporal.yaml, dynamicconfig.yaml and ui.yaml.
#
# PostgreSQL is reached as libpq would: PGHOST (127.0.0.1), PGPORT (5432),
# PGUSER (postgres), PGPASSWORD. Three databases are created (or their schemas
# upgraded) on each start, named after this checkout so that two checkouts
# never share workflows they cannot decrypt:
#   <prefix>_temporal, <prefix>_temporal_visibility, <prefix>_ledger
# with <prefix> = dsrflow_<directory name>_<hash of the checkout path>
# (CLUSTER_DB_PREFIX overrides it). The ledger is <prefix>_ledger unless
# DSR_DB is set.
#
# Settings (besides everything dev.sh takes: DEV_DATA, DEV_TEMPORAL_PORT,
# DEV_UI_PORT, DEV_API_PORT, DEV_EMULATOR_PORT, DEV_METRICS_PORT, and the
# dsrflow variables, which win when set):
#   CLUSTER_SHARDS (4)   numHistoryShards; fixed when the databases are created
#   CLUSTER_WORKERS (2)  dsrflow worker processes (metrics on DEV_METRICS_PORT, +1, ...)
#   CLUSTER_METRICS_PORT (8000)  Temporal's /metrics: frontend, +1 history, +2 matching, +3 worker
#   CLUSTER_RESET=1      drop the three databases first (every workflow and ledger record is lost)
# Temporal's internal ports follow DEV_TEMPORAL_PORT as in Temporal's own
# development config: history +1, matching +2, worker +6, HTTP +10, and
# ringpop membership -300 from each.
#
# Needs bin/ from `make tools build` (`make cluster` does that first).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=lib/stack.sh
. scripts/lib/stack.sh
: "${CLUSTER_SHARDS:=4}"
: "${CLUSTER_WORKERS:=2}"
: "${CLUSTER_METRICS_PORT:=8000}"
: "${PGHOST:=127.0.0.1}"
: "${PGPORT:=5432}"
: "${PGUSER:=postgres}"
export PGHOST PGPORT PGUSER
CLUSTER_DIR="$DEV_DATA/cluster"
LOGS="$CLUSTER_DIR/logs"
START_TIMEOUT=120 # seconds each process may take to answer
STOP_SECONDS=15   # and to stop
STACK=cluster
# Lines left out of the terminal (they stay in the logs): the services'
# warnings while their peers start or stop, and the config loader's chatter.
QUIET_NAMES='^(history|matching|frontend|t-worker|ui)$'
TEMPORAL_QUIET='"level":"(info|warn)"|Not enough hosts to serve the request|^[0-9/: ]*Loading config'

for bin in temporal temporal-server temporal-sql-tool temporal-ui-server worker api dsr; do
    [[ -x bin/$bin ]] || die "bin/$bin is missing: run \`make tools build\` (or just \`make cluster\`)"
done
[[ $CLUSTER_SHARDS =~ ^[1-9][0-9]*$ ]] || die "CLUSTER_SHARDS=$CLUSTER_SHARDS is not a positive number"
[[ $CLUSTER_WORKERS =~ ^[1-9][0-9]?$ ]] || die "CLUSTER_WORKERS=$CLUSTER_WORKERS is not a number from 1 to 99"
[[ $PGHOST != /* ]] || die "PGHOST=$PGHOST is a socket directory: Temporal connects over TCP, set PGHOST to a host name or address"

# ---------------------------------------------------------------- databases
if [[ -z ${CLUSTER_DB_PREFIX:-} ]]; then
    name=$(basename "$PWD" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9\n' '_' | cut -c1-20)
    hash=$(printf '%s' "$PWD" | sha256sum | cut -c1-8)
    CLUSTER_DB_PREFIX="dsrflow_${name}_${hash}"
fi
[[ $CLUSTER_DB_PREFIX =~ ^[a-z_][a-z0-9_]{0,40}$ ]] ||
    die "CLUSTER_DB_PREFIX=$CLUSTER_DB_PREFIX: use lowercase letters, digits and _ (at most 41)"
TEMPORAL_DB=${CLUSTER_DB_PREFIX}_temporal
VISIBILITY_DB=${CLUSTER_DB_PREFIX}_temporal_visibility
LEDGER_DB=${CLUSTER_DB_PREFIX}_ledger

# The Temporal CLI reads TEMPORAL_* client settings from the environment too:
# the health checks must not pick up a production address, TLS or API key.
TEMPORAL_CLI=(env -u TEMPORAL_ADDRESS -u TEMPORAL_NAMESPACE -u TEMPORAL_API_KEY -u TEMPORAL_TLS
    -u TEMPORAL_TLS_CERT -u TEMPORAL_TLS_KEY -u TEMPORAL_TLS_CA -u TEMPORAL_TLS_SERVER_NAME
    -u TEMPORAL_PROFILE -u TEMPORAL_CONFIG_FILE bin/temporal)

# sql_tool DB ARGS...: the schema tool against database DB (password from the environment).
sql_tool() {
    local db=$1
    shift
    SQL_PASSWORD=${PGPASSWORD:-} bin/temporal-sql-tool --plugin postgres12 --ep "$PGHOST" --port "$PGPORT" \
        --user "$PGUSER" --db "$db" "$@"
}

(umask 077 && mkdir -p "$DEV_DATA" "$CLUSTER_DIR" "$LOGS")
chmod 700 "$DEV_DATA" "$CLUSTER_DIR"

# setup_databases: create the three databases where missing, and create or
# upgrade Temporal's schemas (the tool carries them, from the same server module).
setup_databases() {
    local log="$LOGS/setup.log" db
    : >"$log"
    if [[ ${CLUSTER_RESET:-} == 1 ]]; then
        say "CLUSTER_RESET=1: dropping $TEMPORAL_DB, $VISIBILITY_DB and $LEDGER_DB"
        for db in "$TEMPORAL_DB" "$VISIBILITY_DB" "$LEDGER_DB"; do
            sql_tool "$db" drop-database --force >>"$log" 2>&1 || return 1
        done
        rm -f "$CLUSTER_DIR/history-shards"
    fi
    for db in "$TEMPORAL_DB" "$VISIBILITY_DB" "$LEDGER_DB"; do
        sql_tool "$db" create-database >>"$log" 2>&1 || return 1
    done
    sql_tool "$TEMPORAL_DB" setup-schema -v 0.0 >>"$log" 2>&1 &&
        sql_tool "$TEMPORAL_DB" update-schema --schema-name postgresql/v12/temporal >>"$log" 2>&1 &&
        sql_tool "$VISIBILITY_DB" setup-schema -v 0.0 >>"$log" 2>&1 &&
        sql_tool "$VISIBILITY_DB" update-schema --schema-name postgresql/v12/visibility >>"$log" 2>&1
}
say "preparing databases ${CLUSTER_DB_PREFIX}_* on PostgreSQL at $PGHOST:$PGPORT (user $PGUSER)"
if ! setup_databases; then
    {
        printf 'cluster: error: creating or upgrading the databases failed. The end of %s:\n' "$LOGS/setup.log"
        tail -n 15 "$LOGS/setup.log" | sed 's/^/    /'
        printf 'Is PostgreSQL running at %s:%s, and may %s create databases? (PGHOST, PGPORT, PGUSER, PGPASSWORD)\n' \
            "$PGHOST" "$PGPORT" "$PGUSER"
    } >&2
    exit 1
fi
if [[ -e $CLUSTER_DIR/history-shards ]]; then
    had=$(cat "$CLUSTER_DIR/history-shards")
    if [[ $had != "$CLUSTER_SHARDS" ]]; then
        say "warning: $TEMPORAL_DB was created with $had history shards; Temporal keeps that number and ignores CLUSTER_SHARDS=$CLUSTER_SHARDS (CLUSTER_RESET=1 starts over with the new number)"
        CLUSTER_SHARDS=$had
    fi
else
    echo "$CLUSTER_SHARDS" >"$CLUSTER_DIR/history-shards"
fi

# ---------------------------------------------------------------- environment
# Temporal's services, from scripts/cluster/temporal.yaml.
export CLUSTER_PG_ADDR="$PGHOST:$PGPORT" CLUSTER_PG_USER="$PGUSER" CLUSTER_PG_PASSWORD="${PGPASSWORD:-}"
export CLUSTER_DB=$TEMPORAL_DB CLUSTER_VISIBILITY_DB=$VISIBILITY_DB CLUSTER_SHARDS
export CLUSTER_FRONTEND_PORT=$DEV_TEMPORAL_PORT
export CLUSTER_HISTORY_PORT=$((DEV_TEMPORAL_PORT + 1))
export CLUSTER_MATCHING_PORT=$((DEV_TEMPORAL_PORT + 2))
export CLUSTER_WORKER_PORT=$((DEV_TEMPORAL_PORT + 6))
export CLUSTER_FRONTEND_HTTP_PORT=$((DEV_TEMPORAL_PORT + 10))
export CLUSTER_FRONTEND_MEMBERSHIP_PORT=$((CLUSTER_FRONTEND_PORT - 300))
export CLUSTER_HISTORY_MEMBERSHIP_PORT=$((CLUSTER_HISTORY_PORT - 300))
export CLUSTER_MATCHING_MEMBERSHIP_PORT=$((CLUSTER_MATCHING_PORT - 300))
export CLUSTER_WORKER_MEMBERSHIP_PORT=$((CLUSTER_WORKER_PORT - 300))
((CLUSTER_WORKER_MEMBERSHIP_PORT < 32768)) ||
    die "DEV_TEMPORAL_PORT=$DEV_TEMPORAL_PORT is too high: Temporal stores its membership ports (DEV_TEMPORAL_PORT-300 to +6) as numbers below 32768"
export CLUSTER_DYNAMIC_CONFIG=$PWD/scripts/cluster/dynamicconfig.yaml
export CLUSTER_FRONTEND_ADDR=$HOST:$DEV_TEMPORAL_PORT CLUSTER_UI_PORT=$DEV_UI_PORT
unset CLUSTER_METRICS_PORT_BASE
METRICS_BASE=$CLUSTER_METRICS_PORT
unset CLUSTER_METRICS_PORT # set per service below

# dsrflow: dev values; anything already set in the environment wins.
: "${DSR_DB:=postgres://$PGUSER@$PGHOST:$PGPORT/$LEDGER_DB?sslmode=disable}"
: "${DSR_RESULTS_DIR:=$CLUSTER_DIR/results}"
# Two workers on a cluster: leave headroom under Mixpanel's 1 request/s for
# the jitter between Temporal's dispatch and each worker's call (docs/operations.md).
: "${MIXPANEL_RATE_LIMIT:=0.8}"
export MIXPANEL_RATE_LIMIT
dev_environment

# ------------------------------------------------------------------- helpers
# namespace_ready: the namespace exists (created with a week's retention if
# not) and dsrflow's search attributes are registered in it.
namespace_ready() {
    local cli=("${TEMPORAL_CLI[@]}" operator --address "$HOST:$DEV_TEMPORAL_PORT" --namespace "$TEMPORAL_NAMESPACE" --command-timeout 5s)
    if ! "${cli[@]}" namespace describe >/dev/null 2>&1; then
        "${cli[@]}" namespace create --retention 168h >>"$LOGS/setup.log" 2>&1 || return 1
    fi
    "${cli[@]}" search-attribute create \
        --name DsrController --type Keyword --name DsrDestinationTask --type Keyword \
        --name DsrDueTime --type Datetime --name DsrRegulation --type Keyword \
        --name DsrStatus --type Keyword --name DsrType --type Keyword >>"$LOGS/setup.log" 2>&1
}

# start_service NAME METRICS_OFFSET: one Temporal service of the cluster.
start_service() {
    CLUSTER_METRICS_PORT=$((METRICS_BASE + $2)) start "$1" bin/temporal-server \
        --root "$PWD" --config scripts/cluster --env temporal --allow-no-auth start --service "${1#t-}"
}

trap 'stop' EXIT
trap 'stop; say "stopped; data kept in $DEV_DATA/ and the ${CLUSTER_DB_PREFIX}_* databases"; exit 0' INT TERM

# --------------------------------------------------------------------- start
ports=("TEMPORAL:$DEV_TEMPORAL_PORT" "TEMPORAL:$CLUSTER_HISTORY_PORT" "TEMPORAL:$CLUSTER_MATCHING_PORT"
    "TEMPORAL:$CLUSTER_WORKER_PORT" "TEMPORAL:$CLUSTER_FRONTEND_HTTP_PORT"
    "TEMPORAL:$CLUSTER_FRONTEND_MEMBERSHIP_PORT" "TEMPORAL:$CLUSTER_HISTORY_MEMBERSHIP_PORT"
    "TEMPORAL:$CLUSTER_MATCHING_MEMBERSHIP_PORT" "TEMPORAL:$CLUSTER_WORKER_MEMBERSHIP_PORT"
    "UI:$DEV_UI_PORT" "API:$DEV_API_PORT" "EMULATOR:$DEV_EMULATOR_PORT")
for ((i = 0; i < 4; i++)); do ports+=("CLUSTER_METRICS:$((METRICS_BASE + i))"); done
for ((i = 0; i < CLUSTER_WORKERS; i++)); do ports+=("METRICS:$((DEV_METRICS_PORT + i))"); done
for spec in "${ports[@]}"; do
    if port_open "${spec#*:}"; then
        var=DEV_${spec%%:*}_PORT
        [[ $spec != CLUSTER_METRICS:* ]] || var=CLUSTER_METRICS_PORT
        die "port ${spec#*:} on $HOST is in use ($var). Is \`make dev\` or another \`make cluster\` running? Stop it, or choose other ports, e.g. $var=$((${spec#*:} + 20)) make cluster"
    fi
done

if $generate_keys; then
    had_keys=false
    [[ -e $DSR_SIGNING_KEY ]] && had_keys=true
    bin/dsr keys generate --dir "$DEV_DATA" >/dev/null
    $had_keys || say "generated dev keys in $DEV_DATA/"
fi
if [[ -z ${DSR_ENCRYPTION_KEYS:-}${DSR_ENCRYPTION_KEYS_FILE:-} && -e $DEV_DATA/encryption-keys ]]; then
    export DSR_ENCRYPTION_KEYS_FILE=$DEV_DATA/encryption-keys
fi
export CLUSTER_UI_CODEC_ENDPOINT="http://$(probe_addr "$API_ADDR")/codec"

say "starting Temporal's history, matching, frontend and worker services ($CLUSTER_SHARDS history shards), the Web UI, the Mixpanel emulator, $CLUSTER_WORKERS workers and the API (logs in $LOGS/)"
start emulator bin/dsr mixpanel-emulator --addr "$HOST:$DEV_EMULATOR_PORT" --step 2s
start_service history 1
wait_until 1 "Temporal's history service" port_open "$CLUSTER_HISTORY_PORT"
start_service matching 2
wait_until 2 "Temporal's matching service" port_open "$CLUSTER_MATCHING_PORT"
start_service frontend 0
wait_until 3 "Temporal's frontend service" temporal_ok
start_service t-worker 3
wait_until 3 "the $TEMPORAL_NAMESPACE namespace and its search attributes" namespace_ready
start ui bin/temporal-ui-server --root "$PWD" --config scripts/cluster --env ui start
wait_until 0 "the Mixpanel emulator" http_ok "$HOST:$DEV_EMULATOR_PORT" /_emulator/healthz
workers=()
for ((n = 1; n <= CLUSTER_WORKERS; n++)); do
    addr=$HOST:$((DEV_METRICS_PORT + n - 1))
    WORKER_METRICS_ADDR=$addr start "worker-$n" bin/worker
    wait_until $((${#PIDS[@]} - 1)) "worker-$n" http_ok "$addr" /healthz
    workers+=("$addr")
done
start api bin/api
wait_until $((${#PIDS[@]} - 1)) "the API" http_ok "$(probe_addr "$API_ADDR")" /healthz
wait_until 5 "the Web UI" http_ok "$HOST:$DEV_UI_PORT" /

# -------------------------------------------------------------------- banner
api_url="http://$(probe_addr "$API_ADDR")"
token=${API_TOKENS%%,*}
controller=${token#*:}
token=${token%%:*}
# What bin/dsr needs to find this stack (the ledger is on PostgreSQL), for `. $CLUSTER_DIR/env`.
{
    printf '# written by scripts/cluster.sh: what bin/dsr needs to use the cluster stack\n'
    printf 'export DSR_DB=%q\n' "$DSR_DB"
    [[ $TEMPORAL_ADDRESS == 127.0.0.1:7233 ]] || printf 'export TEMPORAL_ADDRESS=%q\n' "$TEMPORAL_ADDRESS"
    [[ $controller == dev ]] || printf 'export DSR_CONTROLLER=%q\n' "$controller"
    if [[ -n ${DSR_ENCRYPTION_KEYS_FILE:-} && $DSR_ENCRYPTION_KEYS_FILE != .data/encryption-keys ]]; then
        printf 'export DSR_ENCRYPTION_KEYS_FILE=%q\n' "$DSR_ENCRYPTION_KEYS_FILE"
    fi
} >"$CLUSTER_DIR/env"
worker_metrics=""
for addr in "${workers[@]}"; do worker_metrics+=" http://$addr/metrics"; done

cat <<EOF

================================================================================
 dsrflow cluster stack is ready

   Temporal Web UI     http://$HOST:$DEV_UI_PORT
   OpenDSR API         $api_url          token: $token (controller $controller)
   Mixpanel emulator   $MIXPANEL_API_URL/_emulator/tasks
   worker metrics     $worker_metrics
   Temporal frontend   $TEMPORAL_ADDRESS (namespace $TEMPORAL_NAMESPACE)
   Temporal services   frontend, history, matching, worker: separate processes,
                       $CLUSTER_SHARDS history shards, metrics on :$METRICS_BASE-$((METRICS_BASE + 3))
   PostgreSQL          $PGHOST:$PGPORT: $TEMPORAL_DB, $VISIBILITY_DB,
                       ledger $DSR_DB
   data and logs       $CLUSTER_DIR/  (kept between runs, as are the databases)

 Dev timings: batches flush DSR_BATCH_MAX_WAIT=$DSR_BATCH_MAX_WAIT after the first request and
 Mixpanel tasks are polled every MIXPANEL_POLL_INTERVAL=$MIXPANEL_POLL_INTERVAL, so an erasure
 completes in under a minute (production defaults: 1h and 10m).
EOF
if [[ $TEMPORAL_ADDRESS != "$HOST:$DEV_TEMPORAL_PORT" ]]; then
    cat <<EOF

 WARNING: TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS comes from your environment: the workers
 and the API use that cluster, not the one started here.
EOF
fi
cat <<EOF

 Try it, in another terminal at the checkout root (the first line points bin/dsr at
 this stack's ledger, which is on PostgreSQL):

   . $CLUSTER_DIR/env
   bin/dsr submit --regulation gdpr --type erasure --identity controller_customer_id=user-42 --skip-waiting-period
   bin/dsr watch <the request id it printed>

EOF
banner_tail

# ------------------------------------------------------------------------ run
supervise

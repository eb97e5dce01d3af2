# scripts/lib/stack.sh — what scripts/dev.sh and scripts/cluster.sh share:
# messages, probes, and supervision of the processes of a local stack. Sourced,
# not run. It sets the DEV_* ports and DEV_DATA (defaults below) and HOST; the
# sourcing script sets, before calling these functions:
#   STACK            the name messages start with ("dev", "cluster")
#   LOGS             the directory of the processes' logs
#   START_TIMEOUT    seconds each process may take to answer
#   STOP_SECONDS     seconds each process may take to stop before SIGKILL
#   TEMPORAL_CLI     the command (array) running bin/temporal for health checks
#   TEMPORAL_QUIET   lines (regular expression) kept out of the terminal, for
#   QUIET_NAMES      the processes whose names match this regular expression

# Ports and data directory of a local stack, the same for both scripts (the
# environment may move them, e.g. to run two stacks at once).
: "${DEV_DATA:=.data}"
: "${DEV_TEMPORAL_PORT:=7233}"
: "${DEV_UI_PORT:=8233}"
: "${DEV_API_PORT:=8080}"
: "${DEV_EMULATOR_PORT:=9410}"
: "${DEV_METRICS_PORT:=9090}"
HOST=127.0.0.1

# dev_environment: the dev values of dsrflow's settings, exported; anything
# already set in the environment wins (the caller sets DSR_DB and
# DSR_RESULTS_DIR first). It sets generate_keys to true when it chose the
# signing key pair's files in $DEV_DATA, which the caller then creates.
dev_environment() {
    : "${TEMPORAL_ADDRESS:=$HOST:$DEV_TEMPORAL_PORT}"
    : "${TEMPORAL_NAMESPACE:=default}"
    : "${MIXPANEL_API_URL:=http://$HOST:$DEV_EMULATOR_PORT}"
    : "${MIXPANEL_PROJECT_TOKEN:=dev-project-token}"
    : "${MIXPANEL_OAUTH_TOKEN:=dev-oauth-token}"
    : "${API_ADDR:=$HOST:$DEV_API_PORT}"
    : "${API_TOKENS:=dev-token:dev}"
    : "${DSR_BATCH_MAX_WAIT:=10s}"
    : "${MIXPANEL_POLL_INTERVAL:=5s}"
    : "${DSR_CALLBACK_ALLOW_PRIVATE:=true}"
    : "${DSR_PROCESSOR_DOMAIN:=localhost}"
    generate_keys=false
    if [[ -z ${DSR_SIGNING_KEY:-} && -z ${DSR_SIGNING_CERT:-} ]]; then
        DSR_SIGNING_KEY=$DEV_DATA/signing-key.pem
        DSR_SIGNING_CERT=$DEV_DATA/signing-cert.pem
        generate_keys=true
    fi
    # Payloads are encrypted (DSR_ENCRYPTION_KEYS): the Web UI (on DEV_UI_PORT) shows them
    # through the API's codec endpoint (/codec), which answers this machine without a token.
    : "${DSR_CODEC_ORIGINS:=http://$HOST:$DEV_UI_PORT,http://localhost:$DEV_UI_PORT}"
    : "${DSR_CODEC_ALLOW_LOOPBACK:=true}"
    export TEMPORAL_ADDRESS TEMPORAL_NAMESPACE DSR_DB DSR_RESULTS_DIR MIXPANEL_API_URL \
        MIXPANEL_PROJECT_TOKEN MIXPANEL_OAUTH_TOKEN API_ADDR API_TOKENS DSR_BATCH_MAX_WAIT \
        MIXPANEL_POLL_INTERVAL DSR_CALLBACK_ALLOW_PRIVATE DSR_PROCESSOR_DOMAIN \
        DSR_SIGNING_KEY DSR_SIGNING_CERT DSR_CODEC_ORIGINS DSR_CODEC_ALLOW_LOOPBACK
}

say() { printf '%s: %s\n' "$STACK" "$*"; }
die() { printf '%s: error: %s\n' "$STACK" "$*" >&2; exit 1; }

# port_open PORT: something listens on $HOST:PORT.
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# probe_addr HOST:PORT: the address to probe a listener on (":9090" and "0.0.0.0:9090" -> 127.0.0.1:9090).
probe_addr() {
    local host=${1%:*}
    [[ -n $host && $host != 0.0.0.0 && $host != "[::]" ]] || host=$HOST
    printf '%s:%s' "$host" "${1##*:}"
}

# http_ok HOST:PORT PATH: a GET answers 200 (bash only: no curl needed).
http_ok() {
    (
        exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
        printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
        IFS= read -r -t 3 status <&3 || exit 1
        [[ $status == "HTTP/1."?" 200"* ]]
    ) 2>/dev/null
}

# temporal_ok: the Temporal frontend answers a health check.
temporal_ok() {
    "${TEMPORAL_CLI[@]}" operator cluster health --address "$HOST:$DEV_TEMPORAL_PORT" \
        --command-timeout 3s >/dev/null 2>&1
}

# prefix LABEL [SKIP]: prefix every line read with "[LABEL] ", line-buffered,
# leaving out lines that match the regular expression SKIP.
prefix() {
    awk -v p="$(printf '%-11s' "[$1]")" -v skip="${2:-}" \
        'skip != "" && $0 ~ skip { next } { print p $0; fflush() }'
}

# Each process runs in its own session and process group (setsid, which keeps
# the same pid when the caller is not a group leader), so Ctrl-C reaches only
# the script, which then stops them in order.
if command -v setsid >/dev/null 2>&1; then
    detach() { exec setsid "$@"; }
else
    detach() { exec "$@"; }
fi

NAMES=()
PIDS=()

# start NAME COMMAND...: run COMMAND in the background, its output labelled on
# the terminal and copied to $LOGS/NAME.log.
start() {
    local name=$1
    shift
    local log="$LOGS/$name.log" quiet=""
    [[ ! $name =~ $QUIET_NAMES ]] || quiet=$TEMPORAL_QUIET
    : >"$log"
    # The labeller ignores INT/TERM: it ends when its process closes its output.
    detach "$@" </dev/null > >(trap '' INT TERM; tee -a "$log" | prefix "$name" "$quiet") 2>&1 &
    NAMES+=("$name")
    PIDS+=("$!")
}

# alive PID: the process runs (and is not a zombie).
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

# died INDEX: report that a process ended, with the tail of its log, and fail.
died() {
    local name=${NAMES[$1]} rc=0
    wait "${PIDS[$1]}" 2>/dev/null || rc=$?
    {
        printf '\n%s: error: %s exited (status %s). The end of %s:\n' "$STACK" "$name" "$rc" "$LOGS/$name.log"
        tail -n 25 "$LOGS/$name.log" | sed 's/^/    /'
    } >&2
    exit 1
}

# wait_until INDEX WHAT CHECK...: wait until CHECK succeeds, while the process lives.
wait_until() {
    local i=$1 what=$2 deadline=$((SECONDS + START_TIMEOUT))
    shift 2
    until "$@"; do
        alive "${PIDS[$i]}" || died "$i"
        ((SECONDS < deadline)) || die "$what did not answer within ${START_TIMEOUT}s (log: $LOGS/${NAMES[$i]}.log)"
        sleep 0.3
    done
}

# stop: SIGTERM to each process group, newest first, waiting up to
# STOP_SECONDS for each before SIGKILL. A second Ctrl-C kills at once.
stopping=false
force=false
stop() {
    $stopping && return
    stopping=true
    trap 'force=true' INT TERM
    local i pid n order=""
    for ((i = ${#NAMES[@]} - 1; i >= 0; i--)); do order+=" ${NAMES[$i]}"; done
    if [[ -n $order ]]; then
        say "stopping$order (Ctrl-C again to kill them at once)"
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[$i]}
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for ((n = 0; n < STOP_SECONDS * 10; n++)); do
            if $force || ! alive "$pid"; then break; fi
            sleep 0.1
        done
        if alive "$pid"; then
            say "${NAMES[$i]} did not stop: killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true # what is left (the main loop's last sleep)
}

# banner_tail: the end of the banner, the same request over HTTP (needs
# controller, api_url, token and DSR_PROCESSOR_DOMAIN).
banner_tail() {
    cat <<EOF
 then open the Web UI (workflow dsr/$controller/<id>) and the emulator's task list.
 The same over HTTP:

   id=\$(cat /proc/sys/kernel/random/uuid)
   curl -sS -X POST $api_url/v1/requests -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' -d '{"subject_request_id":"'"\$id"'","subject_request_type":"erasure","regulation":"gdpr","submitted_time":"'"\$(date -u +%Y-%m-%dT%H:%M:%SZ)"'","subject_identities":[{"identity_type":"controller_customer_id","identity_value":"user-42","identity_format":"raw"}],"extensions":{"$DSR_PROCESSOR_DOMAIN":{"skip_waiting_period":true}}}'
   curl -sS -H 'Authorization: Bearer $token' $api_url/v1/requests/\$id

 Ctrl-C stops everything.
================================================================================

EOF
}

# supervise: run until Ctrl-C or SIGTERM (the script's trap) or until one of
# the processes ends by itself.
supervise() {
    while :; do
        for i in "${!PIDS[@]}"; do
            alive "${PIDS[$i]}" || died "$i"
        done
        sleep 1 &
        wait $! || true
    done
}

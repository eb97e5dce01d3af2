#!/usr/bin/env bash
# deploy/init-secrets.sh — create the secret files docker-compose.yml mounts,
# in deploy/secrets/. Files that exist are kept, so it is safe to run again.
#
#   deploy/init-secrets.sh [CONTROLLER_ID]     (default controller id: acme)
#
# It generates the database password (and the matching pgpass line), an API
# token for CONTROLLER_ID, the response/callback signing key with a
# self-signed certificate, and the payload encryption key ring. The Mixpanel
# tokens are yours to write: it tells you how.
#
# deploy/secrets/ is mode 0700; the files in it are 0644 because Docker
# Compose bind-mounts them with their host mode and the containers run as
# other users (dsrflow 10001, temporal 1000, postgres 999). Keep the
# directory private; on a shared host, use your orchestrator's secret store.
set -euo pipefail

controller=${1:-acme}
cd "$(dirname "${BASH_SOURCE[0]}")"
umask 077
mkdir -p secrets
chmod 700 secrets
cd secrets

# random N: N (at most 56) characters of [A-Za-z0-9] from the kernel's generator.
random() { head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | cut -c "1-$1"; }

# create FILE: true (and says so) when FILE does not exist yet.
create() {
    if [[ -e $1 ]]; then
        echo "kept     deploy/secrets/$1"
        return 1
    fi
    echo "created  deploy/secrets/$1"
}

if create postgres_password; then
    random 32 >postgres_password
fi
if create pgpass; then
    # libpq/pgx password file: host:port:database:user:password.
    printf '*:*:*:dsrflow:%s\n' "$(cat postgres_password)" >pgpass
fi
if create api_tokens; then
    # token:controller_id, comma-separated for more controllers.
    printf '%s:%s\n' "$(random 40)" "$controller" >api_tokens
fi
if create encryption-keys; then
    # DSR_ENCRYPTION_KEYS format: id:<base64 of 32 random bytes>[,older keys].
    printf 'k%s:%s\n' "$(date -u +%Y%m%d)" "$(head -c 32 /dev/urandom | base64)" >encryption-keys
fi
if [[ ! -e signing-key.pem && ! -e signing-cert.pem ]]; then
    if [[ -x ../../bin/dsr ]]; then
        ../../bin/dsr keys generate --dir . >/dev/null
    else
        openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=dsrflow" \
            -keyout signing-key.pem -out signing-cert.pem 2>/dev/null
    fi
    echo "created  deploy/secrets/signing-key.pem, signing-cert.pem (self-signed: in production use a"
    echo "         certificate from a CA your controllers trust)"
else
    echo "kept     deploy/secrets/signing-key.pem, signing-cert.pem"
fi

missing=()
for f in mixpanel_project_token mixpanel_oauth_token; do
    [[ -s $f ]] || missing+=("$f")
done
chmod 644 -- *
chmod 700 .

if ((${#missing[@]} > 0)); then
    cat <<EOF

Now write your Mixpanel credentials (Project Settings in Mixpanel), one value per file:
  printf '%s' 'YOUR_PROJECT_TOKEN' > deploy/secrets/mixpanel_project_token
  printf '%s' 'YOUR_OAUTH_TOKEN'   > deploy/secrets/mixpanel_oauth_token
  chmod 644 deploy/secrets/mixpanel_*
EOF
fi
cat <<EOF

API token for controller $controller: deploy/secrets/api_tokens (token:controller_id).
Keep deploy/secrets/encryption-keys safe and backed up: without it, encrypted
Temporal payloads, results and sealed ledger fields cannot be read.
EOF

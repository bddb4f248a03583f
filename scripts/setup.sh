#!/usr/bin/env bash
# Install everything regaudit, its tests and its lab need on a fresh Debian bookworm machine (root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  docker-registry nginx apache2 apache2-utils iptables nftables iproute2 testssl.sh
  chromium wrk curl openssl netcat-openbsd procps psmisc systemd jq ca-certificates shellcheck
  docker.io docker-compose podman
  openssh-server openssh-client
)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  # Packages must not start their own services (nginx/apache on port 80 of this host): the lab
  # starts its own instances inside network namespaces.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created_policy=1
  fi
  trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "setup: installing regaudit (editable) with its test dependencies"
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'

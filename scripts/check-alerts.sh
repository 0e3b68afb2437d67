#!/usr/bin/env bash
# Checks the Prometheus configuration and alerting rules in deploy/prometheus/ with promtool:
#
#   promtool check config deploy/prometheus/prometheus.yml   (the scrape config and its rule_files)
#   promtool check rules  deploy/prometheus/alerts.yml
#   promtool test rules   deploy/prometheus/alerts_test.yml  (each alert fires on synthetic series
#                                                           that should page, and stays quiet on
#                                                           ones that should not)
#
# `make test` runs it. promtool comes from Debian's `prometheus` package: when it is missing, the
# script installs the package the way scripts/services.sh installs its own (apt-get update first,
# --no-install-recommends), then stops and disables the system-wide Prometheus server the package
# starts (port 9090), which nobody asked for. Messages go to stderr.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
readonly REPO_DIR DEPLOY="$REPO_DIR/deploy/prometheus"

log() { printf 'check-alerts: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "need root to run: $*"
  fi
}

promtool_bin() {
  local b
  for b in "$(command -v promtool 2>/dev/null || true)" /usr/bin/promtool; do
    [[ -n $b && -x $b ]] && { echo "$b"; return 0; }
  done
  return 1
}

ensure_promtool() {
  promtool_bin >/dev/null && return 0
  command -v apt-get >/dev/null || die "promtool is missing, and there is no apt-get here: install Debian's prometheus package by hand"
  log "installing prometheus (for promtool) with apt-get (log: /tmp/helpdeskflow-apt-prometheus.log)"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600)
  if ! { as_root "${apt[@]}" update && as_root "${apt[@]}" install --no-install-recommends prometheus; } \
      </dev/null >/tmp/helpdeskflow-apt-prometheus.log 2>&1; then
    tail -n 40 /tmp/helpdeskflow-apt-prometheus.log >&2 || true
    die "apt-get failed"
  fi
  # The package starts a Prometheus server on :9090 (systemd, or its SysV script where no
  # policy-rc.d forbids it). Only promtool is wanted: stop the server and keep it from starting.
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  if [[ -x /etc/init.d/prometheus ]]; then
    as_root /etc/init.d/prometheus stop </dev/null >/dev/null 2>&1 || true
    as_root update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  promtool_bin >/dev/null || die "prometheus installed but promtool still not found"
}

ensure_promtool
promtool=$(promtool_bin)
cd "$DEPLOY"
"$promtool" check config prometheus.yml >&2
"$promtool" check rules alerts.yml >&2
"$promtool" test rules alerts_test.yml >&2

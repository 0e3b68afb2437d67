#!/usr/bin/env bash
# Keeps each library behind the one package that wraps it (see the README's
# "How the code is laid out"): pgx in eventstore/ and dispatch/, clickhouse-go
# in projections/, httprouter in http/, and the root package on the standard
# library and uuid alone. cmd/ (the wiring) and internal/testenv may use all.
set -euo pipefail
cd "$(dirname "$0")/.."
module=$(go list -m)
fail=0

check() { # package-pattern library allowed-package-regex
  local lib=$2 allowed=$3
  while read -r pkg imports; do
    [[ $pkg =~ $allowed ]] && continue
    for imp in $imports; do
      if [[ $imp == "$lib"* ]]; then
        echo "check-deps: $pkg imports $imp; only packages matching $allowed may" >&2
        fail=1
      fi
    done
  done < <(go list -f '{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./...)
}

check ./... github.com/jackc/pgx "^$module/(eventstore|dispatch|cmd/.*|internal/testenv)$"
check ./... github.com/ClickHouse/clickhouse-go "^$module/(projections|cmd/.*|bench)$"
check ./... github.com/julienschmidt/httprouter "^$module/http$"
check ./... github.com/slack-go/slack "^$module/clients/slack$"
check ./... golang.org/x/oauth2 "^$module/clients/(oauth|oauth/oauthtest)$"
check ./... github.com/emersion "^$module/clients/(imapmail|imapmail/imapmailtest)$"

# The root domain package depends on nothing but the standard library and uuid.
while read -r dep; do
  case $dep in
    "$module" | github.com/google/uuid* | vendor/*) ;;
    *.*/*) echo "check-deps: the root package depends on $dep" >&2; fail=1 ;;
  esac
done < <(go list -deps "$module")

# The outbound address policy (and the webhook package built on it) is the
# standard library alone, so every client of a user-named host can use it.
for pkg in clients/egress clients/webhook; do
  while read -r dep; do
    case $dep in
      "$module/clients/egress" | "$module/clients/webhook" | vendor/*) ;;
      *.*/*) echo "check-deps: $pkg depends on $dep" >&2; fail=1 ;;
    esac
  done < <(go list -deps "$module/$pkg")
done

# The rule engine is pure: the standard library, uuid and the root package.
while read -r dep; do
  case $dep in
    "$module" | "$module/commands/automation" | github.com/google/uuid* | vendor/*) ;;
    *.*/*) echo "check-deps: automation depends on $dep" >&2; fail=1 ;;
  esac
done < <(go list -deps "$module/commands/automation")

# SLA policies are as pure: the rule engine's conditions and nothing else.
while read -r dep; do
  case $dep in
    "$module" | "$module/commands/automation" | "$module/commands/sla" | github.com/google/uuid* | vendor/*) ;;
    *.*/*) echo "check-deps: sla depends on $dep" >&2; fail=1 ;;
  esac
done < <(go list -deps "$module/commands/sla")

exit $fail

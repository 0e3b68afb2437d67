#!/usr/bin/env bash
# The import rules of the README's "How the code is laid out": which rooms
# each room may import (nothing imports upward in the flow), which rooms own
# each library (pgx, franz-go, clickhouse-go, httprouter, slack-go, oauth2,
# the mail libraries), that only clients/ (and client/, the API's Go client)
# makes outbound HTTP requests, and
# that the root package and the pure packages keep their few dependencies.
# cmd/ (the wiring) and bench/ may use all; tests may import more. chaos/ (the
# chaos suite) checks the system from outside: HTTP, pgx and clickhouse-go,
# and none of the project's rooms but the root package.
set -euo pipefail
cd "$(dirname "$0")/.."
module=$(go list -m)
fail=0

check() { # package-pattern library allowed-package-regex [nontest]
  local lib=$2 allowed=$3 format='{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}'
  [[ ${4:-} == nontest ]] && format='{{.ImportPath}} {{join .Imports " "}}'
  while read -r pkg imports; do
    [[ $pkg =~ $allowed ]] && continue
    for imp in $imports; do
      if [[ $imp == "$lib"* ]]; then
        echo "check-deps: $pkg imports $imp; only packages matching $allowed may" >&2
        fail=1
      fi
    done
  done < <(go list -f "$format" ./...)
}

check ./... github.com/jackc/pgx "^$module/(eventstore|store/.*|cmd/.*|internal/testenv|chaos)$"
check ./... github.com/twmb/franz-go "^$module/(relay|kafka|internal/testenv)$" nontest
check ./... github.com/ClickHouse/clickhouse-go "^$module/(projections|cmd/.*|bench|chaos)$"
check ./... github.com/julienschmidt/httprouter "^$module/http$"
check ./... github.com/slack-go/slack "^$module/clients/slack$"
check ./... golang.org/x/oauth2 "^$module/clients/(oauth|oauth/oauthtest)$"
check ./... github.com/emersion "^$module/clients/(imapmail|imapmail/imapmailtest)$"

# Rooms: the project rooms each top-level room may import, besides the root
# package and its own subfolders (the README table's third column).
declare -A may=(
  [http]="commands integrations clients/imapmail kafka internal/metricreg"
  [mailsync]="commands clients internal"
  [integrations]="commands clients internal"
  [commands]="clients/webhook"
  [commands/postgres]="commands eventstore store" # the command areas on Postgres: the one part of commands/ that knows storage
  [eventstore]="internal store"
  [relay]="eventstore kafka internal"
  [kafka]="internal/metricreg internal/poll"
  [projections]="kafka internal"
  [dispatch]="store/queues store/pg store/progress kafka clients internal integrations/linkedprofiles" # linkedprofiles: the lookup jobs handlers queue
  [clients]=""
  [store]="eventstore internal"
  [internal]="eventstore store kafka commands" # commands: testenv's Commands, for tests
  [chaos]=""                                    # the system from outside only
)
while read -r pkg imports; do
  rel=${pkg#"$module"}; rel=${rel#/}
  room=${rel%%/*}
  [[ $rel == commands/postgres || $rel == commands/postgres/* ]] && room=commands/postgres
  [[ -z $rel || -z ${may[$room]+set} ]] && continue
  for imp in $imports; do
    [[ $imp == "$module/"* ]] || continue
    dep=${imp#"$module/"}
    ok=0
    [[ $dep == "$room" || $dep == "$room/"* ]] && ok=1
    for allowed in ${may[$room]}; do
      [[ $dep == "$allowed" || $dep == "$allowed/"* ]] && ok=1
    done
    if ((!ok)); then
      echo "check-deps: $pkg imports $imp; $room/ may import only ${may[$room]:-nothing} besides the root package and its own subfolders" >&2
      fail=1
    fi
  done
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)

# The command areas import the shared commands package and the pure
# engines; the ticket commands also import the rules area (the compiled
# rule set), and nothing imports the other way. No area imports
# commands/postgres, which alone puts them on storage.
while read -r pkg imports; do
  [[ $pkg == "$module/commands/"* ]] || continue
  area=${pkg#"$module/commands/"}
  area=${area%%/*}
  [[ $area == postgres ]] && continue # the areas on Postgres: see the rooms map
  for imp in $imports; do
    [[ $imp == "$module/commands/"* ]] || continue
    dep=${imp#"$module/commands/"}
    dep=${dep%%/*}
    [[ $dep == automation || $dep == sla || $dep == "$area" ]] && continue
    [[ $area == tickets && $dep == rules ]] && continue
    echo "check-deps: $pkg imports $imp; a command area imports only commands, commands/automation and commands/sla (and tickets: rules)" >&2
    fail=1
  done
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./commands/...)

# Outbound HTTP requests are made by the clients alone (and by the load
# generator and the chaos suite, on loopback, and by client/, the API's own
# Go client, which calls the API it is pointed at): everyone else hands
# them an *http.Client at most.
if out=$(find . -name '*.go' ! -name '*_test.go' ! -path './clients/*' ! -path './client/*' ! -path './bench/*' ! -path './chaos/*' ! -path './.*' -print0 |
  xargs -0 grep -nE 'http\.(NewRequest|NewRequestWithContext|Get|Head|Post|PostForm)\(|\.Do\(req\b|RoundTrip\('); then
  echo "check-deps: outbound HTTP requests outside clients/:" >&2
  echo "$out" >&2
  fail=1
fi

# pure NAME PKG ALLOWED...: PKG (and what it imports) depends on the standard
# library and the ALLOWED import paths alone (a trailing * matches a prefix).
pure() {
  local name=$1 pkg=$2 dep allowed ok
  shift 2
  while read -r dep; do
    [[ $dep == vendor/* || $dep != *.*/* ]] && continue # the standard library
    ok=0
    for allowed in "$@"; do
      # shellcheck disable=SC2053 # $allowed is a pattern
      [[ $dep == $allowed ]] && ok=1
    done
    if ((!ok)); then
      echo "check-deps: $name depends on $dep" >&2
      fail=1
    fi
  done < <(go list -deps "$pkg")
}

# The root domain package depends on nothing but the standard library and uuid.
pure "the root package" "$module" "$module" 'github.com/google/uuid*'
# The outbound address policy (and the webhook package built on it) is the
# standard library alone, so every client of a user-named host can use it.
pure clients/egress "$module/clients/egress" "$module/clients/egress"
pure clients/webhook "$module/clients/webhook" "$module/clients/egress" "$module/clients/webhook"
# The API's Go client is for integrators' programs: the standard library and
# the webhook signature check alone, none of the server's rooms.
pure client "$module/client" "$module/client" "$module/clients/webhook" "$module/clients/egress"
# The rule engine is pure: the standard library, uuid and the root package.
pure automation "$module/commands/automation" "$module" "$module/commands/automation" 'github.com/google/uuid*'
# SLA policies are as pure: the rule engine's conditions and nothing else.
pure sla "$module/commands/sla" "$module" "$module/commands/automation" "$module/commands/sla" 'github.com/google/uuid*'

exit $fail

#!/usr/bin/env bash
# Private PostgreSQL, ClickHouse and Dovecot (IMAP) servers for development and tests. No Docker needed.
#
#   scripts/services.sh start  PROFILE   install what is missing, start the servers, create the
#                                        `helpdeskflow` databases (idempotent: running servers are kept)
#   scripts/services.sh stop   PROFILE   stop the servers (data is kept)
#   scripts/services.sh status PROFILE   show what runs; exit 0 if all servers are up, 3 if not
#   scripts/services.sh env    PROFILE   print `export HDF_...=...` lines: eval "$(scripts/services.sh env dev)"
#   scripts/services.sh clean  PROFILE   stop and delete the profile's data
#
# and, for the chaos suite (chaos profiles only; see chaos/ and the README's "Reliability"):
#
#   scripts/services.sh restart-postgres PROFILE   restart Postgres with a fast shutdown
#   scripts/services.sh stop-clickhouse  PROFILE   stop ClickHouse only (`start` brings it back)
#   scripts/services.sh backup           PROFILE   pg_basebackup into the profile's backup/ directory
#   scripts/services.sh restore          PROFILE   restore that backup into a new cluster on the
#                                                  restore port, replaying the WAL archive to its end
#
# PROFILE is `dev`, `test`, `bench`, `chaos` or `chaostest`:
#
#             Postgres   ClickHouse native   ClickHouse http   ClickHouse interserver   IMAP    IMAPS
#   dev       15432      19000               18123             19009                    19143   19993
#   test      25432      29000               28123             29009                    29143   29993
#   bench     30432      30900               30123             30909                    30143   30993
#   chaos     31432      31900               31123             31909                    -       -
#   chaostest 31532      31950               31150             31959                    -       -
#
# and SMTP (the mail loop, below): dev 19587, test 29587; the other profiles have none.
#
# The chaos profiles (`make chaos`, and the short run in `make test`) have no Dovecot, keep
# production durability, archive every WAL segment into <postgres area>/wal-archive
# (archive_command) and allow replication connections on loopback for pg_basebackup; `restore`
# starts the restored cluster on the next port (31433, 31533). They never reuse a server they did
# not start: the suite stops and restarts its servers, so a foreign one on their ports is an error.
#
# Every port is below 32768, outside Linux's ephemeral range (32768-60999), so an outgoing
# connection's source port can never hold one when a server starts.
#
# test trades Postgres's durability for speed (fsync, synchronous_commit and full_page_writes off);
# dev and bench keep production durability (all three on), so `make bench` measures what a 201
# promises, and pgbench runs against that same server.
#
# Everything listens on 127.0.0.1 only. Data, logs and pid files live in <repo>/.local/<profile>/
# (git-ignored), with one exception: PostgreSQL refuses to run as root, so when this script runs as
# root the server runs as the `postgres` system user (created if missing). That user must be able to
# reach its data directory; if it cannot traverse to <repo>/.local/<profile>/ (a clone under /root,
# say), the Postgres directory goes to /var/tmp/helpdeskflow-<hash of repo path>-<profile>/postgres
# instead, and .local/<profile>/postgres is a symlink to it. The same happens if the socket path would
# be too long for a Unix socket.
#
# The Postgres superuser is `postgres` with trust authentication (TCP on 127.0.0.1 and the Unix socket,
# which sits inside the data area, mode 0700). ClickHouse's only user is `default`, no password,
# loopback only. Its config is generated from scripts/clickhouse/*.xml.in on every start.
#
# If a port is already served by a server this checkout did not start (e.g. another clone's `test`
# profile) and that server accepts the same credentials, `start` reuses it and says so; `stop` never
# touches it. Anything else on the port is an error.
#
# Dovecot (Debian's dovecot-imapd) serves IMAP only: plain with STARTTLS on the IMAP port, implicit
# TLS on the IMAPS port, with a self-signed certificate for 127.0.0.1 and localhost generated once.
# Its config is rendered from scripts/dovecot/dovecot.conf.in on every start into
# .local/<profile>/dovecot/ (own base_dir, log dovecot.log there; /etc/dovecot is not read). Users,
# with plain-text passwords (passwd-file `users`):
#
#   agent@example.test    app-password-1
#   second@example.test   app-password-2
#
# Mail is kept as Maildir under .local/<profile>/dovecot/mail/<user>. Dovecot will not access mail
# as root: run as root, the script creates the system user `hdfmail` for it, and the Dovecot files
# move to /var/tmp/helpdeskflow-<hash>-<profile>/dovecot (symlinked) when hdfmail or dovecot cannot
# reach .local/<profile>/, as for Postgres. When `start` installs dovecot-imapd, it stops and
# disables the system-wide Dovecot the package may have started (ports 143/993); one that runs
# anyway does not conflict (other ports, other base_dir). `env` prints, for both profiles,
# HDF_TEST_IMAP_ADDR (plain/STARTTLS host:port), HDF_TEST_IMAPS_ADDR (implicit TLS),
# HDF_TEST_IMAP_CA (PEM of the certificate to trust), HDF_TEST_IMAP_USER and HDF_TEST_IMAP_PASSWORD
# (the first user above).
#
# The mail loop (dev and test only): a private Postfix (Debian's postfix, installed without
# prompts: debconf is preseeded with "No configuration", so the package sets up no system-wide
# instance, and the system postfix service is disabled like the other packages' services) listens
# on 127.0.0.1 at the SMTP port, offers STARTTLS with the Dovecot certificate and AUTH against the
# IMAP users, accepts mail for example.test only (nothing is relayed elsewhere) and delivers it
# through LMTP into the same Maildirs the IMAP server serves; user+folder@example.test lands in
# the folder `folder` (made if missing). The LMTP server is a second Dovecot instance (package
# dovecot-lmtpd) beside the IMAP one, so the loop starts on a profile whose IMAP server already
# runs without restarting it. Both run from .local/<profile>/smtp/ (postfix/: configuration rendered
# from scripts/postfix/*.in on every start and postfix.log; queue/, data/; lmtp/: configuration rendered
# from scripts/dovecot/lmtp.conf.in, sockets and dovecot.log), never from /etc/postfix; like the others they move to
# /var/tmp/helpdeskflow-<hash>-<profile>/smtp when the postfix user cannot reach .local/. Postfix
# needs root (sudo -n is used otherwise). If the SMTP port is served by a server this checkout did
# not start, it is reused; if the IMAP server is another checkout's, the loop cannot reach its
# Maildirs and `start` fails. `env` prints HDF_TEST_SMTP_ADDR (host:port, STARTTLS or plain), and
# for dev HDF_EXTRA_CA_FILE (the certificate of both servers, which `helpdeskflow dev` trusts).
#
# Messages go to stderr; only `env` writes to stdout.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd -P)
readonly SCRIPT_DIR REPO_DIR
readonly DB_NAME=helpdeskflow
readonly WAIT_SECONDS=60

# The caller's libpq environment must not redirect our own psql calls.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSERVICEFILE PGOPTIONS PGDATA PGPASSWORD PGSSLMODE

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
readonly COMMAND=$1 PROFILE=$2

case $PROFILE in
  dev)  PG_PORT=15432 CH_TCP_PORT=19000 CH_HTTP_PORT=18123 CH_INTERSERVER_PORT=19009 IMAP_PORT=19143 IMAPS_PORT=19993 SMTP_PORT=19587 ;;
  test) PG_PORT=25432 CH_TCP_PORT=29000 CH_HTTP_PORT=28123 CH_INTERSERVER_PORT=29009 IMAP_PORT=29143 IMAPS_PORT=29993 SMTP_PORT=29587 ;;
  bench) PG_PORT=30432 CH_TCP_PORT=30900 CH_HTTP_PORT=30123 CH_INTERSERVER_PORT=30909 IMAP_PORT=30143 IMAPS_PORT=30993 ;;
  chaos) PG_PORT=31432 CH_TCP_PORT=31900 CH_HTTP_PORT=31123 CH_INTERSERVER_PORT=31909 IMAP_PORT="" IMAPS_PORT="" ;;
  chaostest) PG_PORT=31532 CH_TCP_PORT=31950 CH_HTTP_PORT=31150 CH_INTERSERVER_PORT=31959 IMAP_PORT="" IMAPS_PORT="" ;;
  *) echo "services.sh: unknown profile '$PROFILE' (want dev, test, bench, chaos or chaostest)" >&2; usage ;;
esac
readonly PG_PORT CH_TCP_PORT CH_HTTP_PORT CH_INTERSERVER_PORT IMAP_PORT IMAPS_PORT
# The mail loop (Postfix + LMTP) runs on the profiles with an SMTP port only.
readonly SMTP_PORT=${SMTP_PORT:-}
# The chaos profiles: no Dovecot, WAL archiving, a restore port (see the header).
CHAOS=""
if [[ $PROFILE == chaos || $PROFILE == chaostest ]]; then CHAOS=yes; fi
readonly CHAOS RESTORE_PORT=$((PG_PORT + 1))

readonly LOCAL_DIR="$REPO_DIR/.local/$PROFILE"
readonly APP_DATA_DIR="$LOCAL_DIR/app"
readonly CH_DIR="$LOCAL_DIR/clickhouse"
readonly CH_PID_FILE="$CH_DIR/clickhouse-server.pid"
readonly PG_LINK="$LOCAL_DIR/postgres"
REPO_HASH=$(printf '%s' "$REPO_DIR" | sha256sum | cut -c1-12)
readonly PG_FALLBACK="/var/tmp/helpdeskflow-$REPO_HASH-$PROFILE/postgres"
readonly DC_LINK="$LOCAL_DIR/dovecot"
readonly DC_FALLBACK="/var/tmp/helpdeskflow-$REPO_HASH-$PROFILE/dovecot"
readonly DC_MAIL_USER=hdfmail
readonly PF_LINK="$LOCAL_DIR/smtp"
readonly PF_FALLBACK="/var/tmp/helpdeskflow-$REPO_HASH-$PROFILE/smtp"
# The IMAP test users (see the header); the first is the one `env` prints.
readonly IMAP_USERS=("agent@example.test:app-password-1" "second@example.test:app-password-2")

log() { printf 'services.sh[%s]: %s\n' "$PROFILE" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Print the last lines of each existing log file given, for failure reports.
show_logs() {
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2 || true
  done
}

# True if pid is a live process. A zombie does not count: where PID 1 does not reap orphans (some
# containers) a dead daemon stays a zombie, and kill -0 would still succeed.
pid_alive() {
  local pid=$1 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# True if something accepts TCP connections on 127.0.0.1:port.
port_open() {
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Binaries and packages

# Directory of the PostgreSQL server binaries: $HDF_PG_BIN, else the major version the data
# directory was created with, else 15, else the newest installed, else initdb on PATH.
pg_bin_dir() {
  local want="" d
  if [[ -n ${HDF_PG_BIN:-} ]]; then
    [[ -x $HDF_PG_BIN/initdb ]] && { echo "$HDF_PG_BIN"; return 0; }
    return 1
  fi
  if [[ -n ${PG_DATA:-} && -f ${PG_DATA}/PG_VERSION ]]; then
    want=$(cat "$PG_DATA/PG_VERSION")
    [[ -x /usr/lib/postgresql/$want/bin/initdb ]] && { echo "/usr/lib/postgresql/$want/bin"; return 0; }
  fi
  [[ -x /usr/lib/postgresql/15/bin/initdb ]] && { echo /usr/lib/postgresql/15/bin; return 0; }
  d=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1)
  [[ -n $d ]] && { dirname "$d"; return 0; }
  d=$(command -v initdb 2>/dev/null) && { dirname "$d"; return 0; }
  return 1
}

ch_server_bin() {
  local b
  for b in "$(command -v clickhouse-server 2>/dev/null || true)" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
    [[ -n $b && -x $b ]] && { echo "$b"; return 0; }
  done
  return 1
}

dovecot_bin() {
  local b
  for b in /usr/sbin/dovecot "$(command -v dovecot 2>/dev/null || true)"; do
    [[ -n $b && -x $b ]] && { echo "$b"; return 0; }
  done
  return 1
}

# The IMAP server itself comes in dovecot-core; dovecot-imapd adds the imap binary.
dovecot_installed() {
  dovecot_bin >/dev/null && [[ -x /usr/lib/dovecot/imap && -x /usr/lib/dovecot/imap-login ]]
}

# Postfix's own commands (postfix, postconf) and its daemons.
postfix_installed() {
  [[ -x /usr/sbin/postfix && -x /usr/sbin/postconf && -x /usr/lib/postfix/sbin/master ]]
}

ch_client_bin() {
  local b
  for b in "$(command -v clickhouse-client 2>/dev/null || true)" /usr/bin/clickhouse-client; do
    [[ -n $b && -x $b ]] && { echo "$b"; return 0; }
  done
  return 1
}

as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "need root to run: $*"
  fi
}

# Install whatever is missing (Debian/Ubuntu). Does nothing, not even apt-get update, when all is there.
ensure_packages() {
  local missing=() p
  ch_server_bin >/dev/null || missing+=(clickhouse-server)
  ch_client_bin >/dev/null || missing+=(clickhouse-client)
  pg_bin_dir >/dev/null || missing+=(postgresql-15)
  [[ -e /usr/share/zoneinfo/UTC ]] || missing+=(tzdata)
  command -v flock >/dev/null || missing+=(util-linux)
  [[ -n $CHAOS ]] || dovecot_installed || missing+=(dovecot-imapd)
  [[ -z $SMTP_PORT ]] || [[ -x /usr/lib/dovecot/lmtp ]] || missing+=(dovecot-lmtpd)
  [[ -z $SMTP_PORT ]] || postfix_installed || missing+=(postfix)
  command -v openssl >/dev/null || missing+=(openssl)
  ((${#missing[@]} == 0)) && return 0

  command -v apt-get >/dev/null || die "missing ${missing[*]}, and there is no apt-get here: install them by hand"
  log "installing ${missing[*]} with apt-get (log: /tmp/helpdeskflow-apt.log)"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600)
  # Postfix would ask what kind of mail server this is: "No configuration" writes no
  # /etc/postfix/main.cf, so the package's own instance cannot even start.
  if [[ " ${missing[*]} " == *" postfix "* ]]; then
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections \
      || die "could not preseed debconf for postfix"
  fi
  if ! { as_root "${apt[@]}" update && as_root "${apt[@]}" install --no-install-recommends "${missing[@]}"; } \
      </dev/null >/tmp/helpdeskflow-apt.log 2>&1; then
    show_logs /tmp/helpdeskflow-apt.log
    die "apt-get failed"
  fi

  # The packages enable system-wide servers (ClickHouse on 9000/8123/9009, Postgres on 5432, Dovecot
  # on 143/993). Ours use other ports, so they do not conflict, but nobody asked for them: stop and
  # disable the ones this run just installed. (Without systemd, e.g. in a container, the package
  # could not start them, except Dovecot, whose SysV script runs where no policy-rc.d forbids it.)
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    for p in "${missing[@]}"; do
      case $p in
        clickhouse-server) as_root systemctl disable --now clickhouse-server >/dev/null 2>&1 || true ;;
        postgresql-15) as_root systemctl disable --now postgresql >/dev/null 2>&1 || true ;;
        dovecot-imapd | dovecot-lmtpd) as_root systemctl disable --now dovecot.socket dovecot.service >/dev/null 2>&1 || true ;;
        postfix) as_root systemctl disable --now postfix.service >/dev/null 2>&1 || true ;;
      esac
    done
  else
    if [[ " ${missing[*]} " == *" dovecot-"* && -x /etc/init.d/dovecot ]]; then
      as_root /etc/init.d/dovecot stop </dev/null >/dev/null 2>&1 || true
      as_root update-rc.d dovecot disable >/dev/null 2>&1 || true
    fi
    if [[ " ${missing[*]} " == *" postfix "* && -x /etc/init.d/postfix ]]; then
      as_root /etc/init.d/postfix stop </dev/null >/dev/null 2>&1 || true
      as_root update-rc.d postfix disable >/dev/null 2>&1 || true
    fi
  fi
  if ! { ch_server_bin && ch_client_bin && pg_bin_dir && { [[ -n $CHAOS ]] || dovecot_installed; } && command -v openssl; } >/dev/null \
      || { [[ -n $SMTP_PORT ]] && ! { postfix_installed && [[ -x /usr/lib/dovecot/lmtp ]]; }; }; then
    die "packages installed but binaries still not found"
  fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

PG_AREA="" PG_DATA="" PG_RUN="" PG_LOG="" PG_OS_USER=""

# Decide where the Postgres files live (see the header). A decision made by an earlier start sticks:
# .local/<profile>/postgres is then either the directory or a symlink to the /var/tmp fallback.
resolve_pg_area() {
  local creating=${1:-no}
  if ((EUID == 0)); then PG_OS_USER=postgres; else PG_OS_USER=$(id -un); fi
  if [[ -L $PG_LINK ]]; then
    PG_AREA=$(readlink "$PG_LINK")
  elif [[ -d $PG_LINK || $creating != yes ]]; then
    PG_AREA=$PG_LINK
  else
    PG_AREA=$PG_LINK
    local reason=""
    if ((EUID == 0)) && ! (cd / && runuser -u "$PG_OS_USER" -- test -x "$LOCAL_DIR" -a -r "$LOCAL_DIR"); then
      reason="user $PG_OS_USER cannot traverse $LOCAL_DIR"
    elif (($(printf '%s' "$PG_LINK/run/.s.PGSQL.$PG_PORT" | wc -c) > 100)); then
      reason="the Unix socket path under $LOCAL_DIR would be too long"
    fi
    if [[ -n $reason ]]; then
      log "$reason: keeping the Postgres files in $PG_FALLBACK (symlinked from $PG_LINK)"
      mkdir -p "$PG_FALLBACK"
      ln -sfn "$PG_FALLBACK" "$PG_LINK"
      PG_AREA=$PG_FALLBACK
    fi
  fi
  PG_DATA="$PG_AREA/data"
  PG_RUN="$PG_AREA/run"
  PG_LOG="$PG_AREA/postgres.log"
}

# Run a command as the OS user that owns the cluster, from a directory it can enter.
as_pg_user() {
  if ((EUID == 0)); then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    "$@"
  fi
}

ensure_pg_os_user() {
  ((EUID == 0)) || return 0
  id -u postgres >/dev/null 2>&1 && return 0
  log "creating system user postgres"
  useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
    --shell /usr/sbin/nologin --comment "PostgreSQL administrator" postgres
}

pg_postmaster_pid() {
  [[ -n $PG_DATA && -r $PG_DATA/postmaster.pid ]] && head -n 1 "$PG_DATA/postmaster.pid"
}

pg_own_running() {
  local pid
  pid=$(pg_postmaster_pid 2>/dev/null) || return 1
  pid_alive "$pid" && grep -q '^postgres' "/proc/$pid/comm" 2>/dev/null
}

# psql against our server as the superuser, over TCP.
pg_psql() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

pg_answers() {
  pg_psql -d postgres -tAc 'SELECT 1' >/dev/null 2>&1
}

pg_write_config() {
  local conf="$PG_DATA/helpdeskflow.conf"
  {
    echo "# Written by scripts/services.sh on every start; edit the script, not this file."
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $PG_PORT"
    echo "unix_socket_directories = '$PG_RUN'"
    echo "unix_socket_permissions = 0700"
    echo "max_connections = 300"
    echo "idle_in_transaction_session_timeout = '60s'"
    echo "timezone = 'UTC'"
    echo "log_timezone = 'UTC'"
    echo "logging_collector = off"
    echo "# Young tables are analyzed within seconds of growing, so the plans prepared while they"
    echo "# were tiny (sequential scans) are replaced in the first minute, not after it."
    echo "autovacuum_naptime = '10s'"
    if [[ -n $CHAOS ]]; then
      echo "# The chaos suite's backup drill: every WAL segment archived, pg_basebackup allowed."
      echo "wal_level = replica"
      echo "archive_mode = on"
      echo "archive_command = 'test ! -f $PG_AREA/wal-archive/%f && cp %p $PG_AREA/wal-archive/%f'"
      echo "max_wal_senders = 4"
    fi
    if [[ $PROFILE == test ]]; then
      echo "# Throwaway test data: trade durability for speed."
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    else
      echo "# Production durability: a commit is on disk before it is acknowledged."
      echo "fsync = on"
      echo "synchronous_commit = on"
      echo "full_page_writes = on"
    fi
  } >"$conf"
  cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by scripts/services.sh on every start. Trust, but only on loopback and on the Unix socket,
# whose directory only the server's OS user (and root) can enter.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF
  if [[ -n $CHAOS ]]; then
    printf 'local   replication  all                  trust\nhost    replication  all   127.0.0.1/32   trust\n' >>"$PG_DATA/pg_hba.conf"
    mkdir -p "$PG_AREA/wal-archive"
    if ((EUID == 0)); then chown "$PG_OS_USER:" "$PG_AREA/wal-archive"; fi
  fi
  grep -q "^include_if_exists = 'helpdeskflow.conf'" "$PG_DATA/postgresql.conf" \
    || printf "\n# Project settings (scripts/services.sh)\ninclude_if_exists = 'helpdeskflow.conf'\n" >>"$PG_DATA/postgresql.conf"
  if ((EUID == 0)); then chown "$PG_OS_USER:" "$conf" "$PG_DATA/pg_hba.conf"; fi
}

pg_initdb() {
  local locale_args=(--no-locale)
  if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
    locale_args=(--locale=C.UTF-8)
  fi
  log "initdb $PG_DATA"
  as_pg_user "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 "${locale_args[@]}" \
    >"$PG_AREA/initdb.log" 2>&1 || { show_logs "$PG_AREA/initdb.log"; die "initdb failed"; }
}

start_postgres() {
  ensure_pg_os_user
  resolve_pg_area
  PG_BIN=$(pg_bin_dir) || die "no PostgreSQL server binaries found"

  if pg_own_running; then
    log "postgres already running (pid $(pg_postmaster_pid)) on 127.0.0.1:$PG_PORT"
  elif port_open "$PG_PORT"; then
    pg_answers || die "port $PG_PORT is in use by something that is not a PostgreSQL accepting user postgres without a password; free it"
    [[ -z $CHAOS ]] || die "port $PG_PORT is served by a PostgreSQL this checkout did not start; the chaos suite restarts its own server only: free it"
    log "postgres: port $PG_PORT is served by a PostgreSQL this checkout did not start; reusing it (stop will not touch it)"
  else
    resolve_pg_area yes
    mkdir -p "$PG_AREA" "$PG_RUN"
    if ((EUID == 0)); then chown "$PG_OS_USER:" "$PG_AREA" "$PG_RUN"; fi
    chmod 0700 "$PG_AREA" "$PG_RUN"
    [[ -f $PG_DATA/PG_VERSION ]] || pg_initdb
    PG_BIN=$(pg_bin_dir) || die "no PostgreSQL binaries for the version in $PG_DATA/PG_VERSION"
    pg_write_config
    # A postmaster.pid left by a crash whose pid is now a zombie would make Postgres believe
    # it is still running; the pid is not alive (checked above), so the file is stale.
    rm -f "$PG_DATA/postmaster.pid"
    log "starting postgres $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data $PG_DATA, log $PG_LOG)"
    # 9>&-: the server must not inherit the lock (it would hold it for its lifetime).
    if ! as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$WAIT_SECONDS" start \
        >/dev/null 2>"$PG_AREA/pg_ctl.log" 9>&-; then
      show_logs "$PG_AREA/pg_ctl.log" "$PG_LOG"
      die "postgres did not start within ${WAIT_SECONDS}s"
    fi
  fi

  local i
  for ((i = 0; i < WAIT_SECONDS; i++)); do
    pg_answers && break
    sleep 1
  done
  pg_answers || { show_logs "$PG_LOG"; die "postgres on port $PG_PORT does not answer queries"; }

  if [[ -z $(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
    log "creating postgres database $DB_NAME"
    pg_psql -d postgres -c "CREATE DATABASE $DB_NAME" >/dev/null 2>&1 \
      || [[ -n $(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]] \
      || die "could not create postgres database $DB_NAME"
  fi
}

stop_postgres() {
  resolve_pg_area
  if ! pg_own_running; then
    log "postgres not running (from this checkout)"
    return 0
  fi
  PG_BIN=$(pg_bin_dir) || die "no PostgreSQL binaries found to stop the server with"
  log "stopping postgres (pid $(pg_postmaster_pid))"
  if ! as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$WAIT_SECONDS" stop >/dev/null 2>"$PG_AREA/pg_ctl.log"; then
    show_logs "$PG_AREA/pg_ctl.log" "$PG_LOG"
    die "postgres did not stop within ${WAIT_SECONDS}s"
  fi
}

# ---------------------------------------------------------------------------------------------
# ClickHouse

ch_query() {
  "$CH_CLIENT" --host 127.0.0.1 --port "$CH_TCP_PORT" --user default --query "$1"
}

ch_answers() {
  ch_query 'SELECT 1' >/dev/null 2>&1
}

ch_pid() {
  [[ -r $CH_PID_FILE ]] && tr -dc '0-9' <"$CH_PID_FILE"
}

# Our server: live pid from our pid file, and it was started with our config file.
ch_own_running() {
  local pid
  pid=$(ch_pid 2>/dev/null) || return 1
  pid_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--config-file=$CH_DIR/config.xml"
}

# Escape a value for XML text and for use as a bash replacement string.
xml_escape() {
  local s=$1
  s=${s//&/&amp;}
  s=${s//</&lt;}
  s=${s//>/&gt;}
  printf '%s' "$s"
}

# Render scripts/clickhouse/NAME.in into $CH_DIR/NAME.
ch_render() {
  local name=$1 text dir
  text=$(<"$SCRIPT_DIR/clickhouse/$name.in")
  dir=$(xml_escape "$CH_DIR")
  text=${text//@CH_DIR@/"$dir"}
  text=${text//@TCP_PORT@/"$CH_TCP_PORT"}
  text=${text//@HTTP_PORT@/"$CH_HTTP_PORT"}
  text=${text//@INTERSERVER_PORT@/"$CH_INTERSERVER_PORT"}
  [[ ! $text =~ @[A-Z_]+@ ]] || die "unreplaced placeholder in scripts/clickhouse/$name.in"
  printf '%s\n' "$text" >"$CH_DIR/$name.tmp"
  mv -f "$CH_DIR/$name.tmp" "$CH_DIR/$name"
}

start_clickhouse() {
  local ch_server started=""
  ch_server=$(ch_server_bin) || die "clickhouse-server not found"
  CH_CLIENT=$(ch_client_bin) || die "clickhouse-client not found"
  local ch_logs=("$CH_DIR/log/stderr.log" "$CH_DIR/log/stdout.log" "$CH_DIR/log/clickhouse-server.err.log" "$CH_DIR/log/clickhouse-server.log")

  if ch_own_running; then
    log "clickhouse already running (pid $(ch_pid)) on 127.0.0.1:$CH_TCP_PORT"
  elif port_open "$CH_TCP_PORT"; then
    ch_answers || die "port $CH_TCP_PORT is in use by something that is not a ClickHouse accepting user default without a password; free it"
    [[ -z $CHAOS ]] || die "port $CH_TCP_PORT is served by a ClickHouse this checkout did not start; the chaos suite stops its own server only: free it"
    log "clickhouse: port $CH_TCP_PORT is served by a ClickHouse this checkout did not start; reusing it (stop will not touch it)"
  else
    local p
    for p in "$CH_HTTP_PORT" "$CH_INTERSERVER_PORT"; do
      port_open "$p" && die "port $p (clickhouse http/interserver) is in use by another process; free it"
    done
    mkdir -p "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/log"
    ch_render config.xml
    ch_render users.xml
    log "starting clickhouse $("$CH_CLIENT" --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -n 1) on 127.0.0.1:$CH_TCP_PORT (http $CH_HTTP_PORT; data $CH_DIR)"
    # Not --daemon: 18.16's daemon mode closes stderr before reading the config, so a config error
    # vanishes without a trace, and it refuses to start while its own pid file names a "live"
    # process (a zombie counts). Instead: background it in its own session (setsid, so a Ctrl-C
    # aimed at `make test` does not reach it) with output kept in log/, and record the pid
    # ourselves. A non-interactive bash keeps background jobs in its process group, so setsid
    # does not fork and $! is the server's pid. 9>&-: see start_postgres.
    (cd / && exec setsid "$ch_server" --config-file="$CH_DIR/config.xml") \
      </dev/null >>"$CH_DIR/log/stdout.log" 2>>"$CH_DIR/log/stderr.log" 9>&- &
    started=$!
    echo "$started" >"$CH_PID_FILE"
  fi

  local i
  for ((i = 0; i < WAIT_SECONDS; i++)); do
    ch_answers && break
    if [[ -n $started ]] && ! pid_alive "$started"; then
      show_logs "${ch_logs[@]}"
      die "clickhouse-server (pid $started) exited during startup"
    fi
    sleep 1
  done
  ch_answers || { show_logs "${ch_logs[@]}"; die "clickhouse on port $CH_TCP_PORT did not answer within ${WAIT_SECONDS}s"; }

  ch_query "CREATE DATABASE IF NOT EXISTS $DB_NAME" || die "could not create clickhouse database $DB_NAME"
}

stop_clickhouse() {
  local pid i
  if ! ch_own_running; then
    log "clickhouse not running (from this checkout)"
    rm -f "$CH_PID_FILE"
    return 0
  fi
  pid=$(ch_pid)
  log "stopping clickhouse (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < WAIT_SECONDS; i++)); do
    pid_alive "$pid" || break
    sleep 1
  done
  if pid_alive "$pid"; then
    log "clickhouse did not stop within ${WAIT_SECONDS}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$CH_PID_FILE"
}

# ---------------------------------------------------------------------------------------------
# Dovecot (IMAP)

DC_AREA="" DC_CONF="" DC_RUN="" DC_LOG="" DC_PID_FILE=""

ensure_dc_os_user() {
  ((EUID == 0)) || return 0
  id -u "$DC_MAIL_USER" >/dev/null 2>&1 && return 0
  log "creating system user $DC_MAIL_USER (owner of the test IMAP mail)"
  useradd --system --user-group --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin --comment "helpdeskflow test IMAP mail (scripts/services.sh)" "$DC_MAIL_USER"
}

# Decide where the Dovecot files live, as resolve_pg_area does for Postgres: the mail user and
# Dovecot's own `dovecot` user (its auth process reads the users file) must reach them, and the
# Unix sockets in base_dir need a short path.
resolve_dc_area() {
  local creating=${1:-no}
  if [[ -L $DC_LINK ]]; then
    DC_AREA=$(readlink "$DC_LINK")
  elif [[ -d $DC_LINK || $creating != yes ]]; then
    DC_AREA=$DC_LINK
  else
    DC_AREA=$DC_LINK
    local reason="" u
    if ((EUID == 0)); then
      for u in "$DC_MAIL_USER" dovecot; do
        if ! (cd / && runuser -u "$u" -- test -x "$LOCAL_DIR" -a -r "$LOCAL_DIR"); then
          reason="user $u cannot traverse $LOCAL_DIR"
          break
        fi
      done
    fi
    if [[ -z $reason ]] && (($(printf '%s' "$DC_LINK/run/token-login/imap-urlauth" | wc -c) > 100)); then
      reason="the Unix socket paths under $LOCAL_DIR would be too long"
    fi
    if [[ -n $reason ]]; then
      log "$reason: keeping the Dovecot files in $DC_FALLBACK (symlinked from $DC_LINK)"
      mkdir -p "$DC_FALLBACK"
      chmod 0755 "$(dirname "$DC_FALLBACK")"
      ln -sfn "$DC_FALLBACK" "$DC_LINK"
      DC_AREA=$DC_FALLBACK
    fi
  fi
  DC_CONF="$DC_AREA/dovecot.conf"
  DC_RUN="$DC_AREA/run"
  DC_LOG="$DC_AREA/dovecot.log"
  DC_PID_FILE="$DC_RUN/master.pid"
}

dc_pid() {
  [[ -n $DC_PID_FILE && -r $DC_PID_FILE ]] && tr -dc '0-9' <"$DC_PID_FILE"
}

# Our server: live pid from base_dir/master.pid, started with our config file.
dc_own_running() {
  local pid
  pid=$(dc_pid 2>/dev/null) || return 1
  pid_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-c $DC_CONF"
}

# True if 127.0.0.1:port speaks IMAP and accepts the first test user's LOGIN.
imap_answers() {
  local user=${IMAP_USERS[0]%%:*} pass=${IMAP_USERS[0]#*:}
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    IFS= read -r -t 4 line <&3 || exit 1
    [[ $line == "* OK"* ]] || exit 1
    printf "a LOGIN \"%s\" \"%s\"\r\nb LOGOUT\r\n" "$2" "$3" >&3
    while IFS= read -r -t 4 line <&3; do
      case $line in
        "a OK"*) exit 0 ;;
        "a NO"* | "a BAD"*) exit 1 ;;
      esac
    done
    exit 1' _ "$1" "$user" "$pass" 2>/dev/null
}

# The self-signed certificate (and key) for 127.0.0.1 and localhost, made once.
dc_ensure_cert() {
  [[ -s $DC_AREA/cert.pem && -s $DC_AREA/key.pem ]] && return 0
  log "generating a self-signed TLS certificate for 127.0.0.1/localhost in $DC_AREA"
  (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -addext "extendedKeyUsage=serverAuth" -keyout "$DC_AREA/key.pem.tmp" -out "$DC_AREA/cert.pem.tmp") \
    >"$DC_AREA/openssl.log" 2>&1 || { show_logs "$DC_AREA/openssl.log"; die "could not generate the Dovecot certificate"; }
  chmod 0644 "$DC_AREA/cert.pem.tmp"
  mv -f "$DC_AREA/key.pem.tmp" "$DC_AREA/key.pem"
  mv -f "$DC_AREA/cert.pem.tmp" "$DC_AREA/cert.pem"
}

# Render scripts/dovecot/dovecot.conf.in and the users file into $DC_AREA.
dc_write_config() {
  local text mail_uid mail_gid internal_user internal_group login_user mail_user entry
  if ((EUID == 0)); then
    mail_user=$DC_MAIL_USER internal_user=dovecot internal_group=dovecot login_user=dovenull
    if ! { id -u dovecot && id -u dovenull; } >/dev/null 2>&1; then
      die "the users dovecot and dovenull are missing (the dovecot-core package creates them): reinstall dovecot-core"
    fi
  else
    mail_user=$(id -un) internal_user=$(id -un) internal_group=$(id -gn) login_user=$(id -un)
  fi
  mail_uid=$(id -u "$mail_user") mail_gid=$(id -g "$mail_user")
  text=$(<"$SCRIPT_DIR/dovecot/dovecot.conf.in")
  text=${text//@PROFILE@/"$PROFILE"}
  text=${text//@DIR@/"$DC_AREA"}
  text=${text//@RUN_DIR@/"$DC_RUN"}
  text=${text//@IMAP_PORT@/"$IMAP_PORT"}
  text=${text//@IMAPS_PORT@/"$IMAPS_PORT"}
  text=${text//@MAIL_USER@/"$mail_user"}
  text=${text//@MAIL_UID@/"$mail_uid"}
  text=${text//@MAIL_GID@/"$mail_gid"}
  text=${text//@INTERNAL_USER@/"$internal_user"}
  text=${text//@INTERNAL_GROUP@/"$internal_group"}
  text=${text//@LOGIN_USER@/"$login_user"}
  [[ ! $text =~ @[A-Z_]+@ ]] || die "unreplaced placeholder in scripts/dovecot/dovecot.conf.in"
  printf '# Written by scripts/services.sh on every start; edit scripts/dovecot/dovecot.conf.in.\n%s\n' "$text" >"$DC_CONF.tmp"
  mv -f "$DC_CONF.tmp" "$DC_CONF"
  {
    for entry in "${IMAP_USERS[@]}"; do
      printf '%s:{PLAIN}%s::::::\n' "${entry%%:*}" "${entry#*:}"
    done
  } >"$DC_AREA/users.tmp"
  chmod 0644 "$DC_AREA/users.tmp"
  mv -f "$DC_AREA/users.tmp" "$DC_AREA/users"
  cp -f "$DC_AREA/cert.pem" "$DC_AREA/ca.pem"
  mkdir -p "$DC_AREA/mail" "$DC_AREA/state"
  # Each user's Maildir exists before the first connection: Dovecot makes it lazily, and two
  # first CREATEs at once (parallel tests on a fresh store) race on it and one gets ALREADYEXISTS.
  for entry in "${IMAP_USERS[@]}"; do
    mkdir -p "$DC_AREA/mail/${entry%%:*}/Maildir/cur" "$DC_AREA/mail/${entry%%:*}/Maildir/new" \
      "$DC_AREA/mail/${entry%%:*}/Maildir/tmp"
  done
  chmod -R u=rwX,go= "$DC_AREA/mail"
  if ((EUID == 0)); then chown -R "$mail_user:" "$DC_AREA/mail"; fi
}

start_dovecot() {
  local started="" i
  ensure_dc_os_user
  resolve_dc_area
  DC_BIN=$(dovecot_bin) || die "dovecot not found"

  if dc_own_running; then
    log "dovecot already running (pid $(dc_pid)) on 127.0.0.1:$IMAP_PORT (imaps $IMAPS_PORT)"
  elif port_open "$IMAP_PORT"; then
    imap_answers "$IMAP_PORT" \
      || die "port $IMAP_PORT is in use by something that is not an IMAP server accepting the test user ${IMAP_USERS[0]%%:*}; free it"
    log "dovecot: port $IMAP_PORT is served by an IMAP server this checkout did not start; reusing it (stop will not touch it)"
    # Trust whatever certificate it presents on the IMAPS port.
    mkdir -p "$DC_AREA"
    openssl s_client -connect "127.0.0.1:$IMAPS_PORT" </dev/null 2>/dev/null | openssl x509 >"$DC_AREA/ca.pem.tmp" 2>/dev/null \
      || die "port $IMAPS_PORT does not serve TLS with a certificate (the IMAP server on $IMAP_PORT is reused)"
    mv -f "$DC_AREA/ca.pem.tmp" "$DC_AREA/ca.pem"
    return 0
  else
    port_open "$IMAPS_PORT" && die "port $IMAPS_PORT (imaps) is in use by another process; free it"
    resolve_dc_area yes
    mkdir -p "$DC_AREA" "$DC_RUN"
    chmod 0755 "$DC_AREA" "$DC_RUN"
    dc_ensure_cert
    dc_write_config
    # Dovecot refuses to start while base_dir/master.pid names a live process (a zombie counts);
    # ours is not alive (checked above), so the file is stale.
    rm -f "$DC_PID_FILE"
    log "starting dovecot $("$DC_BIN" --version | awk '{print $1}') on 127.0.0.1:$IMAP_PORT (imaps $IMAPS_PORT; data $DC_AREA, log $DC_LOG)"
    # Dovecot daemonizes itself (and calls setsid); setsid here too so the short-lived parent is
    # not in the caller's process group either. Config errors go to stderr before it forks.
    # 9>&-: see start_postgres.
    if ! (cd / && exec setsid "$DC_BIN" -c "$DC_CONF") </dev/null >"$DC_AREA/start.log" 2>&1 9>&-; then
      show_logs "$DC_AREA/start.log" "$DC_LOG"
      die "dovecot did not start"
    fi
    started=yes
  fi

  for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
    imap_answers "$IMAP_PORT" && break
    if [[ -n $started ]] && ((i % 10 == 9)) && ! dc_own_running; then
      show_logs "$DC_AREA/start.log" "$DC_LOG"
      die "dovecot exited during startup"
    fi
    sleep 0.1
  done
  imap_answers "$IMAP_PORT" || { show_logs "$DC_LOG"; die "dovecot on port $IMAP_PORT does not accept the test user within ${WAIT_SECONDS}s"; }
}

stop_dovecot() {
  local pid i
  resolve_dc_area
  if ! dc_own_running; then
    log "dovecot not running (from this checkout)"
    return 0
  fi
  pid=$(dc_pid)
  log "stopping dovecot (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then
    log "dovecot did not stop within ${WAIT_SECONDS}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
}

# ---------------------------------------------------------------------------------------------
# The mail loop: Postfix (SMTP) delivering through a Dovecot LMTP instance (dev and test only)

PF_AREA="" PF_DIR="" PF_LMTP_DIR="" PF_LMTP_RUN="" PF_LMTP_CONF=""

# Decide where the Postfix files live, as resolve_pg_area does for Postgres: the postfix user must
# reach its queue, and the LMTP instance's sockets need a short path.
resolve_pf_area() {
  local creating=${1:-no}
  if [[ -L $PF_LINK ]]; then
    PF_AREA=$(readlink "$PF_LINK")
  elif [[ -d $PF_LINK || $creating != yes ]]; then
    PF_AREA=$PF_LINK
  else
    PF_AREA=$PF_LINK
    local reason=""
    if ((EUID == 0)) && ! (cd / && runuser -u postfix -- test -x "$LOCAL_DIR" -a -r "$LOCAL_DIR"); then
      reason="user postfix cannot traverse $LOCAL_DIR"
    elif (($(printf '%s' "$PF_LINK/lmtp/run/token-login/tokenlogin" | wc -c) > 100)); then
      reason="the Unix socket paths under $LOCAL_DIR would be too long"
    fi
    if [[ -n $reason ]]; then
      log "$reason: keeping the Postfix files in $PF_FALLBACK (symlinked from $PF_LINK)"
      mkdir -p "$PF_FALLBACK"
      chmod 0755 "$(dirname "$PF_FALLBACK")"
      ln -sfn "$PF_FALLBACK" "$PF_LINK"
      PF_AREA=$PF_FALLBACK
    fi
  fi
  PF_DIR="$PF_AREA/postfix"
  PF_LMTP_DIR="$PF_AREA/lmtp"
  PF_LMTP_RUN="$PF_LMTP_DIR/run"
  PF_LMTP_CONF="$PF_LMTP_DIR/dovecot.conf"
}

# Our Postfix: its master runs with our configuration directory.
pf_own_running() {
  [[ -f $PF_DIR/main.cf ]] && as_root /usr/sbin/postfix -c "$PF_DIR" status >/dev/null 2>&1
}

pf_pid() {
  tr -dc '0-9' 2>/dev/null <"$PF_AREA/queue/pid/master.pid"
}

# Our LMTP Dovecot: live pid from its base_dir, started with its config file.
lmtp_own_running() {
  local pid
  pid=$(tr -dc '0-9' 2>/dev/null <"$PF_LMTP_RUN/master.pid") || return 1
  pid_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-c $PF_LMTP_CONF"
}

# True if 127.0.0.1:port greets like an SMTP server and answers EHLO.
smtp_answers() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    IFS= read -r -t 4 line <&3 || exit 1
    [[ $line == 220* ]] || exit 1
    printf "EHLO localhost\r\n" >&3
    while IFS= read -r -t 4 line <&3; do
      case $line in
        "250 "*) printf "QUIT\r\n" >&3; exit 0 ;;
        [45]*) exit 1 ;;
      esac
    done
    exit 1' _ "$1" 2>/dev/null
}

# Render a template: every @NAME@ replaced by the value given as NAME=value.
render_template() {
  local template=$1 out=$2 text pair
  shift 2
  text=$(<"$template")
  for pair in "$@"; do
    text=${text//@${pair%%=*}@/"${pair#*=}"}
  done
  [[ ! $text =~ @[A-Z_]+@ ]] || die "unreplaced placeholder in $template"
  printf '%s\n' "$text" >"$out.tmp"
  mv -f "$out.tmp" "$out"
}

start_lmtp() {
  local mail_user internal_user internal_group login_user i
  if lmtp_own_running; then
    log "dovecot lmtp already running (pid $(tr -dc '0-9' <"$PF_LMTP_RUN/master.pid"))"
    return 0
  fi
  if ((EUID == 0)); then
    mail_user=$DC_MAIL_USER internal_user=dovecot internal_group=dovecot login_user=dovenull
  else
    mail_user=$(id -un) internal_user=$(id -un) internal_group=$(id -gn) login_user=$(id -un)
  fi
  mkdir -p "$PF_LMTP_DIR/state" "$PF_LMTP_RUN"
  chmod 0755 "$PF_LMTP_DIR" "$PF_LMTP_RUN"
  render_template "$SCRIPT_DIR/dovecot/lmtp.conf.in" "$PF_LMTP_CONF" "PROFILE=$PROFILE" "RUN_DIR=$PF_LMTP_RUN" \
    "STATE_DIR=$PF_LMTP_DIR/state" "LOG=$PF_LMTP_DIR/dovecot.log" "USERS=$DC_AREA/users" "MAIL_DIR=$DC_AREA/mail" \
    "MAIL_USER=$mail_user" "MAIL_UID=$(id -u "$mail_user")" "MAIL_GID=$(id -g "$mail_user")" \
    "INTERNAL_USER=$internal_user" "INTERNAL_GROUP=$internal_group" "LOGIN_USER=$login_user"
  rm -f "$PF_LMTP_RUN/master.pid"
  log "starting dovecot lmtp (socket $PF_LMTP_RUN/lmtp, log $PF_LMTP_DIR/dovecot.log)"
  # As start_dovecot: it daemonizes itself; 9>&-: see start_postgres.
  if ! (cd / && exec setsid "$DC_BIN" -c "$PF_LMTP_CONF") </dev/null >"$PF_LMTP_DIR/start.log" 2>&1 9>&-; then
    show_logs "$PF_LMTP_DIR/start.log" "$PF_LMTP_DIR/dovecot.log"
    die "dovecot lmtp did not start"
  fi
  for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
    [[ -S $PF_LMTP_RUN/lmtp && -S $PF_LMTP_RUN/auth-smtp ]] && return 0
    sleep 0.1
  done
  show_logs "$PF_LMTP_DIR/start.log" "$PF_LMTP_DIR/dovecot.log"
  die "dovecot lmtp did not open its sockets within ${WAIT_SECONDS}s"
}

start_postfix() {
  local i
  if pf_own_running; then
    log "postfix already running (pid $(pf_pid)) on 127.0.0.1:$SMTP_PORT"
    return 0
  fi
  mkdir -p "$PF_DIR" "$PF_AREA/queue" "$PF_AREA/data"
  render_template "$SCRIPT_DIR/postfix/main.cf.in" "$PF_DIR/main.cf" "PROFILE=$PROFILE" "DIR=$PF_DIR" \
    "QUEUE_DIR=$PF_AREA/queue" "DATA_DIR=$PF_AREA/data" \
    "SMTP_PORT=$SMTP_PORT" "LMTP_SOCKET=$PF_LMTP_RUN/lmtp" "AUTH_SOCKET=$PF_LMTP_RUN/auth-smtp" \
    "CERT=$DC_AREA/cert.pem" "KEY=$DC_AREA/key.pem"
  render_template "$SCRIPT_DIR/postfix/master.cf.in" "$PF_DIR/master.cf" "SMTP_PORT=$SMTP_PORT"
  # Postfix wants root-owned configuration and queue top, and makes the rest itself.
  as_root chown root: "$PF_DIR" "$PF_DIR/main.cf" "$PF_DIR/master.cf" "$PF_AREA/queue"
  as_root chown postfix: "$PF_AREA/data"
  chmod 0755 "$PF_DIR" "$PF_AREA/queue"
  log "starting postfix $(/usr/sbin/postconf -d -h mail_version) on 127.0.0.1:$SMTP_PORT (config $PF_DIR, log $PF_DIR/postfix.log)"
  # `postfix start` runs the master in the background, in a session of its own. 9>&-: see
  # start_postgres.
  if ! (cd / && as_root /usr/sbin/postfix -c "$PF_DIR" start) </dev/null >"$PF_DIR/start.log" 2>&1 9>&-; then
    show_logs "$PF_DIR/start.log" "$PF_DIR/postfix.log"
    die "postfix did not start"
  fi
  for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
    smtp_answers "$SMTP_PORT" && return 0
    sleep 0.1
  done
  show_logs "$PF_DIR/start.log" "$PF_DIR/postfix.log"
  die "postfix on port $SMTP_PORT did not answer within ${WAIT_SECONDS}s"
}

# Start what is missing of the mail loop; what runs is kept.
start_smtp() {
  resolve_pf_area
  resolve_dc_area
  if pf_own_running && lmtp_own_running; then
    log "postfix already running (pid $(pf_pid)) on 127.0.0.1:$SMTP_PORT, delivering through dovecot lmtp"
    return 0
  fi
  if ! pf_own_running && port_open "$SMTP_PORT"; then
    smtp_answers "$SMTP_PORT" || die "port $SMTP_PORT is in use by something that is not an SMTP server; free it"
    log "smtp: port $SMTP_PORT is served by an SMTP server this checkout did not start; reusing it (stop will not touch it)"
    return 0
  fi
  dc_own_running || die "the IMAP server on port $IMAP_PORT was not started by this checkout, so the local SMTP server cannot deliver into its mailboxes; stop that server (or its checkout's profile) and start again"
  DC_BIN=$(dovecot_bin) || die "dovecot not found"
  resolve_pf_area yes
  mkdir -p "$PF_DIR"
  start_lmtp
  start_postfix
}

stop_smtp() {
  local pid i
  resolve_pf_area
  if pf_own_running; then
    log "stopping postfix (pid $(pf_pid))"
    as_root /usr/sbin/postfix -c "$PF_DIR" stop >/dev/null 2>&1 || log "postfix stop failed"
  else
    log "postfix not running (from this checkout)"
  fi
  if lmtp_own_running; then
    pid=$(tr -dc '0-9' <"$PF_LMTP_RUN/master.pid")
    log "stopping dovecot lmtp (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
      pid_alive "$pid" || break
      sleep 0.1
    done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
}

# ---------------------------------------------------------------------------------------------
# Commands

# Serialise start/stop/clean of one profile (two `make test` runs at once, say). Servers started
# while the lock is held must get `9>&-`, or they keep the lock until they exit.
take_lock() {
  mkdir -p "$LOCAL_DIR"
  exec 9>"$LOCAL_DIR/.services.lock"
  flock -w 300 9 || die "timed out waiting for another services.sh on this profile ($LOCAL_DIR/.services.lock)"
}

cmd_start() {
  ensure_packages
  take_lock
  start_postgres
  start_clickhouse
  if [[ -n $CHAOS ]]; then
    log "ready: postgres 127.0.0.1:$PG_PORT, clickhouse 127.0.0.1:$CH_TCP_PORT (http $CH_HTTP_PORT), database $DB_NAME"
    return 0
  fi
  start_dovecot
  local smtp=""
  if [[ -n $SMTP_PORT ]]; then
    start_smtp
    smtp=", smtp 127.0.0.1:$SMTP_PORT"
  fi
  if [[ $PROFILE == dev ]]; then mkdir -p "$APP_DATA_DIR"; fi
  log "ready: postgres 127.0.0.1:$PG_PORT, clickhouse 127.0.0.1:$CH_TCP_PORT (http $CH_HTTP_PORT), database $DB_NAME, imap 127.0.0.1:$IMAP_PORT (imaps $IMAPS_PORT)$smtp"
}

cmd_stop() {
  [[ -d $LOCAL_DIR ]] || { log "nothing to stop ($LOCAL_DIR does not exist)"; return 0; }
  take_lock
  local rc=0
  if [[ -n $CHAOS ]]; then
    stop_restored || rc=1
  else
    if [[ -n $SMTP_PORT ]]; then stop_smtp || rc=1; fi
    stop_dovecot || rc=1
  fi
  stop_clickhouse || rc=1
  stop_postgres || rc=1
  return "$rc"
}

# ---------------------------------------------------------------------------------------------
# The chaos suite's faults and backup drill (chaos profiles only)

need_chaos() {
  [[ -n $CHAOS ]] || die "$COMMAND is for the chaos profiles (chaos, chaostest) only"
}

cmd_restart_postgres() {
  need_chaos
  take_lock
  resolve_pg_area
  pg_own_running || die "postgres is not running (from this checkout)"
  PG_BIN=$(pg_bin_dir) || die "no PostgreSQL binaries found"
  log "restarting postgres (fast shutdown)"
  if ! as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -m fast -w -t "$WAIT_SECONDS" restart \
      >/dev/null 2>"$PG_AREA/pg_ctl.log" 9>&-; then
    show_logs "$PG_AREA/pg_ctl.log" "$PG_LOG"
    die "postgres did not restart within ${WAIT_SECONDS}s"
  fi
}

cmd_stop_clickhouse() {
  need_chaos
  take_lock
  stop_clickhouse
}

# A base backup (pg_basebackup, WAL streamed into it) of the running server into <area>/backup;
# the WAL after it is in <area>/wal-archive.
cmd_backup() {
  need_chaos
  resolve_pg_area
  PG_BIN=$(pg_bin_dir) || die "no PostgreSQL binaries found"
  as_pg_user rm -rf "$PG_AREA/backup"
  log "pg_basebackup into $PG_AREA/backup"
  if ! as_pg_user "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres -D "$PG_AREA/backup" \
      --checkpoint=fast -X stream >"$PG_AREA/basebackup.log" 2>&1; then
    show_logs "$PG_AREA/basebackup.log"
    die "pg_basebackup failed"
  fi
}

restored_running() {
  [[ -f $PG_AREA/restored/postmaster.pid ]] && pid_alive "$(head -n 1 "$PG_AREA/restored/postmaster.pid")"
}

# Point-in-time recovery to the end of the WAL archive: the base backup copied into
# <area>/restored, replaying every archived segment, then promoted; answers on RESTORE_PORT.
cmd_restore() {
  need_chaos
  take_lock
  resolve_pg_area
  PG_BIN=$(pg_bin_dir) || die "no PostgreSQL binaries found"
  [[ -f $PG_AREA/backup/PG_VERSION ]] || die "no base backup in $PG_AREA/backup (run backup first)"
  stop_restored
  as_pg_user rm -rf "$PG_AREA/restored"
  as_pg_user cp -a "$PG_AREA/backup" "$PG_AREA/restored"
  as_pg_user chmod 0700 "$PG_AREA/restored"
  as_pg_user touch "$PG_AREA/restored/recovery.signal"
  # postgresql.auto.conf is read last, so these win over the copied helpdeskflow.conf.
  as_pg_user tee -a "$PG_AREA/restored/postgresql.auto.conf" >/dev/null <<CONF
# Written by scripts/services.sh restore: recover from the archive to its end, then promote.
port = $RESTORE_PORT
archive_mode = off
restore_command = 'cp $PG_AREA/wal-archive/%f %p'
recovery_target_timeline = 'latest'
CONF
  log "restoring the base backup into $PG_AREA/restored (port $RESTORE_PORT, log $PG_AREA/restored.log)"
  if ! as_pg_user "$PG_BIN/pg_ctl" -D "$PG_AREA/restored" -l "$PG_AREA/restored.log" -t 300 -w start \
      >/dev/null 2>"$PG_AREA/pg_ctl.log" 9>&-; then
    show_logs "$PG_AREA/pg_ctl.log" "$PG_AREA/restored.log"
    die "the restored cluster did not start"
  fi
  local i
  for ((i = 0; i < 300; i++)); do
    [[ $("$PG_BIN/psql" -X -h 127.0.0.1 -p "$RESTORE_PORT" -U postgres -d postgres -tAc 'SELECT pg_is_in_recovery()' 2>/dev/null) == f ]] && return 0
    sleep 1
  done
  show_logs "$PG_AREA/restored.log"
  die "the restored cluster did not finish recovery within 300s"
}

stop_restored() {
  resolve_pg_area
  restored_running || return 0
  PG_BIN=$(pg_bin_dir) || die "no PostgreSQL binaries found"
  log "stopping the restored cluster"
  as_pg_user "$PG_BIN/pg_ctl" -D "$PG_AREA/restored" -m fast -w -t "$WAIT_SECONDS" stop >/dev/null 2>&1
}

cmd_status() {
  local ok=0 pid
  resolve_pg_area
  if pg_own_running; then
    printf 'postgres    running   pid %-8s 127.0.0.1:%s  data %s\n' "$(pg_postmaster_pid)" "$PG_PORT" "$PG_DATA"
  elif port_open "$PG_PORT"; then
    printf 'postgres    external  %-12s 127.0.0.1:%s  (not started by this checkout)\n' "" "$PG_PORT"
  else
    printf 'postgres    stopped   %-12s 127.0.0.1:%s\n' "" "$PG_PORT"
    ok=3
  fi
  if ch_own_running; then
    pid=$(ch_pid)
    printf 'clickhouse  running   pid %-8s 127.0.0.1:%s  (http %s)  data %s\n' "$pid" "$CH_TCP_PORT" "$CH_HTTP_PORT" "$CH_DIR"
  elif port_open "$CH_TCP_PORT"; then
    printf 'clickhouse  external  %-12s 127.0.0.1:%s  (not started by this checkout)\n' "" "$CH_TCP_PORT"
  else
    printf 'clickhouse  stopped   %-12s 127.0.0.1:%s\n' "" "$CH_TCP_PORT"
    ok=3
  fi
  [[ -n $CHAOS ]] && return "$ok"
  resolve_dc_area
  if dc_own_running; then
    printf 'dovecot     running   pid %-8s 127.0.0.1:%s  (imaps %s)  data %s\n' "$(dc_pid)" "$IMAP_PORT" "$IMAPS_PORT" "$DC_AREA"
  elif port_open "$IMAP_PORT"; then
    printf 'dovecot     external  %-12s 127.0.0.1:%s  (not started by this checkout)\n' "" "$IMAP_PORT"
  else
    printf 'dovecot     stopped   %-12s 127.0.0.1:%s\n' "" "$IMAP_PORT"
    ok=3
  fi
  [[ -z $SMTP_PORT ]] && return "$ok"
  resolve_pf_area
  if pf_own_running && lmtp_own_running; then
    printf 'postfix     running   pid %-8s 127.0.0.1:%s  (lmtp %s)  data %s\n' "$(pf_pid)" "$SMTP_PORT" "$PF_LMTP_RUN/lmtp" "$PF_DIR"
  elif ! pf_own_running && port_open "$SMTP_PORT"; then
    printf 'postfix     external  %-12s 127.0.0.1:%s  (not started by this checkout)\n' "" "$SMTP_PORT"
  else
    printf 'postfix     stopped   %-12s 127.0.0.1:%s\n' "" "$SMTP_PORT"
    ok=3
  fi
  return "$ok"
}

# Single-quote a value for the shell.
shell_quote() {
  printf "'%s'" "${1//\'/\'\\\'\'}"
}

cmd_env() {
  printf 'export HDF_POSTGRES_URL=%s\n' "$(shell_quote "postgres://postgres@127.0.0.1:$PG_PORT/$DB_NAME?sslmode=disable")"
  printf 'export HDF_CLICKHOUSE_ADDR=%s\n' "$(shell_quote "127.0.0.1:$CH_TCP_PORT")"
  printf 'export HDF_CLICKHOUSE_DATABASE=%s\n' "$(shell_quote "$DB_NAME")"
  if [[ $PROFILE == dev ]]; then
    printf 'export HDF_DATA_DIR=%s\n' "$(shell_quote "$APP_DATA_DIR")"
  fi
  if [[ -n $CHAOS ]]; then
    printf 'export HDF_CHAOS_RESTORE_URL=%s\n' "$(shell_quote "postgres://postgres@127.0.0.1:$RESTORE_PORT/$DB_NAME?sslmode=disable")"
    return 0
  fi
  printf 'export HDF_TEST_IMAP_ADDR=%s\n' "$(shell_quote "127.0.0.1:$IMAP_PORT")"
  printf 'export HDF_TEST_IMAPS_ADDR=%s\n' "$(shell_quote "127.0.0.1:$IMAPS_PORT")"
  printf 'export HDF_TEST_IMAP_CA=%s\n' "$(shell_quote "$DC_LINK/ca.pem")"
  printf 'export HDF_TEST_IMAP_USER=%s\n' "$(shell_quote "${IMAP_USERS[0]%%:*}")"
  printf 'export HDF_TEST_IMAP_PASSWORD=%s\n' "$(shell_quote "${IMAP_USERS[0]#*:}")"
  if [[ -n $SMTP_PORT ]]; then
    printf 'export HDF_TEST_SMTP_ADDR=%s\n' "$(shell_quote "127.0.0.1:$SMTP_PORT")"
  fi
  if [[ $PROFILE == dev ]]; then
    printf 'export HDF_EXTRA_CA_FILE=%s\n' "$(shell_quote "$DC_LINK/ca.pem")"
  fi
}

cmd_clean() {
  cmd_stop
  resolve_pg_area
  resolve_dc_area
  resolve_pf_area
  if [[ $PG_AREA == "$PG_FALLBACK" || $DC_AREA == "$DC_FALLBACK" || $PF_AREA == "$PF_FALLBACK" ]]; then
    log "deleting $(dirname "$PG_FALLBACK")"
    rm -rf "$(dirname "$PG_FALLBACK")"
  fi
  log "deleting $LOCAL_DIR"
  rm -rf "$LOCAL_DIR"
}

case $COMMAND in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  clean) cmd_clean ;;
  restart-postgres) cmd_restart_postgres ;;
  stop-clickhouse) cmd_stop_clickhouse ;;
  backup) cmd_backup ;;
  restore) cmd_restore ;;
  *) echo "services.sh: unknown command '$COMMAND'" >&2; usage ;;
esac

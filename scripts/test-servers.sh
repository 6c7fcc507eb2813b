#!/usr/bin/env bash
# test-servers.sh starts and stops the private servers that `make test` runs the
# integration tests against, all on 127.0.0.1 only:
#
#   Redis standalone, a 3-master Redis Cluster, two Memcached servers (one alone, both as a pool),
#   PostgreSQL (wal_level=logical).
#
# Usage: scripts/test-servers.sh start|stop|status
#
#   start   installs missing packages with apt-get, picks free ports, starts every server with
#           its own data dir and pid file under the state dir, and writes "$STATE/env" with the
#           export lines for CACHEKIT_REDIS_ADDR, CACHEKIT_REDIS_CLUSTER_ADDRS,
#           CACHEKIT_MEMCACHED_ADDR, CACHEKIT_MEMCACHED_ADDRS (the pool: that server first, then
#           the second one) and CACHEKIT_POSTGRES_DSN. Servers of a previous start are stopped
#           first. If any step fails, whatever was started is stopped again.
#   stop    stops only the servers recorded in the state dir, by pid file, and removes the
#           state dir. Safe to run twice or when nothing was started.
#   status  prints the recorded servers; exits 1 if one of them is not running.
#
# The state dir is $CACHEKIT_TEST_STATE, by default <repo>/.test-servers. The PostgreSQL data
# dir lives in /tmp/cachekit-pg.XXXXXX (the postgres user must be able to reach it, and the
# socket path must stay short); "$STATE/postgres" links to it.
#
# Packages installed when missing (Debian 12): redis-server, redis-tools, memcached, postgresql
# (15), and gcc + libc6-dev because `go test -race` needs cgo. System services that the install
# would start are blocked with a temporary /usr/sbin/policy-rc.d, and any that start anyway are
# stopped again; servers that were running before are never touched.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${CACHEKIT_TEST_STATE:-$REPO/.test-servers}
case $STATE in /*) ;; *) STATE=$PWD/$STATE ;; esac
MARKER=.cachekit-test-servers # proves a directory is ours before stop removes it

SUDO=()
if ((EUID != 0)) && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

log() { printf 'test-servers: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# fail prints the tail of the given log files, then exits 1.
fail() {
	local msg=$1 f
	shift
	for f in "$@"; do
		[[ -s $f ]] || continue
		log "--- tail of $f"
		tail -n 20 -- "$f" >&2 || true
	done
	die "$msg"
}

# as_pg runs a PostgreSQL command as the postgres user (initdb refuses root).
as_pg() {
	if ((EUID == 0)); then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# now_ms prints a monotonic-enough wall clock in milliseconds.
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- packages

# find_pg_bindir prints the directory holding initdb, pg_ctl and postgres (Debian keeps them in
# /usr/lib/postgresql/<version>/bin, not on PATH).
find_pg_bindir() {
	local d candidates=()
	if command -v pg_config >/dev/null 2>&1; then
		candidates+=("$(pg_config --bindir 2>/dev/null || true)")
	fi
	candidates+=(/usr/lib/postgresql/15/bin)
	for d in /usr/lib/postgresql/*/bin; do candidates+=("$d"); done
	for d in "${candidates[@]}"; do
		if [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/postgres && -x $d/createdb ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# server_pids prints the pids of all redis-server, memcached and postgres processes.
server_pids() {
	local d comm
	for d in /proc/[0-9]*; do
		comm=$(cat "$d/comm" 2>/dev/null) || continue
		case $comm in redis-server | memcached | postgres) echo "${d#/proc/}" ;; esac
	done
}

# system_service tells whether pid $1 is a Debian system service instance (as the packages'
# init scripts and units start them), not a private server like ours or another user's.
system_service() {
	local uid user
	uid=$(awk '/^Uid:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
	user=$(id -nu "$uid" 2>/dev/null) || return 1
	case $(cat "/proc/$1/comm" 2>/dev/null) in
	redis-server) [[ $user == redis ]] ;;
	memcached) [[ $user == memcache ]] ;;
	# the postmaster of a Debian cluster (its children go down with it)
	postgres) [[ $user == postgres ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'config_file=/etc/postgresql/' ;;
	*) return 1 ;;
	esac
}

# stop_autostarted stops the system services that appeared during apt-get install (pids not in
# $1), i.e. those the packages' maintainer scripts started despite policy-rc.d.
stop_autostarted() {
	local before=$1 pid new=() s
	for pid in $(server_pids); do
		grep -qx -- "$pid" <<<"$before" || ! system_service "$pid" || new+=("$pid")
	done
	((${#new[@]})) || return 0
	log "the install started system services (pids ${new[*]}); stopping them"
	if command -v service >/dev/null 2>&1; then
		for s in "${INSTALLED[@]}"; do
			case $s in redis-server | memcached | postgresql)
				"${SUDO[@]}" service "$s" stop >/dev/null 2>&1 || true
				;;
			esac
		done
	fi
	for pid in "${new[@]}"; do
		running "$pid" && "${SUDO[@]}" kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${new[@]}"; do
		wait_gone "$pid" 100 || "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true
	done
}

# ensure_packages installs with apt-get whatever the servers (and go test -race) need.
INSTALLED=()
ensure_packages() {
	local pkgs=() before out rc=0
	command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
	command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-tools)
	command -v memcached >/dev/null 2>&1 || pkgs+=(memcached)
	find_pg_bindir >/dev/null || pkgs+=(postgresql)
	command -v gcc >/dev/null 2>&1 || pkgs+=(gcc libc6-dev)
	((${#pkgs[@]})) || return 0
	((EUID == 0 || ${#SUDO[@]})) || die "need root or sudo to install: ${pkgs[*]}"
	INSTALLED=("${pkgs[@]}")
	log "installing ${pkgs[*]} with apt-get"
	before=$(server_pids)
	out=$(mktemp)
	# Debian starts a package's service right after installing it; a policy-rc.d that exits 101
	# forbids that (invoke-rc.d and deb-systemd-invoke both honour it). Only add one if none exists.
	(
		policy=/usr/sbin/policy-rc.d
		if [[ ! -e $policy ]]; then
			trap '"${SUDO[@]}" rm -f "$policy"' EXIT
			printf '#!/bin/sh\n# temporary, from cachekit scripts/test-servers.sh\nexit 101\n' |
				"${SUDO[@]}" tee "$policy" >/dev/null
			"${SUDO[@]}" chmod 755 "$policy"
		fi
		export DEBIAN_FRONTEND=noninteractive
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
	) >"$out" 2>&1 || rc=$?
	stop_autostarted "$before"
	if ((rc != 0)); then
		cat "$out" >&2
		rm -f "$out"
		die "apt-get install ${pkgs[*]} failed"
	fi
	rm -f "$out"
	hash -r
}

# ---------------------------------------------------------------- ports

declare -A TAKEN=() # ports chosen in this run
port_busy() {
	# Something accepts connections on 127.0.0.1 (this also catches listeners on 0.0.0.0).
	if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
	# Any other listener on that port (e.g. another interface).
	if command -v ss >/dev/null 2>&1 && [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; then return 0; fi
	return 1
}

# pick_port sets PORT to a free port in 15000-21999; with an argument N, port+N must be free too
# (the Redis Cluster bus). Ports stay below the Linux ephemeral range (32768+) and ≤ 55535.
pick_port() {
	local extra=${1:-0} p i
	for ((i = 0; i < 500; i++)); do
		p=$((15000 + RANDOM % 7000))
		[[ -z ${TAKEN[$p]:-} ]] && ! port_busy "$p" || continue
		if ((extra)); then
			[[ -z ${TAKEN[$((p + extra))]:-} ]] && ! port_busy $((p + extra)) || continue
			TAKEN[$((p + extra))]=1
		fi
		TAKEN[$p]=1
		PORT=$p
		return 0
	done
	die "no free port found"
}

# ---------------------------------------------------------------- processes

# running tells whether pid $1 exists and is not a zombie (an init that reaps late leaves
# exited daemons as zombies for a while).
running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# wait_gone waits up to $2 tenths of a second for pid $1 to exit.
wait_gone() {
	local i
	for ((i = 0; i < $2; i++)); do
		running "$1" || return 0
		sleep 0.1
	done
	! running "$1"
}

# pid_alive tells whether the pid in pid file $1 is a running process named $2; it sets PID.
pid_alive() {
	PID=
	[[ -s $1 ]] || return 1
	PID=$(head -n 1 -- "$1" | tr -dc 0-9)
	[[ -n $PID && $(cat "/proc/$PID/comm" 2>/dev/null) == "$2" ]] && running "$PID"
}

# register records a server so that stop and status find it even if start fails halfway.
# Fields: name, process name, port, pid file (postgres: data dir).
register() { printf '%s %s %s %s\n' "$@" >>"$STATE/servers"; }

# signal_server asks one recorded server to shut down and appends its pid to STOPPING.
# Fields as in register. Redis and Memcached get SIGTERM; PostgreSQL gets pg_ctl stop -m fast
# (SIGINT to the postmaster in its pid file if pg_ctl is unavailable).
STOPPING=()
signal_server() {
	local name=$1 comm=$2 path=$3 bindir
	[[ $comm == postgres ]] && path=$path/postmaster.pid
	if ! pid_alive "$path" "$comm"; then
		log "$name: not running"
		return 0
	fi
	STOPPING+=("$name:$PID")
	if [[ $comm == postgres ]]; then
		bindir=$(find_pg_bindir) &&
			as_pg "$bindir/pg_ctl" -D "${path%/postmaster.pid}" -m fast -W stop >/dev/null 2>&1 &&
			return 0
		kill -INT "$PID" 2>/dev/null || true
	else
		kill -TERM "$PID" 2>/dev/null || true
	fi
}

cmd_stop() {
	local name comm port path pgdir entry pid
	if [[ ! -d $STATE ]]; then
		log "nothing to stop ($STATE does not exist)"
		return 0
	fi
	[[ -e $STATE/$MARKER ]] || die "$STATE has no $MARKER file; not a test-servers state dir, not touching it"
	# Signal every server first, then wait for all of them: shutdowns overlap.
	if [[ -f $STATE/servers ]]; then
		while read -r name comm port path; do
			signal_server "$name" "$comm" "$path"
		done < <(tac -- "$STATE/servers")
	fi
	for entry in "${STOPPING[@]}"; do
		name=${entry%:*} pid=${entry##*:}
		wait_gone "$pid" 300 && continue
		log "$name: pid $pid still running 30s after the shutdown request; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 50 || log "$name: pid $pid survived SIGKILL"
	done
	STOPPING=()
	if [[ -L $STATE/postgres ]]; then
		pgdir=$(readlink -- "$STATE/postgres")
		case $pgdir in /tmp/cachekit-pg.*) rm -rf -- "$pgdir" ;; esac
	fi
	rm -rf -- "$STATE"
	log "stopped; removed $STATE"
}

cmd_status() {
	local name comm port path pidfile rc=0
	if [[ ! -f $STATE/servers ]]; then
		echo "no test servers recorded in $STATE"
		return 1
	fi
	while read -r name comm port path; do
		pidfile=$path
		[[ $comm == postgres ]] && pidfile=$path/postmaster.pid
		if pid_alive "$pidfile" "$comm"; then
			printf '  %-20s 127.0.0.1:%-6s pid %s\n' "$name" "$port" "$PID"
		else
			printf '  %-20s 127.0.0.1:%-6s NOT RUNNING\n' "$name" "$port"
			rc=1
		fi
	done <"$STATE/servers"
	[[ -f $STATE/env ]] && echo "env file: $STATE/env"
	return "$rc"
}

# ---------------------------------------------------------------- start

# start_redis NAME PORT [ARGS...] starts a daemonized redis-server in $STATE/NAME.
start_redis() {
	local name=$1 port=$2 dir=$STATE/$1
	shift 2
	mkdir -p -- "$dir"
	register "$name" redis-server "$port" "$dir/redis.pid"
	redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
		--pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log" "$@" ||
		fail "$name: redis-server did not start" "$dir/redis.log"
}

# wait_redis NAME PORT waits until the server answers PING and has written its pid file.
wait_redis() {
	local name=$1 port=$2 dir=$STATE/$1 i
	for ((i = 0; i < 200; i++)); do
		if [[ -s $dir/redis.pid && $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
			return 0
		fi
		sleep 0.05
	done
	fail "$name: no PONG from 127.0.0.1:$port after 10s" "$dir/redis.log"
}

# start_memcached NAME PORT starts a daemonized memcached in $STATE/NAME.
start_memcached() {
	local name=$1 port=$2 dir=$STATE/$1 user=()
	mkdir -p -- "$dir"
	register "$name" memcached "$port" "$dir/memcached.pid"
	((EUID != 0)) || user=(-u root)
	memcached -d -l 127.0.0.1 -p "$port" -U 0 -m 64 -P "$dir/memcached.pid" "${user[@]}" \
		>"$dir/memcached.log" 2>&1 || fail "$name: memcached did not start" "$dir/memcached.log"
}

# wait_memcached NAME PORT waits until the server answers "version" and has written its pid
# file; it sets VERSION to the reply.
wait_memcached() {
	local name=$1 port=$2 dir=$STATE/$1 i
	VERSION=
	for ((i = 0; i < 100; i++)); do
		VERSION=$(memcached_version "$port" 2>/dev/null || true)
		[[ $VERSION == VERSION* && -s $dir/memcached.pid ]] && return 0
		sleep 0.05
	done
	fail "$name: no VERSION reply from 127.0.0.1:$port" "$dir/memcached.log"
}

# memcached_version prints the reply to "version" on 127.0.0.1:$1.
memcached_version() {
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'version\r\n' >&3
	IFS= read -r -t 2 line <&3 || true
	exec 3>&-
	printf '%s\n' "${line%$'\r'}"
}

# setup_postgres DIR PORT BINDIR: initdb, start with wal_level=logical, create database cachekit.
# Runs in the background; each step logs to DIR.
setup_postgres() {
	local dir=$1 port=$2 bin=$3
	as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
		>"$dir/initdb.log" 2>&1 || fail "postgres: initdb failed" "$dir/initdb.log"
	as_pg "$bin/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/postgres.log" \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 -c fsync=off" \
		start >"$dir/pg_ctl.log" 2>&1 || fail "postgres: pg_ctl start failed" "$dir/pg_ctl.log" "$dir/postgres.log"
	as_pg "$bin/createdb" -h "$dir" -p "$port" -U postgres cachekit \
		>"$dir/createdb.log" 2>&1 || fail "postgres: createdb cachekit failed" "$dir/createdb.log" "$dir/postgres.log"
}

PG_JOB=
on_start_exit() {
	local rc=$?
	((rc == 0)) && return 0
	# Let a running postgres setup finish so that its postmaster.pid exists, then stop all.
	[[ -z $PG_JOB ]] || wait "$PG_JOB" 2>/dev/null || true
	log "start failed; stopping what was started"
	cmd_stop || true
	exit "$rc"
}

cmd_start() {
	local t0 pgbin pgdir redis_port memcached_port memcached2_port pg_port cluster=() p i ok version cluster_addrs
	t0=$(now_ms)
	if [[ -d $STATE ]]; then
		log "stopping the servers of a previous start"
		cmd_stop
	fi
	ensure_packages
	pgbin=$(find_pg_bindir) || die "initdb/pg_ctl/postgres not found (pg_config --bindir, /usr/lib/postgresql/*/bin)"
	[[ $EUID -ne 0 ]] || id postgres >/dev/null 2>&1 || die "user postgres does not exist (it comes with the postgresql package)"

	mkdir -p -- "$STATE"
	touch -- "$STATE/$MARKER"
	: >"$STATE/servers"
	trap on_start_exit EXIT

	pick_port && redis_port=$PORT
	for i in 1 2 3; do pick_port 10000 && cluster+=("$PORT"); done
	pick_port && memcached_port=$PORT
	pick_port && memcached2_port=$PORT
	pick_port && pg_port=$PORT

	# PostgreSQL first and in the background: initdb is the slowest step.
	pgdir=$(mktemp -d /tmp/cachekit-pg.XXXXXX)
	ln -s -- "$pgdir" "$STATE/postgres"
	((EUID != 0)) || chown postgres:postgres "$pgdir"
	chmod 700 "$pgdir"
	register postgres postgres "$pg_port" "$pgdir/data"
	setup_postgres "$pgdir" "$pg_port" "$pgbin" &
	PG_JOB=$!

	start_redis redis "$redis_port"
	for p in "${cluster[@]}"; do
		start_redis "redis-cluster-$p" "$p" --cluster-enabled yes --cluster-config-file "nodes-$p.conf"
	done

	start_memcached memcached "$memcached_port"
	start_memcached memcached2 "$memcached2_port"

	wait_redis redis "$redis_port"
	for p in "${cluster[@]}"; do wait_redis "redis-cluster-$p" "$p"; done
	redis-cli --cluster create "${cluster[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes \
		>"$STATE/cluster-create.log" 2>&1 || fail "redis-cli --cluster create failed" "$STATE/cluster-create.log"
	for p in "${cluster[@]}"; do
		ok=
		for ((i = 0; i < 200; i++)); do
			if redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; then
				ok=1
				break
			fi
			sleep 0.05
		done
		[[ -n $ok ]] || fail "redis cluster node 127.0.0.1:$p: cluster_state not ok after 10s" "$STATE/cluster-create.log"
	done

	wait_memcached memcached2 "$memcached2_port"
	wait_memcached memcached "$memcached_port"
	version=$VERSION

	wait "$PG_JOB" || exit 1 # setup_postgres already said what failed
	PG_JOB=

	cluster_addrs=$(printf '127.0.0.1:%s,' "${cluster[@]}")
	cat >"$STATE/env.tmp" <<EOF
# Written by scripts/test-servers.sh start; source it before go test.
export CACHEKIT_REDIS_ADDR=127.0.0.1:$redis_port
export CACHEKIT_REDIS_CLUSTER_ADDRS=${cluster_addrs%,}
export CACHEKIT_MEMCACHED_ADDR=127.0.0.1:$memcached_port
export CACHEKIT_MEMCACHED_ADDRS=127.0.0.1:$memcached_port,127.0.0.1:$memcached2_port
export CACHEKIT_POSTGRES_DSN='postgres://postgres@127.0.0.1:$pg_port/cachekit?sslmode=disable'
EOF
	mv -- "$STATE/env.tmp" "$STATE/env"
	trap - EXIT

	echo "test servers started in $(($(now_ms) - t0)) ms (state: $STATE)"
	printf '  %-14s 127.0.0.1:%s\n' redis "$redis_port"
	printf '  %-14s %s\n' redis-cluster "${cluster_addrs%,}"
	printf '  %-14s 127.0.0.1:%s (%s)\n' memcached "$memcached_port" "$version"
	printf '  %-14s 127.0.0.1:%s,127.0.0.1:%s\n' memcached-pool "$memcached_port" "$memcached2_port"
	printf '  %-14s postgres://postgres@127.0.0.1:%s/cachekit (wal_level=logical, %s)\n' postgres "$pg_port" "$pgdir"
	echo "  env file: $STATE/env"
}

main() {
	case ${1:-} in
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	*)
		echo "usage: $0 start|stop|status" >&2
		exit 2
		;;
	esac
}

# Sourcing the script (for testing its functions) runs nothing.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi

#!/usr/bin/env bash
# The throughput table of issue 19, short: bench/load against SQLite (one
# coordinator), PostgreSQL with one replica and with two, each run on a
# fresh PostgreSQL schema. Prints one Markdown row per setup.
#
#	bash bench/load/table.sh                 # bin/quorate, 300 requests x 15 signatures
#	QUORATE=/tmp/q REQUESTS=100 ROUNDS=2 bash bench/load/table.sh
#
# PG (default postgres://postgres@127.0.0.1:5432/test) must be reachable;
# SETUPS limits the setups (sqlite pg1 pg2; pg2-request is pg2 with
# SPREAD=request). ROUNDS > 1 repeats every setup.
# DB_LATENCY=500us adds that round trip between the coordinators and
# PostgreSQL (bench/load --db-latency), as when they run on other machines.
# SPREAD=request sends all of a request's signatures to one replica (bench/load
# --spread; default alternate: each to the other replica than the one before).
# OPEN=timed opens each request in the timed phase, among the signatures
# (bench/load --open; default setup: all opened before the timed phase);
# with ORDER=ranks all openings come first, so pair it with staggered.
# ORDER=staggered sends the signatures staggered (bench/load --order):
# completions spread over the run, as in steady state, instead of all at
# its end; ORDER="ranks staggered" runs every setup both ways.
# PROFILE_DIR=DIR keeps each coordinator's CPU profile of the timed phase
# (DIR/SETUP-ROUND/replicaN.pprof, DIR/SETUP-staggered-ROUND/... for the
# staggered order; read with go tool pprof -top).
# A setup named with -webhooks (sqlite-webhooks, pg1-webhooks, ...) also
# delivers every event to a webhook endpoint in the load generator
# (bench/load --webhooks).
# The next three columns are the stores' group commit in the timed phase,
# from the coordinators' /metrics: writes per batch, log lock hold per batch
# and the lock's busy share (summed over replicas; 0 with an older quorate);
# the last, with webhooks, deliveries per second (from the timed phase's
# start to the last delivery), event-to-receipt p99 and the seconds the
# deliveries took to drain after the load.
set -euo pipefail
QUORATE=${QUORATE:-bin/quorate}
REQUESTS=${REQUESTS:-300}
CLIENTS=${CLIENTS:-64}
ROUNDS=${ROUNDS:-1}
PG=${PG:-postgres://postgres@127.0.0.1:5432/test}
SETUPS=${SETUPS:-sqlite pg1 pg2}
PROFILE_DIR=${PROFILE_DIR:-}
DB_LATENCY=${DB_LATENCY:-}
SPREAD=${SPREAD:-alternate}
ORDER=${ORDER:-ranks}
OPEN=${OPEN:-setup}
GO=${GO:-go}
tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
$GO build -o "$tool/load" ./bench/load

echo "| setup | accepted/s | p50 ms | p99 ms | % of one core's crypto bound | threshold p99 ms | peak RSS MiB (mid → end; anonymous mid → end) | coordinator CPU | load generator CPU | writes/batch | lock ms/batch | lock busy % | webhooks/s (p99 s, drain s) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
	for order in $ORDER; do
	for setup in $SETUPS; do
		args=(--quorate "$QUORATE" --clients "$CLIENTS" --requests "$REQUESTS" --order "$order" --open "$OPEN" --json)
		if [ -n "$PROFILE_DIR" ]; then
			prof="$PROFILE_DIR/$setup-$round"
			[ "$order" = ranks ] || prof="$PROFILE_DIR/$setup-$order-$round"
			mkdir -p "$prof"
			args+=(--cpuprofile "$prof")
		fi
		schema=""
		base=${setup%-webhooks}
		[ "$base" = "$setup" ] || args+=(--webhooks)
		case $base in
		sqlite) ;;
		pg1 | pg2 | pg2-request)
			schema="load_$$_${round}_${setup//-/_}"
			psql -q "$PG" -c "CREATE SCHEMA $schema" >/dev/null
			replicas=${base#pg} spread=$SPREAD
			if [ "$base" = pg2-request ]; then replicas=2 spread=request; fi
			args+=(--store "$PG?search_path=$schema" --replicas "${replicas}" --spread "$spread")
			[ -z "$DB_LATENCY" ] || args+=(--db-latency "$DB_LATENCY")
			;;
		*) echo "unknown setup $setup" >&2; exit 2 ;;
		esac
		out=$("$tool/load" "${args[@]}") || { echo "$setup failed" >&2; out=""; }
		if [ -n "$schema" ]; then psql -q "$PG" -c "SET client_min_messages=warning; DROP SCHEMA $schema CASCADE" >/dev/null; fi
		[ -n "$out" ] || continue
		python3 - "$setup" "$out" <<'PY'
import json, sys
s, r = sys.argv[1], json.loads(sys.argv[2])
s, hooked = s.removesuffix("-webhooks"), s.endswith("-webhooks")
names = {"sqlite": "SQLite, 1 coordinator", "pg1": "PostgreSQL, 1 replica", "pg2": "PostgreSQL, 2 replicas", "pg2-request": "PostgreSQL, 2 replicas"}
if r.get("dbLatencyMs"):
    names[s] += f" (+{r['dbLatencyMs']:g} ms round trip)"
if r.get("order", "ranks") != "ranks":
    names[s] += f", {r['order']}"
if r.get("open", "setup") == "timed":
    names[s] += f", opened in the timed phase (open p99 {r.get('openP99ms', 0):.0f} ms)"
if r.get("spread", "alternate") != "alternate":
    names[s] += f", signatures routed by {r['spread']}"
if hooked:
    names[s] += ", webhooks to one endpoint"
bad = "" if r["accepted"] == r["attempted"] else f" ({r['rejected']} rejected!)"
w = r.get("webhooks")
hooks = "—"
if w:
    hooks = f"{w['deliveriesPerSecond']:.0f} ({w['deliveryP99ms']/1000:.1f}, {w['drainSeconds']:.1f})"
    if w["deliveries"] < w["expected"]:
        hooks += f" (only {w['deliveries']} of {w['expected']} delivered!)"
print(f"| {names[s]}{bad} | {r['perSecond']:.0f} | {r['p50ms']:.1f} | {r['p99ms']:.1f} | {100*r['cryptoShare']:.1f}% | {r['thresholdP99ms']:.1f} | "
      f"{r['peakRssMiB']:.0f} ({r['midRssMiB']:.0f} → {r['endRssMiB']:.0f}; anon {r.get('midAnonMiB', 0):.0f} → {r.get('endAnonMiB', 0):.0f}) | {100*r['coordinatorCpu']:.0f}% | {100*r['loadGeneratorCpu']:.0f}% | "
      f"{r.get('writesPerBatch', 0):.1f} | {r.get('lockMsPerBatch', 0):.2f} | {100*r.get('lockBusy', 0):.0f}% | {hooks} |")
PY
	done
	done
done

#!/usr/bin/env bash
# bench/run.sh — how fast Vouch issues and checks E2EE tokens, next to the floor.
#
#   1. single-thread, in-process sign and verify (vouch-bench raw) for EdDSA, ES256, RS256
#   2. POST /v1/accounts/{id}/tokens and POST /v1/e2ee/authorize over HTTP, keep-alive, with
#      wrk ($THREADS threads, $CONNS connections, $DURATION s after $WARMUP s of warm-up), on
#      SQLite and on PostgreSQL: requests/s, p50, p99, errors, the server's peak RSS; then
#      p50/p99 again at about half of the peak rate
#   3. at scale (unless SKIP_SCALE=1): a population of accounts (`vouch-bench population`: mostly
#      email-only, some phone-verified, some paying, a few suspended) grown to 10k, 100k and 1M,
#      token issuance for entitled accounts drawn uniformly at each size and from a Zipf
#      distribution (s = 1.1) at 1M; authorize with every token first seen across the million;
#      Stripe-signed subscription events (each a new subscription) and SMS verification starts
#      (distinct accounts and numbers, to a local fake Twilio); each again at half its peak;
#      the server's peak RSS over all of it
#   4. the floor and the glewlwyd peer under the same load (../shared/bench/run-peers.sh),
#      and the ratios Vouch ÷ floor
#
# Prints result lines `name value p50_ms p99_ms [errors=N]` and a summary. Everything runs on
# 127.0.0.1; every server started here is stopped at exit.
# Knobs: DURATION=20 WARMUP=2 CONNS=64 THREADS=2 RAW_SECS=3 PORT=18180
#        PG_URL=postgres://postgres@127.0.0.1:5432 SKIP_PG=1 SKIP_PEERS=1 SKIP_TMPFS=1 SKIP_SCALE=1
#        BENCH_BIN=DIR (binaries built already: vouch and vouch-bench in DIR)
#        POPULATION=1000000 FRESH_1M_TOKENS=700000 WRITE_REQUESTS=100000
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
RAW_SECS=${RAW_SECS:-3}
PORT=${PORT:-18180}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
WORK=${BENCH_WORK:-/tmp/vouch-bench}
LUA="$ROOT/bench/wrk-post.lua"
BIN=${BENCH_BIN:-$ROOT/target/release}
HOST=127.0.0.1

T0=$(date +%s)
log() { printf '[bench %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
declare -A R=()            # result name -> "value p50 p99"
SERVER_PID=""

cleanup() {
  [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { log "installing $2"; apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need curl curl
need jq jq

mkdir -p "$WORK"
if [[ -z ${BENCH_BIN:-} ]]; then
  log "building release binaries (cargo build --release)"
  (cd "$ROOT" && cargo build --release --locked --bin vouch --bin vouch-bench) >&2
fi

emit() { printf '%s\n' "$*"; }

# --- 1. raw ------------------------------------------------------------------
while read -r name ops p50 p99; do
  R[$name]="$ops $p50 $p99"; emit "$name $ops $p50 $p99"
done < <("$BIN/vouch-bench" raw --secs "$RAW_SECS")

# --- 2. over HTTP -------------------------------------------------------------
wrk_run() { # name url body auth [delay_ms]
  # BENCH_TOKENS_FILE / BENCH_REQUESTS_FILE pass through (see wrk-post.lua); BENCH_WARM_FILE, if
  # set, replaces that file for the warm-up, so requests meant to be distinct stay distinct.
  local name=$1 url=$2 body=$3 auth=$4 delay=${5:-0} out stat req dur p50 p99 e1 e2 e3 e4 e5 errs rps line
  export BENCH_BODY=$body BENCH_AUTH=$auth BENCH_CT=application/json BENCH_DELAY_MS=$delay BENCH_THREADS=$THREADS
  local file_var=""
  [[ -n ${BENCH_TOKENS_FILE:-} ]] && file_var=BENCH_TOKENS_FILE
  [[ -n ${BENCH_REQUESTS_FILE:-} ]] && file_var=BENCH_REQUESTS_FILE
  if [[ -n $file_var && -n ${BENCH_WARM_FILE:-} ]]; then
    env "$file_var=$BENCH_WARM_FILE" timeout $((WARMUP + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "$url" >/dev/null 2>&1 || true
  else
    timeout $((WARMUP + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "$url" >/dev/null 2>&1 || true
  fi
  out=$(timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency -s "$LUA" "$url" 2>&1) || true
  unset BENCH_BODY BENCH_AUTH BENCH_CT BENCH_DELAY_MS BENCH_TOKENS_FILE BENCH_REQUESTS_FILE BENCH_WARM_FILE BENCH_THREADS
  printf '\n==== %s %s\n%s\n' "$name" "$url" "$out" >> "$WORK/wrk.log"
  stat=$(grep '^WRKSTAT' <<<"$out" | tail -1)
  [[ -n $stat ]] || { printf '%s\n' "$out" >&2; die "$name: no WRKSTAT line"; }
  read -r _ req dur p50 p99 e1 e2 e3 e4 e5 <<<"$stat"
  errs=$((e1 + e2 + e3 + e4 + e5))
  rps=$(awk -v r="$req" -v d="$dur" 'BEGIN{printf "%.0f", r / (d / 1e6)}')
  line=$(awk -v n="$name" -v r="$rps" -v a="$p50" -v b="$p99" 'BEGIN{printf "%s %s %.3f %.3f", n, r, a/1000, b/1000}')
  ((errs > 0)) && line+=" errors=$errs"
  R[$name]="$rps $(awk -v a="$p50" -v b="$p99" 'BEGIN{printf "%.3f %.3f", a/1000, b/1000}')"
  emit "$line"
}

bench_db() { # label database_url
  local label=$1 url=$2 base="http://$HOST:$PORT" token rss
  export VOUCH_DATABASE_URL=$url VOUCH_LISTEN="$HOST:$PORT" VOUCH_LOG__FORMAT=json
  # Stripe events and SMS to a local fake Twilio (scripts/fakes/twilio.py); limits that would
  # answer 429 to a load of distinct accounts and numbers are raised (the limits themselves are
  # a few indexed counts, measured all the same).
  export VOUCH_STRIPE__WEBHOOK_SECRETS=whsec_bench VOUCH_SMS__FROM=+15005550006 \
    VOUCH_SMS__TWILIO_BASE_URL="http://$HOST:$SMS_PORT" VOUCH_SMS__TWILIO_ACCOUNT_SID=ACbench \
    VOUCH_SMS__TWILIO_AUTH_TOKEN=bench-sms-token \
    VOUCH_VERIFICATION__PER_ACCOUNT_LIMIT=1000000 VOUCH_VERIFICATION__SMS_HOURLY_BUDGET=100000000 \
    VOUCH_VERIFICATION__SMS_COUNTRY_HOURLY_BUDGET=100000000 VOUCH_VERIFICATION__SMS_PREFIX_HOURLY_LIMIT=100000000 \
    VOUCH_VERIFICATION__SMS_ACCOUNT_LIFETIME_LIMIT=1000000
  VOUCH_MASTER_KEY=$(head -c 32 /dev/urandom | base64); export VOUCH_MASTER_KEY
  eval "$("$BIN/vouch-bench" seed)"
  "$BIN/vouch" serve > "$WORK/server-$label.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "$base/readyz" >/dev/null || die "vouch ($label) did not start: $(tail -5 "$WORK/server-$label.log")"
  token=$(curl -sf -X POST -H "Authorization: Bearer $BACKEND_KEY" -H 'Content-Type: application/json' \
            -d '{}' "$base/v1/accounts/$ACCOUNT_ID/tokens" | jq -r .token)
  [[ $token == *.*.* ]] || die "issuance check failed ($label)"
  [[ $(curl -sf -X POST -H "Authorization: Bearer $MEETING_KEY" -H 'Content-Type: application/json' \
         -d "{\"token\":\"$token\"}" "$base/v1/e2ee/authorize" | jq -r .allow) == true ]] || die "authorize check failed ($label)"
  log "vouch on $label up (pid $SERVER_PID)"

  local issue_url="$base/v1/accounts/$ACCOUNT_ID/tokens" auth_url="$base/v1/e2ee/authorize"
  wrk_run "vouch-$label-issue" "$issue_url" '{}' "Bearer $BACKEND_KEY"
  wrk_run "vouch-$label-authorize" "$auth_url" "{\"token\":\"$token\"}" "Bearer $MEETING_KEY"
  # Authorize again, each request a token not seen before (no remembered verification).
  "$BIN/vouch-bench" mint "$ACCOUNT_ID" "${FRESH_TOKENS:-60000}" > "$WORK/tokens-$label.txt"
  BENCH_TOKENS_FILE="$WORK/tokens-$label.txt" wrk_run "vouch-$label-authorize-fresh" "$auth_url" '{}' "Bearer $MEETING_KEY"
  # Half of each peak: every connection pauses CONNS / (peak / 2) seconds between requests.
  local peak delay
  for kind in issue authorize; do
    peak=$(cut -d' ' -f1 <<<"${R[vouch-$label-$kind]}")
    delay=$(awk -v c="$CONNS" -v p="$peak" 'BEGIN{ d = c * 1000 / (p / 2); printf "%d", (d < 1 ? 1 : d) }')
    if [[ $kind == issue ]]; then
      wrk_run "vouch-$label-issue-half" "$issue_url" '{}' "Bearer $BACKEND_KEY" "$delay"
    else
      wrk_run "vouch-$label-authorize-half" "$auth_url" "{\"token\":\"$token\"}" "Bearer $MEETING_KEY" "$delay"
    fi
  done
  [[ -z ${SKIP_SCALE:-} ]] && bench_scale "$label" "$base"
  rss=$(awk '/VmHWM/{print $2}' "/proc/$SERVER_PID/status")
  R[vouch-$label-peak-rss-mb]=$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')
  emit "vouch-$label-peak-rss-mb ${R[vouch-$label-peak-rss-mb]}"
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  unset VOUCH_DATABASE_URL VOUCH_LISTEN VOUCH_MASTER_KEY VOUCH_LOG__FORMAT
}

half_delay() { # name: the per-connection pause that holds about half of that figure's rate
  awk -v c="$CONNS" -v p="$(cut -d' ' -f1 <<<"${R[$1]}")" 'BEGIN{ d = c * 1000 / (p / 2); printf "%d", (d < 1 ? 1 : d) }'
}

bench_scale() { # label base: the population runs, against the server bench_db started
  local label=$1 base=$2 n tag files="$WORK/req-$label"
  local issue_auth="Bearer $BACKEND_KEY" meet_auth="Bearer $MEETING_KEY" pop=${POPULATION:-1000000}
  local writes=${WRITE_REQUESTS:-100000}
  mkdir -p "$files"
  tag_of() { case $1 in 10000) echo 10k ;; 100000) echo 100k ;; 1000000) echo 1m ;; *) echo "$1" ;; esac; }
  for n in $(printf '%s\n' 10000 100000 "$pop" | sort -nu); do
    (( n > pop )) && continue
    tag=$(tag_of "$n")
    "$BIN/vouch-bench" population --to "$n" 2> >(while read -r l; do log "$l"; done)
    "$BIN/vouch-bench" requests issue --accounts "$n" --count 400000 > "$files/issue-$tag.txt"
    BENCH_REQUESTS_FILE="$files/issue-$tag.txt" wrk_run "vouch-$label-issue-$tag-uniform" "$base/" '{}' "$issue_auth"
  done
  tag=$(tag_of "$pop")
  BENCH_REQUESTS_FILE="$files/issue-$tag.txt" wrk_run "vouch-$label-issue-$tag-uniform-half" "$base/" '{}' "$issue_auth" \
    "$(half_delay "vouch-$label-issue-$tag-uniform")"
  "$BIN/vouch-bench" requests issue --accounts "$pop" --count 400000 --dist zipf > "$files/issue-zipf.txt"
  BENCH_REQUESTS_FILE="$files/issue-zipf.txt" wrk_run "vouch-$label-issue-$tag-zipf" "$base/" '{}' "$issue_auth"

  # Authorize, every token first seen: distinct tokens for entitled accounts across the
  # population, the warm-up on tokens of its own.
  log "minting ${FRESH_1M_TOKENS:-700000} tokens across the population"
  "$BIN/vouch-bench" requests tokens --accounts "$pop" --count "${FRESH_1M_TOKENS:-700000}" --seed 3 > "$files/tokens.txt"
  "$BIN/vouch-bench" requests tokens --accounts "$pop" --count 100000 --seed 4 > "$files/tokens-warm.txt"
  BENCH_TOKENS_FILE="$files/tokens.txt" BENCH_WARM_FILE="$files/tokens-warm.txt" \
    wrk_run "vouch-$label-authorize-fresh-$tag-uniform" "$base/v1/e2ee/authorize" '{}' "$meet_auth"
  "$BIN/vouch-bench" requests tokens --accounts "$pop" --count "${FRESH_1M_TOKENS:-700000}" --seed 5 > "$files/tokens.txt"
  BENCH_TOKENS_FILE="$files/tokens.txt" BENCH_WARM_FILE="$files/tokens-warm.txt" \
    wrk_run "vouch-$label-authorize-fresh-$tag-uniform-half" "$base/v1/e2ee/authorize" '{}' "$meet_auth" \
    "$(half_delay "vouch-$label-authorize-fresh-$tag-uniform")"

  # Writes: every request distinct (a new event and subscription; a new account and number).
  local kind name seed=10
  for kind in stripe sms; do
    name=$([[ $kind == stripe ]] && echo webhooks || echo verifications)
    for run in full half; do
      seed=$((seed + 2))
      "$BIN/vouch-bench" requests "$kind" --accounts "$pop" --count "$writes" --seed "$seed" > "$files/$kind.txt"
      "$BIN/vouch-bench" requests "$kind" --accounts "$pop" --count 20000 --seed $((seed + 1)) > "$files/$kind-warm.txt"
      local auth=$([[ $kind == stripe ]] && echo "" || echo "$issue_auth")
      if [[ $run == full ]]; then
        BENCH_REQUESTS_FILE="$files/$kind.txt" BENCH_WARM_FILE="$files/$kind-warm.txt" \
          wrk_run "vouch-$label-$name" "$base/" '{}' "$auth"
      else
        BENCH_REQUESTS_FILE="$files/$kind.txt" BENCH_WARM_FILE="$files/$kind-warm.txt" \
          wrk_run "vouch-$label-$name-half" "$base/" '{}' "$auth" "$(half_delay "vouch-$label-$name")"
      fi
    done
  done
  rm -rf "$files"
}

# The fake SMS provider the verification runs send to.
SMS_PORT=$((PORT + 1))
python3 "$ROOT/scripts/fakes/twilio.py" "$SMS_PORT" ACbench bench-sms-token > "$WORK/twilio.log" 2>&1 &
SMS_PID=$!
trap 'cleanup; kill "$SMS_PID" 2>/dev/null || true' EXIT INT TERM

rm -f "$WORK"/bench.db*
bench_db sqlite "sqlite://$WORK/bench.db?mode=rwc"
if [[ -z ${SKIP_PG:-} ]]; then
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS vouch_bench" >/dev/null
  psql "$PG_URL/postgres" -qc "CREATE DATABASE vouch_bench" >/dev/null
  bench_db postgres "$PG_URL/vouch_bench"
fi

# --- 3. the floor and the peer ---------------------------------------------------
if [[ -z ${SKIP_PEERS:-} ]]; then
  [[ -x $SHARED/run-peers.sh ]] || [[ -f $SHARED/run-peers.sh ]] || die "no $SHARED/run-peers.sh (set SHARED_BENCH)"
  log "running the floor and the peer (run-peers.sh)"
  while read -r name value p50 p99 rest; do
    [[ -n $name ]] || continue
    R[$name]="$value $p50 $p99"; emit "$name $value $p50 $p99 ${rest:-}"
  done < <(DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS THREADS=$THREADS RAW_SECS=$RAW_SECS \
             SKIP_TMPFS=${SKIP_TMPFS:-} bash "$SHARED/run-peers.sh")
fi

# --- summary --------------------------------------------------------------------
val() { cut -d' ' -f1 <<<"${R[$1]:-}"; }
p99() { cut -d' ' -f3 <<<"${R[$1]:-}"; }
ratio() { local a b; a=$(val "$1"); b=$(val "$2"); [[ -n $a && -n $b ]] && awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", a/b}' || echo "n/a"; }
{
  echo
  echo "summary (requests/s; ratio = Vouch ÷ floor)"
  for label in sqlite postgres; do
    [[ -n ${R[vouch-$label-issue]:-} ]] || continue
    printf '  %-9s issue %7s/s (p99 %s ms; at half load p99 %s ms)  ÷ floor sign %s = %s\n' "$label" \
      "$(val "vouch-$label-issue")" "$(cut -d' ' -f3 <<<"${R[vouch-$label-issue]}")" \
      "$(cut -d' ' -f3 <<<"${R[vouch-$label-issue-half]}")" "$(val floor-sign)" "$(ratio "vouch-$label-issue" floor-sign)"
    printf '  %-9s authorize %7s/s (p99 %s ms; at half load p99 %s ms)  ÷ floor verify %s = %s\n' "$label" \
      "$(val "vouch-$label-authorize")" "$(cut -d' ' -f3 <<<"${R[vouch-$label-authorize]}")" \
      "$(cut -d' ' -f3 <<<"${R[vouch-$label-authorize-half]}")" "$(val floor-verify)" "$(ratio "vouch-$label-authorize" floor-verify)"
    printf '  %-9s authorize, first-seen tokens %7s/s (p99 %s ms)  ÷ floor verify %s = %s\n' "$label" \
      "$(val "vouch-$label-authorize-fresh")" "$(cut -d' ' -f3 <<<"${R[vouch-$label-authorize-fresh]}")" \
      "$(val floor-verify)" "$(ratio "vouch-$label-authorize-fresh" floor-verify)"
    if [[ -n ${R[vouch-$label-issue-1m-uniform]:-} ]]; then
      for n in 10k 100k 1m; do
        printf '  %-9s issue, %4s accounts uniform %7s/s (p99 %s ms)  ÷ one account = %s\n' "$label" "$n" \
          "$(val "vouch-$label-issue-$n-uniform")" "$(p99 "vouch-$label-issue-$n-uniform")" \
          "$(ratio "vouch-$label-issue-$n-uniform" "vouch-$label-issue")"
      done
      printf '  %-9s issue, 1m accounts Zipf %7s/s (p99 %s ms)  ÷ one account = %s; at half of uniform p99 %s ms\n' "$label" \
        "$(val "vouch-$label-issue-1m-zipf")" "$(p99 "vouch-$label-issue-1m-zipf")" \
        "$(ratio "vouch-$label-issue-1m-zipf" "vouch-$label-issue")" "$(p99 "vouch-$label-issue-1m-uniform-half")"
      printf '  %-9s authorize, first-seen tokens, 1m accounts %7s/s (p99 %s ms; at half load %s ms)  ÷ floor verify = %s\n' "$label" \
        "$(val "vouch-$label-authorize-fresh-1m-uniform")" "$(p99 "vouch-$label-authorize-fresh-1m-uniform")" \
        "$(p99 "vouch-$label-authorize-fresh-1m-uniform-half")" "$(ratio "vouch-$label-authorize-fresh-1m-uniform" floor-verify)"
      printf '  %-9s Stripe events %s/s (p99 %s ms; at half load %s ms), SMS verification starts %s/s (p99 %s ms; at half load %s ms)\n' "$label" \
        "$(val "vouch-$label-webhooks")" "$(p99 "vouch-$label-webhooks")" "$(p99 "vouch-$label-webhooks-half")" \
        "$(val "vouch-$label-verifications")" "$(p99 "vouch-$label-verifications")" "$(p99 "vouch-$label-verifications-half")"
    fi
    printf '  %-9s peak RSS %s MB\n' "$label" "${R[vouch-$label-peak-rss-mb]}"
  done
  printf '  raw EdDSA sign %s/s ÷ floor raw sign %s = %s; verify %s/s ÷ floor raw verify %s = %s\n' \
    "$(val vouch-raw-eddsa-sign)" "$(val floor-raw-sign)" "$(ratio vouch-raw-eddsa-sign floor-raw-sign)" \
    "$(val vouch-raw-eddsa-verify)" "$(val floor-raw-verify)" "$(ratio vouch-raw-eddsa-verify floor-raw-verify)"
  if [[ -n ${R[glewlwyd-token]:-} ]]; then
    printf '  glewlwyd client-credentials %s/s (tmpfs %s/s)\n' "$(val glewlwyd-token)" "$(val glewlwyd-token-tmpfs)"
  fi
} | tee "$WORK/summary.txt"

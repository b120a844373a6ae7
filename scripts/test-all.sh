#!/usr/bin/env bash
# Installs the real peers the tests use (influxd 1.x, mosquitto, chromium, faketime, PostgreSQL, Redis, HAProxy) when
# missing, installs the npm dependencies from the lockfile, and runs the whole suite twice: on
# today's clock, and with the clock 400 days ahead (Debian's faketime), so a test that only
# passes on the day it was written fails here instead of on a user's machine next month.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
# Region mode (issue 14): PostgreSQL 15, Redis and HAProxy, started by the tests on free ports.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's packages start system services (influxdb on 8086, postgresql, redis, haproxy); the tests start their own.
for svc in influxdb postgresql redis-server haproxy; do
  command -v systemctl >/dev/null 2>&1 && systemctl stop "$svc" >/dev/null 2>&1 || true
done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npx tsc --noEmit -p .
# One run of the suite; prints "<label>: N passed, N failed" and adds to the totals.
passed=0; failed=0; status=0
FAILURES="$(mktemp -t sitegate-failures-XXXXXX.txt)"
suite() {
  local label="$1"; shift
  # Words before `--` prefix the command (faketime …); words after it are extra vitest arguments.
  local prefix=() extra=() seen=0
  for a in "$@"; do
    if [ "$a" = "--" ]; then seen=1; elif [ $seen -eq 0 ]; then prefix+=("$a"); else extra+=("$a"); fi
  done
  local report; report="$(mktemp -t sitegate-vitest-XXXXXX.json)"
  echo "== suite: ${label}"
  local timing; timing="$(mktemp -t sitegate-vitest-XXXXXX.json)"
  local rc=0
  "${prefix[@]}" npx vitest run "${extra[@]}" --reporter=default --reporter=json --outputFile.json="$report" || rc=$?
  [ $rc -ne 0 ] && { status=1; echo "FAILED [${label}] vitest exited with status ${rc} (the failed tests are named below; with none, an error outside any test — a test process that crashed — is printed above under 'Unhandled Errors')" >>"$FAILURES"; }
  # Tight latency bounds, measured alone (vitest.timing.config.ts).
  rc=0
  "${prefix[@]}" npx vitest run -c vitest.timing.config.ts --reporter=default --reporter=json --outputFile.json="$timing" || rc=$?
  [ $rc -ne 0 ] && { status=1; echo "FAILED [${label}] timing run: vitest exited with status ${rc}" >>"$FAILURES"; }
  local counts
  counts="$(node -e '
    let passed = 0, failed = 0;
    for (const f of process.argv.slice(1)) {
      const r = JSON.parse(require("fs").readFileSync(f, "utf8"));
      passed += r.numPassedTests;
      failed += r.numFailedTests || r.numFailedTestSuites; // a suite that failed to load has no failed tests
    }
    console.log(passed, failed);
  ' "$report" "$timing" 2>/dev/null || echo "0 1")"
  # The names of what failed, with the first line of each error, so the tail of a CI log says it.
  LABEL="$label" node -e '
    for (const f of process.argv.slice(1)) {
      const r = JSON.parse(require("fs").readFileSync(f, "utf8"));
      for (const file of r.testResults) {
        if (file.status === "failed" && file.assertionResults.every((t) => t.status !== "failed")) {
          console.log("FAILED [" + process.env.LABEL + "] (file) " + file.name + ": " + String(file.message || "").split("\n")[0]);
        }
        for (const t of file.assertionResults) {
          if (t.status !== "failed") continue;
          const why = String((t.failureMessages || [])[0] || "").split("\n")[0];
          console.log("FAILED [" + process.env.LABEL + "] " + file.name + " > " + t.fullName + ": " + why.slice(0, 300));
        }
      }
    }
  ' "$report" "$timing" >>"$FAILURES" 2>/dev/null || true
  rm -f "$report" "$timing"
  echo "${label}: ${counts% *} passed, ${counts#* } failed"
  passed=$((passed + ${counts% *})); failed=$((failed + ${counts#* }))
}
suite "today's clock"
# The shifted run leaves out what exercises durability, load, models or the region peers (PostgreSQL,
# Redis, HAProxy) with event times fixed in the past and no calendar decision (they take half the
# suite's time and would pass or fail alike).
SHIFTED_SKIP=(test/killLoop.e2e.test.ts test/killReplay.e2e.test.ts test/crash.e2e.test.ts test/image.e2e.test.ts 'gateway/src/face/**' 'gateway/src/ledger/pg/**' 'gateway/src/state/pg/**' 'gateway/src/region/**' 'test/region.*.e2e.test.ts' test/deploy.region.test.ts
  # Event-time only (hazard rules, face verdicts, the runner's mechanics), or a clock of their own (the timer kill test sets its gateway's clock absolutely).
  test/hazard.e2e.test.ts test/face.e2e.test.ts test/checks.backlog.e2e.test.ts test/closedLoop.killTimers.e2e.test.ts)
suite "clock +400 days (faketime)" faketime -f +400d -- "${SHIFTED_SKIP[@]/#/--exclude=}"
# What failed, then one plain closing line that any CI reads: "N passed, N failed".
cat "$FAILURES"; rm -f "$FAILURES"
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"

#!/usr/bin/env bash
# `npm test`: every test file of test/ (not test/fixtures/). Most run one at a time, as they always
# did: the unit tier is CPU-bound and some tests assert timing windows, and the QEMU lab wants the
# cores. The files in LANE_1 and LANE_2 below wait more than they compute (sim boot delays, soaks,
# timers: about half a core each, measured with /usr/bin/time against their wall time), so after the
# others they run in two lanes side by side, each lane one file at a time and in a Temporal namespace
# of its own ($VAQUERO_TEST_NAMESPACE, default vaquero-test, and that name with -2), so neither lane
# sees, or terminates, the other's workflows. Lane 2's output is printed when it is done.
#
#   scripts/test-files.sh [--list]    --list: print the three groups and exit
#
# Needs the Temporal dev server at TEMPORAL_ADDRESS (scripts/test.sh starts it).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Side by side, each lane about 5 minutes in CI (the files' walls in CI's log, one at a time: lane 1
# 319 s, lane 2 286 s; node runs a lane's files in name order). A file not listed runs in the serial
# group; a file that computes more than it waits belongs there, and so does one whose assertions need
# a quiet machine.
LANE_1=(
  test/temporal/worker-upgrade.test.ts
  test/temporal/rollout-soak.test.ts
  test/temporal/rollout-updates.test.ts
  test/e2e/temporal-postgres.test.ts
  test/temporal/rollout-in-flight.test.ts
)
LANE_2=(
  test/temporal/rollout.test.ts
  test/temporal/boot-retries.test.ts
  test/temporal/rollout-cli.test.ts
  test/temporal/rollout-continue-as-new.test.ts
  test/temporal/server-api.test.ts
  test/temporal/rollout-updates-continue-as-new.test.ts
)

for f in "${LANE_1[@]}" "${LANE_2[@]}"; do
  [[ -f "$f" ]] || {
    echo "scripts/test-files.sh: $f is listed in a lane but does not exist" >&2
    exit 2
  }
done
SERIAL=()
while IFS= read -r f; do
  [[ " ${LANE_1[*]} ${LANE_2[*]} " == *" $f "* ]] || SERIAL+=("$f")
done < <(find test -name '*.test.ts' -not -path 'test/fixtures/*' | sort)

if [[ "${1:-}" == --list ]]; then
  printf 'serial: %s\n' "${SERIAL[@]}"
  printf 'lane 1: %s\n' "${LANE_1[@]}"
  printf 'lane 2: %s\n' "${LANE_2[@]}"
  exit 0
fi

# 25 minutes per file, as test:e2e (the other tiers' scripts keep 15): the lab file, one lab boot
# for several issues' scenarios, declares 25 itself, and a runner limit under it would cut it short.
run() { node_modules/.bin/tsx --test --test-concurrency=1 --test-force-exit --test-timeout=1500000 "$@"; }
NAMESPACE="${VAQUERO_TEST_NAMESPACE:-vaquero-test}"

status=0
run "${SERIAL[@]}" || status=1

lane2_log="$(mktemp)"
# Lane 2 in a process group of its own (job control on for this one start), so an interrupted run
# stops its tsx and node test processes too, not only the subshell that started them.
set -m
VAQUERO_TEST_NAMESPACE="$NAMESPACE-2" run "${LANE_2[@]}" >"$lane2_log" 2>&1 &
lane2=$!
set +m
trap 'kill -- -"$lane2" 2>/dev/null; rm -f "$lane2_log"' EXIT
VAQUERO_TEST_NAMESPACE="$NAMESPACE" run "${LANE_1[@]}" || status=1
wait "$lane2" || status=1
printf '\n# lane 2 (ran beside lane 1):\n'
cat "$lane2_log"
exit "$status"

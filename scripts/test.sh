#!/usr/bin/env bash
# The README's test command (`npm test`): installs what is missing, type-checks and builds,
# starts the real local stack (Kafka, Triton, ffmpeg) and runs every test against it.
#   FRAMEWIRE_TEST_ONLY=unit npm test     only the unit tests (no stack needed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# npm ci empties node_modules first, through a symlink too: a git worktree whose node_modules
# links to another checkout's would wipe that one (its package-lock.json, checked out later, looks
# newer). A linked node_modules is only checked.
if [ -L node_modules ]; then
  npm ls --all >/dev/null 2>&1 || { echo "node_modules links to $(readlink node_modules) and does not satisfy package.json: run npm ci there" >&2; exit 1; }
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --ignore-scripts
fi
# Type-check and compile (src, test, bench) in one go; a clean dist/ so no stale test runs.
rm -rf dist
npx tsc -p tsconfig.json

shopt -s nullglob
unit=(dist/test/unit/*.test.js)
if [ "${FRAMEWIRE_TEST_ONLY:-}" = unit ]; then
  exec node --test --test-concurrency=1 --test-timeout=360000 "${unit[@]}"
fi

# The stack installs and starts (minutes on a fresh machine, ~15 s warm) while the unit tests,
# which need no stack, run; its output is shown once it is up (or failed).
mkdir -p .stack
stack_log=.stack/test-stack-up.log
bash scripts/stack.sh up >"$stack_log" 2>&1 &
stack_pid=$!
unit_rc=0
node --test --test-concurrency=1 --test-timeout=360000 "${unit[@]}" || unit_rc=$?
stack_rc=0
wait "$stack_pid" || stack_rc=$?
cat "$stack_log"
[ "$stack_rc" = 0 ] || { echo "test: the stack did not come up (exit $stack_rc)" >&2; exit "$stack_rc"; }
# The test files' ensureStack() then trusts this instead of probing again (test/helpers/stack.ts).
export FRAMEWIRE_STACK_UP=1
# One file at a time: integration and end-to-end tests share the broker and the server.
# The stack lifecycle test stops and restarts the stack, so it runs last.
# --test-timeout bounds each file (node 20 runs a file as one test): 6 min is above every file's
# own suite timeouts (the longest, test/lifecycle, allows 300 s), so a hang fails in minutes.
rc=0
node --test --test-concurrency=1 --test-timeout=360000 \
  dist/test/deploy/*.test.js dist/test/integration/*.test.js dist/test/e2e/*.test.js dist/test/lifecycle/*.test.js || rc=$?
[ "$unit_rc" = 0 ] || { echo "test: unit tests failed (exit $unit_rc)" >&2; [ "$rc" != 0 ] || rc=$unit_rc; }
exit "$rc"

#!/usr/bin/env bash
# The README's test command (`npm run test:all`, as root): installs what the tests need, then runs the unit
# tests and the lab's end-to-end tests in one jest run, and ends with one "N passed, N failed" line.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "test:all: the end-to-end tests need root (namespaces, mounts, systemd-nspawn)" >&2; exit 1; }

bash "$HERE/toolchain.sh"
eval "$(bash "$HERE/toolchain.sh" --env)"
cd "$REPO"
# Here the app parsers' test runs or fails; plain `npm test` skips it, saying so, when they are not built.
export WG_RELAY_REQUIRE_APP_PARSERS=1

results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
npx --no-install jest --ci --runInBand --json --outputFile="$results" "$@" || status=$?
# shellcheck disable=SC2016 # JavaScript, not shell: the template literal is JavaScript's.
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(`${r.numPassedTests} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites} failed`);
' "$results"
exit "$status"

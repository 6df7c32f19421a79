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
# Where the time went (CI has 90 minutes): each e2e file's, and the ten slowest tests'.
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const name = (path) => path.slice(path.indexOf("/test/") + 1);
const files = r.testResults.map((file) => ({ name: name(file.name), seconds: (file.endTime - file.startTime) / 1000 }));
const tests = r.testResults.flatMap((file) => file.assertionResults.map((test) => ({ name: `${name(file.name)}: ${test.title}`, seconds: (test.duration ?? 0) / 1000 })));
const top = (list, n) => list.sort((a, b) => b.seconds - a.seconds).slice(0, n).map((item) => `  ${item.seconds.toFixed(0).padStart(5)} s  ${item.name}`).join("\n");
console.log(`time per file:\n${top(files, files.length)}\nslowest tests:\n${top(tests, 10)}`);
console.log(`${r.numPassedTests} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites} failed`);
' "$results"
exit "$status"

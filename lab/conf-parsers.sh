#!/usr/bin/env bash
# lab/conf-parsers.sh: the WireGuard apps' own conf parsers, built into harnesses the unit tests run
# (test/unit/app-parsers.test.ts) on every client conf the program renders. Called by lab/toolchain.sh.
#
#   bash lab/conf-parsers.sh          build what is missing (as root, like toolchain.sh); a warm run builds nothing
#   bash lab/conf-parsers.sh --dir    print the folder the harnesses are (or will be) in; builds nothing
#
# Each harness is cached under $WG_RELAY_CACHE/built/ keyed by its pinned versions, its source in
# test/conf-parsers/ and the compilers' versions, so every clone on the machine shares it:
#   android/parse   wireguard-android's com.wireguard.config.Config.parse, from the com.wireguard.android:tunnel
#                   library on Maven Central, on the JVM. The library reads android.os.Build.VERSION.SDK_INT, as the
#                   app's own JVM unit tests do against the Android SDK's stub android.jar (SDK_INT 0): here that
#                   jar comes from Maven Central (com.google.android:android). SDK_INT 0 sends its address parsing
#                   to its own JVM path (a numeric-address pattern, then InetAddress.getByName).
#   windows/parse   wireguard-windows' conf package (the app's own parser), a Windows program built with Go from the
#                   pinned module and run under Debian's Wine. The package does not build for Linux (it imports
#                   golang.org/x/sys/windows and the driver package). Go 1.22 and later need ProcessPrng from
#                   bcryptprimitives.dll, which Wine 8 lacks: test/conf-parsers/windows/bcryptprimitives.c provides
#                   that one function, built with MinGW.
# Each `parse FILE...` prints "ok FILE" or "rejected FILE: WHY" per file.
set -euo pipefail

TUNNEL_VERSION=1.0.20260102          # com.wireguard.android:tunnel (1.0.20230427's aar is not on Maven Central)
TUNNEL_SHA256=2b9c16db026496123e4db695d26d03d1958a201096c7c4c89b21077dc70f3119
ANDROID_STUB_VERSION=4.1.1.4         # com.google.android:android, the SDK's stub android.jar
ANDROID_STUB_SHA256=84072541cbb711eff89f7277100ff854929a446dba7ceb1b195c340e0b4fd3cb

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SOURCES=$REPO/test/conf-parsers
CACHE=${WG_RELAY_CACHE:-/var/cache/wg-relay}
BUILT=$CACHE/built
# Debian's wine64 package puts its loader here, not on PATH.
WINE64=/usr/lib/wine/wine64

log() { echo "conf-parsers: $*" >&2; }
die() { echo "conf-parsers: $*" >&2; exit 1; }

key_of() {
  local item
  for item in "$@"; do
    if [ -f "$item" ]; then sha256sum <"$item"; else printf '%s\n' "$item"; fi
  done | sha256sum | cut -c1-16
}
recipe() { declare -f "$1"; }
tool_version() { "$@" 2>&1 | head -n 1 || true; }

parsers_dir() {
  echo "$BUILT/conf-parsers-$(key_of "$TUNNEL_VERSION" "$TUNNEL_SHA256" "$ANDROID_STUB_VERSION" "$ANDROID_STUB_SHA256" \
    "$SOURCES/android/ParseConf.java" "$SOURCES/windows/main.go" "$SOURCES/windows/go.mod" "$SOURCES/windows/go.sum" \
    "$SOURCES/windows/bcryptprimitives.c" "$(tool_version javac -version)" "$(tool_version go env GOVERSION)" \
    "$(tool_version x86_64-w64-mingw32-gcc --version)" "$(tool_version "$WINE64" --version)" "$(recipe build_android)" "$(recipe build_windows)")"
}

maven_artifact() { # GROUP:ARTIFACT:VERSION:TYPE SHA256: fetch it from Maven Central with mvn into ., check its pinned hash
  local file
  IFS=: read -r _ file _ _ <<<"$1"
  file=$file-$(cut -d: -f3 <<<"$1").$(cut -d: -f4 <<<"$1")
  mvn -q -B -Dmaven.repo.local="$CACHE/maven" dependency:copy -Dartifact="$1" -DoutputDirectory=. >&2
  echo "$2  $file" | sha256sum -c --quiet - >&2 || die "$1: SHA-256 differs from the pinned $2"
  echo "$file"
}

build_android() { # OUT
  local aar stub
  mkdir -p "$1/android"
  aar=$(maven_artifact "com.wireguard.android:tunnel:$TUNNEL_VERSION:aar" "$TUNNEL_SHA256")
  stub=$(maven_artifact "com.google.android:android:$ANDROID_STUB_VERSION:jar" "$ANDROID_STUB_SHA256")
  unzip -q -o "$aar" classes.jar
  install -m 0644 classes.jar "$1/android/wireguard-tunnel.jar"
  install -m 0644 "$stub" "$1/android/android-stub.jar"
  javac -d "$1/android" -cp "$1/android/wireguard-tunnel.jar" "$SOURCES/android/ParseConf.java"
  cat >"$1/android/parse" <<'EOF'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
exec java -cp "$here:$here/wireguard-tunnel.jar:$here/android-stub.jar" ParseConf "$@"
EOF
  chmod 0755 "$1/android/parse"
}

build_windows() { # OUT
  mkdir -p "$1/windows"
  cp "$SOURCES/windows/main.go" "$SOURCES/windows/go.mod" "$SOURCES/windows/go.sum" .
  GOOS=windows GOARCH=amd64 CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -o "$1/windows/parse-conf.exe" .
  x86_64-w64-mingw32-gcc -O2 -shared -o "$1/windows/bcryptprimitives.dll" "$SOURCES/windows/bcryptprimitives.c" -ladvapi32
  # Wine keeps a prefix (its C: drive) per user: made on first use, with the DLL in its system32.
  cat >"$1/windows/parse" <<EOF
#!/bin/sh
wine64=$WINE64
set -e
here=\$(dirname "\$(readlink -f "\$0")")
export WINEPREFIX="\${TMPDIR:-/tmp}/wg-relay-wine-\$(id -u)" WINEDEBUG=-all
if [ ! -f "\$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
  "\$wine64" wineboot --init >/dev/null 2>&1
  cp "\$here/bcryptprimitives.dll" "\$WINEPREFIX/drive_c/windows/system32/"
fi
exec "\$wine64" "\$here/parse-conf.exe" "\$@"
EOF
  chmod 0755 "$1/windows/parse"
}

case "${1:-}" in
  --dir) parsers_dir; exit 0 ;;
  "") ;;
  *) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

for tool in java javac mvn go "$WINE64" x86_64-w64-mingw32-gcc unzip; do
  command -v "$tool" >/dev/null || die "building the app parsers needs $tool (lab/toolchain.sh installs Debian's)"
done
dir=$(parsers_dir)
[ -x "$dir/android/parse" ] && [ -x "$dir/windows/parse" ] && exit 0
mkdir -p "$BUILT" "$CACHE/logs"
work=$CACHE/work/conf-parsers
rm -rf "$work" "$dir.new"; mkdir -p "$work"
log "building the WireGuard apps' conf parsers (log: $CACHE/logs/conf-parsers.log)"
if ! (cd "$work" && build_android "$dir.new" && build_windows "$dir.new") >"$CACHE/logs/conf-parsers.log" 2>&1; then
  tail -n 30 "$CACHE/logs/conf-parsers.log" >&2
  die "building the conf parsers failed (log: $CACHE/logs/conf-parsers.log)"
fi
rm -rf "$dir" "$work"; mv "$dir.new" "$dir"
log "built $dir"

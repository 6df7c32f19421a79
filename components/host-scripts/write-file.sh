#!/bin/sh
# write-file: writes its standard input into a file, atomically, with its mode and owner. How every file reaches a
# host: a relay's access rules for hundreds of clients outgrow any command line, and a secret never enters one. It
# is the step that puts wg-relay's other scripts on a host, so it cannot be one of them: the host layer
# (components/host/host.ts) carries this file in each file step's command, as the function write_file.
#
#   write-file PATH MODE OWNER GROUP [FILTER]
#
# FILTER, a command (the caller's function, say), reads the content on stdin and prints what is written (default:
# cat); it fails the write by failing.
# It prints one word on stdout, what a step's follow-up (a restart) reads:
#   changed    the content differed from the file's (or there was none): the new file is in place;
#   unchanged  the file had that content already: only its mode and owner were set (a mode fix restarts nothing).
# On failure (non-zero status) the file is as it was, and no temporary file is left.
set -eu

if [ $# -lt 4 ] || [ $# -gt 5 ]; then
    echo "usage: write-file PATH MODE OWNER GROUP [FILTER]" >&2
    exit 2
fi
path=$1 mode=$2 owner=$3 group=$4 filter=${5:-cat}

mkdir -p "$(dirname "$path")"
# The content, a secret perhaps, is never readable by others, not even in the temporary file.
umask 077
tmp=$(mktemp "$path.XXXXXX")
trap 'rm -f "$tmp"' EXIT
"$filter" >"$tmp"
if cmp -s "$tmp" "$path"; then
    chown "$owner:$group" "$path"
    chmod "$mode" "$path"
    echo unchanged
else
    chown "$owner:$group" "$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
    echo changed
fi

#!/bin/sh
# Tell a person tonight's takedowns: the rows of the --changes file whose change is
# "gone" (a store that had the recording answers that it has it no more). Run after every
# nightly run, whatever its exit code: a change is told once, on the night it is seen.
# Replace `logger` with your own channel (mail, a webhook); the list goes on its input.
set -eu
changes="${1:?usage: gone.sh CHANGES.csv}"
[ -f "$changes" ] || exit 0
# The first three columns are isrc, provider and change: codes and names of ours, never
# quoted, so a comma split is safe for them (later columns, titles, are not read).
gone=$(awk -F, 'NR > 1 && $3 == "gone" { print $1 " (" $2 ")" }' "$changes")
[ -n "$gone" ] || exit 0
count=$(printf '%s\n' "$gone" | wc -l | tr -d ' ')
printf '%s\n' "$gone" | logger -p user.warning -t isrc-resolve \
    "$count recordings went dark tonight (see $changes):"

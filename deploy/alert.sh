#!/bin/sh
# What to do when the nightly run did not exit 0 (see README, exit codes):
#   3   stopped by the quota or a budget, output written: expected on some nights, so an
#       alert only when it happens three nights in a row (the catalogue is not catching up)
#   1   some rows errored, the machine refused (disk, permission), or no token: alert
#   2   configuration or input error, nothing resolved: alert, a person must fix it
#   70  a bug in isrc-resolver: alert, and report it
# Replace `logger` with your own paging (mail, a webhook): the message says where to look.
set -eu
unit="${1:-isrc-resolve.service}"
status="${MONITOR_EXIT_STATUS:-unknown}"
count_file="${ISRC_RESOLVER_STATE:-/var/lib/isrc-resolver}/quota-stops"
if [ "$status" = "3" ]; then
    count=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
    echo "$count" > "$count_file"
    [ "$count" -lt 3 ] && exit 0
fi
logger -p user.err -t isrc-resolve \
    "$unit ended with exit $status; see: journalctl -u $unit -n 50"

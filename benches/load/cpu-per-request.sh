#!/usr/bin/env bash
# CPU time per request of running servers under one wrk load: user and system microseconds
# per request for each PID, from /proc/PID/stat (utime, stime) before and after the run.
# A steadier signal than req/s on a shared machine when comparing two servers' work.
#
#   bash benches/load/cpu-per-request.sh URL SECONDS PID [PID ...]
#
# Start the servers yourself (loopback only); this only reads their counters.
set -euo pipefail
url=$1; secs=$2; shift 2
hz=$(getconf CLK_TCK)
declare -A u1 s1
for p in "$@"; do read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat"); u1[$p]=$u; s1[$p]=$s; done
n=$(wrk -t1 -c64 -d"${secs}s" "$url" | awk '/requests in/{print $1}')
out="requests $n, req/s $((n / secs))"
for p in "$@"; do
  read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat")
  out="$out | pid $p user $(awk -v a="$u" -v b="${u1[$p]}" -v n="$n" -v hz="$hz" 'BEGIN{printf "%.2f", (a-b)*1e6/hz/n}') µs"
  out="$out sys $(awk -v a="$s" -v b="${s1[$p]}" -v n="$n" -v hz="$hz" 'BEGIN{printf "%.2f", (a-b)*1e6/hz/n}') µs"
done
echo "$out"

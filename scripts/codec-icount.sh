#!/usr/bin/env bash
# Instruction counts per operation for the uwsgi codec and httparse on the same request,
# under callgrind (stable under machine load, unlike wall-clock time). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
cargo build --release -q -p ferrule-benches --example codec_icount
bin=target/release/examples/codec_icount
n=20000
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-16s %12s %10s\n' op instr/op "vs httparse"
base_http=$(( ($(count httparse $n) - $(count httparse 0)) / n ))
for op in decode_borrowed decode_stream decode_owned httparse encode; do
  if [ "$op" = decode_stream ]; then
    per=$(( ($(count decode_stream $n) - $(count stream_setup $n)) / n ))
  else
    per=$(( ($(count $op $n) - $(count $op 0)) / n ))
  fi
  ratio=$(python3 -c "print(f'{$base_http/$per:.2f}x')")
  printf '%-16s %12d %10s\n' "$op" "$per" "$ratio"
done

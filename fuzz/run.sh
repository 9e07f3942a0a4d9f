#!/usr/bin/env bash
# run.sh SECONDS TARGET...: run each libFuzzer target for SECONDS seconds,
# one after the other, at the lowest CPU priority, one job each.  Starts
# from the seed corpus in corpus/<target>/ and grows a working corpus in
# out/<target>/corpus (the seeds in the repository are left alone).  Any
# crash or property violation is saved as out/<target>/crash-* and makes
# the script exit non-zero.  Prints one summary line per target.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: run.sh SECONDS TARGET...}
shift
status=0
for t in "$@"; do
	work="out/$t"
	mkdir -p "$work/corpus"
	cp -n "corpus/$t"/* "$work/corpus/" 2>/dev/null || true
	dict=()
	[ -f "$t.dict" ] && dict=(-dict="$t.dict")
	nice -n 19 "./$t" "${dict[@]}" -max_total_time="$seconds" \
		-print_final_stats=1 -artifact_prefix="$work/" -max_len=256 \
		-timeout=10 -rss_limit_mb=1024 "$work/corpus" >"$work/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
	last=$(grep -E '^#[0-9]+' "$work/log" | tail -n 1)
	cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
	ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
	corp=$(sed -nE 's/.*corp: ([0-9]+).*/\1/p' <<<"$last")
	if [ "$rc" -eq 0 ]; then
		echo "$t: ${seconds}s, ${execs:-?} execs, cov ${cov:-?} edges, ft ${ft:-?}, corpus ${corp:-?}, no crash"
	else
		echo "$t: FAILED (exit $rc) after ${execs:-?} execs; see fuzz/$work/log and fuzz/$work/crash-*"
		grep -E 'property violated|ERROR: AddressSanitizer|runtime error' "$work/log" | head -n 5
		status=1
	fi
done
exit $status

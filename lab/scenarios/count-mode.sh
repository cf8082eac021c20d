# The counting mode (`run --count`, `top`) against tracefs and the stream on the same runs: every count equal.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 600
#
# 1. The seed's job on the fallback layout under `run --count --breakdown`,
#    tracefs recording beside it: each fs_dax tracepoint's hits, the PTE and
#    PMD faults and the PMD fallbacks equal tracefs' counts of the same run,
#    and the busiest file and process carry every fault.
# 2. PMD fallbacks of four reasons, each provoked with dax-probe recording
#    the stream and counting at once: the kernel-side classifier names the
#    same reason as the stream's report.
# 3. `top` prints its screen while a command runs, and ends with it.
# 4. `serve --count` serves the counts as metrics.
. /lab/lib.sh

# `run --count`'s JSON of the command into /outbox/count.json.
counted() {
	dax-probe run --count --breakdown --json -- "$@" > /outbox/count.json
}

# The sum of tracefs' counts of EVENT over every result.
traced() {
	awk -v event="$1" '$1 == event { s += $3 } END { print s + 0 }' /outbox/fs_dax.counts
}

lab_format plain
lab_fio_traced /lab/fio/seed-randrw.fio counted
cp /outbox/count.json /outbox/count-seed.json
for tracepoint in dax_pmd_fault dax_pmd_fault_done dax_pte_fault dax_pte_fault_done dax_pmd_load_hole \
	dax_pmd_load_hole_fallback dax_load_hole dax_insert_pfn_mkwrite dax_writeback_range dax_writeback_one; do
	ours=$(lab_json "$tracepoint" /outbox/count.json)
	theirs=$(traced "$tracepoint")
	lab_expect "$tracepoint: counted $ours, tracefs $theirs" test "$ours" = "$theirs"
done
pte=$(lab_json pte /outbox/count.json)
pmd_fallback=$(lab_json pmd_fallback /outbox/count.json)
lab_expect "PTE faults: counted $pte, tracefs $(traced dax_pte_fault_done)" test "$pte" = "$(traced dax_pte_fault_done)"
lab_expect "PMD fallbacks: counted $pmd_fallback, tracefs $(lab_count dax_pmd_fault_done FALLBACK)" \
	test "$pmd_fallback" = "$(lab_count dax_pmd_fault_done FALLBACK)" -a "$pmd_fallback" -gt 0
skipped=$(lab_json skipped_runs /outbox/count.json)
lab_expect "no program run skipped ($skipped)" test "$skipped" = 0
unknown=$(lab_json unknown /outbox/count.json)
lab_expect "every fallback has a reason (unknown: $unknown)" test "$unknown" = 0
# The busiest file and process: the job's one file, fio's processes.
sed -n '/"files"/,$p' /outbox/count.json > /tmp/files.json
file_total=$(lab_json total /tmp/files.json)
all=$((pte + $(lab_json pmd /outbox/count.json)))
lab_expect "the busiest file has every fault ($file_total of $all)" test "$file_total" = "$all"
lab_expect "the busiest processes are fio's" grep -q '"comm": "fio"' /outbox/count.json
lab_expect "the latencies are in buckets" grep -q '"bucket": "\[' /outbox/count.json
# PTE latencies are a sample by default (the start program attached 10 %
# of every second), every PTE fault timed with --latency-sample 100.
timed_pte() {
	sed -n '/"timed"/,/}/p' "$1" > /tmp/timed.json
	lab_json pte /tmp/timed.json
}
sampled=$(timed_pte /outbox/count.json)
lab_expect "a sample of the PTE faults is timed ($sampled of $pte)" test "$sampled" -gt 0 -a "$sampled" -lt "$pte"
dax-probe run --count --breakdown -- fio --eta=never --output=/tmp/fio.txt /lab/fio/seed-randrw.fio > /outbox/count.txt
cat /outbox/count.txt
lab_expect "the summary says the invariants are not checked" grep -q '^invariants: not checked' /outbox/count.txt
lab_expect "the summary has a PTE latency histogram" grep -q '^pte fault latency (ns):' /outbox/count.txt

# Each reason's fallback, counted in the kernel and classified from the stream
# (`lab_reason_case` lays out each reason's file: lab/guest/lib.sh).
lab_format aligned
for reason in address-colour cow-write pte-entry-in-range extent-too-short; do
	args=$(lab_reason_case "$reason") || exit 1
	# shellcheck disable=SC2086 # the arguments, one word each
	counted dax-probe record -o "/outbox/count-$reason.daxtrace" -- dax-lab-fault $args
	cp /outbox/count.json "/outbox/count-$reason.json"
	dax-probe report --json "/outbox/count-$reason.daxtrace" > /outbox/report.json
	counted_n=$(lab_json "$reason" /outbox/count.json 0)
	streamed_n=$(lab_json "$reason" /outbox/report.json 0)
	echo "result: count-mode $reason: counted $counted_n, stream $streamed_n"
	lab_expect "$reason: counted $counted_n, the stream $streamed_n (at least one)" \
		test "$counted_n" = "$streamed_n" -a "$counted_n" -ge 1
done

timed_file=$LAB_DAX_MOUNT/timed
xfs_io -f -c "pwrite -q 0 4m" "$timed_file"
# shellcheck disable=SC2046 # the arguments, one word each
dax-probe run --count --latency-sample 100 --json -- \
	dax-lab-fault "$timed_file" --length 4m --shift 4k --touch $(lab_touches_16k 64) > /outbox/count-timed.json
all=$(lab_json pte /outbox/count-timed.json)
timed=$(timed_pte /outbox/count-timed.json)
lab_expect "--latency-sample 100 times every PTE fault ($timed of $all)" test "$timed" = "$all" -a "$all" -ge 64
top=$LAB_DAX_MOUNT/top
xfs_io -f -c "pwrite -q 0 8m" "$top"
dax-probe top -- dax-lab-fault "$top" --length 4m --touch r:0,r:1m,w:2m > /outbox/top.txt
cat /outbox/top.txt
lab_expect "top shows faults per second" grep -q '^faults/s: pte' /outbox/top.txt
lab_expect "top's last screen counts the PMD faults" grep -q 'faults: pmd [1-9]' /outbox/top.txt

# 4. `serve --count`: the counts as metrics, under the stream's names.
# shellcheck disable=SC2046 # the arguments, one word each
# Every PTE fault timed: the one fault of this case would fall outside a sample.
lab_serve_scrape 9479 '^dax-probe: counting:' /outbox/count.prom "--count --breakdown --latency-sample 100" \
	dax-lab-fault $(lab_reason_case address-colour)
grep -E '^dax_probe_(info|faults_total|fallbacks_total)' /outbox/count.prom
colour=$(sed -n 's/^dax_probe_fallbacks_total{reason="address-colour"} //p' /outbox/count.prom)
lab_expect "the counting metrics count the address-colour fallback ($colour)" test "${colour:-0}" = 1
lab_expect "the metrics say the mode" grep -q '^dax_probe_info{.*mode="count"' /outbox/count.prom
lab_expect "and that no invariant is checked" sh -c "! grep -q '^dax_probe_invariant_checked.* 1\$' /outbox/count.prom"
lab_expect "a PTE latency histogram" grep -q '^dax_probe_fault_latency_seconds_count{size="pte"} [1-9]' /outbox/count.prom
lab_expect "and the share of the time it samples" grep -q '^dax_probe_latency_sample_ratio 1$' /outbox/count.prom

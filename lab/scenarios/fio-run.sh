# dax-probe run next to fio: one summary (fio bandwidth, PMD/PTE faults, reasons, verdict), JSON, plots, live metrics.
# kernels: custom
# timeout: 700
#
# The same seed fio job three times under `dax-probe run`: on the 2 MiB
# aligned XFS (tracefs records beside it as ground truth), on the reference
# module's /dev/daxref, and on an XFS whose extents are not 2 MiB aligned
# (every PMD fault falls back). `cargo xtask demo` shows what this leaves in
# the outbox; the suite's dashboards check replays fallback.daxtrace.
. /lab/lib.sh

# "1234.5" MB/s from fio's group line "READ: bw=...MiB/s (1234MB/s)"; kB/s and GB/s too.
fio_group_mb() {
	awk -v dir="$1:" '$1 == dir {
		match($0, /\(([0-9.]+)([kMG])B\/s\)/)
		text = substr($0, RSTART + 1, RLENGTH - 5); unit = substr(text, length(text)); value = text + 0
		print (unit == "k") ? value / 1000 : (unit == "G") ? value * 1000 : value; exit
	}' "$2"
}

# The summary's "fio: read X MB/s, ... write Y MB/s" against fio's own normal output.
check_summary() {
	out=$1
	lab_expect "fio's normal output is passed on" grep -q '^Run status group 0' "$out"
	lab_expect "dax-probe printed its summary" grep -q '^dax-probe: summary of `fio ' "$out"
	for dir in read write; do
		DIR=$(echo "$dir" | tr a-z A-Z)
		ours=$(sed -n "s/^fio: .*$dir \([0-9.]*\) MB\/s.*/\1/p" "$out")
		theirs=$(fio_group_mb "$DIR" "$out")
		echo "result: fio $dir: summary $ours MB/s, fio's own output $theirs MB/s"
		lab_expect "the summary's $dir bandwidth is fio's ($ours vs $theirs MB/s)" \
			awk -v a="$ours" -v b="$theirs" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 0.02 * b + 1) }'
	done
	lab_expect "the verdict is the summary's last line, and a pass" sh -c "tail -n 1 '$out' | grep -q '^verdict: pass '"
}

svg_has() {
	lab_expect "the plot $1 shows $2" grep -qF "$2" "$1"
}

echo "== 1. 2 MiB-aligned XFS =="
lab_trace_start
code=0
dax-probe run --plot /outbox/xfs.svg -o /outbox/xfs.daxtrace -- fio --eta=never /lab/fio/seed-randrw.fio > /outbox/run-xfs.txt || code=$?
lab_trace_stop
lab_trace_counts > /dev/null
cat /outbox/run-xfs.txt
lab_expect "dax-probe run exits 0 (got $code)" test "$code" = 0
check_summary /outbox/run-xfs.txt
lab_expect "the summary gives the probe's own cost, with its programs' runs" \
	grep -q '^probe cost: dax-probe [0-9.]* s CPU ([0-9.]* s of it loading and attaching;.*its eBPF programs at least [0-9.]* s in [0-9]* runs' /outbox/run-xfs.txt
nopage=$(lab_count dax_pmd_fault_done NOPAGE)
ours=$(sed -n 's/^faults: pmd [0-9]* (nopage \([0-9]*\),.*/\1/p' /outbox/run-xfs.txt)
lab_expect "the summary's PMD faults mapped 2 MiB equal tracefs' ($ours vs $nopage)" test "$ours" = "$nopage" -a "$nopage" -gt 0
svg_has /outbox/xfs.svg "PMD share (% of PMD faults mapped 2 MiB)"
svg_has /outbox/xfs.svg "PMD faults ($ours"

echo "== 2. the reference module's /dev/daxref, --json =="
insmod /lab/modules/daxref.ko size_mib=256
dax-probe run --json --plot /outbox/daxref.svg -- fio --eta=never /lab/fio/daxref-randrw.fio > /outbox/run-daxref.json
rmmod daxref
cat /outbox/run-daxref.json
lab_expect "the JSON summary has a pass verdict" grep -q '"verdict": "pass"' /outbox/run-daxref.json
bandwidth=$(lab_json bandwidth_bytes_per_s /outbox/run-daxref.json)
lab_expect "the JSON summary has fio's bandwidth ($bandwidth bytes/s)" awk -v b="$bandwidth" 'BEGIN { exit !(b > 0) }'
nopage=$(lab_json pmd_nopage /outbox/run-daxref.json)
lab_expect "every 2 MiB of /dev/daxref got a PMD ($nopage)" test "$nopage" -ge 128

echo "== 3. XFS without 2 MiB extents: every PMD fault falls back =="
lab_format plain
dax-probe run --json --plot /outbox/fallback.svg -o /outbox/fallback.daxtrace -- fio --eta=never /lab/fio/seed-randrw.fio > /outbox/run-fallback.json
fallback=$(lab_json pmd_fallback /outbox/run-fallback.json)
unknown=$(lab_json unknown /outbox/run-fallback.json)
echo "result: $fallback PMD fallbacks, $unknown of unknown reason"
lab_expect "PMD faults fell back ($fallback)" test "$fallback" -ge 128
lab_expect "every fallback has its reason ($unknown unknown)" test "$unknown" = 0
lab_expect "the JSON summary has a pass verdict" grep -q '"verdict": "pass"' /outbox/run-fallback.json
runs=$(lab_json bpf_runs /outbox/run-fallback.json)
events=$(lab_json events /outbox/run-fallback.json)
bpf_s=$(lab_json bpf_run_s /outbox/run-fallback.json)
cpu_s=$(lab_json cpu_user_s /outbox/run-fallback.json)
echo "result: probe cost: dax-probe $cpu_s s user CPU; programs $bpf_s s in $runs runs for $events events"
lab_expect "the kernel counted at least one program run per event ($runs runs, $events events)" \
	test "$runs" -ge "$events" -a "$events" -gt 0
lab_expect "the programs and dax-probe took measurable time ($bpf_s s, $cpu_s s)" \
	awk -v b="$bpf_s" -v c="$cpu_s" 'BEGIN { exit !(b > 0 && c > 0) }'
svg_has /outbox/fallback.svg "direct-access ("
svg_has /outbox/fallback.svg "PTE faults (65536"
dax-probe plot /outbox/fallback.daxtrace -o /outbox/fallback.png
lab_expect "dax-probe plot drew a PNG from the recorded trace" sh -c \
	"head -c 8 /outbox/fallback.png | od -An -c | grep -q 'P   N   G' && [ \$(wc -c < /outbox/fallback.png) -gt 20000 ]"

echo "== 4. live metrics while a workload runs =="
xfs_io -f -c "pwrite -q 0 8m" "$LAB_DAX_MOUNT/live"
# The last coverage line, once everything is attached, names the fallback reasons.
lab_serve_scrape 9478 'coverage: fallback reasons' /outbox/live.prom "" \
	dax-lab-fault "$LAB_DAX_MOUNT/live" --length 4m --shift 4k --touch r:1m
grep -E '^dax_probe_(faults|fallbacks)_total' /outbox/live.prom
colour=$(sed -n 's/^dax_probe_fallbacks_total{reason="address-colour"} //p' /outbox/live.prom)
lab_expect "live metrics count the address-colour fallback ($colour)" test "${colour:-0}" -ge 1

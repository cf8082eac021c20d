# What watching costs the workload: the seed's fio job alone and under tracefs, trace-cmd and dax-probe, on both layouts.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 2400
#
# Run by `cargo xtask bench overhead` under QEMU's icount, where guest time
# counts instructions: fio's bandwidth is then the same from run to run, and
# what a watcher costs shows as lost bandwidth (its whole CPU cost: both
# vCPUs share one instruction stream). Every way of watching runs the same
# job on the same file, ROUNDS times, interleaved; each run prints
#   result: overhead LAYOUT WAY ROUND read_kib=N events=N lost=N [bpf_s=S runs=N]
# (lost: "-" where the way cannot say, and for the counting mode the
# program runs the kernel skipped; bpf_s and runs: what the kernel's BPF
# statistics counted of the programs, for the ways that have them on).
# dax-probe's ladder runs without the statistics (they cost two clock reads
# a program run); `stats` is `record` as users run it, with them on, and
# prints each program's share. Two ways bound what any design of records
# could cost with every hook attached: `programs-stats` (the programs, no
# record, the statistics on) and `fault-end` (only a fault's end reaches
# user space: one record a fault, the least a fused record could cost).
# `count` is `run --count` as users run it
# (counters in the kernel, no stream, PTE latency sampled), `count-timed`
# the same timing every PTE fault, `count-breakdown` the default with the
# per-process and per-file breakdown.
. /lab/lib.sh

ROUNDS=2

# The sum of FIELD ("entries", "overrun") over tracefs' per-CPU stats.
tracefs_stat() {
	cat "$LAB_TRACEFS"/per_cpu/cpu*/stats | awk -v key="$1:" '$1 == key { s += $2 } END { print s + 0 }'
}

# dax-probe's own "N events, L lost" line.
probe_events() {
	sed -n 's/^dax-probe: \([0-9]*\) events, \([0-9]*\) lost.*/\1 \2/p' /tmp/probe.err
}

# What the kernel's BPF statistics counted, as "bpf_s=S runs=N".
program_stats() {
	sed -n 's/.*its eBPF programs at least \([0-9.]*\) s in \([0-9]*\) runs.*/bpf_s=\1 runs=\2/p' /tmp/probe.err
}

# Where a record's lost events went (dropped by the programs, or runs the
# kernel skipped, per program), and how many reservations failed: a loss
# in one round is then diagnosable from the bench's own output.
probe_losses() {
	sed -n "s/^dax-probe: lost events: /overhead: $layout round $round: $way: lost events: /p" /tmp/probe.err
	full=$(grep -c 'ring buffer full' /tmp/probe.err || true)
	if [ "$full" -gt 0 ]; then
		echo "overhead: $layout round $round: $way: $full ring buffer reservations failed"
	fi
}

# `dax-probe record OPTIONS` of the seed's job: its events, its losses.
probe_record() {
	lab_fio_seed dax-probe record "$@" -o /tmp/overhead.daxtrace -- 2> /tmp/probe.err
	set -- $(probe_events)
	events=$1 lost=$2
	probe_losses
}

watch() {
	way=$1
	events=0 lost=0
	case "$way" in
	alone)
		lab_fio_seed
		;;
	tracefs)
		echo 0 > "$LAB_TRACEFS/tracing_on"
		echo > "$LAB_TRACEFS/trace"
		echo 65536 > "$LAB_TRACEFS/buffer_size_kb"
		echo 1 > "$LAB_TRACEFS/events/fs_dax/enable"
		echo 1 > "$LAB_TRACEFS/tracing_on"
		lab_fio_seed
		echo 0 > "$LAB_TRACEFS/tracing_on"
		echo 0 > "$LAB_TRACEFS/events/fs_dax/enable"
		events=$(tracefs_stat entries)
		lost=$(tracefs_stat overrun)
		echo > "$LAB_TRACEFS/trace"
		;;
	trace-cmd)
		lab_fio_seed trace-cmd record -e fs_dax -o /tmp/overhead.dat > /tmp/trace-cmd.out 2>&1
		events=$(trace-cmd report -q /tmp/overhead.dat 2>/dev/null | grep -c ' dax_' || true)
		lost=$(awk '$1 == "overrun:" { s += $2 } END { print s + 0 }' /tmp/trace-cmd.out)
		rm -f /tmp/overhead.dat
		;;
	attach | programs | fault-end | ring | stream)
		stage=$way
		[ "$way" = stream ] && stage=full
		probe_record --no-bpf-stats --stage "$stage"
		# What dax-probe itself ran (guest time is instructions here): for
		# the stream, the part of its cost that is user space and its
		# system calls.
		sed -n "s/^dax-probe: probe cost: /overhead: $layout round $round: $way: /p" /tmp/probe.err
		;;
	programs-stats)
		# The programs without a record, with the statistics `record` keeps
		# on: what `record` as users run it costs before any record.
		probe_record --stage programs
		bpf=$(program_stats)
		;;
	stats)
		probe_record --program-costs
		sed -n "s/^dax-probe: program /overhead: $layout round $round: program /p" /tmp/probe.err
		bpf=$(program_stats)
		;;
	count | count-timed | count-breakdown)
		options=
		[ "$way" = count-timed ] && options="--latency-sample 100"
		[ "$way" = count-breakdown ] && options=--breakdown
		# shellcheck disable=SC2086 # the options, one word each
		lab_fio_seed dax-probe run --count $options --json -- > /tmp/count.json 2> /tmp/probe.err
		events=$(sed -n '/"tracepoint_hits"/,/}/s/^ *"dax_[a-z_]*": \([0-9]*\),\{0,1\}$/\1/p' /tmp/count.json |
			awk '{ s += $1 } END { print s + 0 }')
		lost=$(lab_json skipped_runs /tmp/count.json)
		;;
	esac
	rm -f /tmp/overhead.daxtrace
	echo "result: overhead $layout $way $round read_kib=$(lab_fio_read_kib) events=$events lost=$lost${bpf:+ $bpf}"
	bpf=
}

for layout in aligned plain; do
	lab_format "$layout"
	# Lay the file out once: every measured run faults on the same blocks.
	lab_fio_seed
	for round in $(seq "$ROUNDS"); do
		for way in alone tracefs trace-cmd attach programs programs-stats fault-end ring stream stats count count-timed count-breakdown; do
			watch "$way"
		done
	done
done

# Shell helpers shared by the guest init and the scenarios (busybox sh).

LAB_DAX_MOUNT=/mnt/dax
LAB_TRACEFS=/sys/kernel/tracing
LAB_TRACE=/tmp/fs_dax.trace
mkdir -p /outbox "$LAB_DAX_MOUNT"

# Prints the state, wait channel and kernel stack of every process, and of
# kernel threads that are running or blocked (the watchdog's report).
lab_dump_tasks() {
	echo "dax-lab: watchdog: the scenario is about to time out; tasks:"
	for dir in /proc/[0-9]*; do
		[ -r "$dir/stat" ] || continue
		state=$(cut -d' ' -f3 "$dir/stat")
		[ -s "$dir/cmdline" ] || [ "$state" = R ] || [ "$state" = D ] || continue
		echo "dax-lab: watchdog: $(cut -d' ' -f1-3 "$dir/stat") wchan=$(cat "$dir/wchan" 2>/dev/null) cmd=$(tr '\0' ' ' < "$dir/cmdline" 2>/dev/null)"
		sed 's/^/dax-lab: watchdog:     /' "$dir/stack" 2>/dev/null
	done
}

# Turns the label-less NVDIMM namespace into fsdax with 2 MiB alignment.
lab_make_fsdax() {
	ndctl create-namespace --force --reconfig=namespace0.0 --mode=fsdax --align=2M >/tmp/ndctl.json || return 1
	[ -b /dev/pmem0 ] || { echo "dax-lab: /dev/pmem0 did not appear"; return 1; }
	[ "$(cat /sys/block/pmem0/queue/dax)" = 1 ] || { echo "dax-lab: /dev/pmem0 does not support DAX"; return 1; }
}

# Makes and DAX-mounts a fresh file system on /dev/pmem0: lab_format LAYOUT [FS].
# FS is xfs (the default) or ext4; LAB_FS names the one mounted.
#   aligned: 2 MiB stripe (XFS also an extent size hint of 2 MiB), so that
#            files get 2 MiB aligned extents and PMD faults
#   plain:   extents are not 2 MiB aligned. XFS: mkfs defaults, no hint.
#            ext4's buddy allocator gives aligned extents whenever a free
#            aligned 2 MiB exists, so no free 2 MiB is left: lab_ext4_fragment
lab_format() {
	layout=$1
	fs=${2:-xfs}
	if grep -q " $LAB_DAX_MOUNT " /proc/mounts; then umount "$LAB_DAX_MOUNT" || return 1; fi
	case "$fs $layout" in
	"xfs aligned") mkfs.xfs -q -f -d su=2m,sw=1 -m reflink=0 /dev/pmem0 || return 1 ;;
	"xfs plain") mkfs.xfs -q -f -m reflink=0 /dev/pmem0 || return 1 ;;
	"ext4 aligned") mkfs.ext4 -q -F -b 4096 -E stride=512,stripe_width=512 /dev/pmem0 || return 1 ;;
	"ext4 plain") mkfs.ext4 -q -F -b 4096 -m 0 /dev/pmem0 || return 1 ;;
	*) echo "lab_format: unknown layout or file system: $fs $layout"; return 1 ;;
	esac
	mount -t "$fs" -o dax /dev/pmem0 "$LAB_DAX_MOUNT" || return 1
	grep -q " $LAB_DAX_MOUNT $fs .*dax" /proc/mounts || { echo "dax-lab: $fs is not mounted with dax"; return 1; }
	case "$fs $layout" in
	"xfs aligned") xfs_io -c "extsize 2m" "$LAB_DAX_MOUNT" || return 1 ;;
	"ext4 plain") lab_ext4_fragment || return 1 ;;
	esac
	LAB_FS=$fs
	name=XFS
	[ "$fs" = ext4 ] && name=ext4
	echo "dax-lab: $name ($layout layout) mounted -o dax on $LAB_DAX_MOUNT"
}

# Leaves no free run of 2 MiB on the mounted ext4: a spacer file takes all
# the free space (but 256 KiB for the file system's own needs; the 16 MiB
# ext4 holds back for itself, free blocks a file may still end up in, are
# released first), then gives back each 2 MiB of it but its first 4 KiB, so
# that no extent allocated after it can hold a 2 MiB page.
lab_ext4_fragment() {
	spacer=$LAB_DAX_MOUNT/.spacer
	echo 0 > /sys/fs/ext4/pmem0/reserved_clusters || return 1
	size_kib=$(($(df -k "$LAB_DAX_MOUNT" | awk 'NR == 2 { print $4 }') - 256))
	xfs_io -f -c "falloc 0 ${size_kib}k" "$spacer" || return 1
	punches=$(awk -v size="$size_kib" 'BEGIN {
		for (at = 0; at + 4 < size; at += 2048) {
			n = size - at - 4
			if (n > 2044) n = 2044
			printf " -c \"fpunch %dk %dk\"", at + 4, n
		}
	}')
	eval "xfs_io $punches $spacer" || return 1
}

# Starts recording every fs_dax event into a fresh tracefs buffer.
lab_trace_start() {
	echo 0 > "$LAB_TRACEFS/tracing_on"
	echo > "$LAB_TRACEFS/trace"
	echo 65536 > "$LAB_TRACEFS/buffer_size_kb"
	echo 1 > "$LAB_TRACEFS/events/fs_dax/enable"
	echo 1 > "$LAB_TRACEFS/tracing_on"
}

# Stops recording, keeps the trace (and a gzipped copy in the outbox) and fails
# if tracefs lost a single event: the counts are ground truth or nothing.
lab_trace_stop() {
	echo 0 > "$LAB_TRACEFS/tracing_on"
	echo 0 > "$LAB_TRACEFS/events/fs_dax/enable"
	lost=0
	for stats in "$LAB_TRACEFS"/per_cpu/cpu*/stats; do
		n=$(awk '/^overrun:|^dropped events:/ { s += $NF } END { print s + 0 }' "$stats")
		lost=$((lost + n))
	done
	cat "$LAB_TRACEFS/trace" > "$LAB_TRACE"
	gzip -c "$LAB_TRACE" > /outbox/fs_dax.trace.gz
	if [ "$lost" != 0 ]; then
		echo "dax-lab: tracefs lost $lost fs_dax events: the counts are not ground truth"
		return 1
	fi
}

# Prints "EVENT RESULT COUNT" for every fs_dax event and fault result in the
# trace, and keeps the table in the outbox. The result is the VM_FAULT_* flags
# the fault events print last (NOPAGE, FALLBACK, ...); events without one (and
# results of 0, which print nothing) count under "-".
lab_trace_counts() {
	awk '{
		for (i = 1; i <= NF; i++) if ($i ~ /^dax_[a-z_]+:$/) { event = substr($i, 1, length($i) - 1); break }
		if (i > NF) next
		result = ($NF ~ /^[A-Z][A-Z_|]*$/) ? $NF : "-"
		n[event " " result]++
	} END { for (k in n) print k, n[k] }' "$LAB_TRACE" | sort > /outbox/fs_dax.counts
	sed 's/^/fs_dax: /' /outbox/fs_dax.counts
}

# The count of EVENT (with RESULT, or "-") in the last lab_trace_counts table.
lab_count() {
	awk -v key="$1 ${2:--}" '$1 " " $2 == key { print $3; found = 1 } END { if (!found) print 0 }' /outbox/fs_dax.counts
}

# Fails the scenario with a message when a shell test does not hold.
lab_expect() {
	message=$1
	shift
	if "$@"; then
		echo "check: ok: $message"
	else
		echo "check: FAILED: $message"
		return 1
	fi
}

# Runs a fio job with every fs_dax event recorded, prints fio's bandwidth and
# the event counts, and sets LAB_RANGES to the number of 2 MiB ranges of the
# job's file (its `size=`, in MiB). Further arguments are a command that runs
# fio for us (e.g. dax-probe record -o FILE --).
lab_fio_traced() {
	job=$1
	shift
	size_mib=$(awk -F= '$1 == "size" { sub(/m$/, "", $2); print $2 }' "$job")
	LAB_RANGES=$((size_mib / 2))
	lab_trace_start
	"$@" fio --eta=never --output=/outbox/fio.txt "$job"
	lab_trace_stop
	grep -E '^ +(READ|WRITE):' /outbox/fio.txt
	lab_trace_counts
}

# Runs the seed's fio job (through a wrapper command, if given) with fio's
# terse output in /tmp/fio.txt, for lab_fio_read_kib.
lab_fio_seed() {
	"$@" fio --eta=never --output-format=terse --output=/tmp/fio.txt /lab/fio/seed-randrw.fio
}

# The read bandwidth, KiB/s, of the last lab_fio_seed: field 7 of fio's
# terse (v3) line.
lab_fio_read_kib() {
	awk -F';' 'NF > 7 { print $7; exit }' /tmp/fio.txt
}

# The first value of "KEY" in dax-probe's pretty-printed JSON FILE (its
# objects' keys are sorted, so a top-level key comes before the same key
# inside the per-file and per-process lists), or DEFAULT (else nothing).
lab_json() {
	value=$(sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$2" | head -n 1)
	echo "${value:-$3}"
}

# Checks a dax-probe trace against the tracefs ground truth of the same run:
# no lost event, and the same count for every event and fault result.
lab_probe_matches_tracefs() {
	trace=$1
	dax-probe report "$trace" | head -n 1
	dax-probe report --json "$trace" > /outbox/report.json
	dax-probe report --counts "$trace" | sort > /outbox/dax-probe.counts
	sed 's/^/dax-probe: /' /outbox/dax-probe.counts
	events=$(awk '{ s += $3 } END { print s + 0 }' /outbox/fs_dax.counts)
	echo "result: dax-probe and tracefs both saw $events fs_dax events"
	lost=$(lab_json lost /outbox/report.json)
	lab_expect "dax-probe lost no event (lost: $lost)" test "$lost" = 0
	lab_expect "dax-probe's counts equal tracefs' line for line" diff /outbox/fs_dax.counts /outbox/dax-probe.counts
	# The records' fields, not only their kinds: the same faults of the same
	# files (device and inode), from the probe's records and from tracefs'
	# text of the same run.
	lab_report_files "$trace" > /outbox/files.dax-probe
	lab_report_files "$LAB_TRACE" > /outbox/files.tracefs
	cat /outbox/files.dax-probe
	lab_expect "dax-probe's files and their faults equal tracefs'" diff /outbox/files.tracefs /outbox/files.dax-probe
}

# The per-file lines (device, inode, faults by size and result) of
# `dax-probe report` on a trace or on tracefs text.
lab_report_files() {
	dax-probe report "$1" | awk '/^per file \(/ { on = 1; next } /^[^ ]/ { on = 0 } on'
}

# Runs `dax-probe check` on a trace (text and JSON kept in the outbox) and
# fails unless the verdict is pass: no violation, no lost event.
lab_probe_check() {
	trace=$1
	code=0
	dax-probe check "$trace" > /outbox/check.txt || code=$?
	dax-probe check --json "$trace" > /outbox/check.json || true
	cat /outbox/check.txt
	dax-probe report "$trace" > /outbox/report.txt
	dax-probe report --json "$trace" > /outbox/report.json
	cat /outbox/report.txt
	verdict=$(lab_json verdict /outbox/check.json)
	lab_expect "dax-probe check passes (exit $code, verdict $verdict)" test "$code" = 0 -a "$verdict" = pass
	lab_expect "check covers every invariant" grep -q '"invariants_not_checked": \[\]' /outbox/check.json
	# A fallback the hooks could not explain while the coverage line claims
	# every reason would be a blind spot passed off as seen.
	if grep -q '"fallback reasons: all of them"' /outbox/report.json; then
		lab_expect "no fallback of unknown reason where every reason is covered" \
			test "$(lab_reason_count unknown)" = 0
	fi
}

# The number of PMD fallbacks the last lab_probe_check report gives REASON.
lab_reason_count() {
	lab_json "$1" /outbox/report.json 0
}

# The total of PMD fallbacks in the last lab_probe_check report.
lab_fallback_total() {
	lab_json pmd_fallback /outbox/report.json
}

# Lays out a fresh file that provokes REASON's PMD fallback and prints the
# dax-lab-fault arguments that do (the file first). dax-lab-fault maps a file
# at a 2 MiB boundary plus --shift, from file offset --offset, --length bytes,
# and touches offsets into the mapping. Each case gets a file of its own: PTE
# entries one case leaves would make the next one's PMD faults fall back for
# another reason.
lab_reason_case() {
	file=$LAB_DAX_MOUNT/case-$1
	rm -f "$file"
	case "$1" in
	address-colour | cow-write | vma-start | vma-end) xfs_io -f -c "pwrite -q 0 8m" "$file" ;;
	past-eof) xfs_io -f -c "pwrite -q 0 3m" "$file" ;;
	pte-entry-in-range)
		# PTE entries first (a colour-mismatched mapping faults 4 KiB
		# pages), then an aligned PMD fault over them.
		xfs_io -f -c "pwrite -q 0 4m" "$file"
		dax-lab-fault "$file" --length 4m --shift 4k --touch r:0,r:8k > /dev/null
		;;
	extent-too-short)
		# Without the 2 MiB extent size hint, two 4 KiB writes make 4 KiB extents.
		touch "$file"
		xfs_io -c "extsize 0" -c "pwrite -q 0 4k" -c "pwrite -q 8k 4k" -c "truncate 4m" "$file"
		;;
	*) echo "lab_reason_case: no case for $1" >&2; return 1 ;;
	esac
	case "$1" in
	address-colour) echo "$file --length 4m --shift 4k --touch r:1m" ;;
	cow-write) echo "$file --length 4m --private --touch w:0" ;;
	vma-start) echo "$file --length 4m --shift 4k --offset 4k --touch r:1m" ;;
	vma-end) echo "$file --length 3m --touch r:2m" ;;
	past-eof) echo "$file --length 4m --touch r:2m" ;;
	pte-entry-in-range | extent-too-short) echo "$file --length 4m --touch r:0" ;;
	esac
}

# Records `dax-lab-fault ARGS` with dax-probe; check must pass, and the report
# must give REASON to every PMD fallback of the run (at least one).
lab_expect_reason() {
	reason=$1
	shift
	echo "dax-lab: provoking $reason: dax-lab-fault $*"
	dax-probe record -o "/outbox/$reason.daxtrace" -- dax-lab-fault "$@"
	lab_probe_check "/outbox/$reason.daxtrace"
	cp /outbox/report.txt "/outbox/report-$reason.txt"
	n=$(lab_reason_count "$reason")
	total=$(lab_fallback_total)
	echo "result: $reason: $n of $total PMD fallbacks"
	echo "$reason $n $total" >> /outbox/reasons.txt
	lab_expect "the report names $reason for every fallback ($n of $total)" test "$n" -ge 1 -a "$n" = "$total"
}

# Serves live metrics while a workload runs, and keeps one scrape:
#   lab_serve_scrape PORT READY OUT "SERVE OPTIONS" WORKLOAD...
# starts `dax-probe serve OPTIONS` on 127.0.0.1:PORT, waits (30 s at most)
# for its stderr to show READY (the server answers before the probe is
# attached), runs WORKLOAD, scrapes /metrics into OUT two seconds later and
# stops the server; fails if it never got ready.
lab_serve_scrape() {
	port=$1 ready=$2 out=$3 options=$4
	shift 4
	ip link set lo up
	# shellcheck disable=SC2086 # the options, one word each
	dax-probe serve $options --listen "127.0.0.1:$port" 2> /tmp/serve.log &
	serve=$!
	for _ in $(seq 30); do grep -q "$ready" /tmp/serve.log && break; sleep 1; done
	lab_expect "dax-probe serve $options attached within 30 s" grep -q "$ready" /tmp/serve.log || return 1
	"$@"
	sleep 2
	wget -q -O "$out" "http://127.0.0.1:$port/metrics"
	kill -INT "$serve"
	wait "$serve" || true
}

# failslab (the lab's kernel has fault injection) set to fail every slab
# allocation that may not sleep, for tasks that write 1 to their
# /proc/self/make-it-fail only: the XArray node allocations a store makes
# under its lock (GFP_NOWAIT), never a retry's allocation outside it, which
# may sleep (GFP_KERNEL). lab_failslab_off ends it.
LAB_FAILSLAB=/sys/kernel/debug/failslab
lab_failslab_on() {
	lab_expect "the kernel has failslab" test -d "$LAB_FAILSLAB" || return 1
	echo Y > "$LAB_FAILSLAB/task-filter"
	echo Y > "$LAB_FAILSLAB/ignore-gfp-wait"
	echo 100 > "$LAB_FAILSLAB/probability"
	echo 1 > "$LAB_FAILSLAB/interval"
	echo -1 > "$LAB_FAILSLAB/times"
}

lab_failslab_off() {
	echo 0 > "$LAB_FAILSLAB/probability"
}

# The dax-lab-fault --touch list of COUNT reads, one per 16 KiB from 0: on
# fresh ranges, a PTE fault each, and a new XArray node every 64 pages.
lab_touches_16k() {
	seq 0 $(($1 - 1)) | awk '{ printf "%sr:%dk", (NR > 1 ? "," : ""), $1 * 16 }'
}

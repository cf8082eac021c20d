# The hooks that survive inlining, proven against the native ones on one kernel: a workload whose events do not depend on timing gives the same events by both ways.
# kernels: custom
# timeout: 400
#
# On the lab's kernel dax_lock_entry and dax_entry_waitqueue are real
# functions, so both ways can attach. The lab's 7.2 used to oops the next
# time kcompactd called finish_wait after a second kprobe on finish_wait's
# ftrace site in one boot, or a kprobe next to a fentry program there: the
# ftrace bug lab/kernel/patches/0003 fixes (a scratch run of the inlined way
# three times in one boot, then beside the native way, oopsed in finish_wait
# at the first session without the patch and passed with it). The native
# way still records first and the inlined way once after it, and
# hooks-inlined-contention keeps its own boot, as before the fix.
#
# The proof is a workload whose events do not depend on timing: one
# thread, no periodic writeback, and a fresh file per way (an aligned
# 8 MiB file gets the same 2 MiB extents each time). It takes every entry
# change the checker judges: PTE entries, then PMD faults over them
# (pte-entry-in-range fallbacks) and beside them (PMD entries), PTE faults
# on PMD entries, writeback of dirty PMD and PTE entries (fsync), the
# deletes of a punch, and faults again after it. Both ways must give the
# same faults, fallback reasons and entry events (writeback's releases
# aside, below), and both checks must pass over every invariant.
. /lab/lib.sh

# No periodic writeback: only the workload's fsync writes entries back.
sync
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
touches=r:0,w:4k,r:1m,w:2m,r:3m,w:6m

# record WAY NAME COMMAND: records COMMAND with every group by WAY, and checks it.
record() {
	dax-probe record --hooks $1 -o /outbox/$2-$1.daxtrace -- sh -ec "$3" 2> /outbox/record-$2-$1.txt
	cat /outbox/record-$2-$1.txt
	lab_expect "the $2 recorder attached every group by the $1 way" \
		grep -q "entry-state ($1) wait-wake ($1) fallback-probes ($1)" /outbox/record-$2-$1.txt
	lab_probe_check /outbox/$2-$1.daxtrace
	cp /outbox/report.json /outbox/report-$2-$1.json
}

for way in native inlined; do
	file=$LAB_DAX_MOUNT/steps-$way
	xfs_io -f -c "pwrite -q 0 8m" "$file"
	sync
	record $way steps "
		dax-lab-fault $file --length 8m --shift 4k --touch w:6m,r:7m
		dax-lab-fault $file --length 8m --rounds 2 --touch $touches
		dax-lab-fault $file --length 8m --shift 4k --rounds 2 --touch r:0,w:8k,r:2m
		xfs_io -c fsync $file
		xfs_io -c 'fpunch 2m 2m' $file
		dax-lab-fault $file --length 8m --touch r:0,w:2m,r:6m
		xfs_io -c fsync $file"
done

# same EVENT [MIN]: both ways counted EVENT alike in the timing-free steps (at least MIN).
same() {
	n=$(lab_json $1 /outbox/report-steps-native.json 0)
	i=$(lab_json $1 /outbox/report-steps-inlined.json 0)
	echo "result: $1: native $n, inlined $i"
	lab_expect "both ways saw the same $1 events ($n, $i)" test "$n" = "$i" -a "$n" -ge "${2:-0}"
}
for event in entry_lock entry_wake grab_fallback pmd_fault_iter pmd_nopage pmd_fallback pte \
	pte-entry-in-range address-colour; do
	same $event 1
done
for event in entry_wait entry_woken direct_access_failed unknown; do
	same $event
done
# Writeback releases its entry with a store and a WAKE_NEXT. The native way
# reads that release from the holder's wake-up; the inlined way probes the
# store as well, so it counts one unlock more per entry written back.
n=$(lab_json entry_unlock /outbox/report-steps-native.json)
i=$(lab_json entry_unlock /outbox/report-steps-inlined.json)
written=$(dax-probe report --counts /outbox/steps-native.daxtrace | awk '$1 == "dax_writeback_one" { print $3 }')
echo "result: entry_unlock: native $n, inlined $i, entries written back $written"
lab_expect "the inlined way's unlocks are the native way's plus one per writeback ($n + $written = $i)" \
	test "$((n + written))" = "$i" -a "$n" -gt 0 -a "${written:-0}" -gt 0

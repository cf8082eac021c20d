# The hooks that survive inlining, proven against the native ones on one kernel: both record the same contention at once and agree event for event.
# kernels: custom
# timeout: 500
#
# On the lab's kernel dax_lock_entry and dax_entry_waitqueue are real
# functions, so both ways can attach. Two recorders run side by side over
# the mixed-contention workload: one with the native hooks (fexit on those
# functions), one with the inlined way stock kernels need (kprobes on the
# call sites of the entry stores, fentry on prepare_to_wait). Each sees
# every event, so their counts of locks, unlocks, waits and wake-ups must
# be equal, and both checks must pass over all six invariants.
. /lab/lib.sh

file=$LAB_DAX_MOUNT/shared
xfs_io -f -c "pwrite -q 0 8m" "$file"
# No periodic writeback: a flush between the two recorders' stops would be
# seen by one of them only.
sync
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
dax-probe record --hooks native -o /outbox/native.daxtrace 2> /outbox/record-native.txt &
native=$!
dax-probe record --hooks inlined -o /outbox/inlined.daxtrace 2> /outbox/record-inlined.txt &
inlined=$!
for log in native inlined; do
	for _ in $(seq 60); do grep -q 'hooks attached' /outbox/record-$log.txt && break; sleep 1; done
done
cat /outbox/record-native.txt /outbox/record-inlined.txt
lab_expect "the inlined recorder attached entry-state by the inlined way" grep -q 'entry-state (inlined)' /outbox/record-inlined.txt
lab_expect "the inlined recorder attached wait-wake by the inlined way" grep -q 'wait-wake (inlined)' /outbox/record-inlined.txt
lab_expect "the native recorder attached the native way" grep -q "entry-state (native) wait-wake (native) fallback-probes (native)" /outbox/record-native.txt
# Both are attached (the line above is printed after attaching): the workload may start.
touches=r:0,w:4k,r:1m,w:2m,r:3m,w:6m
dax-lab-fault $file --length 8m --threads 2 --rounds 100 --touch $touches &
aligned=$!
dax-lab-fault $file --length 8m --shift 4k --threads 2 --rounds 100 --touch $touches &
shifted=$!
wait $aligned $shifted
kill -INT $native $inlined
wait $native $inlined
for way in native inlined; do
	lab_probe_check /outbox/$way.daxtrace
	cp /outbox/report.json /outbox/report-$way.json
	cp /outbox/check.json /outbox/check-$way.json
done
for event in entry_lock entry_unlock entry_wake entry_wait entry_woken grab_fallback pmd_fault_iter; do
	n=$(lab_json $event /outbox/report-native.json)
	i=$(lab_json $event /outbox/report-inlined.json)
	echo "result: $event: native $n, inlined $i"
	lab_expect "both ways saw the same $event events ($n, $i)" test "$n" = "$i" -a "$n" -gt 0
done

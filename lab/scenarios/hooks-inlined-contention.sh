# mixed-contention's workload on the lab's kernel with the stock kernels' plan forced (--hooks inlined): real waits, and check passes over every invariant.
# kernels: custom
# timeout: 400
#
# The inlined way (kprobes on the entry stores' call sites, on the waiters'
# prepare_to_wait calls and on finish_wait) against the same contention
# the native way sees in mixed-contention, in a boot of its own: the lab's
# 7.2 oopses after a second kprobe on finish_wait's ftrace site in one boot
# (see hooks-inlined). Waits depend on timing, so their counts are compared
# across the two scenarios in the suite's output, not required equal.
. /lab/lib.sh

file=$LAB_DAX_MOUNT/shared
xfs_io -f -c "pwrite -q 0 8m" "$file"
touches=r:0,w:4k,r:1m,w:2m,r:3m,w:6m
dax-probe record --hooks inlined -o /outbox/mixed.daxtrace -- sh -c "
	dax-lab-fault $file --length 8m --threads 2 --rounds 200 --touch $touches &
	dax-lab-fault $file --length 8m --shift 4k --threads 2 --rounds 200 --touch $touches &
	wait" 2> /outbox/record.txt
cat /outbox/record.txt
lab_expect "every group attached by the inlined way" \
	grep -q "entry-state (inlined) wait-wake (inlined) fallback-probes (inlined)" /outbox/record.txt
lab_probe_check /outbox/mixed.daxtrace
waits=$(lab_json entry_wait /outbox/report.json)
woken=$(lab_json entry_woken /outbox/report.json)
echo "result: $waits waits for a locked entry, $woken returns from waits (inlined way)"
lab_expect "threads really waited, seen by the inlined way ($waits waits)" test "$waits" -ge 1

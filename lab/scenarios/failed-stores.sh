# Memory pressure in the middle of an entry lock: the XArray cannot get a node under the xa_lock, the store fails, fs/dax.c retries it after xas_nomem; check sees each lock once and passes.
# kernels: custom
# timeout: 300
#
# failslab fails the workload's slab allocations that may not sleep
# (lab_failslab_on): exactly the node allocations xas_store makes under the
# xa_lock, never xas_nomem's retry outside it. A PTE fault on a fresh range
# of the file needs a node, so its dax_lock_entry fails once and is done
# again. A recorder that took the failed store for a lock would see the
# retry create the entry anew with no WAKE_ALL between: a false
# waiter-woken (seen: 33 of them on 512 faults, before the hook skipped
# failed stores). The retries are counted by a kretprobe on xas_nomem.
. /lab/lib.sh

lab_failslab_on
# xas_nomem returns true when a store failed for want of memory and it
# allocated outside the lock for the retry: count those (a kretprobe event;
# the node allocations are __GFP_NOWARN, so failslab logs none of them).
echo 'r:daxlab/nomem xas_nomem retry=$retval:u8' >> "$LAB_TRACEFS/kprobe_events"
echo 0 > "$LAB_TRACEFS/tracing_on"
echo > "$LAB_TRACEFS/trace"
echo 1 > "$LAB_TRACEFS/events/daxlab/nomem/enable"
echo 1 > "$LAB_TRACEFS/tracing_on"

file=$LAB_DAX_MOUNT/pressure
xfs_io -f -c "pwrite -q 0 8m" "$file"
# 512 PTE faults, one per 16 KiB: the file's 2048 pages span 32 XArray nodes.
touches=$(lab_touches_16k 512)
code=0
dax-probe check -- sh -c "echo 1 > /proc/self/make-it-fail; exec dax-lab-fault $file --length 8m --shift 4k --touch $touches" \
	> /outbox/check.txt 2> /outbox/check.err || code=$?
lab_failslab_off
echo 0 > "$LAB_TRACEFS/tracing_on"
failures=$(grep -c 'nomem:.*retry=1' "$LAB_TRACEFS/trace" || true)
cat /outbox/check.txt
echo "result: $failures stores failed for want of memory and were retried after xas_nomem, under dax-probe check ($(tail -n 1 /outbox/check.txt))"
lab_expect "stores really failed and were retried ($failures)" test "$failures" -gt 0
lab_expect "check passes over every invariant (exit $code)" \
	sh -c "test $code = 0 && tail -n 1 /outbox/check.txt | grep -Eq '^verdict: pass \(0 violations, 0 lost events, [0-9]+ events(, [0-9]+ open at the cut)?\)$'"

# The reference module under memory pressure: an entry store that finds no memory under the array's lock is retried as fs/dax.c retries it (xas_nomem, then a new lookup); every fault is served, and check passes.
# kernels: custom
# timeout: 300
#
# As failed-stores does for XFS: failslab fails the workload's allocations
# that may not sleep, here the XArray nodes daxref's `lock_new` needs under
# the lock. Without the retry such a fault returned VM_FAULT_OOM, again and
# again. The module counts its retries and prints them when it unloads.
. /lab/lib.sh

insmod /lab/modules/daxref.ko size_mib=8
lab_expect "/dev/daxref appeared" test -c /dev/daxref
lab_failslab_on
# 512 PTE faults (4 KiB off alignment, so every 2 MiB fault falls back), one
# per 16 KiB: the device's 2048 pages span 32 XArray nodes.
touches=$(lab_touches_16k 512)
code=0
dax-probe check -- sh -c "echo 1 > /proc/self/make-it-fail; exec dax-lab-fault /dev/daxref --length 8m --shift 4k --touch $touches" \
	> /outbox/check.txt 2> /outbox/check.err || code=$?
lab_failslab_off
cat /outbox/check.txt
rmmod daxref
retries=$(dmesg | grep -o 'daxref: [0-9]* entry stores found no memory' | tail -n 1 | grep -o '[0-9][0-9]*' || echo 0)
echo "result: daxref retried $retries entry stores that found no memory, under dax-probe check ($(tail -n 1 /outbox/check.txt))"
lab_expect "stores really found no memory and were retried ($retries)" test "$retries" -gt 0
lab_expect "check passes over every invariant, every fault served (exit $code)" \
	sh -c "test $code = 0 && tail -n 1 /outbox/check.txt | grep -Eq '^verdict: pass \(0 violations, 0 lost events, [0-9]+ events(, [0-9]+ open at the cut)?\)$'"

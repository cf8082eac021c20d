# Threads fault the same 2 MiB ranges with 2 MiB and 4 KiB accesses at once: waiters and wake-ups happen, and check finds 0 violations.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 400
#
# One process maps the file aligned (PMD faults), another at a 4 KiB shift
# (PTE faults on the same file pages); each runs 2 threads for many rounds,
# dropping its page tables between rounds so every round faults again.
. /lab/lib.sh

file=$LAB_DAX_MOUNT/shared
xfs_io -f -c "pwrite -q 0 8m" "$file"
touches=r:0,w:4k,r:1m,w:2m,r:3m,w:6m
dax-probe record -o /outbox/mixed.daxtrace -- sh -c "
	dax-lab-fault $file --length 8m --threads 2 --rounds 200 --touch $touches &
	dax-lab-fault $file --length 8m --shift 4k --threads 2 --rounds 200 --touch $touches &
	wait"
lab_probe_check /outbox/mixed.daxtrace
waits=$(lab_json entry_wait /outbox/report.json)
echo "result: $waits waits for a locked entry"
lab_expect "threads really waited for each other's entry locks ($waits waits)" test "$waits" -ge 1

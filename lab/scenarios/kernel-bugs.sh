# Bugs of the kernel's own fs/dax.c, re-created one at a time by the lab kernel's dax_lab_bug (lab/kernel/patches/0002-fs-dax-lab-bugs.patch): live check fails with the expected invariant and names the events, passes with the parameter off, and a lost wake-up ends in a verdict (--stall-after), not a hang.
# kernels: custom
# timeout: 900
#
# Each case runs its workload under `dax-probe check --stall-after 10`
# twice: with dax_lab_bug=0 (check must pass) and with the case's value
# (check must fail, and its violations must include the expected
# invariant). Results go to /outbox/kernel-bugs.txt as
#   VALUE NAME EXPECTED CAUGHT_BY(comma-separated or -) VERDICT ATTEMPT/ATTEMPTS
# A lost wake-up leaves a task asleep for good in D state: that case runs
# last, on files of its own.
. /lab/lib.sh

BUG=/sys/module/kernel/parameters/dax_lab_bug
lab_expect "the lab's kernel has the dax_lab_bug parameter" test -w "$BUG" || exit 1
lab_format aligned
: > /outbox/kernel-bugs.txt

# The invariants of the violations in check's text output FILE, comma-separated.
violated() {
	sed -n 's/^violation: \([a-z-]*\): .*/\1/p' "$1" | sort -u | paste -sd, -
}

# check_live NAME SETTING WORKLOAD...: the workload under live check with
# dax_lab_bug=SETTING; sets code, verdict and caught (the invariants named).
check_live() {
	name=$1 setting=$2
	shift 2
	out=/outbox/check-$name-$setting
	echo "$setting" > "$BUG"
	code=0
	dax-probe check --stall-after 10 -- "$@" > "$out.txt" 2> "$out.err" || code=$?
	echo 0 > "$BUG"
	sed "s/^/$name dax_lab_bug=$setting: /" "$out.txt" | head -n 60
	verdict=$(sed -n 's/^verdict: \([a-z]*\).*/\1/p' "$out.txt")
	caught=$(violated "$out.txt")
}

# kernel_case VALUE NAME EXPECTED ATTEMPTS WORKLOAD...: the workload checked
# live with dax_lab_bug off, then with VALUE until check fails, at most
# ATTEMPTS times (a race the workload provokes may not happen in one run;
# a run where it did not is a pass, and rightly so).
kernel_case() {
	value=$1 name=$2 expected=$3 attempts=$4
	shift 4
	check_live "$name" 0 "$@"
	lab_expect "$name: with dax_lab_bug=0 check passes (exit $code, verdict $verdict)" \
		test "$code" = 0 -a "$verdict" = pass || return 1
	attempt=0
	while [ "$attempt" -lt "$attempts" ]; do
		attempt=$((attempt + 1))
		check_live "$name" "$value" "$@"
		[ "$verdict" = pass ] || break
		echo "dax-lab: $name: attempt $attempt of $attempts did not provoke the bug (check passes)"
	done
	echo "result: kernel-bug $value $name expected $expected caught-by ${caught:--} verdict $verdict attempt $attempt of $attempts"
	echo "$value $name $expected ${caught:--} $verdict $attempt/$attempts" >> /outbox/kernel-bugs.txt
	lab_expect "$name: with dax_lab_bug=$value check fails (exit $code, verdict $verdict)" \
		test "$code" = 1 -a "$verdict" = fail || return 1
	lab_expect "$name: the violations include $expected ($caught)" \
		sh -c "echo ',$caught,' | grep -q ',$expected,'"
}

# 4: writeback of a dirty PMD entry found from index 1 (an msync that starts
# 4 KiB into it) flushes from index 1, not from the entry's start.
dirty=$LAB_DAX_MOUNT/dirty
xfs_io -f -c "falloc 0 4m" -c "pwrite -q 0 4m" -c fsync "$dirty"
kernel_case 4 writeback-unaligned writeback-whole 1 \
	dax-lab-fault "$dirty" --length 4m --touch w:0 --msync 4k:2m || exit 1

# 2: the downgrade of a zero-page PMD entry (a 2 MiB hole read, then a
# 4 KiB fault in its range) wakes one waiter, not all.
holes=$LAB_DAX_MOUNT/holes
kernel_case 2 downgrade-wakes-one waiter-woken 1 sh -c "
	rm -f $holes && xfs_io -f -c 'truncate 8m' $holes &&
	dax-lab-fault $holes --length 8m --touch r:0,r:2m,r:4m,r:6m &&
	dax-lab-fault $holes --length 8m --shift 4k --threads 2 --touch r:4k,r:8k,r:0x204000,r:0x208000" || exit 1

# 3: the conflict check tests the order of what it found before whether it
# found anything, so a PMD fault on an empty range falls back as though PTE
# entries were in it. The trace knows a range is empty only where a
# truncate emptied it and no entry was made since: the workload truncates
# the file to 0, sizes it back (a hole) and reads both 2 MiB ranges.
emptied=$LAB_DAX_MOUNT/emptied
xfs_io -f -c "falloc 0 4m" -c "pwrite -q 0 4m" "$emptied"
kernel_case 3 conflict-by-order pte-conflict-real 1 sh -c "
	xfs_io -c 'truncate 0' -c 'truncate 4m' $emptied &&
	dax-lab-fault $emptied --length 4m --touch r:0,r:2m" || exit 1

# 1 (last: it leaves tasks asleep for good): PMD faults meet PTE entries
# locked by the faults of a shifted mapping of the same file (mixed-
# contention's workload), and wait hashed on the PMD index. The shifted
# mapping touches first, alone, so that every range holds PTE entries (had
# a PMD fault come first, its PMD entry would stay, and every later wait
# would be for it); and no touch is at a 2 MiB boundary, so the PTE entry
# a PMD fault finds is never at the PMD index, where the two keys agree.
contended=$LAB_DAX_MOUNT/contended
xfs_io -f -c "pwrite -q 0 8m" "$contended"
touches=w:4k,r:1m,w:0x201000,r:3m,w:0x601000,r:7m
kernel_case 1 missed-wake-pmd waiter-woken 8 sh -c "
	dax-lab-fault $contended --length 8m --shift 4k --touch $touches > /dev/null || exit 1
	dax-lab-fault $contended --length 8m --threads 2 --rounds 400 --touch $touches &
	dax-lab-fault $contended --length 8m --shift 4k --threads 2 --rounds 400 --touch $touches &
	wait" || exit 1
lab_expect "the lost wake-up ended the check, not a timeout" grep -q 'stopping: a waiter will never wake' /outbox/check-missed-wake-pmd-1.err
cat /outbox/kernel-bugs.txt

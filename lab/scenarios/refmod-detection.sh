# The reference module, clean and with each injected bug in turn: dax-probe check passes the clean one and names each bug's invariant.
# kernels: custom
# timeout: 900
# allow-warning: insert_pmd
#
# The injected bugs break the module's entry locking on purpose, so two of
# its 2 MiB faults can map different pfns at one address: mm's own check in
# insert_pmd (a WARN_ON_ONCE) may see it, depending on timing (CI's run of
# stop 26 did). That warning is a result here, never a failure, and only
# for the buggy module: the clean one (bug 0) must leave the kernel log
# without a WARNING.
#
# Every case runs the same stress on /dev/daxref, recorded by dax-probe: one
# process maps it aligned (2 MiB faults), another 4 KiB off (4 KiB faults on
# the same pages), three threads each, 80 rounds, while a thread punches the
# touched pages out; each 2 MiB fault holds its entry lock 2 ms
# (hold_us), so that waits are common. Range 0 is backed off 2 MiB alignment, so its 2 MiB
# faults take the direct-access fallback (where bug 5 leaks its lock).
. /lab/lib.sh

cat > /tmp/stress.sh <<'STRESS'
# First a 2 MiB fault on range 0 alone: it takes the direct-access fallback.
dax-lab-fault /dev/daxref --length 4m --touch r:0
# Two threads fault two pages of range 1 at once: one waits for the other's
# PMD entry, on the range's start (or, with bug 2, on its own page).
dax-lab-fault /dev/daxref --length 4m --threads 2 --rounds 20 --touch w:0x200000,r:0x201000
touches=r:0,w:0x200000,r:0x201000,w:0x300000
dax-lab-fault /dev/daxref --length 8m --threads 3 --rounds 80 --touch $touches --punch &
dax-lab-fault /dev/daxref --length 8m --shift 4k --threads 3 --rounds 80 --touch $touches &
wait
STRESS

# bug, its name, the invariant check must name ("-": none, check must pass)
cases="0 none -
1 skip-wake-on-unlock waiter-woken
2 pmd-raw-index-hash waiter-woken
3 pmd-over-ptes pmd-covers-range
4 double-release lock-released
5 leak-on-fallback lock-released
6 wake-one-on-delete waiter-woken"

missed=0
table=/outbox/detection.txt
echo "bug | injected | expected invariant | check's verdict | invariants named | caught" > $table
echo "$cases" | while read -r bug name expected; do
	warnings_before=$(dmesg | grep -c 'WARNING:' || true)
	insmod /lab/modules/daxref.ko size_mib=16 unaligned_range=0 hold_us=2000 bug=$bug
	trace=/outbox/bug$bug.daxtrace
	dax-probe record -o $trace -- sh /tmp/stress.sh > /outbox/record-bug$bug.txt 2>&1 || true
	rmmod daxref
	warnings=$(($(dmesg | grep -c 'WARNING:' || true) - warnings_before))
	if [ "$bug" = 0 ]; then
		lab_expect "the clean module leaves the kernel log without a WARNING ($warnings)" test "$warnings" = 0
	elif [ "$warnings" != 0 ]; then
		echo "result: bug $bug ($name): the kernel warned too: $(dmesg | grep 'WARNING:' | tail -n 1)"
	fi
	dax-probe check $trace > /outbox/check-bug$bug.txt || true
	dax-probe check --json $trace > /outbox/check-bug$bug.json || true
	dax-probe report $trace > /outbox/report-bug$bug.txt
	verdict=$(lab_json verdict /outbox/check-bug$bug.json)
	# The invariants with violations, from the JSON's count per invariant.
	named=$(awk '/"violations_by_invariant"/ { inside = 1; next }
		inside && /}/ { inside = 0 }
		inside { gsub(/[",:]/, ""); if ($2 > 0) print $1 }' /outbox/check-bug$bug.json | sort -u | tr '\n' ' ')
	if [ "$expected" = - ]; then
		caught=$([ "$verdict" = pass ] && echo "yes (no false positive)" || echo NO)
	else
		caught=$(echo " $named" | grep -q " $expected " && echo yes || echo NO)
	fi
	echo "$bug | $name | $expected | $verdict | ${named:--} | $caught" >> $table
	echo "result: bug $bug ($name): expected ${expected}, check said $verdict naming ${named:-nothing}: $caught"
done
cat $table
lab_expect "every bug caught, no false positive" sh -c "! grep -q '| NO$' $table"

# dax-probe check runs live next to the seed's fio job: the last line is a pass verdict over every invariant, and it exits 0; a command that fails under a passing check exits 4.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 300
. /lab/lib.sh

code=0
dax-probe check -- fio --eta=never --output=/outbox/fio.txt /lab/fio/seed-randrw.fio > /outbox/check.txt || code=$?
cat /outbox/check.txt
grep -E '^ +(READ|WRITE):' /outbox/fio.txt
lab_expect "live check exits 0 (exit $code)" test "$code" = 0
# (Work of other tasks in flight when fio ends, a writeback say, is open at the cut, not a violation.)
lab_expect "its last line is a pass verdict over every invariant" sh -c "tail -n 1 /outbox/check.txt | grep -Eq '^verdict: pass \\(0 violations, 0 lost events, [0-9]+ events(, [0-9]+ open at the cut)?\\)$'"

# A command that fails while the invariants hold: its own exit code (1 here)
# must not read as "violations found".
file=$LAB_DAX_MOUNT/failing
xfs_io -f -c "pwrite -q 0 4m" "$file"
code=0
dax-probe check -- sh -c "dax-lab-fault $file --length 4m --touch r:0 && exit 1" > /outbox/check-failing.txt 2> /outbox/check-failing.err || code=$?
cat /outbox/check-failing.txt /outbox/check-failing.err
lab_expect "a failing command under a passing check exits 4, not its own 1 (exit $code)" \
	sh -c "test $code = 4 && tail -n 1 /outbox/check-failing.txt | grep -q '^verdict: pass' && grep -q 'the command failed' /outbox/check-failing.err"

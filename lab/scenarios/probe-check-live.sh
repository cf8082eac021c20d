# dax-probe check runs live next to the seed's fio job: the last line is a pass verdict over all six invariants, and it exits 0.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 300
. /lab/lib.sh

code=0
dax-probe check -- fio --eta=never --output=/outbox/fio.txt /lab/fio/seed-randrw.fio > /outbox/check.txt || code=$?
cat /outbox/check.txt
grep -E '^ +(READ|WRITE):' /outbox/fio.txt
lab_expect "live check exits 0 (exit $code)" test "$code" = 0
lab_expect "its last line is a pass verdict over all six invariants" sh -c "tail -n 1 /outbox/check.txt | grep -Eq '^verdict: pass \\(0 violations, 0 lost events, [0-9]+ events\\)$'"

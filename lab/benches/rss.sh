# dax-probe's memory over a long live session: `check` and `serve --count`, live for an hour while fio loops, RSS sampled.
# kernels: custom
# timeout: 4200
#
# Run by `cargo xtask bench rss` (host clock: an hour of wall time). The
# seed's job loops on the layout where every PMD fault falls back (about
# 390 000 events a run for the stream); `dax-probe check` runs the loop as
# its command and `dax-probe serve --count --breakdown` watches beside it,
# scraped every five minutes. (Not a second stream: on the lab's 7.2 a
# second fentry program on `finish_wait` oopses the kernel; see hooks.rs.) Each sample prints
#   result: rss SECONDS check=KIB serve=KIB
# the last one shortly before the loop ends; then check's verdict.
. /lab/lib.sh

TOTAL=3600

rss() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"
}

lab_format plain
lab_fio_seed
ip link set lo up
dax-probe serve --count --breakdown --listen 127.0.0.1:9480 2> /tmp/serve.err &
serve=$!
loop="end=\$((\$(date +%s) + $TOTAL)); while [ \$(date +%s) -lt \$end ]; do fio --eta=never --output=/dev/null /lab/fio/seed-randrw.fio; done"
dax-probe check -- sh -c "$loop" > /tmp/check.txt 2> /tmp/check.err &
check=$!
start=$(date +%s)
sleep 10
echo "result: rss 10 check=$(rss $check) serve=$(rss $serve)"
while [ $(($(date +%s) - start)) -lt $((TOTAL - 320)) ]; do
	sleep 300
	wget -q -O /dev/null http://127.0.0.1:9480/metrics || echo "rss: a scrape failed"
	echo "result: rss $(($(date +%s) - start)) check=$(rss $check) serve=$(rss $serve)"
done
while [ $(($(date +%s) - start)) -lt $((TOTAL - 15)) ]; do sleep 5; done
echo "result: rss $(($(date +%s) - start)) check=$(rss $check) serve=$(rss $serve)"
code=0
wait "$check" || code=$?
kill -INT "$serve"
wait "$serve" || true
tail -n 3 /tmp/check.txt
grep 'probe cost' /tmp/check.err /tmp/serve.err || true
echo "result: rss verdict exit=$code $(tail -n 1 /tmp/check.txt)"

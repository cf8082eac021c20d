# Traces from the kernel's own tools that really lost events: every loss marker they print makes check inconclusive, never a pass.
# kernels: custom
# timeout: 300
#
# PTE faults into tracefs buffers of 4 KiB per CPU, far too small for them,
# read three ways: tracefs' trace file (overwritten: its header counts what
# was written and what is kept), trace_pipe after the fact (the kernel's
# "CPU:N [LOST M EVENTS]"), and trace-cmd extract + report of an
# overwritten buffer (trace-cmd 3.1 prints "CPU:N [EVENTS DROPPED]", no
# count: the loss is unknown). The files
# stay in the outbox; dax-probe/tests/fixtures/ keeps copies of them, taken
# from this scenario's own output, for the host's tests.
. /lab/lib.sh

file=$LAB_DAX_MOUNT/loss
xfs_io -f -c "pwrite -q 0 8m" "$file"
# 1024 PTE faults (a mapping shifted off 2 MiB): 2 048 fs_dax events.
touches=$(seq 0 1023 | awk '{ printf "%sr:%dk", (NR > 1 ? "," : ""), $1 * 4 }')

# overflow: fills tracefs' top buffer, 4 KiB per CPU, with the faults.
overflow() {
	echo 0 > "$LAB_TRACEFS/tracing_on"
	echo > "$LAB_TRACEFS/trace"
	echo 4 > "$LAB_TRACEFS/buffer_size_kb"
	echo 1 > "$LAB_TRACEFS/events/fs_dax/enable"
	echo 1 > "$LAB_TRACEFS/tracing_on"
	dax-lab-fault "$file" --length 8m --shift 4k --touch "$touches" > /dev/null
	echo 0 > "$LAB_TRACEFS/tracing_on"
}

# expect_inconclusive FILE: check reads FILE and says it cannot pass it.
expect_inconclusive() {
	code=0
	dax-probe check "$1" > /tmp/check.txt 2>&1 || code=$?
	cat /tmp/check.txt
	dax-probe report --json "$1" > /tmp/report.json
	lost=$(lab_json lost /tmp/report.json)
	unknown=$(lab_json loss_unknown /tmp/report.json)
	echo "result: $(basename "$1"): $(grep -c ': dax_' "$1") fs_dax events kept, lost $lost, loss unknown $unknown"
	lab_expect "check of $(basename "$1") is inconclusive (exit $code)" \
		sh -c "test $code = 3 && tail -n 1 /tmp/check.txt | grep -q '^verdict: inconclusive'"
}

overflow
cat "$LAB_TRACEFS/trace" > /outbox/tracefs-overwritten.txt
grep 'entries-in-buffer' /outbox/tracefs-overwritten.txt
expect_inconclusive /outbox/tracefs-overwritten.txt
lab_expect "the header's count is the loss" test "$lost" -gt 0

lab_expect "trace-cmd extracts the overwritten buffer" trace-cmd extract -o /tmp/extract.dat
trace-cmd report -i /tmp/extract.dat > /outbox/trace-cmd-dropped.txt 2> /tmp/report.log || cat /tmp/report.log
grep -m 4 'DROPPED\|LOST' /outbox/trace-cmd-dropped.txt || true
expect_inconclusive /outbox/trace-cmd-dropped.txt
lab_expect "trace-cmd's drop markers are the loss ($lost, unknown $unknown)" \
	sh -c "test '$lost' -gt 0 || test '$unknown' = true"

overflow
# With tracing off, trace_pipe ends once it is empty (older kernels block:
# the reader is stopped after 3 s either way).
cat "$LAB_TRACEFS/trace_pipe" > /outbox/trace_pipe-lost.txt &
reader=$!
sleep 3
kill "$reader" 2> /dev/null || true
grep -m 4 'LOST' /outbox/trace_pipe-lost.txt || true
expect_inconclusive /outbox/trace_pipe-lost.txt
lab_expect "the kernel's lost-events markers are the loss ($lost)" test "$lost" -gt 0

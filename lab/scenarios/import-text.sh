# Traces from the kernel's own tools: tracefs text and trace-cmd report give dax-probe the same counts as its own recording.
# kernels: custom debian-6.1
# timeout: 400
#
# One fio run recorded three ways at once: dax-probe (BPF), tracefs' top
# buffer and trace-cmd in its own instance. check, report and plot read all
# three; the text ones say what they cannot show (entry locks).
. /lab/lib.sh

# Starts trace-cmd on the fs_dax events in an instance of its own, and waits
# until the instance has them enabled (its "Hit Ctrl^C" is not flushed to a file).
trace_cmd_start() {
	trace-cmd record -B daxprobe -e fs_dax -o /tmp/trace.dat > /tmp/trace-cmd.log 2>&1 &
	TRACE_CMD=$!
	enable=$LAB_TRACEFS/instances/daxprobe/events/fs_dax/enable
	for _ in $(seq 30); do
		if [ "$(cat "$enable" 2>/dev/null)" = 1 ]; then
			sleep 1
			return 0
		fi
		sleep 1
	done
	echo "dax-lab: trace-cmd did not start recording:"
	cat /tmp/trace-cmd.log
	return 1
}

# trace-cmd reads /proc/kallsyms twice as it stops (its size, then a copy)
# and fails if it changed in between. Once it did, right after dax-probe had
# exited (BPF programs and trampolines leave kallsyms when freed, some after
# an RCU grace period), so it stops only once kallsyms has stayed the same
# for 3 s.
kallsyms_settle() {
	last='' same=0
	for waited in $(seq 0 60); do
		now=$(md5sum < /proc/kallsyms)
		if [ "$now" = "$last" ]; then
			same=$((same + 1))
		else
			same=0
		fi
		if [ "$same" -ge 3 ]; then
			echo "dax-lab: /proc/kallsyms unchanged for 3 s, after ${waited} s"
			return 0
		fi
		last=$now
		sleep 1
	done
	echo "dax-lab: /proc/kallsyms still changing after 60 s"
}

trace_cmd_stop() {
	kill -INT "$TRACE_CMD"
	wait "$TRACE_CMD" || true
	if ! trace-cmd report -i /tmp/trace.dat > /outbox/trace-cmd.txt 2> /tmp/trace-cmd-report.log; then
		echo "dax-lab: trace-cmd report failed:"
		cat /tmp/trace-cmd.log /tmp/trace-cmd-report.log
		ls -l /tmp
		return 1
	fi
	head -n 5 /outbox/trace-cmd.txt
}

# dax-probe's counts of an imported trace equal those of its own recording.
same_counts() {
	dax-probe report --counts "$1" | sort > "$1.counts"
	events=$(awk '{ s += $3 } END { print s + 0 }' "$1.counts")
	echo "result: $2: $events fs_dax events"
	lab_expect "$2 gives the same counts as dax-probe's recording" diff /outbox/dax-probe.counts "$1.counts"
}

echo "== the seed fio job, recorded three ways =="
trace_cmd_start
lab_trace_start
dax-probe record -o /outbox/fio.daxtrace -- fio --eta=never --output=/outbox/fio.txt /lab/fio/seed-randrw.fio
lab_trace_stop
kallsyms_settle
trace_cmd_stop
dax-probe report --counts /outbox/fio.daxtrace | sort > /outbox/dax-probe.counts
cp "$LAB_TRACE" /outbox/tracefs.txt
same_counts /outbox/tracefs.txt "tracefs text"
same_counts /outbox/trace-cmd.txt "trace-cmd report"

for text in /outbox/tracefs.txt /outbox/trace-cmd.txt; do
	dax-probe check "$text" > "$text.check" || true
	cat "$text.check"
	lab_expect "check of $text says what it cannot show" grep -q '^coverage: imported from .*cannot show entry locks' "$text.check"
	lab_expect "check of $text passes on the invariants it can check" grep -q '^verdict: pass (.*2 of 10 invariants checked)' "$text.check"
	dax-probe report --json "$text" > "$text.json"
	lab_expect "report --json of $text names where it came from" grep -q '"imported_from": "tr' "$text.json"
	dax-probe plot "$text" -o "$text.svg"
	lab_expect "plot of $text has the PMD share series" grep -qF 'PMD share' "$text.svg"
done

echo "== a fallback named from tracefs text alone =="
xfs_io -f -c "pwrite -q 0 8m" "$LAB_DAX_MOUNT/colour"
lab_trace_start
dax-lab-fault "$LAB_DAX_MOUNT/colour" --length 4m --shift 4k --touch r:1m
lab_trace_stop
dax-probe report "$LAB_TRACE" | tee /outbox/report.txt
dax-probe report --json "$LAB_TRACE" > /outbox/report.json
n=$(lab_reason_count address-colour)
total=$(lab_fallback_total)
lab_expect "the text trace names address-colour for its fallbacks ($n of $total)" test "$n" -ge 1 -a "$n" = "$total"

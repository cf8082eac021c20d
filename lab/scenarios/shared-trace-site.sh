# A kprobe of the user's own on the function dax-probe's truncation programs trace: the kernel survives, both see every truncate.
# kernels: custom debian-7.2
# timeout: 300
#
# An engineer's own kprobe next to dax-probe is the ordinary case. With two
# ftrace users on one function (here the kprobe and the BPF trampoline of the
# fexit programs on truncate_inode_pages_range) the function's call site goes
# through ftrace's shared trampoline and its list function; so does any
# function whose BPF trampoline is being replaced, which dax-probe's attach and
# detach of the second truncation program do. On the lab's 7.2 before
# lab/kernel/patches/0003 the shared trampoline jumped to the list function's
# address less one (an odd address read as ftrace's "jump" flag) and the
# kernel oopsed at the first truncate; CI's fio-run once met the same oops
# from a shell reaping a child while dax-probe detached.
. /lab/lib.sh

lab_format aligned
file=$LAB_DAX_MOUNT/shared
xfs_io -f -c "pwrite -q 0 4m" -c fsync "$file"

# Where the handlers start: an odd address is what 7.2's ftrace misread.
for handler in arch_ftrace_ops_list_func kprobe_ftrace_handler; do
	echo "result: $handler at $(awk -v name="$handler" '$3 == name { print $1; exit }' /proc/kallsyms)"
done

echo 'p:daxlab/truncate truncate_inode_pages_range' >> "$LAB_TRACEFS/kprobe_events"
echo 0 > "$LAB_TRACEFS/tracing_on"
echo > "$LAB_TRACEFS/trace"
echo 1 > "$LAB_TRACEFS/events/daxlab/truncate/enable"
echo 1 > "$LAB_TRACEFS/tracing_on"
dax-probe record -o /outbox/shared.daxtrace -- \
	xfs_io -c 'truncate 0' -c 'truncate 4m' -c 'truncate 0' "$file"
echo 0 > "$LAB_TRACEFS/tracing_on"
echo 0 > "$LAB_TRACEFS/events/daxlab/truncate/enable"
# The kprobe also sees page-cache truncates of other files (a reaped task's
# /proc inodes, for one); the three of the DAX file are among them.
kprobe_hits=$(grep -c ' truncate: ' "$LAB_TRACEFS/trace")
echo '-:daxlab/truncate' >> "$LAB_TRACEFS/kprobe_events"

dax-probe report --json /outbox/shared.daxtrace > /outbox/report.json
truncates=$(lab_json truncates /outbox/report.json)
lost=$(lab_json lost /outbox/report.json)
echo "result: the kprobe hit truncate_inode_pages_range $kprobe_hits times; dax-probe saw $truncates truncates of the DAX file"
lab_expect "dax-probe lost no event (lost: $lost)" test "$lost" = 0
lab_expect "dax-probe saw the three truncates ($truncates)" test "$truncates" = 3
lab_expect "the kprobe fired for each of them too ($kprobe_hits)" test "$kprobe_hits" -ge 3

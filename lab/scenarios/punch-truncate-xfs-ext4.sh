# Hole punch and truncate on XFS and on ext4: the entries they delete are counted (a real PMD entry, three PTE entries, two zero-page PMD entries), no entry of a punched or truncated range survives it (truncate-empties-range), PMD faults in an emptied range do not fall back for PTE entries (pte-conflict-real), check passes over all ten invariants.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 600
#
# On each file system (2 MiB-aligned layout), one recording of:
#   a write at 0 through an aligned mapping (a real PMD entry, range 0);
#   three reads in range 1 through a mapping 4 KiB off the 2 MiB colour
#     (three PTE entries, indices 512 to 514);
#   a punch of 64 KiB at 2 MiB: in 7.2 XFS and ext4 first break the
#     layout of the whole file, deleting all four entries; before 7.2 the
#     punch deletes the three PTE entries of its range, and the PMD entry
#     stays until
#   a truncate to 0, which deletes whatever is left;
#   the file sized back to 4 MiB (a hole) and both ranges read: two
#     PMD faults in ranges a truncate emptied, two huge zero-page entries;
#   a truncate to 0 again, deleting those two.
# The deletes are seen by the entry hooks as WAKE_ALLs of unlocked
# entries, the truncates by the truncation hook; tracefs sees neither, so
# the counts are held against what the workload made, and the hole loads
# against tracefs.
. /lab/lib.sh

for fs in xfs ext4; do
	lab_format aligned "$fs"
	file=$LAB_DAX_MOUNT/punched
	xfs_io -f -c "falloc 0 4m" -c "pwrite -q 0 4m" -c fsync "$file"
	lab_trace_start
	dax-probe record -o "/outbox/$fs.daxtrace" -- sh -c "
		dax-lab-fault $file --length 4m --touch w:0 &&
		dax-lab-fault $file --length 4m --shift 4k --touch r:2m,r:0x201000,r:0x202000 &&
		xfs_io -c 'fpunch 2m 64k' $file &&
		xfs_io -c 'truncate 0' -c 'truncate 4m' $file &&
		dax-lab-fault $file --length 4m --touch r:0,r:2m &&
		xfs_io -c 'truncate 0' $file"
	lab_trace_stop
	lab_trace_counts
	lab_probe_matches_tracefs "/outbox/$fs.daxtrace"
	lab_probe_check "/outbox/$fs.daxtrace"
	cp /outbox/report.txt "/outbox/report-$fs.txt"
	cp /outbox/check.txt "/outbox/check-$fs.txt"
	truncates=$(lab_json truncates /outbox/report.json)
	pmd=$(lab_json deleted_pmd /outbox/report.json)
	pte=$(lab_json deleted_pte /outbox/report.json)
	zero=$(lab_json deleted_zero_page /outbox/report.json)
	holes=$(lab_json pmd_hole_loads /outbox/report.json)
	echo "result: $fs: truncates and punches $truncates, entries deleted: PMD $pmd, PTE $pte, zero-page $zero; 2 MiB zero-page loads $holes"
	lab_expect "$fs: the truncation hook saw the punch and the three truncates ($truncates)" test "$truncates" = 4
	lab_expect "$fs: the real PMD entry was deleted ($pmd)" test "$pmd" = 1
	lab_expect "$fs: the three PTE entries were deleted ($pte)" test "$pte" = 3
	lab_expect "$fs: both zero-page PMD entries were deleted ($zero)" test "$zero" = 2
	lab_expect "$fs: both 2 MiB holes were read through the huge zero page ($holes)" test "$holes" = 2
	lab_expect "$fs: tracefs saw the same 2 MiB hole loads" test "$(lab_count dax_pmd_load_hole)" = "$holes"
	lab_expect "$fs: check judged truncate-empties-range and pte-conflict-real" \
		grep -q '^coverage: invariants checked: .*truncate-empties-range pte-conflict-real' /outbox/check.txt
done

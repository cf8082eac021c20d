# The seed's entry behaviours on XFS and on ext4: 2 MiB holes read through the huge zero page, the downgrade of those entries by 4 KiB faults, and writeback of a dirty PMD entry as one 2 MiB unit; counts equal tracefs', check passes (writeback-whole included).
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 600
#
# On each file system (2 MiB-aligned layout), one recording of four runs of
# dax-lab-fault:
#   holes:     a sparse 4 MiB file mapped 2 MiB-aligned, both ranges read:
#              two PMD hole loads, two zero-page PMD entries.
#   downgrade: the same file mapped 4 KiB off the 2 MiB colour (every fault
#              4 KiB), a write into range 0 and a read of range 1: each
#              deletes its range's zero-page PMD entry first (the downgrade
#              of grab_mapping_entry), and the read maps the 4 KiB zero page.
#   pmd dirty: a written 4 MiB file mapped aligned, a write at 0 (a PMD
#              entry, dirty), then msync from 4 KiB: fs/dax.c writes the
#              entry back from index 0 for 512 pages, not from index 1.
#   pte dirty: the same file mapped 4 KiB off colour, three writes into
#              range 1 and msync of them: three PTE entries written back.
. /lab/lib.sh

for fs in xfs ext4; do
	lab_format aligned "$fs"
	holes=$LAB_DAX_MOUNT/holes
	dirty=$LAB_DAX_MOUNT/dirty
	xfs_io -f -c "truncate 4m" "$holes"
	# One 4 MiB allocation first (as fio lays out its files): ext4 aligns a
	# request of a stripe or more to the stripe, not a 64 KiB write's.
	xfs_io -f -c "falloc 0 4m" -c "pwrite -q 0 4m" -c fsync "$dirty"
	lab_trace_start
	dax-probe record -o "/outbox/$fs.daxtrace" -- sh -c "
		dax-lab-fault $holes --length 4m --touch r:0,r:2m &&
		dax-lab-fault $holes --length 4m --shift 4k --touch w:1m,r:3m &&
		dax-lab-fault $dirty --length 4m --touch w:0 --msync 4k:2m &&
		dax-lab-fault $dirty --length 4m --shift 4k --touch w:2m,w:0x208000,w:0x210000 --msync 2m:68k"
	lab_trace_stop
	lab_trace_counts
	lab_probe_matches_tracefs "/outbox/$fs.daxtrace"
	lab_probe_check "/outbox/$fs.daxtrace"
	cp /outbox/report.txt "/outbox/report-$fs.txt"
	pmd_holes=$(lab_json pmd_hole_loads /outbox/report.json)
	pte_holes=$(lab_json pte_hole_loads /outbox/report.json)
	zero_downgrades=$(lab_json downgraded_zero_page /outbox/report.json)
	pmd_written=$(lab_json written_back_pmd /outbox/report.json)
	pte_written=$(lab_json written_back_pte /outbox/report.json)
	other_written=$(lab_json written_back_other /outbox/report.json)
	echo "result: $fs: 2 MiB zero-page loads $pmd_holes, 4 KiB zero-page loads $pte_holes, zero-page PMD entries downgraded $zero_downgrades, written back: PMD entries $pmd_written, PTE entries $pte_written, other $other_written"
	lab_expect "$fs: both 2 MiB holes were read through the huge zero page ($pmd_holes)" test "$pmd_holes" = 2
	lab_expect "$fs: tracefs saw the same 2 MiB hole loads" test "$(lab_count dax_pmd_load_hole)" = "$pmd_holes"
	lab_expect "$fs: the 4 KiB read of range 1 mapped the zero page ($pte_holes)" test "$pte_holes" = 1
	lab_expect "$fs: both zero-page PMD entries were downgraded by the 4 KiB faults ($zero_downgrades)" \
		test "$zero_downgrades" = 2
	lab_expect "$fs: the dirty PMD entry was written back as one 2 MiB unit ($pmd_written)" test "$pmd_written" = 1
	lab_expect "$fs: the three dirty PTE entries were written back a page each ($pte_written)" test "$pte_written" = 3
	lab_expect "$fs: nothing was written back in another size ($other_written)" test "$other_written" = 0
done

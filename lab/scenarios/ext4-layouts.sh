# ext4 mounted -o dax, as XFS is: the seed's job on a 2 MiB-aligned and on a fallback layout under dax-probe next to tracefs; equal counts, check passes, and the report names ext4.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 600
#
# aligned: a 2 MiB stripe, so mballoc gives 2 MiB aligned extents and every
# PMD fault maps 2 MiB, as pmd-smoke holds on XFS. plain: no flex_bg, so
# every 128 MiB block group begins with its own bitmaps and inode table:
# no extent starts 2 MiB aligned, and PMD faults fall back (pmd-misaligned).
. /lab/lib.sh

# mountinfo as the guest writes it, XFS (init's mount) then each ext4: real
# lines for dax-probe's unit tests of source/mounts.rs.
cp /proc/self/mountinfo /outbox/mountinfo-xfs.txt
for layout in aligned plain; do
	lab_format "$layout" ext4
	lab_fio_traced /lab/fio/seed-randrw.fio dax-probe record -o "/outbox/ext4-$layout.daxtrace" --
	lab_probe_matches_tracefs "/outbox/ext4-$layout.daxtrace"
	lab_probe_check "/outbox/ext4-$layout.daxtrace"
	nopage=$(lab_count dax_pmd_fault_done NOPAGE)
	fallback=$(lab_count dax_pmd_fault_done FALLBACK)
	pte=$(lab_count dax_pte_fault_done NOPAGE)
	echo "result: ext4 $layout: $nopage PMD faults mapped 2 MiB, $fallback fell back, $pte PTE faults, for $LAB_RANGES 2 MiB ranges"
	lab_expect "the report names the file system" grep -q '^  ext4 on /mnt/dax ' /outbox/report.txt
	cp /proc/self/mountinfo /outbox/mountinfo-$layout.txt
	if [ "$layout" = aligned ]; then
		lab_expect "ext4 aligned: every 2 MiB range mapped by a PMD ($nopage of $LAB_RANGES), none fell back" \
			test "$nopage" -ge "$LAB_RANGES" -a "$fallback" = 0
	else
		lab_expect "ext4 plain: every PMD fault fell back ($fallback), none mapped 2 MiB" \
			test "$fallback" -ge "$LAB_RANGES" -a "$nopage" = 0
	fi
done

# Each reachable PMD fallback reason, provoked on purpose: dax-probe's report names it for those faults.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 400
#
# dax-lab-fault maps a file at a 2 MiB boundary plus --shift, from file
# offset --offset, --length bytes, and touches offsets into the mapping.
. /lab/lib.sh

# A fresh 8 MiB file per case: PTE entries one case leaves would make the
# next one's PMD faults fall back for another reason.
fresh() {
	xfs_io -f -c "pwrite -q 0 8m" "$LAB_DAX_MOUNT/$1"
	echo "$LAB_DAX_MOUNT/$1"
}
lab_expect_reason address-colour "$(fresh colour)" --length 4m --shift 4k --touch r:1m
lab_expect_reason cow-write "$(fresh cow)" --length 4m --private --touch w:0
lab_expect_reason vma-start "$(fresh start)" --length 4m --shift 4k --offset 4k --touch r:1m
lab_expect_reason vma-end "$(fresh end)" --length 3m --touch r:2m

short=$LAB_DAX_MOUNT/short
xfs_io -f -c "pwrite -q 0 3m" "$short"
lab_expect_reason past-eof "$short" --length 4m --touch r:2m

# PTE entries first (a colour-mismatched mapping faults 4 KiB pages), then an
# aligned PMD fault over them.
ptes=$LAB_DAX_MOUNT/ptes
xfs_io -f -c "pwrite -q 0 4m" "$ptes"
dax-lab-fault "$ptes" --length 4m --shift 4k --touch r:0,r:8k
lab_expect_reason pte-entry-in-range "$ptes" --length 4m --touch r:0

# Without the 2 MiB extent size hint, two 4 KiB writes make 4 KiB extents.
sparse=$LAB_DAX_MOUNT/sparse
touch "$sparse"
xfs_io -c "extsize 0" -c "pwrite -q 0 4k" -c "pwrite -q 8k 4k" -c "truncate 4m" "$sparse"
lab_expect_reason extent-too-short "$sparse" --length 4m --touch r:0

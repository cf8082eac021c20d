# The seed's fio job where extents are not 2 MiB aligned: every PMD fault must fall back.
# kernels: custom debian-6.1
# timeout: 300
#
# The XFS is made without stripe unit or extent size hint, so fio's file lands
# on blocks that are not 2 MiB aligned and no PMD can map it.
. /lab/lib.sh

lab_format plain
lab_fio_traced /lab/fio/seed-randrw.fio

nopage=$(lab_count dax_pmd_fault_done NOPAGE)
fallback=$(lab_count dax_pmd_fault_done FALLBACK)
pte=$(lab_count dax_pte_fault_done NOPAGE)
echo "result: $fallback PMD faults fell back for $LAB_RANGES 2 MiB ranges, $nopage got a PMD, $pte PTE faults served"

lab_expect "at least one FALLBACK per 2 MiB of the file ($fallback >= $LAB_RANGES)" [ "$fallback" -ge "$LAB_RANGES" ]
lab_expect "no PMD fault got a PMD ($nopage NOPAGE)" [ "$nopage" = 0 ]
lab_expect "the fallen-back faults were served by PTE faults ($pte)" [ "$pte" -gt 0 ]

# The seed's fio job on the 2 MiB-aligned DAX XFS: every fault must get a PMD.
# kernels: custom debian-6.1
# timeout: 300
. /lab/lib.sh

lab_fio_traced /lab/fio/seed-randrw.fio

nopage=$(lab_count dax_pmd_fault_done NOPAGE)
fallback=$(lab_count dax_pmd_fault_done FALLBACK)
started=$(lab_count dax_pmd_fault)
finished=$(awk '$1 == "dax_pmd_fault_done" { s += $3 } END { print s + 0 }' /outbox/fs_dax.counts)
echo "result: $finished PMD faults for $LAB_RANGES 2 MiB ranges: $nopage NOPAGE, $fallback FALLBACK"

lab_expect "every dax_pmd_fault has its dax_pmd_fault_done ($started started, $finished done)" [ "$started" = "$finished" ]
lab_expect "at least one PMD fault per 2 MiB of the file ($finished >= $LAB_RANGES)" [ "$finished" -ge "$LAB_RANGES" ]
lab_expect "every dax_pmd_fault_done is NOPAGE ($nopage of $finished)" [ "$nopage" = "$finished" ]

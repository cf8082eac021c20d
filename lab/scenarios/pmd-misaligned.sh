# The same fio job on an XFS without 2 MiB stripe unit or extent size hint:
# extents are not 2 MiB aligned, so every PMD fault must fall back to PTEs.
# kernels: custom debian-6.1
# timeout: 300
. /lab/lib.sh

lab_format plain
job=/lab/fio/seed-randrw.fio
file_mib=$(awk -F= '$1 == "size" { sub(/m$/, "", $2); print $2 }' "$job")
ranges=$((file_mib / 2))

lab_trace_start
fio --eta=never --output=/outbox/fio.txt "$job"
lab_trace_stop
grep -E '^ +(READ|WRITE):' /outbox/fio.txt
lab_trace_counts

nopage=$(lab_count dax_pmd_fault_done NOPAGE)
fallback=$(lab_count dax_pmd_fault_done FALLBACK)
pte=$(lab_count dax_pte_fault_done NOPAGE)
echo "result: $fallback PMD faults fell back for $ranges 2 MiB ranges, $nopage got a PMD, $pte PTE faults served"

lab_expect "at least one FALLBACK per 2 MiB of the file ($fallback >= $ranges)" [ "$fallback" -ge "$ranges" ]
lab_expect "no PMD fault got a PMD ($nopage NOPAGE)" [ "$nopage" = 0 ]
lab_expect "the fallen-back faults were served by PTE faults ($pte)" [ "$pte" -gt 0 ]

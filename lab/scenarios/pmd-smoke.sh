# The seed's fio job on the 2 MiB-aligned DAX XFS: every fault must get a PMD.
# kernels: custom debian-6.1
# timeout: 300
. /lab/lib.sh

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
started=$(lab_count dax_pmd_fault)
finished=$(awk '$1 == "dax_pmd_fault_done" { s += $3 } END { print s + 0 }' /outbox/fs_dax.counts)
echo "result: $finished PMD faults for $ranges 2 MiB ranges: $nopage NOPAGE, $fallback FALLBACK"

lab_expect "every dax_pmd_fault has its dax_pmd_fault_done ($started started, $finished done)" [ "$started" = "$finished" ]
lab_expect "at least one PMD fault per 2 MiB of the file ($finished >= $ranges)" [ "$finished" -ge "$ranges" ]
lab_expect "every dax_pmd_fault_done is NOPAGE ($nopage of $finished)" [ "$nopage" = "$finished" ]

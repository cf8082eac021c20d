# Each reachable PMD fallback reason, provoked on purpose: dax-probe's report names it for those faults.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 400
#
# dax-lab-fault maps a file at a 2 MiB boundary plus --shift, from file
# offset --offset, --length bytes, and touches offsets into the mapping.
. /lab/lib.sh

# `lab_reason_case` lays out each reason's file (lab/guest/lib.sh).
for reason in address-colour cow-write vma-start vma-end past-eof pte-entry-in-range extent-too-short; do
	args=$(lab_reason_case "$reason") || exit 1
	# shellcheck disable=SC2086 # the arguments, one word each
	lab_expect_reason "$reason" $args
done

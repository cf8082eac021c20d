# The seed's result: its fio job with 2 MiB pages against the layout where every PMD fault falls back.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 900
#
# Run by `cargo xtask bench seed` under QEMU's icount, where fio's bandwidth
# repeats from run to run. Nothing watches the job. Each run prints
#   result: seed LAYOUT ROUND read_kib=N
. /lab/lib.sh

ROUNDS=2

for layout in aligned plain; do
	lab_format "$layout"
	# Lay the file out once: every measured run faults on the same blocks.
	lab_fio_seed
	for round in $(seq "$ROUNDS"); do
		lab_fio_seed
		echo "result: seed $layout $round read_kib=$(lab_fio_read_kib)"
	done
done

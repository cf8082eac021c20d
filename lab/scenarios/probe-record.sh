# dax-probe records the seed's fio job next to tracefs: its counts must equal tracefs' exactly.
# kernels: custom debian-6.1 debian-6.12 debian-7.2
# timeout: 300
. /lab/lib.sh

lab_fio_traced /lab/fio/seed-randrw.fio dax-probe record -o /outbox/fio.daxtrace --
lab_probe_matches_tracefs /outbox/fio.daxtrace
lab_probe_check /outbox/fio.daxtrace

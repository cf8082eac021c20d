# Four processes fault, write, msync, fsync, punch and truncate the same DAX files for 60 s, 2 MiB and 4 KiB mappings mixed, under dax-probe's check: no violation, no lost event, no lost data.
# kernels: custom debian-7.2
# timeout: 600
#
# dax-lab-soak (lab/fault/src/soak.rs) is the workload and the oracle: each
# block has one writer, which stamps it with its id and a generation, and
# every punch and truncate is logged with the interval it ran in; after the
# run every block must hold its last generation or, if a punch may have
# come after that write, zeros. The VM runner fails the run on any kernel
# warning. `dax-probe run` is check's verdict plus the report (the PMD
# faults and fallbacks the soak made).
. /lab/lib.sh

lab_format aligned
code=0
dax-probe run --json -- dax-lab-soak "$LAB_DAX_MOUNT" --seconds 60 --workers 4 \
	> /outbox/soak.json 2> /outbox/soak.err || code=$?
grep -E '^dax-(lab-soak|probe): ' /outbox/soak.err | grep -v 'coverage:'
verdict=$(sed -n 's/^ *"verdict": "\([a-z]*\)",\{0,1\}$/\1/p' /outbox/soak.json | head -n 1)
lost=$(lab_json lost /outbox/soak.json)
events=$(lab_json events /outbox/soak.json)
grep -E '^ *"(pmd|pmd_fallback|pte)": ' /outbox/soak.json | head -n 3 | sed 's/^ */result: soak: /'

echo "result: soak: verdict $verdict, $events events, $lost lost, exit $code"
# What check found, with its events, for the log of a run that did not pass.
[ "$verdict" = pass ] || sed -n '/"violation_details": \[$/,/^    \],\{0,1\}$/p' /outbox/soak.json | head -n 60
lab_expect "the oracle found every block as the writes and punches allow" grep -q '; 0 wrong$' /outbox/soak.err
lab_expect "dax-lab-soak succeeded and check passed (exit $code)" test "$code" = 0
lab_expect "check's verdict is pass ($verdict)" test "$verdict" = pass
lab_expect "no event was lost ($lost)" test "$lost" = 0
lab_expect "the soak made PMD faults and punches" sh -c \
	"grep -q '\"pmd\": [1-9]' /outbox/soak.json && grep -q ' [1-9][0-9]* punches' /outbox/soak.err"

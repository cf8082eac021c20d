# Lab selftest: a scenario whose check fails must fail the run.
# kernels: custom
# timeout: 120
# expect-failure: fail (scenario exited 1)
. /lab/lib.sh
lab_expect "one equals two (this check fails on purpose)" [ 1 = 2 ]

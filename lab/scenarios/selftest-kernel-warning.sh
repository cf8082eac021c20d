# Lab selftest: a real kernel WARN (from the Rust selftest module) must fail the run.
# kernels: custom
# timeout: 120
# expect-failure: kernel log shows a problem: WARNING:
insmod /lab/modules/lab_selftest.ko warn=1
rmmod lab_selftest
echo "selftest: the module raised a WARN; the host must fail this run"

# Lab selftest: a scenario that never finishes must be killed at its timeout.
# kernels: custom
# timeout: 30
# expect-failure: timed out after
echo "selftest: sleeping forever; the host must kill the guest"
sleep 100000

# The custom kernel loads and unloads a Rust module (with its BTF) cleanly.
# kernels: custom
# timeout: 120
. /lab/lib.sh

module=/lab/modules/lab_selftest.ko
insmod "$module"
lab_expect "lab_selftest is listed in /proc/modules" grep -q '^lab_selftest ' /proc/modules
lab_expect "lab_selftest has BTF in /sys/kernel/btf" [ -f /sys/kernel/btf/lab_selftest ]
lab_expect "vmlinux BTF is there for the probe" [ -f /sys/kernel/btf/vmlinux ]
rmmod lab_selftest
lab_expect "lab_selftest is gone after rmmod" sh -c "! grep -q '^lab_selftest ' /proc/modules"

# The reference module: the seed's fio job on /dev/daxref under dax-probe maps 2 MiB pages, and check finds 0 violations.
# kernels: custom
# timeout: 300
. /lab/lib.sh

insmod /lab/modules/daxref.ko size_mib=256
lab_expect "/dev/daxref appeared" test -c /dev/daxref
dax-probe record -o /outbox/refmod.daxtrace -- fio --eta=never --output=/outbox/fio.txt /lab/fio/daxref-randrw.fio
grep -E '^ +(READ|WRITE):' /outbox/fio.txt
lab_probe_check /outbox/refmod.daxtrace
nopage=$(lab_json pmd_nopage /outbox/report.json)
echo "result: /dev/daxref: $nopage PMD faults mapped 2 MiB for 128 ranges"
lab_expect "every 2 MiB range was mapped by a PMD ($nopage PMD NOPAGE)" test "$nopage" -ge 128
rmmod daxref
lab_expect "daxref is gone after rmmod" sh -c "! grep -q '^daxref ' /proc/modules"
counters=$(dmesg | grep -o 'daxref: [0-9]* 2 MiB mappings, [0-9]* 4 KiB mappings' | tail -n 1)
echo "result: the module's counters: $counters"
lab_expect "the module's own counters show the 2 MiB mappings" sh -c "echo '$counters' | grep -q '^daxref: $nopage 2 MiB'"

# What fio wrote is what it reads back (fio's own checksums).
insmod /lab/modules/daxref.ko size_mib=64
fio --eta=never --output=/outbox/fio-verify.txt --name=verify --filename=/dev/daxref --ioengine=mmap \
	--rw=randwrite --bs=4k --size=64m --thread --verify=crc32c --do_verify=1
lab_expect "fio verified every block it wrote to /dev/daxref" grep -q 'verify' /outbox/fio-verify.txt
# A mapping 4 KiB off alignment falls back, and dax-probe names why.
lab_expect_reason address-colour /dev/daxref --length 4m --shift 4k --touch r:1m

# Unloading while the device is open or mapped is refused (its file
# operations' owner is the module), and works once it is neither.
exec 3< /dev/daxref
lab_expect "rmmod daxref is refused while /dev/daxref is open" sh -c '! rmmod daxref'
exec 3<&-
dax-lab-fault /dev/daxref --length 4m --touch r:0 --hold-ms 20000 > /tmp/holder.txt &
holder=$!
for _ in $(seq 30); do grep -q 'file closed' /tmp/holder.txt && break; sleep 1; done
lab_expect "dax-lab-fault holds a mapping of /dev/daxref, its file closed" grep -q 'file closed' /tmp/holder.txt
lab_expect "rmmod daxref is refused while /dev/daxref is mapped" sh -c '! rmmod daxref'
kill "$holder"
wait "$holder" || true
rmmod daxref

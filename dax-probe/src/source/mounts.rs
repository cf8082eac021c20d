//! The DAX file systems mounted here, from `/proc/self/mountinfo`: what a
//! recording names the devices of its files by ("259:0" is ext4 on /mnt/dax).

use crate::{kernel::parse_device, stream::Filesystem};

/// Every file system mounted with DAX on (`dax`, `dax=always` or
/// `dax=inode`), once per device, at most [`Filesystem::MOST`]; none if
/// mountinfo cannot be read.
pub fn dax_filesystems() -> Vec<Filesystem> {
    std::fs::read_to_string("/proc/self/mountinfo").map_or(Vec::new(), |text| parse(&text))
}

/// The DAX mounts of a mountinfo text (proc(5)): `ID PARENT MAJOR:MINOR
/// ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`.
/// Lines that do not parse are skipped: this only names devices.
pub fn parse(text: &str) -> Vec<Filesystem> {
    let mut found: Vec<Filesystem> = Vec::new();
    for line in text.lines() {
        let Some((mount, fs)) = line.split_once(" - ") else { continue };
        let mount: Vec<&str> = mount.split(' ').collect();
        let fs: Vec<&str> = fs.split(' ').collect();
        let (Some(dev), Some(mount_point), Some(fstype), Some(options)) =
            (mount.get(2), mount.get(4), fs.first(), fs.get(2))
        else {
            continue;
        };
        let Some(dev) = parse_device(dev) else { continue };
        let dax = options.split(',').any(|option| matches!(option, "dax" | "dax=always" | "dax=inode"));
        if dax && !found.iter().any(|known| known.dev == dev) && found.len() < Filesystem::MOST {
            // mountinfo escapes spaces (\040), so neither has any.
            found.push(Filesystem { dev, fstype: fstype.to_string(), mount: mount_point.to_string() });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::mkdev;

    /// The lab guest's mountinfo as it was (ext4-layouts keeps it), with
    /// a second mount of the same device and a mount with DAX off.
    const GUEST: &str = "\
2 1 0:3 / / rw - rootfs rootfs rw,size=968000k,nr_inodes=242000
18 2 0:16 / /proc rw,relatime - proc proc rw
22 19 0:12 / /sys/kernel/tracing rw,relatime - tracefs tracefs rw
25 2 259:0 / /mnt/dax rw,relatime - ext4 /dev/pmem0 rw,stripe=512,dax=always
26 2 259:0 / /mnt/again rw,relatime - ext4 /dev/pmem0 rw,stripe=512,dax=always
27 2 259:1 / /mnt/x rw,relatime - xfs /dev/pmem1 rw,dax=always,inode64,logbufs=8,logbsize=32k,sunit=4096,swidth=4096,noquota
28 2 259:2 / /mnt/off rw,relatime - ext4 /dev/pmem2 rw,dax=never
";

    #[test]
    fn keeps_the_dax_mounts_once_each() {
        let fs = |minor, fstype: &str, mount: &str| Filesystem {
            dev: mkdev(259, minor),
            fstype: fstype.into(),
            mount: mount.into(),
        };
        assert_eq!(parse(GUEST), [fs(0, "ext4", "/mnt/dax"), fs(1, "xfs", "/mnt/x")]);
        // This machine's first lines, as they were: no DAX.
        let host = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334524k,nr_inodes=3083631,mode=755\n";
        assert_eq!(parse(host), []);
    }

    #[test]
    fn bad_lines_are_skipped() {
        let text = "garbage\n1 2 x:y / /m rw - xfs /dev/pmem0 rw,dax\n - \n1 2 3\n";
        assert_eq!(parse(text), []);
    }
}

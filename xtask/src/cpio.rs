//! A writer for the "newc" cpio format the kernel unpacks as its initramfs.
//!
//! Written here rather than driven through `cpio(1)` so that the archive can
//! hold device nodes without root, and is byte-for-byte reproducible (owner 0,
//! mtime 0, entries in the order given).

use std::io::{self, Write};

pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

pub struct Writer<W: Write> {
    out: W,
    offset: u64,
    next_inode: u32,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer { out, offset: 0, next_inode: 1 }
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | perm, (0, 0), b"")
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | perm, (0, 0), data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes())
    }

    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | perm, (major, minor), b"")
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), b"")?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        let inode = self.next_inode;
        self.next_inode += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields =
            [inode, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
        let mut header = String::from("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let padding = (4 - self.offset % 4) % 4;
        self.write(&[0; 3][..padding as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_readable_by_cpio_rules() {
        let mut writer = Writer::new(Vec::new());
        writer.dir("/bin", 0o755).unwrap();
        writer.file("/bin/hello", 0o755, b"hi!").unwrap();
        writer.char_device("/dev/console", 0o600, 5, 1).unwrap();
        let bytes = writer.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        // First header: magic, inode 1, a directory.
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(&bytes[6..14], b"00000001");
        assert_eq!(&bytes[14..22], b"000041ed");
        // The name follows the 110-byte header and is NUL-terminated.
        assert_eq!(&bytes[110..114], b"bin\0");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("bin/hello\0"));
        assert!(text.contains("hi!"));
        // 110-byte header + "TRAILER!!!\0" = 121 bytes, padded with three zeros.
        assert!(bytes.ends_with(b"TRAILER!!!\0\0\0\0"));
    }
}

//! The running kernel's fs_dax tracepoints, read from tracefs.
//!
//! Record layouts differ between kernels (6.1's `ino` is 8 bytes at another
//! offset than 7.2's, 7.2 renamed `zero_page` to `zero_folio`), so the probe
//! never hard-codes one: it reads each tracepoint's `format` file and tells
//! the eBPF programs where every field is.

use std::{fs, path::PathBuf};

use anyhow::{bail, Context, Result};
use dax_probe_common::{Field, Layout, Slot, RECORD_BYTES, TRACEPOINTS};

/// What the kernel offers: the layout and which tracepoints exist.
pub struct Tracepoints {
    pub layout: Layout,
    pub present: Vec<&'static str>,
    pub missing: Vec<&'static str>,
    /// fs_dax tracepoints of this kernel that dax-probe does not record.
    pub unknown: Vec<String>,
}

pub fn root() -> Result<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(PathBuf::from)
        .find(|dir| dir.join("events").is_dir())
        .context("tracefs is not mounted: mount -t tracefs tracefs /sys/kernel/tracing")
}

pub fn fs_dax() -> Result<Tracepoints> {
    let events = root()?.join("events/fs_dax");
    if !events.is_dir() {
        bail!(
            "this kernel has no fs_dax tracepoints ({} is missing): it needs CONFIG_FS_DAX",
            events.display()
        );
    }
    let mut found =
        Tracepoints { layout: Layout::EMPTY, present: Vec::new(), missing: Vec::new(), unknown: Vec::new() };
    for (index, name) in TRACEPOINTS.iter().enumerate() {
        let Ok(format) = fs::read_to_string(events.join(name).join("format")) else {
            found.missing.push(name);
            continue;
        };
        found.layout.slots[index] =
            slots(&format).with_context(|| format!("bad tracefs format of {name}"))?;
        found.present.push(name);
    }
    for entry in fs::read_dir(&events)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().join("format").exists() && !TRACEPOINTS.contains(&name.as_str()) {
            found.unknown.push(name);
        }
    }
    found.unknown.sort();
    Ok(found)
}

/// The slot of every [`Field`] in one tracepoint's `format` text.
fn slots(format: &str) -> Result<[Slot; dax_probe_common::FIELD_COUNT]> {
    let mut slots = [Slot::default(); dax_probe_common::FIELD_COUNT];
    for line in format.lines().filter(|line| line.trim_start().starts_with("field:")) {
        let (name, slot) = parse_field(line).with_context(|| format!("cannot read {line:?}"))?;
        if let Some(field) = Field::ALL.iter().find(|field| field.format_names().contains(&name)) {
            // The programs copy RECORD_BYTES of the record; a field is at most a word.
            anyhow::ensure!(
                usize::from(slot.offset) + usize::from(slot.size) <= RECORD_BYTES && slot.size <= 8,
                "field {name} (offset {}, size {}) lies past what the probe copies of a record ({RECORD_BYTES} bytes)",
                slot.offset,
                slot.size
            );
            slots[*field as usize] = slot;
        }
    }
    Ok(slots)
}

/// `field:unsigned long vm_start;\toffset:16;\tsize:8;\tsigned:0;`
fn parse_field(line: &str) -> Option<(&str, Slot)> {
    let mut parts = line.split(';').map(str::trim);
    let declaration = parts.next()?.strip_prefix("field:")?;
    let name = declaration.split_whitespace().last()?.split('[').next()?;
    let mut number = |key: &str| parts.next()?.strip_prefix(key)?.parse::<u16>().ok();
    let offset = number("offset:")?;
    let size = number("size:")?;
    Some((name, Slot { offset, size }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 7.2 format of dax_pmd_fault_done, as the lab's guest prints it.
    const PMD_FAULT_DONE_7_2: &str = "name: dax_pmd_fault_done
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:u64 ino;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned long vm_start;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned long vm_end;\toffset:24;\tsize:8;\tsigned:0;
\tfield:vm_flags_t vm_flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:unsigned long address;\toffset:40;\tsize:8;\tsigned:0;
\tfield:unsigned long pgoff;\toffset:48;\tsize:8;\tsigned:0;
\tfield:unsigned long max_pgoff;\toffset:56;\tsize:8;\tsigned:0;
\tfield:dev_t dev;\toffset:64;\tsize:4;\tsigned:0;
\tfield:unsigned int flags;\toffset:68;\tsize:4;\tsigned:0;
\tfield:int result;\toffset:72;\tsize:4;\tsigned:1;

print fmt: \"dev %d:%d ino %#llx ...\"
";

    #[test]
    fn finds_every_field_of_a_format() {
        let slots = slots(PMD_FAULT_DONE_7_2).unwrap();
        assert_eq!(slots[Field::Ino as usize], Slot { offset: 8, size: 8 });
        assert_eq!(slots[Field::Address as usize], Slot { offset: 40, size: 8 });
        assert_eq!(slots[Field::Dev as usize], Slot { offset: 64, size: 4 });
        assert_eq!(slots[Field::Result as usize], Slot { offset: 72, size: 4 });
        assert_eq!(slots[Field::ZeroPage as usize], Slot::default(), "absent fields stay empty");
    }

    #[test]
    fn takes_a_raw_record_apart_by_its_layout() {
        let mut layout = dax_probe_common::Layout::EMPTY;
        let pmd_fault_done = 1;
        layout.slots[pmd_fault_done] = slots(PMD_FAULT_DONE_7_2).unwrap();
        // The record as the kernel writes it: little-endian, fields at their offsets.
        let mut bytes = [0u8; RECORD_BYTES];
        bytes[8..16].copy_from_slice(&4099u64.to_le_bytes());
        bytes[40..48].copy_from_slice(&0x7f00_0020_0000u64.to_le_bytes());
        bytes[64..68].copy_from_slice(&0x0010_0103u32.to_le_bytes());
        bytes[72..76].copy_from_slice(&0x800u32.to_le_bytes());
        bytes[76..80].copy_from_slice(&u32::MAX.to_le_bytes()); // past the result: not ours
        let fields = layout.fields(pmd_fault_done, &bytes);
        assert_eq!(fields[Field::Ino as usize], 4099);
        assert_eq!(fields[Field::Address as usize], 0x7f00_0020_0000);
        assert_eq!(fields[Field::Dev as usize], 0x0010_0103);
        assert_eq!(
            fields[Field::Result as usize],
            0x800,
            "a 4-byte field is zero-extended, not its neighbour"
        );
        assert_eq!(fields[Field::ZeroPage as usize], 0, "absent fields are 0");
        assert_eq!(layout.fields(99, &bytes), [0; dax_probe_common::FIELD_COUNT], "no such tracepoint");
    }

    #[test]
    fn a_field_in_the_last_bytes_of_a_record_is_read_whole() {
        let mut layout = dax_probe_common::Layout::EMPTY;
        layout.slots[0][Field::Result as usize] = Slot { offset: RECORD_BYTES as u16 - 4, size: 4 };
        layout.slots[0][Field::Dev as usize] = Slot { offset: RECORD_BYTES as u16 - 10, size: 2 };
        let mut bytes = [0xffu8; RECORD_BYTES];
        bytes[RECORD_BYTES - 4..].copy_from_slice(&0x800u32.to_le_bytes());
        bytes[RECORD_BYTES - 10..RECORD_BYTES - 8].copy_from_slice(&0x0103u16.to_le_bytes());
        let fields = layout.fields(0, &bytes);
        assert_eq!(fields[Field::Result as usize], 0x800);
        assert_eq!(fields[Field::Dev as usize], 0x0103, "masked to its 2 bytes");
    }

    #[test]
    fn knows_older_field_names() {
        let line = "\tfield:struct page * zero_page;\toffset:32;\tsize:8;\tsigned:0;";
        let (name, slot) = parse_field(line).unwrap();
        assert_eq!(name, "zero_page");
        assert!(Field::ZeroPage.format_names().contains(&name));
        assert_eq!(slot, Slot { offset: 32, size: 8 });
        assert!(parse_field("\tfield:int x;\toffset:bad;").is_none());
    }
}

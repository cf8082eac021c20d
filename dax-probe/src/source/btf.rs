//! Where a kernel structure's members sit, read from the running kernel's
//! BTF (`/sys/kernel/btf/vmlinux`): the fault tracepoints' programs read a few
//! members of `struct vm_fault`, `struct vm_area_struct` and `struct inode`,
//! whose offsets differ between kernel versions and configurations.
//!
//! aya's BTF parser keeps its types to itself, so this is a reader of just
//! what offsets need: the type section's records (`include/uapi/linux/btf.h`),
//! structs and unions by name, and their members, anonymous ones searched
//! through (`vm_fault` keeps `vma`, `pgoff` and `address` in an anonymous
//! struct). Every length is checked against the data: a short or hostile
//! file is an error, never a panic.

use anyhow::{bail, ensure, Context, Result};
use dax_probe_common::count::Offsets;

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// One type record: its kind, name, and for structs and unions their members.
#[derive(Debug)]
struct Type {
    kind: u32,
    name: u32,
    /// `size` or `type`, by kind.
    size_or_type: u32,
    /// Struct and union members: (name, type, bit offset).
    members: Vec<(u32, u32, u32)>,
}

/// The types of one BTF blob, by id (id 0 is `void`).
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

impl Btf {
    /// The running kernel's BTF.
    pub fn kernel() -> Result<Btf> {
        let path = "/sys/kernel/btf/vmlinux";
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {path} (a kernel without BTF?)"))?;
        Btf::parse(&data).with_context(|| format!("cannot read the BTF in {path}"))
    }

    pub fn parse(data: &[u8]) -> Result<Btf> {
        let u32_at = |at: usize| -> Result<u32> {
            let bytes = data.get(at..at + 4).context("the BTF ends early")?;
            Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
        };
        ensure!(data.len() >= 24, "no BTF header");
        ensure!(u16::from_le_bytes([data[0], data[1]]) == MAGIC, "not little-endian BTF");
        let header_len = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let section = |off: usize, len: usize| {
            let start = header_len.checked_add(off).context("a BTF section offset overflows")?;
            let end = start.checked_add(len).context("a BTF section length overflows")?;
            data.get(start..end).context("a BTF section lies outside the file")
        };
        let (type_section, strings) = (section(type_off, type_len)?, section(str_off, str_len)?);
        let mut types = vec![Type { kind: 0, name: 0, size_or_type: 0, members: Vec::new() }];
        let mut at = 0;
        let word = |at: usize| -> Result<u32> {
            let bytes = type_section.get(at..at + 4).context("a BTF type record ends early")?;
            Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
        };
        while at < type_section.len() {
            let (name, info, size_or_type) = (word(at)?, word(at + 4)?, word(at + 8)?);
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            at += 12;
            let mut members = Vec::new();
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => {
                    let bitfields = info >> 31 == 1;
                    for member in 0..vlen {
                        let at = at + member * 12;
                        let offset = word(at + 8)?;
                        let offset = if bitfields { offset & 0xff_ffff } else { offset };
                        members.push((word(at)?, word(at + 4)?, offset));
                    }
                    vlen * 12
                }
                KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
                KIND_DATASEC | KIND_ENUM64 => vlen * 12,
                0..=KIND_TYPE_TAG => 0,
                _ => bail!("unknown BTF kind {kind}"),
            };
            at += extra;
            types.push(Type { kind, name, size_or_type, members });
        }
        Ok(Btf { types, strings: strings.to_vec() })
    }

    fn name(&self, offset: u32) -> &[u8] {
        let rest = self.strings.get(offset as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    /// The byte offset of `member` in `struct name`, searching anonymous
    /// members' structs and unions too.
    pub fn member_offset(&self, name: &str, member: &str) -> Result<u32> {
        let id = self
            .types
            .iter()
            .position(|t| {
                t.kind == KIND_STRUCT && self.name(t.name) == name.as_bytes() && !t.members.is_empty()
            })
            .with_context(|| format!("no struct {name} in the kernel's BTF"))?;
        let bits = self
            .find(id, member.as_bytes(), 0)
            .with_context(|| format!("no member {member} in struct {name} in the kernel's BTF"))?;
        ensure!(bits % 8 == 0, "{name}.{member} is a bit field");
        Ok(bits / 8)
    }

    /// The bit offset of `member` in type `id`, anonymous members searched
    /// depth first (as C resolves their names); `depth` bounds a cycle.
    fn find(&self, id: usize, member: &[u8], depth: u32) -> Option<u32> {
        if depth > 16 {
            return None;
        }
        let record = self.types.get(id)?;
        for &(name, ty, offset) in &record.members {
            if name != 0 && self.name(name) == member {
                return Some(offset);
            }
            if name == 0 {
                let inner = self.resolve(ty as usize)?;
                if let Some(found) = self.find(inner, member, depth + 1) {
                    return offset.checked_add(found);
                }
            }
        }
        None
    }

    /// A type through its typedefs and qualifiers.
    fn resolve(&self, mut id: usize) -> Option<usize> {
        for _ in 0..16 {
            let record = self.types.get(id)?;
            match record.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = record.size_or_type as usize
                }
                _ => return Some(id),
            }
        }
        None
    }
}

/// Whether a mapping's `xa_lock` is a plain spinlock at the start of its
/// `struct xarray`, so that the first 4 bytes of the XArray are the lock
/// word (a qspinlock's, 0 only while free): the wake-up programs read it
/// to tell a wake-up under the lock. PREEMPT_RT's `spinlock_t` is an
/// rt_mutex with no `rlock`, and is refused.
pub fn xa_lock_is_a_word(btf: &Btf) -> bool {
    [("xarray", "xa_lock"), ("spinlock", "rlock"), ("raw_spinlock", "raw_lock")]
        .iter()
        .all(|(name, member)| btf.member_offset(name, member).is_ok_and(|offset| offset == 0))
}

/// The members the BTF-typed programs read (the fault tracepoints' of the
/// counting mode and of the stream, and every record's task name), from
/// the kernel's BTF.
pub fn fault_offsets(btf: &Btf) -> Result<Offsets> {
    Ok(Offsets {
        vmf_vma: btf.member_offset("vm_fault", "vma")?,
        vmf_pgoff: btf.member_offset("vm_fault", "pgoff")?,
        vmf_address: btf.member_offset("vm_fault", "address")?,
        vmf_flags: btf.member_offset("vm_fault", "flags")?,
        vma_start: btf.member_offset("vm_area_struct", "vm_start")?,
        vma_end: btf.member_offset("vm_area_struct", "vm_end")?,
        vma_flags: btf.member_offset("vm_area_struct", "vm_flags")?,
        inode_ino: btf.member_offset("inode", "i_ino")?,
        inode_sb: btf.member_offset("inode", "i_sb")?,
        sb_dev: btf.member_offset("super_block", "s_dev")?,
        task_comm: btf.member_offset("task_struct", "comm")?,
        _pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offset of `s` in `strings`, a run of NUL-terminated names.
    fn name_in(strings: &[u8], s: &str) -> u32 {
        strings
            .windows(s.len() + 2)
            .position(|w| w[0] == 0 && &w[1..=s.len()] == s.as_bytes() && w[s.len() + 1] == 0)
            .map(|at| at as u32 + 1)
            .unwrap()
    }

    /// A blob of `types` (each a record's words) over `strings`, laid out
    /// the way pahole writes one.
    fn blob_of(strings: &[u8], types: &[&[u32]]) -> Vec<u8> {
        let types: Vec<u8> =
            types.iter().flat_map(|words| words.iter()).flat_map(|w| w.to_le_bytes()).collect();
        let mut data = Vec::new();
        for word in [0x0001_eb9f_u32, 24, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
            data.extend_from_slice(&word.to_le_bytes());
        }
        data.extend_from_slice(&types);
        data.extend_from_slice(strings);
        data
    }

    /// `struct s { struct { long a; long b; }; int c; }` plus a typedef.
    fn blob() -> Vec<u8> {
        let strings = b"\0s\0a\0b\0c\0long\0int\0";
        let name = |s: &str| name_in(strings, s);
        blob_of(
            strings,
            &[
                &[name("long"), KIND_INT << 24, 8, 64],                              // 1
                &[name("int"), KIND_INT << 24, 4, 32],                               // 2
                &[0, KIND_STRUCT << 24 | 2, 16, name("a"), 1, 0, name("b"), 1, 64],  // 3: anonymous
                &[0, KIND_CONST << 24, 3],                                           // 4: const of it
                &[name("s"), KIND_STRUCT << 24 | 2, 24, 0, 4, 0, name("c"), 2, 128], // 5
            ],
        )
    }

    /// `struct xarray { spinlock_t xa_lock; ... }` with `spinlock_t` as
    /// 7.2 has it without PREEMPT_RT (a union holding `rlock`), or, with
    /// `rt`, as PREEMPT_RT has it (an rt_mutex named `lock`).
    fn xarray_blob(rt: bool) -> Vec<u8> {
        let strings = b"\0int\0qspinlock\0val\0raw_spinlock\0raw_lock\0spinlock\0rlock\0lock\0xarray\0xa_lock\0xa_flags\0";
        let name = |s: &str| name_in(strings, s);
        let lock_member = if rt { name("lock") } else { name("rlock") };
        blob_of(
            strings,
            &[
                &[name("int"), KIND_INT << 24, 4, 32],                             // 1
                &[name("qspinlock"), KIND_STRUCT << 24 | 1, 4, name("val"), 1, 0], // 2
                &[name("raw_spinlock"), KIND_STRUCT << 24 | 1, 4, name("raw_lock"), 2, 0], // 3
                &[0, KIND_UNION << 24 | 1, 4, lock_member, 3, 0],                  // 4: anonymous
                &[name("spinlock"), KIND_STRUCT << 24 | 1, 4, 0, 4, 0],            // 5
                &[name("xarray"), KIND_STRUCT << 24 | 2, 8, name("xa_lock"), 5, 0, name("xa_flags"), 1, 32], // 6
            ],
        )
    }

    #[test]
    fn the_xa_lock_word_is_read_only_where_it_is_a_plain_spinlock() {
        assert!(xa_lock_is_a_word(&Btf::parse(&xarray_blob(false)).unwrap()));
        assert!(!xa_lock_is_a_word(&Btf::parse(&xarray_blob(true)).unwrap()));
        assert!(!xa_lock_is_a_word(&Btf::parse(&blob()).unwrap()), "no struct xarray at all");
    }

    #[test]
    fn members_through_anonymous_structs() {
        let btf = Btf::parse(&blob()).unwrap();
        assert_eq!(btf.member_offset("s", "a").unwrap(), 0);
        assert_eq!(btf.member_offset("s", "b").unwrap(), 8);
        assert_eq!(btf.member_offset("s", "c").unwrap(), 16);
        assert!(btf.member_offset("s", "d").is_err());
        assert!(btf.member_offset("t", "a").is_err());
    }

    #[test]
    fn every_cut_of_a_blob_is_an_error_or_a_parse() {
        let data = blob();
        for end in 0..data.len() {
            let _ = Btf::parse(&data[..end]);
        }
        assert!(Btf::parse(&data[..30]).is_err());
    }
}

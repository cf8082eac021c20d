//! The running kernel's code, as far as the hooks need it: its text symbols
//! (`/proc/kallsyms`) and, where a hook must sit inside a function rather
//! than at its entry or exit, the function's instructions (`/proc/kcore`).
//!
//! Stock kernels inline `dax_lock_entry` (a one-line `xas_store` of the
//! locked value) into its callers. What survives inlining is the call of
//! `xas_store` itself: [`call_sites`] finds every direct call of a callee
//! inside fs/dax.c's functions, so that a kprobe on the call instruction
//! sees its arguments and one on the next instruction sees its result.
//! A candidate is a `call rel32` (opcode 0xe8), or a `jmp rel32` (0xe9: a
//! tail call, as in a function ending in `if (...) __wake_up(...)`), whose
//! target is the callee;
//! whether it really is an instruction is the kernel's to say: it refuses a
//! kprobe that is not on an instruction boundary, and the attach code then
//! drops the candidate.

use std::{
    fs,
    io::{Read, Seek, SeekFrom},
};

use anyhow::{bail, ensure, Context, Result};

/// fs/dax.c's functions, as named in 6.1 to 7.2 (static ones may be inlined
/// or renamed by the compiler): they mark where fs/dax.c's code lies.
pub const FS_DAX_FUNCTIONS: &[&str] = &[
    "dax_wake_entry",
    "get_unlocked_entry",
    "get_next_unlocked_entry",
    "wait_entry_unlocked",
    "wait_entry_unlocked_exclusive",
    "put_unlocked_entry",
    "dax_unlock_entry",
    "dax_lock_entry",
    "dax_lock_page",
    "dax_lock_folio",
    "dax_unlock_page",
    "dax_unlock_folio",
    "dax_lock_mapping_entry",
    "dax_unlock_mapping_entry",
    "grab_mapping_entry",
    "dax_layout_busy_page_range",
    "__dax_invalidate_entry",
    "dax_delete_mapping_entry",
    "dax_delete_mapping_range",
    "dax_invalidate_mapping_entry_sync",
    "dax_insert_entry",
    "dax_writeback_one",
    "dax_writeback_mapping_range",
    "dax_iomap_direct_access",
    "dax_load_hole",
    "dax_pmd_load_hole",
    "dax_zero_range",
    "dax_iomap_rw",
    "dax_fault_iter",
    "dax_iomap_pte_fault",
    "dax_iomap_pmd_fault",
    "dax_iomap_fault",
    "dax_insert_pfn_mkwrite",
    "dax_finish_sync_fault",
    "wake_exceptional_entry_func",
];

/// A kernel text symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub address: u64,
    /// Up to the next text symbol.
    pub size: u64,
}

/// The running kernel's text symbols.
pub struct Symbols {
    /// Sorted by address.
    symbols: Vec<Symbol>,
    /// Indices into `symbols`, sorted by name, the first of a name first.
    by_name: Vec<u32>,
}

impl Symbols {
    pub fn read() -> Result<Symbols> {
        let text = fs::read_to_string("/proc/kallsyms").context("cannot read /proc/kallsyms")?;
        Ok(Symbols::parse(&text))
    }

    /// `ADDRESS TYPE NAME [MODULE]` lines; text symbols (`t`, `T`) only.
    /// (A kernel has some 200 000 symbols: this runs in every launch.)
    pub fn parse(text: &str) -> Symbols {
        let mut symbols: Vec<Symbol> = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(4, [' ', '\t']);
                let (address, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
                if !matches!(kind, "t" | "T") {
                    return None;
                }
                let address = u64::from_str_radix(address, 16).ok()?;
                Some(Symbol { name: name.to_owned(), address, size: 0 })
            })
            .collect();
        symbols.sort_by_key(|symbol| symbol.address);
        for i in 0..symbols.len() {
            let next = symbols.get(i + 1).map_or(symbols[i].address, |next| next.address);
            symbols[i].size = next - symbols[i].address;
        }
        // The first of a name wins (a stable sort keeps address order among
        // equal names): exact names of fs/dax.c are unique.
        let mut by_name: Vec<u32> = (0..symbols.len() as u32).collect();
        by_name.sort_by(|&a, &b| symbols[a as usize].name.cmp(&symbols[b as usize].name));
        Symbols { symbols, by_name }
    }

    /// The index in `symbols` of the first function named `name`.
    fn index(&self, name: &str) -> Option<usize> {
        let at = self.by_name.partition_point(|&i| self.symbols[i as usize].name.as_str() < name);
        let i = *self.by_name.get(at)? as usize;
        (self.symbols[i].name == name).then_some(i)
    }

    /// A function by its exact name (a `.isra`/`.constprop` clone has another
    /// signature and is no hook).
    pub fn get(&self, name: &str) -> Option<&Symbol> {
        self.index(name).map(|i| &self.symbols[i])
    }

    pub fn has(&self, name: &str) -> bool {
        self.index(name).is_some()
    }

    /// Whether the kernel shows addresses at all (`kptr_restrict` hides them
    /// from users without CAP_SYSLOG).
    pub fn has_addresses(&self) -> bool {
        self.symbols.iter().any(|symbol| symbol.address != 0)
    }

    /// fs/dax.c's code: every text symbol between the first and the last of
    /// its known functions (one object file's `.text` is contiguous, so this
    /// includes functions whose names are not known here), and the clones
    /// and cold parts (`NAME.cold`, `NAME.part.0`, ...) of any of them,
    /// wherever the linker put those.
    pub fn fs_dax_code(&self) -> Vec<&Symbol> {
        let known: Vec<usize> = FS_DAX_FUNCTIONS.iter().filter_map(|name| self.index(name)).collect();
        let (Some(&first), Some(&last)) = (known.iter().min(), known.iter().max()) else { return Vec::new() };
        let block = &self.symbols[first..=last];
        let names: Vec<&str> = block.iter().map(|symbol| symbol.name.as_str()).collect();
        let clones = self.symbols.iter().filter(|symbol| {
            let base = symbol.name.split('.').next().unwrap_or("");
            symbol.name.contains('.') && (names.contains(&base) || FS_DAX_FUNCTIONS.contains(&base))
        });
        let mut code: Vec<&Symbol> = block.iter().chain(clones).collect();
        code.sort_by_key(|symbol| symbol.address);
        code.dedup_by_key(|symbol| symbol.address);
        code
    }
}

/// The kernel's memory as an ELF core file (`/proc/kcore`, CONFIG_PROC_KCORE).
pub struct Kcore {
    file: fs::File,
    /// (virtual address, file offset, size) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
}

impl Kcore {
    pub fn open() -> Result<Kcore> {
        let mut file = fs::File::open("/proc/kcore")
            .context("cannot read /proc/kcore (it needs CONFIG_PROC_KCORE, and root)")?;
        let mut header = [0u8; 64];
        file.read_exact(&mut header).context("/proc/kcore has no ELF header")?;
        ensure!(&header[..4] == b"\x7fELF" && header[4] == 2, "/proc/kcore is not a 64-bit ELF file");
        let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let phoff = u64::from_le_bytes(header[32..40].try_into().expect("8 bytes"));
        let (phentsize, phnum) = (u64::from(u16_at(54)), u64::from(u16_at(56)));
        let mut segments = Vec::new();
        for i in 0..phnum {
            let mut entry = [0u8; 56];
            file.seek(SeekFrom::Start(phoff + i * phentsize))?;
            file.read_exact(&mut entry)?;
            let word = |at: usize| u64::from_le_bytes(entry[at..at + 8].try_into().expect("8 bytes"));
            const PT_LOAD: u32 = 1;
            if u32::from_le_bytes(entry[..4].try_into().expect("4 bytes")) == PT_LOAD {
                segments.push((word(16), word(8), word(32)));
            }
        }
        Ok(Kcore { file, segments })
    }

    /// `len` bytes of kernel memory at `address`.
    pub fn read(&mut self, address: u64, len: u64) -> Result<Vec<u8>> {
        let Some(&(vaddr, offset, _)) =
            self.segments.iter().find(|(vaddr, _, size)| address >= *vaddr && address + len <= vaddr + size)
        else {
            bail!("{address:#x} is in no segment of /proc/kcore");
        };
        let mut bytes = vec![0; len as usize];
        self.file.seek(SeekFrom::Start(offset + (address - vaddr)))?;
        self.file.read_exact(&mut bytes)?;
        Ok(bytes)
    }
}

/// Whether the function at `address` starts with an ftrace site, which an
/// fentry or fexit trampoline needs, as x86-64 leaves one: after an
/// `endbr64` where IBT is built in, the 5-byte `call __fentry__` that
/// `ftrace_init` turned into a 5-byte NOP at boot, or a call or jump there
/// while something traces the function. That NOP is what the kernel patches
/// a trampoline over (`bpf_arch_text_poke`); a function built without the
/// site (`notrace`, lib/) starts with its own code.
pub fn has_ftrace_site(kcore: &mut Kcore, address: u64) -> Result<bool> {
    Ok(starts_with_ftrace_site(&kcore.read(address, (ENDBR64.len() + NOP5.len()) as u64)?))
}

const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

/// [`has_ftrace_site`] over a function's first bytes.
fn starts_with_ftrace_site(code: &[u8]) -> bool {
    const CALL: u8 = 0xe8;
    const JMP: u8 = 0xe9;
    let site = code.strip_prefix(&ENDBR64[..]).unwrap_or(code);
    site.starts_with(&NOP5) || matches!(site.first(), Some(&(CALL | JMP)))
}

/// The kernel's answer to a kprobe inside an instruction: EILSEQ (x86's
/// `arch_prepare_kprobe` decodes the function up to the address), for a
/// call-site candidate that was bytes of another instruction. Any other
/// refusal is an error: a call site left out would hide events.
pub fn not_an_instruction(error: &aya::programs::ProgramError) -> bool {
    let text = format!("{error:?} {error}");
    text.contains("code: 84,") || text.contains("os error 84")
}

/// A direct call of `callee` found in `function`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSite {
    pub function: String,
    /// Of the call instruction, from the function's start; the call is 5
    /// bytes long, so its return lands at `offset + 5`.
    pub offset: u64,
    pub callee: String,
    /// A tail call (`jmp rel32`): the callee returns to the function's
    /// caller, not here.
    pub tail: bool,
}

/// How far a call's target may sit before its callee: kernels with call
/// depth tracking send direct calls to a thunk in the callee's padding.
const PADDING: u64 = 16;

/// Every direct call of one of `callees` inside `functions`.
pub fn call_sites(kcore: &mut Kcore, functions: &[&Symbol], callees: &[&Symbol]) -> Result<Vec<CallSite>> {
    let mut sites = Vec::new();
    for function in functions.iter().filter(|function| function.size > 0 && function.size < 1 << 20) {
        let code = kcore.read(function.address, function.size)?;
        sites.extend(calls_in(&code, function, callees));
    }
    Ok(sites)
}

/// The `call rel32` and `jmp rel32` (tail call) candidates in `code` (the
/// bytes of `function`).
fn calls_in(code: &[u8], function: &Symbol, callees: &[&Symbol]) -> Vec<CallSite> {
    const CALL: u8 = 0xe8;
    const JMP: u8 = 0xe9;
    let mut sites = Vec::new();
    for at in 0..code.len().saturating_sub(4) {
        if code[at] != CALL && code[at] != JMP {
            continue;
        }
        let rel = i32::from_le_bytes(code[at + 1..at + 5].try_into().expect("4 bytes"));
        let next = function.address.wrapping_add(at as u64 + 5);
        let target = next.wrapping_add(rel as i64 as u64);
        if let Some(callee) =
            callees.iter().find(|callee| target <= callee.address && callee.address - target <= PADDING)
        {
            sites.push(CallSite {
                function: function.name.clone(),
                offset: at as u64,
                callee: callee.name.clone(),
                tail: code[at] == JMP,
            });
        }
    }
    sites
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "\
ffffffff81300000 T dax_wake_entry
ffffffff81300100 t grab_mapping_entry
ffffffff81300400 t dax_helper_not_known_by_name
ffffffff81300500 T dax_iomap_fault
ffffffff81300600 T unrelated_after
ffffffff81500000 t grab_mapping_entry.cold
ffffffff81600000 T xas_store
ffffffff81700000 d some_data
";

    #[test]
    fn fs_dax_code_is_the_block_and_its_clones() {
        let symbols = Symbols::parse(KALLSYMS);
        assert!(symbols.has_addresses());
        assert_eq!(symbols.get("grab_mapping_entry").unwrap().size, 0x300);
        let names: Vec<_> = symbols.fs_dax_code().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dax_wake_entry",
                "grab_mapping_entry",
                "dax_helper_not_known_by_name",
                "dax_iomap_fault",
                "grab_mapping_entry.cold"
            ]
        );
        assert!(!symbols.has("some_data"), "only text symbols");
    }

    /// First bytes of functions, read from /proc/kcore in the lab's guests,
    /// where `available_filter_functions` agreed on every hook's function.
    #[test]
    fn an_ftrace_site_is_the_first_instruction_after_endbr() {
        // Debian's 7.2: finish_wait (endbr64, then the site), xas_store (lib/: none).
        assert!(starts_with_ftrace_site(&[0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x1f, 0x44, 0x00, 0x00]));
        assert!(!starts_with_ftrace_site(&[0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x83, 0xec, 0x60, 0x48]));
        // The lab's 7.2: dax_lock_entry (static, called directly: no endbr64), xas_store.
        assert!(starts_with_ftrace_site(&[0x0f, 0x1f, 0x44, 0x00, 0x00, 0x48, 0x83, 0xce, 0x03]));
        assert!(!starts_with_ftrace_site(&[0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x57, 0x41, 0x56, 0x41]));
        // The site while something traces the function: a call (its
        // rel32 not from a real kernel).
        assert!(starts_with_ftrace_site(&[0xf3, 0x0f, 0x1e, 0xfa, 0xe8, 0x00, 0x10, 0x00, 0x00]));
    }

    #[test]
    fn finds_direct_calls_and_their_thunks() {
        let function = Symbol { name: "grab_mapping_entry".into(), address: 0x1000, size: 32 };
        let callee = Symbol { name: "xas_store".into(), address: 0x9000, size: 64 };
        let call = |at: u64, target: u64| {
            let rel = (target as i64 - (0x1000 + at as i64 + 5)) as i32;
            let mut bytes = vec![0xe8];
            bytes.extend_from_slice(&rel.to_le_bytes());
            bytes
        };
        let mut code = vec![0x90; 32];
        let function = Symbol { size: 32, ..function };
        code.splice(2..7, call(2, 0x9000));
        code.splice(12..17, call(12, 0x9000 - 16));
        code.splice(20..25, call(20, 0x8000));
        let mut tail = call(26, 0x9000);
        tail[0] = 0xe9;
        code.splice(26..31, tail);
        let sites = calls_in(&code, &function, &[&callee]);
        let offsets: Vec<_> = sites.iter().map(|site| (site.offset, site.tail)).collect();
        assert_eq!(
            offsets,
            [(2, false), (12, false), (26, true)],
            "the direct call, the one through its padding thunk and the tail call, not the other"
        );
        assert_eq!(sites[0].callee, "xas_store");
    }
}

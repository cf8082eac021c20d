//! Builds the eBPF programs (dax-probe-ebpf) for the BPF target with the pinned
//! nightly toolchain and bpf-linker, so that `include_bytes_aligned!` in the
//! binary embeds them (`cargo xtask setup` installs both).
//!
//! Every build of dax-probe shares one build of the programs, in the
//! workspace's `target/ebpf`: the unit tests', the release binary's and the
//! fuzz targets' instrumented one each have their own `OUT_DIR`, where
//! aya-build would build the programs again (`core` for BPF, a minute of
//! one core each time), though they depend on none of those builds'
//! profiles, features or flags.
//!
//! Only the command embeds them (the `cli` feature): the library alone,
//! as the fuzz targets build it, needs no programs.

fn main() -> anyhow::Result<()> {
    #[cfg(feature = "cli")]
    ebpf::build()?;
    Ok(())
}

#[cfg(feature = "cli")]
mod ebpf {
    use std::{env, fs, path::PathBuf};

    use anyhow::Context as _;

    /// Same pin as xtask's setup: bpf-linker is built against this toolchain's LLVM.
    const EBPF_TOOLCHAIN: &str = "nightly-2026-05-19";

    /// The program object's name: dax-probe-ebpf's binary.
    const OBJECT: &str = "dax-probe";

    pub fn build() -> anyhow::Result<()> {
        let manifest_dir =
            PathBuf::from(env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?);
        let out_dir = PathBuf::from(env::var("OUT_DIR").context("OUT_DIR not set")?);
        let ebpf_dir = manifest_dir.join("../dax-probe-ebpf");
        let root_dir = ebpf_dir.to_str().context("non-UTF-8 path")?;
        let shared = manifest_dir.join("../target/ebpf");
        fs::create_dir_all(&shared).with_context(|| format!("cannot create {}", shared.display()))?;

        // One build at a time in the shared folder: cargo locks its target
        // folder, but not aya-build's copy of the object out of it, nor ours.
        let lock = fs::File::create(shared.join(".lock")).context("cannot create the eBPF build's lock")?;
        lock.lock().context("cannot lock the eBPF build")?;
        // aya-build builds under, and copies the object to, `OUT_DIR`.
        env::set_var("OUT_DIR", &shared);
        aya_build::build_ebpf(
            [aya_build::Package { name: "dax-probe-ebpf", root_dir, ..Default::default() }],
            aya_build::Toolchain::Custom(EBPF_TOOLCHAIN),
        )?;
        fs::copy(shared.join(OBJECT), out_dir.join(OBJECT))
            .with_context(|| format!("cannot copy the eBPF object to {}", out_dir.display()))?;
        Ok(())
    }
}

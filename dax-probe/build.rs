//! Builds the eBPF programs (dax-probe-ebpf) for the BPF target with the pinned
//! nightly toolchain and bpf-linker, so that `include_bytes_aligned!` in the
//! binary embeds them (`cargo xtask setup` installs both).

use anyhow::Context as _;

/// Same pin as xtask's setup: bpf-linker is built against this toolchain's LLVM.
const EBPF_TOOLCHAIN: &str = "nightly-2026-05-19";

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let ebpf_dir = std::path::Path::new(&manifest_dir).join("../dax-probe-ebpf");
    let root_dir = ebpf_dir.to_str().context("non-UTF-8 path")?;
    aya_build::build_ebpf(
        [aya_build::Package { name: "dax-probe-ebpf", root_dir, ..Default::default() }],
        aya_build::Toolchain::Custom(EBPF_TOOLCHAIN),
    )
}

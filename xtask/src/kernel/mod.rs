//! The guest kernels, one file per flavour: our Rust-enabled 7.2 build
//! ([`custom`]) and Debian bookworm's stock 6.1 ([`debian`]).

mod custom;
mod debian;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::ValueEnum;

use crate::setup;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Flavour {
    /// Linux 7.2 built here from Debian's linux-source-7.2, with Rust module support.
    Custom,
    /// Debian bookworm's stock linux-image-6.1.0-*-amd64, not built by us.
    #[value(name = "debian-6.1")]
    Debian61,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Custom => "custom",
            Flavour::Debian61 => "debian-6.1",
        }
    }
}

/// A kernel ready to boot.
pub struct GuestKernel {
    pub flavour: Flavour,
    pub image: PathBuf,
    pub release: String,
    /// Modules the guest must load before the lab starts, in order (host path).
    pub modules: Vec<PathBuf>,
    /// The build folder that out-of-tree modules are built against.
    pub build_dir: Option<PathBuf>,
}

pub fn get(flavour: Flavour, tools: &setup::Tools, source: Option<&Path>) -> Result<GuestKernel> {
    match flavour {
        Flavour::Custom => custom::get(tools, source),
        Flavour::Debian61 => debian::bookworm(),
    }
}

//! Sources of live events: the running kernel.
//!
//! [`live`] loads the eBPF programs, attaches them to the fs_dax
//! tracepoints (whose record layouts [`tracefs`] reads) and to the hooks of
//! [`hooks`] (the way each kernel offers: whole functions, or call sites
//! found in its code by [`kernel_text`]), decodes every record of the
//! per-CPU ring buffers ([`rings`] merges them by stamp) into an
//! [`crate::event::Event`] and drives a [`crate::stream::Sink`]. Only
//! [`live`] touches the attach code; everything downstream sees the stream. [`cost`] measures what the
//! probe itself took while it watched. [`counting`] is the other mode:
//! counters added up in the kernel, read now and then, no stream; it reads
//! the members its programs need from the kernel's BTF ([`btf`]).

pub mod btf;
pub mod cost;
pub mod counting;
pub mod hooks;
pub mod kernel_text;
pub mod live;
pub mod mounts;
mod rings;
pub mod tracefs;
mod truncates;

//! ggvk: a Vulkan compute backend for ggml, with a C ABI.
//!
//! Data flows one way: a graph (from the C API in [`ffi`]) becomes the engine's [`graph::Graph`], the
//! [`graph::exec::Executor`] records it into command buffers through [`vk`], and the GPU runs the kernels of
//! [`ops`]. [`quant`] holds the block formats and their CPU reference.
//!
//! `unsafe` is confined to [`vk`] (ash calls) and [`ffi`] (the C boundary); every block says why it is sound.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod backend;
pub mod diag;
pub mod error;
pub mod ffi;
pub mod ggml;
pub mod graph;
pub mod ir;
pub mod knobs;
pub mod ops;
pub mod quant;
pub mod split;
pub mod timeline;
pub mod vk;

pub use backend::Backend;
pub use error::{Error, Result};
pub use graph::{Graph, Node, Op, SrcPrec, Tensor};
pub use quant::GgmlType;

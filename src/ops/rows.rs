//! GET_ROWS and SET_ROWS.

use crate::error::{Error, Result};
use crate::graph::Node;
use crate::vk::Recorder;

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    Err(Error::unsupported(format!("{} is not implemented yet", node.op.name())))
}

/// Record the node.
pub fn record(_rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)
}

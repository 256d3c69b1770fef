//! The engine: the checked graph (nodes appended only after their op's support check), fusion, planning (the
//! order nodes are recorded in, scratch) and the executor (record, submit, replay). The IR it carries lives in
//! [`crate::ir`] (re-exported here); the kernels it records live in `ops/`.

pub mod exec;
pub mod fusion;
pub mod replay;
pub mod schedule;
#[cfg(test)]
mod tests;

use crate::error::Result;
pub use crate::ir::{GluOp, Node, Op, PoolOp, RopeParams, ScaleMode, SrcPrec, Tensor, UnaryOp};
use crate::ops;

/// A list of nodes in execution order. Dependencies are implicit in the buffers they share: the executor
/// orders reads after earlier writes of overlapping bytes.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a node after checking that the op supports it (shapes, types, strides, device limits aside).
    pub fn push(&mut self, node: Node) -> Result<()> {
        ops::check(&node)?;
        self.nodes.push(node);
        Ok(())
    }

    /// `dst = a x b^T` as ggml_mul_mat.
    pub fn mul_mat(&mut self, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
        self.push(Node { op: Op::MulMat, src: vec![Some(a.clone()), Some(b.clone())], dst: dst.clone() })
    }

    /// ggml_rope_ext.
    pub fn rope(
        &mut self,
        x: &Tensor,
        pos: &Tensor,
        freq_factors: Option<&Tensor>,
        dst: &Tensor,
        params: RopeParams,
    ) -> Result<()> {
        self.push(Node {
            op: Op::Rope(params),
            src: vec![Some(x.clone()), Some(pos.clone()), freq_factors.cloned()],
            dst: dst.clone(),
        })
    }

    /// The nodes in order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

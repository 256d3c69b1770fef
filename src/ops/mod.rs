//! Kernels, one file per op family. Each family has a support check (`check`: shapes, types, strides) and a
//! recorder (`record`: pipeline choice, push constants, bindings, dispatch size). Shaders live in `shaders/`.

pub mod acc;
pub mod binary;
pub mod col2im;
pub mod conv;
pub mod conv2d;
pub mod coopmat;
pub mod count_equal;
pub mod cpy;
pub mod cross_entropy;
pub mod cumsum;
pub mod fill;
pub mod flash_attn;
pub mod glu;
pub mod hyper_conn;
pub mod im2col;
pub mod lightning_indexer;
pub mod matmul;
pub mod matmul_id;
pub mod matvec_rope;
pub mod moe;
pub mod movement;
pub mod norm;
pub mod optim;
pub mod out_prod;
pub mod pool;
pub mod q8_emit;
pub mod recurrent;
pub mod reduce;
pub mod rope;
pub mod row_back;
pub mod rows;
pub mod rows_back;
pub mod softmax;
pub mod solve_tri;
pub mod unary;
pub mod upscale;

use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::vk::{Binding, Device, Recorder};

/// SPIR-V of every shader variant, compiled by build.rs.
pub mod spirv {
    include!(concat!(env!("OUT_DIR"), "/shaders.rs"));
}

/// Check that `node` is something ggvk can run (device limits are checked again when recording).
pub fn check(node: &Node) -> Result<()> {
    match &node.op {
        Op::MulMat => matmul::check(node.src(0)?, node.src(1)?, &node.dst),
        Op::OutProd => out_prod::check(node),
        Op::Rope(p) => rope::check(node.src(0)?, node.src(1)?, opt_src(node, 2), &node.dst, p),
        Op::Add | Op::Mul | Op::Sub | Op::Div => binary::check(node),
        Op::Scale { .. } | Op::Unary(_) | Op::Clamp { .. } | Op::LeakyRelu { .. } | Op::Xielu { .. } => {
            unary::check(node)
        }
        Op::Glu { .. } | Op::SwigluOai { .. } | Op::SwigluClamp { .. } | Op::SiluBack => glu::check(node),
        Op::Cpy => cpy::check(node),
        Op::RmsNorm { .. } | Op::Norm { .. } | Op::L2Norm { .. } | Op::GroupNorm { .. } => norm::check(node),
        Op::SoftMax { .. } => softmax::check(node),
        Op::GetRows | Op::SetRows => rows::check(node),
        Op::FlashAttnExt { .. } => flash_attn::check(node),
        Op::SumRows | Op::Mean | Op::Sum | Op::ArgMax => reduce::check(node),
        Op::MulMatId { .. } => matmul_id::check(node),
        Op::AddId | Op::ArgSort { .. } | Op::TopK => moe::check(node),
        Op::Repeat
        | Op::Concat { .. }
        | Op::Pad { .. }
        | Op::PadReflect1d { .. }
        | Op::Roll { .. }
        | Op::Arange { .. }
        | Op::Diag
        | Op::RepeatBack => movement::check(node),
        Op::Cumsum => cumsum::check(node),
        Op::Im2Col { .. } | Op::Im2Col3d { .. } => im2col::check(node),
        Op::Pool1d { .. } | Op::Pool2d { .. } => pool::check(node),
        Op::Upscale { .. } => upscale::check(node),
        Op::ConvTranspose1d { .. } => conv::check(node),
        Op::Col2Im1d { .. } => col2im::check(node),
        Op::Fill { .. } | Op::Tri { .. } | Op::DiagMaskInf { .. } => fill::check(node),
        Op::Acc { .. } | Op::Set { .. } => acc::check(node),
        Op::OptStepAdamw | Op::OptStepSgd => optim::check(node),
        Op::GetRowsBack => rows_back::check(node),
        Op::CrossEntropyLoss | Op::CrossEntropyLossBack => cross_entropy::check(node),
        Op::RmsNormBack { .. } | Op::SoftMaxBack { .. } => row_back::check(node),
        Op::CountEqual => count_equal::check(node),
        Op::Conv2d { .. }
        | Op::Conv2dDw { .. }
        | Op::Conv3d { .. }
        | Op::ConvTranspose2d { .. }
        | Op::TimestepEmbedding { .. } => conv2d::check(node),
        Op::SsmConv
        | Op::SsmScan { .. }
        | Op::RwkvWkv6
        | Op::GatedLinearAttn { .. }
        | Op::RwkvWkv7
        | Op::GatedDeltaNet { .. } => recurrent::check(node),
        Op::SolveTri => solve_tri::check(node),
        Op::LightningIndexer => lightning_indexer::check(node),
        Op::Dsv4HcComb { .. } | Op::Dsv4HcPre { .. } | Op::Dsv4HcPost => hyper_conn::check(node),
    }
}

/// Check `node` against `device`'s limits as well as [`check`]: each tensor must fit one storage-buffer window
/// (`maxStorageBufferRange`, less the worst-case offset alignment), since kernels bind one window per tensor.
pub fn check_on(device: &Device, node: &Node) -> Result<()> {
    check(node)?;
    if let Op::MulMat = node.op {
        // Cut into pieces when a tensor is larger than one window.
        return matmul::check_on(device, node.src(0)?, node.src(1)?, &node.dst);
    }
    if let Op::MulMatId { .. } = node.op {
        // Experts are bound a range at a time when they do not fit one window together.
        return matmul_id::check_on(device, node);
    }
    if let Op::ArgSort { .. } | Op::TopK = node.op {
        moe::check_on(device, node)?;
    }
    if let Op::Repeat | Op::Concat { .. } | Op::Diag = node.op {
        movement::check_on(device, node)?;
    }
    if let Op::LightningIndexer = node.op {
        lightning_indexer::check_on(device, node)?;
    }
    if let Op::OutProd = node.op {
        out_prod::check_on(device, node)?;
    }
    let caps = device.caps();
    let limit = window_limit(device);
    for t in node.src.iter().flatten().chain(std::iter::once(&node.dst)) {
        if t.nbytes() > limit {
            return Err(Error::unsupported(format!(
                "{}: a tensor of {} bytes exceeds this device's maxStorageBufferRange ({} bytes)",
                node.op.name(),
                t.nbytes(),
                caps.max_storage_buffer_range
            )));
        }
    }
    Ok(())
}

/// Record `node` into `rec`.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    if node.dst.nelements() == 0 {
        return Ok(());
    }
    match &node.op {
        Op::MulMat => matmul::record(rec, node.src(0)?, node.src(1)?, &node.dst),
        Op::OutProd => out_prod::record(rec, node),
        Op::Rope(p) => rope::record(rec, node.src(0)?, node.src(1)?, opt_src(node, 2), &node.dst, p),
        Op::Add | Op::Mul | Op::Sub | Op::Div => binary::record(rec, node),
        Op::Scale { .. } | Op::Unary(_) | Op::Clamp { .. } | Op::LeakyRelu { .. } | Op::Xielu { .. } => {
            unary::record(rec, node)
        }
        Op::Glu { .. } | Op::SwigluOai { .. } | Op::SwigluClamp { .. } | Op::SiluBack => glu::record(rec, node),
        Op::Cpy => cpy::record(rec, node),
        Op::RmsNorm { .. } | Op::Norm { .. } | Op::L2Norm { .. } | Op::GroupNorm { .. } => norm::record(rec, node),
        Op::SoftMax { .. } => softmax::record(rec, node),
        Op::GetRows | Op::SetRows => rows::record(rec, node),
        Op::FlashAttnExt { .. } => flash_attn::record(rec, node),
        Op::SumRows | Op::Mean | Op::Sum | Op::ArgMax => reduce::record(rec, node),
        Op::MulMatId { .. } => matmul_id::record(rec, node),
        Op::AddId | Op::ArgSort { .. } | Op::TopK => moe::record(rec, node),
        Op::Repeat
        | Op::Concat { .. }
        | Op::Pad { .. }
        | Op::PadReflect1d { .. }
        | Op::Roll { .. }
        | Op::Arange { .. }
        | Op::Diag
        | Op::RepeatBack => movement::record(rec, node),
        Op::Cumsum => cumsum::record(rec, node),
        Op::Im2Col { .. } | Op::Im2Col3d { .. } => im2col::record(rec, node),
        Op::Pool1d { .. } | Op::Pool2d { .. } => pool::record(rec, node),
        Op::Upscale { .. } => upscale::record(rec, node),
        Op::ConvTranspose1d { .. } => conv::record(rec, node),
        Op::Col2Im1d { .. } => col2im::record(rec, node),
        Op::Fill { .. } | Op::Tri { .. } | Op::DiagMaskInf { .. } => fill::record(rec, node),
        Op::Acc { .. } | Op::Set { .. } => acc::record(rec, node),
        Op::OptStepAdamw | Op::OptStepSgd => optim::record(rec, node),
        Op::GetRowsBack => rows_back::record(rec, node),
        Op::CrossEntropyLoss | Op::CrossEntropyLossBack => cross_entropy::record(rec, node),
        Op::RmsNormBack { .. } | Op::SoftMaxBack { .. } => row_back::record(rec, node),
        Op::CountEqual => count_equal::record(rec, node),
        Op::Conv2d { .. }
        | Op::Conv2dDw { .. }
        | Op::Conv3d { .. }
        | Op::ConvTranspose2d { .. }
        | Op::TimestepEmbedding { .. } => conv2d::record(rec, node),
        Op::SsmConv
        | Op::SsmScan { .. }
        | Op::RwkvWkv6
        | Op::GatedLinearAttn { .. }
        | Op::RwkvWkv7
        | Op::GatedDeltaNet { .. } => recurrent::record(rec, node),
        Op::SolveTri => solve_tri::record(rec, node),
        Op::LightningIndexer => lightning_indexer::record(rec, node),
        Op::Dsv4HcComb { .. } | Op::Dsv4HcPre { .. } | Op::Dsv4HcPost => hyper_conn::record(rec, node),
    }
}

/// Scratch memory `node` takes when recorded on `device` (a multiple of 256 bytes; 0 for most ops).
pub fn scratch_bytes(device: &Device, node: &Node) -> u64 {
    let bytes = match (&node.op, node.src(0), node.src(1)) {
        (Op::MulMat, Ok(a), Ok(b)) => matmul::scratch_bytes(device, a, b, &node.dst),
        (Op::FlashAttnExt { .. }, _, _) => flash_attn::scratch_bytes(device, node),
        (Op::MulMatId { .. }, _, _) => matmul_id::scratch_bytes(device, node),
        (Op::ArgSort { .. } | Op::TopK, _, _) => moe::scratch_bytes(device, node),
        (Op::OutProd, _, _) => out_prod::scratch_bytes(device, node),
        _ => 0,
    };
    let align = device.caps().min_storage_offset_alignment.max(256);
    bytes.div_ceil(align) * align
}

/// Of [`scratch_bytes`] for `node`, what recording it now takes none of (a product's weights served by their kept
/// f16 copy, [`matmul::kept_weight_scratch`]); at most `scratch_bytes`.
pub fn scratch_not_taken(rec: &mut Recorder<'_>, node: &Node) -> u64 {
    match (&node.op, node.src(0), node.src(1)) {
        (Op::MulMat, Ok(a), Ok(b)) => matmul::kept_weight_scratch(rec, a, b, &node.dst),
        _ => 0,
    }
}

/// Bytes one tensor may span so that its window (start rounded down to the offset alignment) fits
/// `maxStorageBufferRange`.
pub(crate) fn window_limit(device: &Device) -> u64 {
    let caps = device.caps();
    caps.max_storage_buffer_range.saturating_sub(caps.min_storage_offset_alignment)
}

/// Optional source `i` of `node`.
pub(crate) fn opt_src(node: &Node, i: usize) -> Option<&Tensor> {
    node.src.get(i).and_then(|s| s.as_ref())
}

/// A tensor bound as a storage-buffer window, with its first element's index in `unit`-byte elements of the
/// window. The window starts at the tensor's offset rounded down to `minStorageBufferOffsetAlignment`, so a
/// buffer larger than `maxStorageBufferRange` works as long as each tensor's bytes fit one window.
pub(crate) fn bind(device: &Device, t: &Tensor, unit: u64, write: bool) -> Result<(Binding, u32)> {
    let (start, _) = t.byte_range();
    bind_from(device, t, unit, write, start - start % device.caps().min_storage_offset_alignment)
}

/// [`bind`] with the bound range starting at byte `aligned` (on the device's offset alignment, at most the tensor's
/// first byte).
fn bind_from(device: &Device, t: &Tensor, unit: u64, write: bool, aligned: u64) -> Result<(Binding, u32)> {
    let caps = device.caps();
    if t.buffer.is_placeholder() {
        return Err(Error::Internal(format!("tensor {t:?} has no memory (placeholder buffer)")));
    }
    let (start, end) = t.byte_range();
    let residual = start - aligned;
    if residual % unit != 0 {
        return Err(Error::unsupported(format!("tensor {t:?}: offset {start} is not a multiple of {unit} bytes")));
    }
    let vk_size = (t.buffer.size() + 3) & !3;
    let range = ((end - aligned + 3) & !3).min(vk_size - aligned).max(4.min(vk_size - aligned));
    if range > caps.max_storage_buffer_range {
        return Err(Error::unsupported(format!(
            "tensor {t:?} spans {} bytes, more than this device's maxStorageBufferRange ({} bytes)",
            end - aligned,
            caps.max_storage_buffer_range
        )));
    }
    let first = u32::try_from(residual / unit).map_err(|_| Error::Internal("window residual".into()))?;
    Ok((
        Binding { buffer: t.buffer.clone(), offset: aligned, range, touched: (start, end.max(start + 1)), write },
        first,
    ))
}

/// [`bind`] for a tensor of `block`-byte blocks read through a block-typed view (a shader array of blocks): the
/// bound range starts where the tensor's first byte is a whole number of blocks in (and on the device's offset
/// alignment), so that the returned offset, in `unit`-byte elements, is also a whole number of blocks. Falls back
/// to [`bind`] where no such start exists (an odd first byte) or the longer range would pass the device's limit.
pub(crate) fn bind_blocks(device: &Device, t: &Tensor, unit: u64, block: u64, write: bool) -> Result<(Binding, u32)> {
    let align = device.caps().min_storage_offset_alignment;
    let (start, _) = t.byte_range();
    // Residuals start % align, + align, ...: the first that is a multiple of `block` (lcm / align tries at most).
    let found =
        (0..block.max(1)).map(|i| start % align + i * align).take_while(|&r| r <= start).find(|r| r % block == 0);
    match found {
        Some(residual) => bind_from(device, t, unit, write, start - residual).or_else(|_| bind(device, t, unit, write)),
        None => bind(device, t, unit, write),
    }
}

/// A byte stride expressed in `unit`-byte elements, as a u32 for push constants.
pub(crate) fn stride_units(what: &str, bytes: u64, unit: u64) -> Result<u32> {
    if bytes % unit != 0 {
        return Err(Error::unsupported(format!("{what} stride of {bytes} bytes is not a multiple of {unit}")));
    }
    u32::try_from(bytes / unit).map_err(|_| Error::unsupported(format!("{what} stride of {bytes} bytes is too large")))
}

/// A dimension as u32.
pub(crate) fn dim_u32(what: &str, n: i64) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::unsupported(format!("{what} = {n} does not fit 32 bits")))
}

/// Split `total` workgroups over x and y so neither exceeds `max_x` (the kernel linearises them).
pub(crate) fn split_groups(total: u64, max_x: u32) -> Result<(u32, u32)> {
    let x = total.min(u64::from(max_x)).max(1);
    let y = total.div_ceil(x);
    let y = u32::try_from(y).map_err(|_| Error::unsupported(format!("{total} workgroups are too many")))?;
    Ok((x as u32, y))
}

#[cfg(test)]
mod tests {
    /// The highest `constant_id` (SpecId decoration) a SPIR-V module declares.
    fn max_spec_id(spirv: &[u8]) -> Option<u32> {
        let words: Vec<u32> = spirv.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        let mut at = 5; // after the header
        let mut max = None;
        while at < words.len() {
            let (count, opcode) = ((words[at] >> 16) as usize, words[at] & 0xFFFF);
            // OpDecorate (71) <target> SpecId (1) <id>.
            if opcode == 71 && count == 4 && words[at + 2] == 1 {
                max = max.max(Some(words[at + 3]));
            }
            at += count.max(1);
        }
        max
    }

    /// Every shader's specialisation constants fit the pipeline cache's key: a kernel with more would fail when its
    /// pipeline is created, which only devices that run it (GPUs with cooperative matrices, for some) would show.
    #[test]
    fn every_shaders_spec_constants_fit_the_pipeline_key() {
        let mut checked = 0;
        for (name, spirv) in super::spirv::ALL {
            if spirv.is_empty() {
                continue;
            }
            assert_eq!(&spirv[..4], &[0x03, 0x02, 0x23, 0x07], "{name}: not SPIR-V");
            if let Some(id) = max_spec_id(spirv) {
                assert!((id as usize) < crate::vk::pipeline::MAX_SPEC, "{name}: constant_id {id}");
            }
            checked += 1;
        }
        assert!(checked > 100, "only {checked} shaders with SPIR-V");
    }
}

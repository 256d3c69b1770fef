//! ggml tensor element types and CPU reference (de)quantization.
//!
//! [`GgmlType`] mirrors ggml's `enum ggml_type` numerically, so a raw type id coming over the C ABI can be
//! converted with [`GgmlType::from_raw`]. The block layouts ([`BlockQ4_0`], [`BlockQ8_0`]) are byte-for-byte
//! those of ggml, and the quantize/dequantize routines reproduce ggml's scalar reference routines
//! (`quantize_row_*_ref`, `dequantize_row_*`) bit-exactly: same f32 arithmetic, same order of operations,
//! same rounding, same f16 conversion (round to nearest, ties to even).
//!
//! The byte-level entry points ([`quantize`], [`dequantize`], [`dequantize_to_f32`]) work on `&[u8]` buffers of
//! any alignment: blocks are copied out of / into the byte buffer, never reinterpreted in place. All
//! multi-byte values use the host's byte order, like ggml (in practice little-endian).
//!
//! The K-quants (Q2_K..Q6_K, super-blocks of [`QK_K`] = 256 values) have dequantizers only: ggml's
//! `dequantize_row_q*_K`, reproduced bit-exactly; [`quantize`] declines them with `Error::Unsupported`. So do the
//! IQ types beside IQ4_NL (IQ4_XS, IQ3_S, IQ3_XXS, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M; grid tables in
//! [`iq_grids`]), the ternary TQ1_0/TQ2_0 and MXFP4. Q1_0, Q2_0 and NVFP4 have both directions (ggml's
//! `quantize_row_*_ref`).
//!
//! Adding a type means: a variant with ggml's number, its arms in the
//! [`GgmlType`] methods (name, block size, type size), a module with its block struct and row routines, and
//! an arm in [`quantize`] / [`dequantize`].

use std::fmt;

use crate::error::{Error, Result};

pub mod act;
pub mod bf16;
pub mod f16;
pub mod iq1;
pub mod iq2;
pub mod iq3;
pub mod iq4_nl;
pub mod iq4_xs;
pub mod iq_grids;
pub mod k_common;
pub mod mxfp4;
pub mod nvfp4;
pub mod q1_0;
pub mod q2_0;
pub mod q2_k;
pub mod q3_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;
pub mod tq;

pub use self::act::{act_rounding, round_activations, round_activations_to_vec, ActRounding};
pub use self::bf16::{bf16_bits_to_f32, dequantize_row_bf16, f32_to_bf16_bits, quantize_row_bf16};
pub use self::f16::{dequantize_row_f16, quantize_row_f16};
pub use self::iq1::{dequantize_block_iq1_m, dequantize_block_iq1_s, BlockIq1M, BlockIq1S};
pub use self::iq2::{
    dequantize_block_iq2_s, dequantize_block_iq2_xs, dequantize_block_iq2_xxs, BlockIq2S, BlockIq2Xs, BlockIq2Xxs,
};
pub use self::iq3::{dequantize_block_iq3_s, dequantize_block_iq3_xxs, BlockIq3S, BlockIq3Xxs};
pub use self::iq4_nl::{dequantize_block_iq4_nl, quantize_block_iq4_nl, BlockIq4Nl, KVALUES_IQ4NL, QK4_NL};
pub use self::iq4_xs::{dequantize_block_iq4_xs, BlockIq4Xs};
pub use self::k_common::{K_SCALE_SIZE, QK_K};
pub use self::mxfp4::{dequantize_block_mxfp4, BlockMxfp4, KVALUES_MXFP4, QK_MXFP4};
pub use self::nvfp4::{dequantize_block_nvfp4, quantize_block_nvfp4, BlockNvfp4, QK_NVFP4};
pub use self::q1_0::{dequantize_block_q1_0, quantize_block_q1_0, BlockQ1_0, QK1_0};
pub use self::q2_0::{dequantize_block_q2_0, quantize_block_q2_0, BlockQ2_0, QK2_0};
pub use self::q2_k::{dequantize_block_q2_k, dequantize_row_q2_k, BlockQ2K};
pub use self::q3_k::{dequantize_block_q3_k, dequantize_row_q3_k, BlockQ3K};
pub use self::q4_0::{
    dequantize_block_q4_0, dequantize_row_q4_0, quantize_block_q4_0, quantize_row_q4_0, BlockQ4_0, QK4_0,
};
pub use self::q4_1::{
    dequantize_block_q4_1, dequantize_row_q4_1, quantize_block_q4_1, quantize_row_q4_1, BlockQ4_1, QK4_1,
};
pub use self::q4_k::{dequantize_block_q4_k, dequantize_row_q4_k, BlockQ4K};
pub use self::q5_0::{
    dequantize_block_q5_0, dequantize_row_q5_0, quantize_block_q5_0, quantize_row_q5_0, BlockQ5_0, QK5_0,
};
pub use self::q5_1::{
    dequantize_block_q5_1, dequantize_row_q5_1, quantize_block_q5_1, quantize_row_q5_1, BlockQ5_1, QK5_1,
};
pub use self::q5_k::{dequantize_block_q5_k, dequantize_row_q5_k, BlockQ5K};
pub use self::q6_k::{dequantize_block_q6_k, dequantize_row_q6_k, BlockQ6K};
pub use self::q8_0::{
    dequantize_block_q8_0, dequantize_row_q8_0, quantize_block_q8_0, quantize_row_q8_0, BlockQ8_0, QK8_0,
};
pub use self::tq::{dequantize_block_tq1_0, dequantize_block_tq2_0, BlockTq1_0, BlockTq2_0};

/// A ggml tensor element type, numbered exactly like ggml's `enum ggml_type`.
///
/// Only the types this crate implements are listed; the gaps in the numbering belong to ggml types not
/// (yet) supported here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
#[allow(non_camel_case_types)] // variants spelled like ggml's `GGML_TYPE_Q4_K`
pub enum GgmlType {
    /// 32-bit IEEE float (`GGML_TYPE_F32`).
    F32 = 0,
    /// 16-bit IEEE half float (`GGML_TYPE_F16`).
    F16 = 1,
    /// 4-bit symmetric quantization, blocks of 32 with one f16 scale (`GGML_TYPE_Q4_0`).
    Q4_0 = 2,
    /// 4-bit quantization with a minimum, blocks of 32 with f16 scale and minimum (`GGML_TYPE_Q4_1`).
    Q4_1 = 3,
    /// 5-bit symmetric quantization, blocks of 32 with one f16 scale (`GGML_TYPE_Q5_0`).
    Q5_0 = 6,
    /// 5-bit quantization with a minimum, blocks of 32 with f16 scale and minimum (`GGML_TYPE_Q5_1`).
    Q5_1 = 7,
    /// 8-bit symmetric quantization, blocks of 32 with one f16 scale (`GGML_TYPE_Q8_0`).
    Q8_0 = 8,
    /// 2-bit K-quant, super-blocks of 256 with 4-bit sub-block scales and mins (`GGML_TYPE_Q2_K`).
    Q2_K = 10,
    /// 3-bit K-quant, super-blocks of 256 with 6-bit sub-block scales (`GGML_TYPE_Q3_K`).
    Q3_K = 11,
    /// 4-bit K-quant, super-blocks of 256 with 6-bit sub-block scales and mins (`GGML_TYPE_Q4_K`).
    Q4_K = 12,
    /// 5-bit K-quant, super-blocks of 256 with 6-bit sub-block scales and mins (`GGML_TYPE_Q5_K`).
    Q5_K = 13,
    /// 6-bit K-quant, super-blocks of 256 with 8-bit sub-block scales (`GGML_TYPE_Q6_K`).
    Q6_K = 14,
    /// 2.06-bit IQ: super-blocks of 256, 8 values per grid index with signs, a 4-bit scale per 32
    /// (`GGML_TYPE_IQ2_XXS`).
    IQ2_XXS = 16,
    /// 2.31-bit IQ: super-blocks of 256, 9-bit grid indices, 4-bit scales per 16 (`GGML_TYPE_IQ2_XS`).
    IQ2_XS = 17,
    /// 3.06-bit IQ: super-blocks of 256, 4 values per grid index with signs (`GGML_TYPE_IQ3_XXS`).
    IQ3_XXS = 18,
    /// 1.56-bit IQ: super-blocks of 256 on a ternary grid, shifted by ±1/8 (`GGML_TYPE_IQ1_S`).
    IQ1_S = 19,
    /// 4-bit non-linear quantization: blocks of 32 indices into a fixed 16-level table, one f16 scale
    /// (`GGML_TYPE_IQ4_NL`).
    IQ4_NL = 20,
    /// 3.44-bit IQ: super-blocks of 256, 9-bit grid indices, all signs stored (`GGML_TYPE_IQ3_S`).
    IQ3_S = 21,
    /// 2.56-bit IQ: super-blocks of 256, 10-bit grid indices, all signs stored (`GGML_TYPE_IQ2_S`).
    IQ2_S = 22,
    /// 4.25-bit non-linear: IQ4_NL's table in super-blocks of 256 with 6-bit scales per 32 (`GGML_TYPE_IQ4_XS`).
    IQ4_XS = 23,
    /// 8-bit signed integer (`GGML_TYPE_I8`).
    I8 = 24,
    /// 16-bit signed integer (`GGML_TYPE_I16`).
    I16 = 25,
    /// 32-bit signed integer (`GGML_TYPE_I32`).
    I32 = 26,
    /// 64-bit signed integer (`GGML_TYPE_I64`), e.g. SET_ROWS indices.
    I64 = 27,
    /// 1.75-bit IQ: IQ1_S's grid with scales per 16 values and the f16 scale spread over them (`GGML_TYPE_IQ1_M`).
    IQ1_M = 29,
    /// bfloat16: the top half of an f32 (`GGML_TYPE_BF16`).
    BF16 = 30,
    /// Ternary 1.69 bits: super-blocks of 256, five base-3 digits per byte, an f16 scale (`GGML_TYPE_TQ1_0`).
    TQ1_0 = 34,
    /// Ternary 2.06 bits: super-blocks of 256, 2 bits per value, an f16 scale (`GGML_TYPE_TQ2_0`).
    TQ2_0 = 35,
    /// MXFP4 (OCP microscaling): blocks of 32 E2M1 values with a power-of-two (E8M0) scale (`GGML_TYPE_MXFP4`).
    MXFP4 = 39,
    /// NVFP4: blocks of 64 E2M1 values in sub-blocks of 16, each with an unsigned E4M3 scale (`GGML_TYPE_NVFP4`).
    NVFP4 = 40,
    /// 1-bit: blocks of 128 signs with one f16 magnitude (`GGML_TYPE_Q1_0`).
    Q1_0 = 41,
    /// 2-bit: blocks of 64 codes for `-d, 0, d, 2d` with an f16 scale (`GGML_TYPE_Q2_0`).
    Q2_0 = 42,
}

impl GgmlType {
    /// Every type this crate knows, in ggml's numbering order.
    pub const ALL: [GgmlType; 32] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::IQ2_XXS,
        GgmlType::IQ2_XS,
        GgmlType::IQ3_XXS,
        GgmlType::IQ1_S,
        GgmlType::IQ4_NL,
        GgmlType::IQ3_S,
        GgmlType::IQ2_S,
        GgmlType::IQ4_XS,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::IQ1_M,
        GgmlType::BF16,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
        GgmlType::NVFP4,
        GgmlType::Q1_0,
        GgmlType::Q2_0,
    ];

    /// The type with ggml's raw number `raw`, or `None` if it is unknown or not supported by this crate.
    pub fn from_raw(raw: i32) -> Option<Self> {
        match raw {
            0 => Some(GgmlType::F32),
            1 => Some(GgmlType::F16),
            2 => Some(GgmlType::Q4_0),
            3 => Some(GgmlType::Q4_1),
            6 => Some(GgmlType::Q5_0),
            7 => Some(GgmlType::Q5_1),
            8 => Some(GgmlType::Q8_0),
            10 => Some(GgmlType::Q2_K),
            11 => Some(GgmlType::Q3_K),
            12 => Some(GgmlType::Q4_K),
            13 => Some(GgmlType::Q5_K),
            14 => Some(GgmlType::Q6_K),
            16 => Some(GgmlType::IQ2_XXS),
            17 => Some(GgmlType::IQ2_XS),
            18 => Some(GgmlType::IQ3_XXS),
            19 => Some(GgmlType::IQ1_S),
            20 => Some(GgmlType::IQ4_NL),
            21 => Some(GgmlType::IQ3_S),
            22 => Some(GgmlType::IQ2_S),
            23 => Some(GgmlType::IQ4_XS),
            24 => Some(GgmlType::I8),
            25 => Some(GgmlType::I16),
            26 => Some(GgmlType::I32),
            27 => Some(GgmlType::I64),
            29 => Some(GgmlType::IQ1_M),
            30 => Some(GgmlType::BF16),
            34 => Some(GgmlType::TQ1_0),
            35 => Some(GgmlType::TQ2_0),
            39 => Some(GgmlType::MXFP4),
            40 => Some(GgmlType::NVFP4),
            41 => Some(GgmlType::Q1_0),
            42 => Some(GgmlType::Q2_0),
            _ => None,
        }
    }

    /// ggml's raw number for this type (the value of `enum ggml_type`).
    pub fn raw(self) -> i32 {
        self as i32
    }

    /// ggml's name for this type (`ggml_type_name`): `"f32"`, `"f16"`, `"q4_0"`, `"q8_0"`, `"q2_K"`..`"q6_K"`
    /// (capital K, as ggml spells them), `"i8"`, `"i16"`, `"i32"`, `"i64"`.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "f32",
            GgmlType::F16 => "f16",
            GgmlType::Q4_0 => "q4_0",
            GgmlType::Q4_1 => "q4_1",
            GgmlType::Q5_0 => "q5_0",
            GgmlType::Q5_1 => "q5_1",
            GgmlType::Q8_0 => "q8_0",
            GgmlType::Q2_K => "q2_K",
            GgmlType::Q3_K => "q3_K",
            GgmlType::Q4_K => "q4_K",
            GgmlType::Q5_K => "q5_K",
            GgmlType::Q6_K => "q6_K",
            GgmlType::IQ4_NL => "iq4_nl",
            GgmlType::IQ2_XXS => "iq2_xxs",
            GgmlType::IQ2_XS => "iq2_xs",
            GgmlType::IQ3_XXS => "iq3_xxs",
            GgmlType::IQ1_S => "iq1_s",
            GgmlType::IQ3_S => "iq3_s",
            GgmlType::IQ2_S => "iq2_s",
            GgmlType::IQ4_XS => "iq4_xs",
            GgmlType::IQ1_M => "iq1_m",
            GgmlType::TQ1_0 => "tq1_0",
            GgmlType::TQ2_0 => "tq2_0",
            GgmlType::MXFP4 => "mxfp4",
            GgmlType::NVFP4 => "nvfp4",
            GgmlType::Q1_0 => "q1_0",
            GgmlType::Q2_0 => "q2_0",
            GgmlType::I8 => "i8",
            GgmlType::I16 => "i16",
            GgmlType::I32 => "i32",
            GgmlType::I64 => "i64",
            GgmlType::BF16 => "bf16",
        }
    }

    /// Number of elements in one block (`ggml_blck_size`): 1 for plain types, 32 for Q4_0 and Q8_0, 256 for
    /// the K-quants.
    pub fn block_size(self) -> usize {
        match self {
            GgmlType::F32
            | GgmlType::F16
            | GgmlType::I8
            | GgmlType::I16
            | GgmlType::I32
            | GgmlType::I64
            | GgmlType::BF16 => 1,
            GgmlType::Q4_0 => QK4_0,
            GgmlType::Q4_1 => QK4_1,
            GgmlType::Q5_0 => QK5_0,
            GgmlType::Q5_1 => QK5_1,
            GgmlType::Q8_0 => QK8_0,
            GgmlType::IQ4_NL => QK4_NL,
            GgmlType::MXFP4 => QK_MXFP4,
            GgmlType::NVFP4 => QK_NVFP4,
            GgmlType::Q1_0 => QK1_0,
            GgmlType::Q2_0 => QK2_0,
            GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::IQ2_XXS
            | GgmlType::IQ2_XS
            | GgmlType::IQ3_XXS
            | GgmlType::IQ1_S
            | GgmlType::IQ3_S
            | GgmlType::IQ2_S
            | GgmlType::IQ4_XS
            | GgmlType::IQ1_M
            | GgmlType::TQ1_0
            | GgmlType::TQ2_0 => QK_K,
        }
    }

    /// Number of bytes in one block (`ggml_type_size`): 4, 2, 18, 34, 4 and 8 for F32, F16, Q4_0, Q8_0, I32, I64.
    pub fn type_size(self) -> usize {
        match self {
            GgmlType::F32 => std::mem::size_of::<f32>(),
            GgmlType::F16 => std::mem::size_of::<half::f16>(),
            GgmlType::Q4_0 => std::mem::size_of::<BlockQ4_0>(),
            GgmlType::Q4_1 => std::mem::size_of::<BlockQ4_1>(),
            GgmlType::Q5_0 => std::mem::size_of::<BlockQ5_0>(),
            GgmlType::Q5_1 => std::mem::size_of::<BlockQ5_1>(),
            GgmlType::Q8_0 => std::mem::size_of::<BlockQ8_0>(),
            GgmlType::Q2_K => std::mem::size_of::<BlockQ2K>(),
            GgmlType::Q3_K => std::mem::size_of::<BlockQ3K>(),
            GgmlType::Q4_K => std::mem::size_of::<BlockQ4K>(),
            GgmlType::Q5_K => std::mem::size_of::<BlockQ5K>(),
            GgmlType::Q6_K => std::mem::size_of::<BlockQ6K>(),
            GgmlType::IQ4_NL => std::mem::size_of::<BlockIq4Nl>(),
            GgmlType::IQ2_XXS => std::mem::size_of::<BlockIq2Xxs>(),
            GgmlType::IQ2_XS => std::mem::size_of::<BlockIq2Xs>(),
            GgmlType::IQ3_XXS => std::mem::size_of::<BlockIq3Xxs>(),
            GgmlType::IQ1_S => std::mem::size_of::<BlockIq1S>(),
            GgmlType::IQ3_S => std::mem::size_of::<BlockIq3S>(),
            GgmlType::IQ2_S => std::mem::size_of::<BlockIq2S>(),
            GgmlType::IQ4_XS => std::mem::size_of::<BlockIq4Xs>(),
            GgmlType::IQ1_M => std::mem::size_of::<BlockIq1M>(),
            GgmlType::TQ1_0 => std::mem::size_of::<BlockTq1_0>(),
            GgmlType::TQ2_0 => std::mem::size_of::<BlockTq2_0>(),
            GgmlType::MXFP4 => std::mem::size_of::<BlockMxfp4>(),
            GgmlType::NVFP4 => std::mem::size_of::<BlockNvfp4>(),
            GgmlType::Q1_0 => std::mem::size_of::<BlockQ1_0>(),
            GgmlType::Q2_0 => std::mem::size_of::<BlockQ2_0>(),
            GgmlType::I8 => std::mem::size_of::<i8>(),
            GgmlType::I16 => std::mem::size_of::<i16>(),
            GgmlType::I32 => std::mem::size_of::<i32>(),
            GgmlType::I64 => std::mem::size_of::<i64>(),
            GgmlType::BF16 => std::mem::size_of::<u16>(),
        }
    }

    /// Whether the type is block-quantized (more than one element per block).
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Bytes taken by a row of `n` elements (`ggml_row_size`).
    ///
    /// Fails if `n` is negative, not a multiple of [`block_size`](Self::block_size), or the byte count
    /// overflows `usize`.
    pub fn row_size(self, n: i64) -> Result<usize> {
        if n < 0 {
            return Err(Error::invalid(format!("{}: negative element count {n}", self.name())));
        }
        let bs = self.block_size() as i64;
        if n % bs != 0 {
            return Err(Error::invalid(format!(
                "{}: element count {n} is not a multiple of the block size {bs}",
                self.name()
            )));
        }
        usize::try_from(n / bs)
            .ok()
            .and_then(|blocks| blocks.checked_mul(self.type_size()))
            .ok_or_else(|| Error::invalid(format!("{}: row of {n} elements overflows the address space", self.name())))
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Converts an element count to ggml's `int64_t`, erroring instead of wrapping.
fn count_i64(ty: GgmlType, n: usize) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::invalid(format!("{}: element count {n} does not fit in int64", ty.name())))
}

/// Quantizes (or converts) the f32 values `src` into `dst`, laid out as ggml stores type `ty`.
///
/// `src.len()` must be a multiple of `ty.block_size()` and `dst.len()` must be exactly
/// `ty.row_size(src.len())`. `dst` may have any alignment. F32 is a plain copy, F16 rounds to nearest-even,
/// Q4_0 and Q8_0 use ggml's reference quantizers. I32 is rejected (it is not a float type).
pub fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<()> {
    let need = ty.row_size(count_i64(ty, src.len())?)?;
    if dst.len() != need {
        return Err(Error::invalid(format!(
            "quantize {}: {} elements need a destination of {need} bytes, got {}",
            ty.name(),
            src.len(),
            dst.len()
        )));
    }
    match ty {
        GgmlType::F32 => dst.copy_from_slice(bytemuck::cast_slice(src)),
        GgmlType::F16 => {
            for (&x, out) in src.iter().zip(dst.chunks_exact_mut(ty.type_size())) {
                out.copy_from_slice(bytemuck::bytes_of(&half::f16::from_f32(x)));
            }
        }
        GgmlType::Q4_0 => {
            for (x, out) in src.chunks_exact(QK4_0).zip(dst.chunks_exact_mut(ty.type_size())) {
                let x = <&[f32; QK4_0]>::try_from(x).expect("chunks_exact yields whole blocks");
                out.copy_from_slice(bytemuck::bytes_of(&quantize_block_q4_0(x)));
            }
        }
        GgmlType::Q8_0 => {
            for (x, out) in src.chunks_exact(QK8_0).zip(dst.chunks_exact_mut(ty.type_size())) {
                let x = <&[f32; QK8_0]>::try_from(x).expect("chunks_exact yields whole blocks");
                out.copy_from_slice(bytemuck::bytes_of(&quantize_block_q8_0(x)));
            }
        }
        GgmlType::Q4_1 => quantize_blocks(src, dst, quantize_block_q4_1),
        GgmlType::Q5_0 => quantize_blocks(src, dst, quantize_block_q5_0),
        GgmlType::Q5_1 => quantize_blocks(src, dst, quantize_block_q5_1),
        GgmlType::IQ4_NL => quantize_blocks(src, dst, quantize_block_iq4_nl),
        GgmlType::Q1_0 => quantize_blocks(src, dst, quantize_block_q1_0),
        GgmlType::Q2_0 => quantize_blocks(src, dst, quantize_block_q2_0),
        GgmlType::NVFP4 => quantize_blocks(src, dst, quantize_block_nvfp4),
        GgmlType::BF16 => {
            for (&x, out) in src.iter().zip(dst.chunks_exact_mut(2)) {
                out.copy_from_slice(&f32_to_bf16_bits(x).to_ne_bytes());
            }
        }
        GgmlType::Q2_K
        | GgmlType::Q3_K
        | GgmlType::Q4_K
        | GgmlType::Q5_K
        | GgmlType::Q6_K
        | GgmlType::IQ2_XXS
        | GgmlType::IQ2_XS
        | GgmlType::IQ3_XXS
        | GgmlType::IQ1_S
        | GgmlType::IQ3_S
        | GgmlType::IQ2_S
        | GgmlType::IQ4_XS
        | GgmlType::IQ1_M
        | GgmlType::TQ1_0
        | GgmlType::TQ2_0
        | GgmlType::MXFP4 => {
            return Err(Error::Unsupported(format!(
                "quantize: no CPU quantizer for {} (only its dequantizer is implemented)",
                ty.name()
            )))
        }
        GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64 => {
            return Err(Error::invalid(format!(
                "quantize: {} is an integer type, f32 values cannot be quantized to it",
                ty.name()
            )))
        }
    }
    Ok(())
}

/// Dequantizes (or converts) `src`, holding `dst.len()` elements of type `ty`, into f32 values.
///
/// `dst.len()` must be a multiple of `ty.block_size()` and `src.len()` must be exactly
/// `ty.row_size(dst.len())`. `src` may have any alignment. I32 is rejected (it is not a float type).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<()> {
    let need = ty.row_size(count_i64(ty, dst.len())?)?;
    if src.len() != need {
        return Err(Error::invalid(format!(
            "dequantize {}: {} elements need a source of {need} bytes, got {}",
            ty.name(),
            dst.len(),
            src.len()
        )));
    }
    match ty {
        GgmlType::F32 => bytemuck::cast_slice_mut::<f32, u8>(dst).copy_from_slice(src),
        GgmlType::F16 => {
            for (b, y) in src.chunks_exact(ty.type_size()).zip(dst.iter_mut()) {
                *y = bytemuck::pod_read_unaligned::<half::f16>(b).to_f32();
            }
        }
        GgmlType::Q4_0 => {
            for (b, y) in src.chunks_exact(ty.type_size()).zip(dst.chunks_exact_mut(QK4_0)) {
                let y = <&mut [f32; QK4_0]>::try_from(y).expect("chunks_exact yields whole blocks");
                dequantize_block_q4_0(&bytemuck::pod_read_unaligned::<BlockQ4_0>(b), y);
            }
        }
        GgmlType::Q8_0 => {
            for (b, y) in src.chunks_exact(ty.type_size()).zip(dst.chunks_exact_mut(QK8_0)) {
                let y = <&mut [f32; QK8_0]>::try_from(y).expect("chunks_exact yields whole blocks");
                dequantize_block_q8_0(&bytemuck::pod_read_unaligned::<BlockQ8_0>(b), y);
            }
        }
        GgmlType::Q2_K => dequantize_blocks(src, dst, dequantize_block_q2_k),
        GgmlType::Q3_K => dequantize_blocks(src, dst, dequantize_block_q3_k),
        GgmlType::Q4_K => dequantize_blocks(src, dst, dequantize_block_q4_k),
        GgmlType::Q5_K => dequantize_blocks(src, dst, dequantize_block_q5_k),
        GgmlType::Q6_K => dequantize_blocks(src, dst, dequantize_block_q6_k),
        GgmlType::Q4_1 => dequantize_blocks(src, dst, dequantize_block_q4_1),
        GgmlType::Q5_0 => dequantize_blocks(src, dst, dequantize_block_q5_0),
        GgmlType::Q5_1 => dequantize_blocks(src, dst, dequantize_block_q5_1),
        GgmlType::IQ4_NL => dequantize_blocks(src, dst, dequantize_block_iq4_nl),
        GgmlType::IQ2_XXS => dequantize_blocks(src, dst, dequantize_block_iq2_xxs),
        GgmlType::IQ2_XS => dequantize_blocks(src, dst, dequantize_block_iq2_xs),
        GgmlType::IQ3_XXS => dequantize_blocks(src, dst, dequantize_block_iq3_xxs),
        GgmlType::IQ1_S => dequantize_blocks(src, dst, dequantize_block_iq1_s),
        GgmlType::IQ3_S => dequantize_blocks(src, dst, dequantize_block_iq3_s),
        GgmlType::IQ2_S => dequantize_blocks(src, dst, dequantize_block_iq2_s),
        GgmlType::IQ4_XS => dequantize_blocks(src, dst, dequantize_block_iq4_xs),
        GgmlType::IQ1_M => dequantize_blocks(src, dst, dequantize_block_iq1_m),
        GgmlType::TQ1_0 => dequantize_blocks(src, dst, dequantize_block_tq1_0),
        GgmlType::TQ2_0 => dequantize_blocks(src, dst, dequantize_block_tq2_0),
        GgmlType::MXFP4 => dequantize_blocks(src, dst, dequantize_block_mxfp4),
        GgmlType::NVFP4 => dequantize_blocks(src, dst, dequantize_block_nvfp4),
        GgmlType::Q1_0 => dequantize_blocks(src, dst, dequantize_block_q1_0),
        GgmlType::Q2_0 => dequantize_blocks(src, dst, dequantize_block_q2_0),
        GgmlType::BF16 => {
            for (b, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
                *y = bf16_bits_to_f32(u16::from_ne_bytes([b[0], b[1]]));
            }
        }
        GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64 => {
            return Err(Error::invalid(format!(
                "dequantize: {} is an integer type, it cannot be dequantized to f32",
                ty.name()
            )))
        }
    }
    Ok(())
}

/// Quantizes whole blocks of `N` values with `f`, writing each block's bytes to `dst` (sizes checked by the caller).
fn quantize_blocks<B: bytemuck::Pod, const N: usize>(src: &[f32], dst: &mut [u8], f: fn(&[f32; N]) -> B) {
    for (x, out) in src.chunks_exact(N).zip(dst.chunks_exact_mut(std::mem::size_of::<B>())) {
        let x = <&[f32; N]>::try_from(x).expect("chunks_exact yields whole blocks");
        out.copy_from_slice(bytemuck::bytes_of(&f(x)));
    }
}

/// Dequantizes whole blocks read (unaligned) from `src` with `f` into `dst` (sizes checked by the caller).
fn dequantize_blocks<B: bytemuck::Pod, const N: usize>(src: &[u8], dst: &mut [f32], f: fn(&B, &mut [f32; N])) {
    for (b, y) in src.chunks_exact(std::mem::size_of::<B>()).zip(dst.chunks_exact_mut(N)) {
        let y = <&mut [f32; N]>::try_from(y).expect("chunks_exact yields whole blocks");
        f(&bytemuck::pod_read_unaligned::<B>(b), y);
    }
}

/// Quantizes `src` to type `ty` into a new byte vector of `ty.row_size(src.len())` bytes.
///
/// Same rules and errors as [`quantize`].
pub fn quantize_to_vec(ty: GgmlType, src: &[f32]) -> Result<Vec<u8>> {
    let mut dst = vec![0u8; ty.row_size(count_i64(ty, src.len())?)?];
    quantize(ty, src, &mut dst)?;
    Ok(dst)
}

/// Dequantizes `n` elements of type `ty` from `src` into a new f32 vector.
///
/// Same rules and errors as [`dequantize`]: `src.len()` must be exactly `ty.row_size(n)`.
pub fn dequantize_to_f32(ty: GgmlType, src: &[u8], n: usize) -> Result<Vec<f32>> {
    // Validate before allocating, so a bogus `n` fails cleanly instead of trying a huge allocation.
    let need = ty.row_size(count_i64(ty, n)?)?;
    if src.len() != need {
        return Err(Error::invalid(format!(
            "dequantize {}: {n} elements need a source of {need} bytes, got {}",
            ty.name(),
            src.len()
        )));
    }
    let mut dst = vec![0f32; n];
    dequantize(ty, src, &mut dst)?;
    Ok(dst)
}

/// The C conversion `(int8_t)v` as ggml's reference code performs it on x86-64.
///
/// In range, C truncates toward zero. Out of range (NaN, ±inf, beyond `i32`) C leaves the result undefined;
/// x86-64 compilers emit `cvttss2si`, which yields the "integer indefinite" `0x80000000`, whose low byte is 0.
/// We return 0 there too (numpy on x86-64 does the same). Within the ggml quantizers this only matters for
/// blocks whose scale `d` is an f32 subnormal so small that `1/d` overflows to infinity.
pub(crate) fn c_cast_f32_to_i8(v: f32) -> i8 {
    // 2^31, exactly representable. NaN is in no range, so it takes the first branch too.
    const LIMIT: f32 = 2_147_483_648.0;
    if !(-LIMIT..LIMIT).contains(&v) {
        0
    } else {
        // Truncation toward zero into i32 (exact in range), then keep the low byte like C does.
        (v as i32) as i8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_numbers_and_names() {
        let expect = [
            (GgmlType::F32, 0, "f32", 1, 4, false),
            (GgmlType::F16, 1, "f16", 1, 2, false),
            (GgmlType::Q4_0, 2, "q4_0", 32, 18, true),
            (GgmlType::Q4_1, 3, "q4_1", 32, 20, true),
            (GgmlType::Q5_0, 6, "q5_0", 32, 22, true),
            (GgmlType::Q5_1, 7, "q5_1", 32, 24, true),
            (GgmlType::Q8_0, 8, "q8_0", 32, 34, true),
            (GgmlType::Q2_K, 10, "q2_K", 256, 84, true),
            (GgmlType::Q3_K, 11, "q3_K", 256, 110, true),
            (GgmlType::Q4_K, 12, "q4_K", 256, 144, true),
            (GgmlType::Q5_K, 13, "q5_K", 256, 176, true),
            (GgmlType::Q6_K, 14, "q6_K", 256, 210, true),
            (GgmlType::IQ2_XXS, 16, "iq2_xxs", 256, 66, true),
            (GgmlType::IQ2_XS, 17, "iq2_xs", 256, 74, true),
            (GgmlType::IQ3_XXS, 18, "iq3_xxs", 256, 98, true),
            (GgmlType::IQ1_S, 19, "iq1_s", 256, 50, true),
            (GgmlType::IQ4_NL, 20, "iq4_nl", 32, 18, true),
            (GgmlType::IQ3_S, 21, "iq3_s", 256, 110, true),
            (GgmlType::IQ2_S, 22, "iq2_s", 256, 82, true),
            (GgmlType::IQ4_XS, 23, "iq4_xs", 256, 136, true),
            (GgmlType::I8, 24, "i8", 1, 1, false),
            (GgmlType::I16, 25, "i16", 1, 2, false),
            (GgmlType::I32, 26, "i32", 1, 4, false),
            (GgmlType::I64, 27, "i64", 1, 8, false),
            (GgmlType::IQ1_M, 29, "iq1_m", 256, 56, true),
            (GgmlType::BF16, 30, "bf16", 1, 2, false),
            (GgmlType::TQ1_0, 34, "tq1_0", 256, 54, true),
            (GgmlType::TQ2_0, 35, "tq2_0", 256, 66, true),
            (GgmlType::MXFP4, 39, "mxfp4", 32, 17, true),
            (GgmlType::NVFP4, 40, "nvfp4", 64, 36, true),
            (GgmlType::Q1_0, 41, "q1_0", 128, 18, true),
            (GgmlType::Q2_0, 42, "q2_0", 64, 18, true),
        ];
        for (ty, raw, name, bs, ts, q) in expect {
            assert_eq!(ty.raw(), raw);
            assert_eq!(GgmlType::from_raw(raw), Some(ty));
            assert_eq!(ty.name(), name);
            assert_eq!(ty.to_string(), name);
            assert_eq!(ty.block_size(), bs);
            assert_eq!(ty.type_size(), ts);
            assert_eq!(ty.is_quantized(), q);
        }
        assert_eq!(GgmlType::ALL.len(), expect.len());
        for raw in [-1, 4, 5, 9, 15, 28, 31, 36, 43, 1000, i32::MIN, i32::MAX] {
            assert_eq!(GgmlType::from_raw(raw), None, "raw {raw}");
        }
    }

    #[test]
    fn row_size_rules() {
        assert_eq!(GgmlType::F32.row_size(0).unwrap(), 0);
        assert_eq!(GgmlType::F32.row_size(7).unwrap(), 28);
        assert_eq!(GgmlType::F16.row_size(7).unwrap(), 14);
        assert_eq!(GgmlType::I32.row_size(3).unwrap(), 12);
        assert_eq!(GgmlType::Q4_0.row_size(0).unwrap(), 0);
        assert_eq!(GgmlType::Q4_0.row_size(256).unwrap(), 8 * 18);
        assert_eq!(GgmlType::Q8_0.row_size(4096).unwrap(), 128 * 34);
        assert!(GgmlType::Q4_0.row_size(33).is_err());
        assert!(GgmlType::Q8_0.row_size(16).is_err());
        assert!(GgmlType::F32.row_size(-1).is_err());
        assert!(GgmlType::Q4_0.row_size(-32).is_err());
        // Byte counts past usize::MAX are errors, not wrap-arounds.
        assert!(GgmlType::F32.row_size(i64::MAX).is_err());
        #[cfg(target_pointer_width = "64")]
        {
            assert!(GgmlType::I32.row_size(1i64 << 62).is_err());
            assert_eq!(GgmlType::I32.row_size((1i64 << 62) - 1).unwrap(), usize::MAX - 3);
        }
        let e = GgmlType::Q4_0.row_size(33).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    #[test]
    fn c_cast_matches_x86_c() {
        assert_eq!(c_cast_f32_to_i8(0.0), 0);
        assert_eq!(c_cast_f32_to_i8(8.99), 8);
        assert_eq!(c_cast_f32_to_i8(16.5), 16);
        assert_eq!(c_cast_f32_to_i8(-0.7), 0);
        assert_eq!(c_cast_f32_to_i8(-127.9), -127);
        assert_eq!(c_cast_f32_to_i8(300.0), 44); // low byte of 300, as (int8_t) does on x86-64
        assert_eq!(c_cast_f32_to_i8(f32::NAN), 0);
        assert_eq!(c_cast_f32_to_i8(f32::INFINITY), 0);
        assert_eq!(c_cast_f32_to_i8(f32::NEG_INFINITY), 0);
        assert_eq!(c_cast_f32_to_i8(3e9), 0);
    }

    fn sample(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i as f32) * 0.37).sin() * (1.0 + (i % 7) as f32)).collect()
    }

    #[test]
    fn byte_level_matches_block_level_and_handles_misalignment() {
        let x = sample(128);
        for ty in [
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::BF16,
        ] {
            let bytes = quantize_to_vec(ty, &x).unwrap();
            assert_eq!(bytes.len(), ty.row_size(128).unwrap());
            let y = dequantize_to_f32(ty, &bytes, x.len()).unwrap();

            // Same data at an odd offset inside a larger buffer: results must not depend on alignment.
            let mut buf = vec![0xAAu8; bytes.len() + 3];
            quantize(ty, &x, &mut buf[1..1 + bytes.len()]).unwrap();
            assert_eq!(&buf[1..1 + bytes.len()], &bytes[..], "{ty}");
            let mut y2 = vec![0f32; x.len()];
            dequantize(ty, &buf[1..1 + bytes.len()], &mut y2).unwrap();
            assert_eq!(
                y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                y2.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{ty}"
            );
        }

        // Byte-level Q4_0/Q8_0 equal the typed row routines.
        let mut b4 = vec![BlockQ4_0::default(); 4];
        quantize_row_q4_0(&x, &mut b4);
        assert_eq!(bytemuck::cast_slice::<BlockQ4_0, u8>(&b4), &quantize_to_vec(GgmlType::Q4_0, &x).unwrap()[..]);
        let mut b8 = vec![BlockQ8_0::default(); 4];
        quantize_row_q8_0(&x, &mut b8);
        assert_eq!(bytemuck::cast_slice::<BlockQ8_0, u8>(&b8), &quantize_to_vec(GgmlType::Q8_0, &x).unwrap()[..]);
    }

    #[test]
    fn k_quants_dequantize_but_do_not_quantize() {
        let k = [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K];
        for ty in k {
            assert_eq!(ty.row_size(512).unwrap(), 2 * ty.type_size());
            assert!(ty.row_size(128).is_err(), "{ty}");
            let e = quantize_to_vec(ty, &sample(256)).unwrap_err();
            assert!(matches!(e, Error::Unsupported(_)), "{ty}: {e}");
            // Two blocks of patterned bytes: dequantize sizes are checked and values come out finite (f16
            // scales of 0x3c3c = 1.05859375 wherever the pattern puts them).
            let bytes = vec![0x3cu8; 2 * ty.type_size()];
            let y = dequantize_to_f32(ty, &bytes, 512).unwrap();
            assert!(y.iter().all(|v| v.is_finite()), "{ty}");
            assert!(y.iter().any(|&v| v != 0.0), "{ty}");
            assert!(dequantize_to_f32(ty, &bytes[1..], 512).is_err(), "{ty}");
            assert!(dequantize_to_f32(ty, &bytes, 256).is_err(), "{ty}");
        }
    }

    #[test]
    fn f32_is_a_bit_copy() {
        let x = [1.5f32, -0.0, f32::INFINITY, f32::from_bits(0x7fc0_1234), 1e-45];
        let bytes = quantize_to_vec(GgmlType::F32, &x).unwrap();
        let y = dequantize_to_f32(GgmlType::F32, &bytes, x.len()).unwrap();
        for (a, b) in x.iter().zip(&y) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn length_errors() {
        let x = sample(64);
        // Not a multiple of the block size.
        assert!(quantize(GgmlType::Q4_0, &x[..40], &mut [0u8; 36]).is_err());
        assert!(dequantize(GgmlType::Q8_0, &[0u8; 34], &mut [0f32; 40]).is_err());
        // Wrong destination / source sizes.
        assert!(quantize(GgmlType::Q4_0, &x, &mut [0u8; 35]).is_err());
        assert!(quantize(GgmlType::Q4_0, &x, &mut [0u8; 37]).is_err());
        assert!(quantize(GgmlType::F16, &x, &mut [0u8; 127]).is_err());
        assert!(dequantize(GgmlType::Q8_0, &[0u8; 67], &mut [0f32; 64]).is_err());
        assert!(dequantize(GgmlType::F32, &[0u8; 255], &mut [0f32; 64]).is_err());
        assert!(dequantize_to_f32(GgmlType::Q4_0, &[0u8; 18], 64).is_err());
        assert!(dequantize_to_f32(GgmlType::Q4_0, &[0u8; 18], usize::MAX).is_err());
        // I32 is not a float format.
        let e = quantize(GgmlType::I32, &x, &mut [0u8; 256]).unwrap_err();
        assert!(e.to_string().contains("i32"), "{e}");
        assert!(dequantize(GgmlType::I32, &[0u8; 256], &mut [0f32; 64]).is_err());
        // Empty rows are fine.
        assert!(quantize_to_vec(GgmlType::Q4_0, &[]).unwrap().is_empty());
        assert!(dequantize_to_f32(GgmlType::Q8_0, &[], 0).unwrap().is_empty());
    }
}

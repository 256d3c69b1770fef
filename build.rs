//! Compiles the GLSL compute shaders in `shaders/` to SPIR-V (shaderc, built from source) and embeds them.
//! Each entry of `VARIANTS` is one SPIR-V module: a source file plus preprocessor defines.
//!
//! Generic dequantizing kernels: for every `shaders/dequant/<type>.glsl` (globbed, so adding a file adds a type),
//! each entry of `DQ_KERNELS` is compiled once per type as `<kernel>_<type>`, with `#include "dq_type.glsl"` in
//! the kernel resolving to that type's file. The generated `dq_module(kernel, type)` / `dq_spirv(kernel, type)`
//! find them by ggml's type name.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Preprocessor defines of one variant.
type Defines = &'static [(&'static str, &'static str)];

/// (module name, source file, defines)
const VARIANTS: &[(&str, &str, Defines)] = &[
    ("mul_mat_vec_f32", "mul_mat_vec.comp", &[("A_F32", "1")]),
    ("mul_mat_vec_f16", "mul_mat_vec.comp", &[("A_F16", "1")]),
    ("mul_mat_vec_q4_0", "mul_mat_vec.comp", &[("A_Q4_0", "1")]),
    ("mul_mat_vec_q8_0", "mul_mat_vec.comp", &[("A_Q8_0", "1")]),
    ("mul_mat_vec_f32_shmem", "mul_mat_vec.comp", &[("A_F32", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_f16_shmem", "mul_mat_vec.comp", &[("A_F16", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_bf16", "mul_mat_vec.comp", &[("A_BF16", "1")]),
    ("mul_mat_vec_bf16_shmem", "mul_mat_vec.comp", &[("A_BF16", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q4_0_shmem", "mul_mat_vec.comp", &[("A_Q4_0", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q8_0_shmem", "mul_mat_vec.comp", &[("A_Q8_0", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q4_k", "mul_mat_vec_k.comp", &[("Q4K", "1")]),
    ("mul_mat_vec_q4_k_shmem", "mul_mat_vec_k.comp", &[("Q4K", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q5_k", "mul_mat_vec_k.comp", &[("Q5K", "1")]),
    ("mul_mat_vec_q5_k_shmem", "mul_mat_vec_k.comp", &[("Q5K", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q6_k", "mul_mat_vec_k.comp", &[("Q6K", "1")]),
    ("mul_mat_vec_q6_k_shmem", "mul_mat_vec_k.comp", &[("Q6K", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q4_k_idot", "mul_mat_vec_k.comp", &[("Q4K", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_q4_k_idot_shmem", "mul_mat_vec_k.comp", &[("Q4K", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q5_k_idot", "mul_mat_vec_k.comp", &[("Q5K", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_q5_k_idot_shmem", "mul_mat_vec_k.comp", &[("Q5K", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q6_k_idot", "mul_mat_vec_k.comp", &[("Q6K", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_q6_k_idot_shmem", "mul_mat_vec_k.comp", &[("Q6K", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q2_k_idot", "mul_mat_vec_k.comp", &[("Q2K", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_q2_k_idot_shmem", "mul_mat_vec_k.comp", &[("Q2K", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q2_k_idot_wide", "mul_mat_vec_k.comp", &[("Q2K", "1"), ("INT_DOT", "1"), ("WIDE", "1")]),
    ("mul_mat_vec_q3_k_idot", "mul_mat_vec_k.comp", &[("Q3K", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_q3_k_idot_shmem", "mul_mat_vec_k.comp", &[("Q3K", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_iq4_xs_idot", "mul_mat_vec_k.comp", &[("IQ4XS", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_iq4_xs_idot_shmem", "mul_mat_vec_k.comp", &[("IQ4XS", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q4_0_idot", "mul_mat_vec.comp", &[("A_Q4_0", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_q4_0_idot_add", "mul_mat_vec.comp", &[("A_Q4_0", "1"), ("INT_DOT", "1"), ("FUSE_ADD", "1")]),
    ("mul_mat_vec_q8_0_idot_add", "mul_mat_vec.comp", &[("A_Q8_0", "1"), ("INT_DOT", "1"), ("FUSE_ADD", "1")]),
    ("mul_mat_vec_q4_k_idot_add", "mul_mat_vec_k.comp", &[("Q4K", "1"), ("INT_DOT", "1"), ("FUSE_ADD", "1")]),
    ("mul_mat_vec_q4_k_idot_wide", "mul_mat_vec_k.comp", &[("Q4K", "1"), ("INT_DOT", "1"), ("WIDE", "1")]),
    (
        "mul_mat_vec_q4_k_idot_wide_add",
        "mul_mat_vec_k.comp",
        &[("Q4K", "1"), ("INT_DOT", "1"), ("WIDE", "1"), ("FUSE_ADD", "1")],
    ),
    ("mul_mat_vec_q5_k_idot_wide", "mul_mat_vec_k.comp", &[("Q5K", "1"), ("INT_DOT", "1"), ("WIDE", "1")]),
    (
        "mul_mat_vec_q5_k_idot_wide_add",
        "mul_mat_vec_k.comp",
        &[("Q5K", "1"), ("INT_DOT", "1"), ("WIDE", "1"), ("FUSE_ADD", "1")],
    ),
    ("mul_mat_vec_q5_k_idot_add", "mul_mat_vec_k.comp", &[("Q5K", "1"), ("INT_DOT", "1"), ("FUSE_ADD", "1")]),
    ("mul_mat_vec_q6_k_idot_add", "mul_mat_vec_k.comp", &[("Q6K", "1"), ("INT_DOT", "1"), ("FUSE_ADD", "1")]),
    ("mul_mat_vec_q8_0_idot", "mul_mat_vec.comp", &[("A_Q8_0", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_f16_rope", "mul_mat_vec.comp", &[("A_F16", "1"), ("FUSE_ROPE", "1")]),
    ("mul_mat_vec_f16_wide", "mul_mat_vec.comp", &[("A_F16", "1"), ("WIDE16", "1")]),
    ("mul_mat_vec_f16_wide_shmem", "mul_mat_vec.comp", &[("A_F16", "1"), ("WIDE16", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_f16_wide_rope", "mul_mat_vec.comp", &[("A_F16", "1"), ("WIDE16", "1"), ("FUSE_ROPE", "1")]),
    ("mul_mat_vec_bf16_wide", "mul_mat_vec.comp", &[("A_BF16", "1"), ("WIDE16", "1")]),
    ("mul_mat_vec_bf16_wide_shmem", "mul_mat_vec.comp", &[("A_BF16", "1"), ("WIDE16", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_f32_rope", "mul_mat_vec.comp", &[("A_F32", "1"), ("FUSE_ROPE", "1")]),
    ("mul_mat_vec_q4_0_idot_rope", "mul_mat_vec.comp", &[("A_Q4_0", "1"), ("INT_DOT", "1"), ("FUSE_ROPE", "1")]),
    ("mul_mat_vec_q8_0_idot_rope", "mul_mat_vec.comp", &[("A_Q8_0", "1"), ("INT_DOT", "1"), ("FUSE_ROPE", "1")]),
    ("mul_mat_vec_q4_k_idot_rope", "mul_mat_vec_k.comp", &[("Q4K", "1"), ("INT_DOT", "1"), ("FUSE_ROPE", "1")]),
    ("mul_mat_vec_q5_k_idot_rope", "mul_mat_vec_k.comp", &[("Q5K", "1"), ("INT_DOT", "1"), ("FUSE_ROPE", "1")]),
    ("mul_mat_vec_q6_k_idot_rope", "mul_mat_vec_k.comp", &[("Q6K", "1"), ("INT_DOT", "1"), ("FUSE_ROPE", "1")]),
    (
        "mul_mat_vec_q4_k_idot_wide_rope",
        "mul_mat_vec_k.comp",
        &[("Q4K", "1"), ("INT_DOT", "1"), ("WIDE", "1"), ("FUSE_ROPE", "1")],
    ),
    (
        "mul_mat_vec_q5_k_idot_wide_rope",
        "mul_mat_vec_k.comp",
        &[("Q5K", "1"), ("INT_DOT", "1"), ("WIDE", "1"), ("FUSE_ROPE", "1")],
    ),
    ("mul_mat_vec_q4_0_idot_shmem", "mul_mat_vec.comp", &[("A_Q4_0", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q4_1_idot", "mul_mat_vec.comp", &[("A_Q4_1", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_q4_1_idot_shmem", "mul_mat_vec.comp", &[("A_Q4_1", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q4_1_idot_w32", "mul_mat_vec.comp", &[("A_Q4_1", "1"), ("INT_DOT", "1"), ("A_WORDS32", "1")]),
    (
        "mul_mat_vec_q4_1_idot_w32_shmem",
        "mul_mat_vec.comp",
        &[("A_Q4_1", "1"), ("INT_DOT", "1"), ("A_WORDS32", "1"), ("NO_SUBGROUPS", "1")],
    ),
    ("mul_mat_vec_q5_0_idot", "mul_mat_vec.comp", &[("A_Q5_0", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_q5_0_idot_shmem", "mul_mat_vec.comp", &[("A_Q5_0", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q5_1_idot", "mul_mat_vec.comp", &[("A_Q5_1", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_q5_1_idot_shmem", "mul_mat_vec.comp", &[("A_Q5_1", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q5_1_idot_w32", "mul_mat_vec.comp", &[("A_Q5_1", "1"), ("INT_DOT", "1"), ("A_WORDS32", "1")]),
    (
        "mul_mat_vec_q5_1_idot_w32_shmem",
        "mul_mat_vec.comp",
        &[("A_Q5_1", "1"), ("INT_DOT", "1"), ("A_WORDS32", "1"), ("NO_SUBGROUPS", "1")],
    ),
    ("mul_mat_vec_iq4_nl_idot", "mul_mat_vec.comp", &[("A_IQ4_NL", "1"), ("INT_DOT", "1")]),
    (
        "mul_mat_vec_iq4_nl_idot_shmem",
        "mul_mat_vec.comp",
        &[("A_IQ4_NL", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")],
    ),
    ("mul_mat_vec_mxfp4_idot", "mul_mat_vec.comp", &[("A_MXFP4", "1"), ("INT_DOT", "1")]),
    ("mul_mat_vec_mxfp4_idot_shmem", "mul_mat_vec.comp", &[("A_MXFP4", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q8_0_idot_shmem", "mul_mat_vec.comp", &[("A_Q8_0", "1"), ("INT_DOT", "1"), ("NO_SUBGROUPS", "1")]),
    ("quantize_q8_1", "quantize_q8_1.comp", &[]),
    ("narrow_f16", "narrow_f16.comp", &[]),
    ("narrow_f16_vec", "narrow_f16.comp", &[("VEC8", "1")]),
    ("dequant_f16_q4_0", "dequant_f16.comp", &[("SRC_Q4_0", "1")]),
    ("dequant_f16_q8_0", "dequant_f16.comp", &[("SRC_Q8_0", "1")]),
    ("dequant_f16_q4_k", "dequant_f16.comp", &[("SRC_Q4_K", "1")]),
    ("quantize_q8_k", "quantize_q8_k.comp", &[]),
    ("round_act_q8_0", "round_act.comp", &[("R_Q8_0", "1")]),
    ("round_act_q8_k", "round_act.comp", &[("R_Q8_K", "1")]),
    ("round_act_bf16", "round_act.comp", &[("R_BF16", "1")]),
    ("mul_mat_f32", "mul_mat.comp", &[("A_F32", "1")]),
    ("mul_mat_f16", "mul_mat.comp", &[("A_F16", "1")]),
    ("mul_mat_bf16", "mul_mat.comp", &[("A_BF16", "1")]),
    ("mul_mat_q4_0", "mul_mat.comp", &[("A_Q4_0", "1")]),
    ("mul_mat_q8_0", "mul_mat.comp", &[("A_Q8_0", "1")]),
    ("mul_mat_q4_0_bq8", "mul_mat.comp", &[("A_Q4_0", "1"), ("B_Q8", "1")]),
    ("mul_mat_q8_0_bq8", "mul_mat.comp", &[("A_Q8_0", "1"), ("B_Q8", "1")]),
    ("mul_mat_cm_f16", "mul_mat_cm.comp", &[("A_F16", "1")]),
    ("mul_mat_cm_q4_0", "mul_mat_cm.comp", &[("A_Q4_0", "1")]),
    ("mul_mat_cm_q8_0", "mul_mat_cm.comp", &[("A_Q8_0", "1")]),
    ("mul_mat_cm_q4_k", "mul_mat_cm.comp", &[("A_Q4_K", "1")]),
    ("mul_mat_cm_q4_k_vec", "mul_mat_cm.comp", &[("A_Q4_K", "1"), ("A_Q4_K_VEC", "1")]),
    ("mul_mat_cm_q6_k", "mul_mat_cm.comp", &[("A_Q6_K", "1")]),
    ("mul_mat_cm_id_f16", "mul_mat_cm.comp", &[("A_F16", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_cm_id_q4_0", "mul_mat_cm.comp", &[("A_Q4_0", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_cm_id_q8_0", "mul_mat_cm.comp", &[("A_Q8_0", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_cm_id_q4_k", "mul_mat_cm.comp", &[("A_Q4_K", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_cm_id_q4_k_vec", "mul_mat_cm.comp", &[("A_Q4_K", "1"), ("A_Q4_K_VEC", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_cm_id_q6_k", "mul_mat_cm.comp", &[("A_Q6_K", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_cm_id64_f16", "mul_mat_cm.comp", &[("A_F16", "1"), ("MUL_MAT_ID", "1"), ("ID_BN64", "1")]),
    ("mul_mat_cm_id64_q4_0", "mul_mat_cm.comp", &[("A_Q4_0", "1"), ("MUL_MAT_ID", "1"), ("ID_BN64", "1")]),
    ("mul_mat_cm_id64_q8_0", "mul_mat_cm.comp", &[("A_Q8_0", "1"), ("MUL_MAT_ID", "1"), ("ID_BN64", "1")]),
    ("mul_mat_cm_id64_q4_k", "mul_mat_cm.comp", &[("A_Q4_K", "1"), ("MUL_MAT_ID", "1"), ("ID_BN64", "1")]),
    (
        "mul_mat_cm_id64_q4_k_vec",
        "mul_mat_cm.comp",
        &[("A_Q4_K", "1"), ("A_Q4_K_VEC", "1"), ("MUL_MAT_ID", "1"), ("ID_BN64", "1")],
    ),
    ("mul_mat_cm_id64_q6_k", "mul_mat_cm.comp", &[("A_Q6_K", "1"), ("MUL_MAT_ID", "1"), ("ID_BN64", "1")]),
    ("mul_mat_cmq_q4_0", "mul_mat_cmq.comp", &[("A_Q4_0", "1")]),
    ("mul_mat_cm2_f16", "mul_mat_cm2.comp", &[("A_F16", "1")]),
    ("mul_mat_cm2_f16_add", "mul_mat_cm2.comp", &[("A_F16", "1"), ("FUSE_ADD", "1")]),
    ("peak_f16", "peak_coopmat.comp", &[("INT8", "0"), ("SMEM", "0")]),
    ("peak_f16_smem", "peak_coopmat.comp", &[("INT8", "0"), ("SMEM", "1")]),
    ("peak_s8", "peak_coopmat.comp", &[("INT8", "1"), ("SMEM", "0")]),
    ("peak_s8_smem", "peak_coopmat.comp", &[("INT8", "1"), ("SMEM", "1")]),
    ("stream_probe", "stream_probe.comp", &[]),
    ("stream_q4_0_split", "stream_q4_0_split.comp", &[]),
    ("stream_q4_0_staged", "stream_q4_0_staged.comp", &[]),
    ("mul_mat_cm16", "mul_mat_cm16.comp", &[]),
    ("mul_mat_cm16_add", "mul_mat_cm16.comp", &[("FUSE_ADD", "1")]),
    ("mul_mat_cm16_glu", "mul_mat_cm16.comp", &[("FUSE_GLU", "1")]),
    ("mul_mat_cm2_f16_glu", "mul_mat_cm2.comp", &[("A_F16", "1"), ("FUSE_GLU", "1")]),
    ("mul_mat_cm2_q8_0", "mul_mat_cm2.comp", &[("A_Q8_0", "1")]),
    ("mul_mat_cm2_q4_k", "mul_mat_cm2.comp", &[("A_Q4_K", "1")]),
    ("mul_mat_cm2_q5_k", "mul_mat_cm2.comp", &[("A_Q5_K", "1")]),
    ("mul_mat_cm2_q6_k", "mul_mat_cm2.comp", &[("A_Q6_K", "1")]),
    ("flash_attn_cm_d64", "flash_attn_cm.comp", &[("D", "64u")]),
    ("flash_attn_cm_d80", "flash_attn_cm.comp", &[("D", "80u")]),
    ("flash_attn_cm_d96", "flash_attn_cm.comp", &[("D", "96u")]),
    ("flash_attn_cm_d112", "flash_attn_cm.comp", &[("D", "112u")]),
    ("flash_attn_cm_d128", "flash_attn_cm.comp", &[("D", "128u")]),
    ("fa_mask_flags", "fa_mask_flags.comp", &[]),
    ("flash_attn_cm2_d64", "flash_attn_cm2.comp", &[("D", "64u")]),
    ("flash_attn_cm2_d80", "flash_attn_cm2.comp", &[("D", "80u")]),
    ("flash_attn_cm2_d96", "flash_attn_cm2.comp", &[("D", "96u")]),
    ("flash_attn_cm2_d112", "flash_attn_cm2.comp", &[("D", "112u")]),
    ("flash_attn_cm2_d128", "flash_attn_cm2.comp", &[("D", "128u")]),
    ("flash_attn_cm2s_d64", "flash_attn_cm2.comp", &[("D", "64u"), ("SPLIT", "1")]),
    ("flash_attn_cm2s_d80", "flash_attn_cm2.comp", &[("D", "80u"), ("SPLIT", "1")]),
    ("flash_attn_cm2s_d96", "flash_attn_cm2.comp", &[("D", "96u"), ("SPLIT", "1")]),
    ("flash_attn_cm2s_d112", "flash_attn_cm2.comp", &[("D", "112u"), ("SPLIT", "1")]),
    ("flash_attn_cm2s_d128", "flash_attn_cm2.comp", &[("D", "128u"), ("SPLIT", "1")]),
    ("flash_attn_cm2_q8_0_d64", "flash_attn_cm2.comp", &[("D", "64u"), ("KV_Q8_0", "1")]),
    ("flash_attn_cm2s_q8_0_d64", "flash_attn_cm2.comp", &[("D", "64u"), ("SPLIT", "1"), ("KV_Q8_0", "1")]),
    ("flash_attn_cm2_q8_0_d96", "flash_attn_cm2.comp", &[("D", "96u"), ("KV_Q8_0", "1")]),
    ("flash_attn_cm2s_q8_0_d96", "flash_attn_cm2.comp", &[("D", "96u"), ("SPLIT", "1"), ("KV_Q8_0", "1")]),
    ("flash_attn_cm2_q8_0_d128", "flash_attn_cm2.comp", &[("D", "128u"), ("KV_Q8_0", "1")]),
    ("flash_attn_cm2s_q8_0_d128", "flash_attn_cm2.comp", &[("D", "128u"), ("SPLIT", "1"), ("KV_Q8_0", "1")]),
    ("flash_attn_cm2_q4_0_d64", "flash_attn_cm2.comp", &[("D", "64u"), ("KV_Q4_0", "1")]),
    ("flash_attn_cm2s_q4_0_d64", "flash_attn_cm2.comp", &[("D", "64u"), ("SPLIT", "1"), ("KV_Q4_0", "1")]),
    ("flash_attn_cm2_q4_0_d96", "flash_attn_cm2.comp", &[("D", "96u"), ("KV_Q4_0", "1")]),
    ("flash_attn_cm2s_q4_0_d96", "flash_attn_cm2.comp", &[("D", "96u"), ("SPLIT", "1"), ("KV_Q4_0", "1")]),
    ("flash_attn_cm2_q4_0_d128", "flash_attn_cm2.comp", &[("D", "128u"), ("KV_Q4_0", "1")]),
    ("flash_attn_cm2s_q4_0_d128", "flash_attn_cm2.comp", &[("D", "128u"), ("SPLIT", "1"), ("KV_Q4_0", "1")]),
    ("mul_mat_cmq_q8_0", "mul_mat_cmq.comp", &[("A_Q8_0", "1")]),
    ("rope_f32", "rope.comp", &[]),
    ("rope_f16", "rope.comp", &[("X_F16", "1")]),
    ("rope_f32_cache_f16", "rope.comp", &[("CACHE", "1"), ("CACHE_F16", "1")]),
    ("rope_f32_cache_f32", "rope.comp", &[("CACHE", "1"), ("CACHE_F32", "1")]),
    ("rope_f16_cache_f16", "rope.comp", &[("X_F16", "1"), ("CACHE", "1"), ("CACHE_F16", "1")]),
    ("rope_f32_scaled", "rope.comp", &[("SCALED", "1")]),
    // -- elementwise: binary, unary, glu, cpy --
    ("binary_f32", "binary.comp", &[]),
    ("binary_f16", "binary.comp", &[("A_F16", "1"), ("B_F16", "1"), ("D_F16", "1")]),
    ("binary_f16_f32_f16", "binary.comp", &[("A_F16", "1"), ("D_F16", "1")]),
    ("binary_f16_f32_f32", "binary.comp", &[("A_F16", "1")]),
    ("unary_f32", "unary.comp", &[]),
    ("unary_f16", "unary.comp", &[("X_F16", "1")]),
    ("glu_f32", "glu.comp", &[]),
    ("glu_f16", "glu.comp", &[("X_F16", "1")]),
    ("glu_f32_qx", "glu.comp", &[("EMIT_QX", "1")]),
    ("glu_f32_q8k", "glu.comp", &[("EMIT_Q8K", "1")]),
    ("cpy_32_32", "cpy.comp", &[]),
    ("cpy_32_16", "cpy.comp", &[("D_F16", "1")]),
    ("cpy_16_32", "cpy.comp", &[("S_F16", "1")]),
    ("cpy_16_16", "cpy.comp", &[("S_RAW16", "1"), ("D_RAW16", "1")]),
    ("cpy_bf16_32", "cpy.comp", &[("S_BF16", "1")]),
    ("cpy_32_bf16", "cpy.comp", &[("D_BF16", "1")]),
    ("cpy_bf16_16", "cpy.comp", &[("S_BF16", "1"), ("D_F16", "1")]),
    ("cpy_16_bf16", "cpy.comp", &[("S_F16", "1"), ("D_BF16", "1")]),
    ("cpy_f32_i32", "cpy.comp", &[("D_I32", "1")]),
    ("cpy_i32_f32", "cpy.comp", &[("S_I32", "1")]),
    ("cpy_t_32_32", "cpy.comp", &[("TILED", "1")]),
    ("cpy_t_32_16", "cpy.comp", &[("D_F16", "1"), ("TILED", "1")]),
    ("cpy_t_16_32", "cpy.comp", &[("S_F16", "1"), ("TILED", "1")]),
    ("cpy_t_16_16", "cpy.comp", &[("S_RAW16", "1"), ("D_RAW16", "1"), ("TILED", "1")]),
    ("cpy_t_bf16_32", "cpy.comp", &[("S_BF16", "1"), ("TILED", "1")]),
    ("cpy_t_32_bf16", "cpy.comp", &[("D_BF16", "1"), ("TILED", "1")]),
    ("cpy_t_bf16_16", "cpy.comp", &[("S_BF16", "1"), ("D_F16", "1"), ("TILED", "1")]),
    ("cpy_t_16_bf16", "cpy.comp", &[("S_F16", "1"), ("D_BF16", "1"), ("TILED", "1")]),
    ("cpy_t_f32_i32", "cpy.comp", &[("D_I32", "1"), ("TILED", "1")]),
    ("cpy_t_i32_f32", "cpy.comp", &[("S_I32", "1"), ("TILED", "1")]),
    ("cpy_f32_q8_0", "cpy_q.comp", &[("DST_Q8_0", "1")]),
    ("cpy_f32_q4_0", "cpy_q.comp", &[("DST_Q4_0", "1")]),
    ("cpy_f16_q8_0", "cpy_q.comp", &[("SRC_F16", "1"), ("DST_Q8_0", "1")]),
    ("cpy_f16_q4_0", "cpy_q.comp", &[("SRC_F16", "1"), ("DST_Q4_0", "1")]),
    ("cpy_q8_0_f32", "cpy_q.comp", &[("SRC_Q8_0", "1")]),
    ("cpy_q4_0_f32", "cpy_q.comp", &[("SRC_Q4_0", "1")]),
    ("cpy_blocks", "cpy_q.comp", &[("COPY_BLOCKS", "1")]),
    ("cpy_f32_q4_1", "cpy_q.comp", &[("DST_Q4_1", "1")]),
    ("cpy_f32_q5_0", "cpy_q.comp", &[("DST_Q5_0", "1")]),
    ("cpy_f32_q5_1", "cpy_q.comp", &[("DST_Q5_1", "1")]),
    ("cpy_f32_iq4_nl", "cpy_q.comp", &[("DST_IQ4_NL", "1")]),
    ("cpy_f16_q4_1", "cpy_q.comp", &[("SRC_F16", "1"), ("DST_Q4_1", "1")]),
    ("cpy_f16_q5_0", "cpy_q.comp", &[("SRC_F16", "1"), ("DST_Q5_0", "1")]),
    ("cpy_f16_q5_1", "cpy_q.comp", &[("SRC_F16", "1"), ("DST_Q5_1", "1")]),
    ("cpy_f16_iq4_nl", "cpy_q.comp", &[("SRC_F16", "1"), ("DST_IQ4_NL", "1")]),
    ("cpy_bf16_q8_0", "cpy_q.comp", &[("SRC_BF16", "1"), ("DST_Q8_0", "1")]),
    ("cpy_bf16_q4_0", "cpy_q.comp", &[("SRC_BF16", "1"), ("DST_Q4_0", "1")]),
    ("cpy_bf16_q4_1", "cpy_q.comp", &[("SRC_BF16", "1"), ("DST_Q4_1", "1")]),
    ("cpy_bf16_q5_0", "cpy_q.comp", &[("SRC_BF16", "1"), ("DST_Q5_0", "1")]),
    ("cpy_bf16_q5_1", "cpy_q.comp", &[("SRC_BF16", "1"), ("DST_Q5_1", "1")]),
    ("cpy_bf16_iq4_nl", "cpy_q.comp", &[("SRC_BF16", "1"), ("DST_IQ4_NL", "1")]),
    // -- norm, softmax, rows --
    ("rms_norm_f32", "rms_norm.comp", &[]),
    ("rms_norm_f32_shmem", "rms_norm.comp", &[("NO_SUBGROUPS", "1")]),
    ("rms_norm_mul_f32", "rms_norm.comp", &[("FUSE_MUL", "1")]),
    ("rms_norm_mul_f32_shmem", "rms_norm.comp", &[("FUSE_MUL", "1"), ("NO_SUBGROUPS", "1")]),
    ("rms_norm_mul_add_f32", "rms_norm.comp", &[("FUSE_MUL", "1"), ("FUSE_ADD", "1")]),
    ("rms_norm_mul_add_f32_shmem", "rms_norm.comp", &[("FUSE_MUL", "1"), ("FUSE_ADD", "1"), ("NO_SUBGROUPS", "1")]),
    ("rms_norm_mul_f32_qx", "rms_norm.comp", &[("FUSE_MUL", "1"), ("EMIT_QX", "1")]),
    ("rms_norm_mul_f32_q8k", "rms_norm.comp", &[("FUSE_MUL", "1"), ("EMIT_Q8K", "1")]),
    ("rms_norm_mul_f32_f16", "rms_norm.comp", &[("FUSE_MUL", "1"), ("EMIT_F16", "1")]),
    ("soft_max_f32", "soft_max.comp", &[]),
    ("soft_max_f32_shmem", "soft_max.comp", &[("NO_SUBGROUPS", "1")]),
    ("soft_max_f32_mask_f16", "soft_max.comp", &[("MASK_F16", "1")]),
    ("soft_max_f32_mask_f16_shmem", "soft_max.comp", &[("MASK_F16", "1"), ("NO_SUBGROUPS", "1")]),
    ("get_rows_f32", "get_rows.comp", &[("SRC_F32", "1")]),
    ("get_rows_f16", "get_rows.comp", &[("SRC_F16", "1")]),
    ("get_rows_q4_0", "get_rows.comp", &[("SRC_Q4_0", "1")]),
    ("get_rows_q8_0", "get_rows.comp", &[("SRC_Q8_0", "1")]),
    ("set_rows_f32_f32", "set_rows.comp", &[]),
    ("set_rows_f32_f16", "set_rows.comp", &[("DST_F16", "1")]),
    ("set_rows_f32_f16_vec4", "set_rows.comp", &[("DST_F16", "1"), ("VEC4", "1")]),
    ("set_rows_f16_f32", "set_rows.comp", &[("SRC_F16", "1")]),
    ("set_rows_f16_f16", "set_rows.comp", &[("SRC_F16", "1"), ("DST_F16", "1")]),
    ("set_rows_f32_f32_tile", "set_rows.comp", &[("TILE", "1")]),
    ("set_rows_f32_f16_tile", "set_rows.comp", &[("DST_F16", "1"), ("TILE", "1")]),
    ("set_rows_f32_bf16_tile", "set_rows.comp", &[("DST_BF16", "1"), ("TILE", "1")]),
    ("set_rows_f16_f32_tile", "set_rows.comp", &[("SRC_F16", "1"), ("TILE", "1")]),
    ("set_rows_f16_f16_tile", "set_rows.comp", &[("SRC_F16", "1"), ("DST_F16", "1"), ("TILE", "1")]),
    ("set_rows_f16_bf16_tile", "set_rows.comp", &[("SRC_F16", "1"), ("DST_BF16", "1"), ("TILE", "1")]),
    ("set_rows_f32_q8_0", "set_rows_q.comp", &[("DST_Q8_0", "1")]),
    ("set_rows_f32_q4_0", "set_rows_q.comp", &[("DST_Q4_0", "1")]),
    ("set_rows_f16_q8_0", "set_rows_q.comp", &[("SRC_F16", "1"), ("DST_Q8_0", "1")]),
    ("set_rows_f16_q4_0", "set_rows_q.comp", &[("SRC_F16", "1"), ("DST_Q4_0", "1")]),
    ("set_rows_f32_bf16", "set_rows.comp", &[("DST_BF16", "1")]),
    ("set_rows_f16_bf16", "set_rows.comp", &[("SRC_F16", "1"), ("DST_BF16", "1")]),
    ("set_rows_f32_q4_1", "set_rows_q.comp", &[("DST_Q4_1", "1")]),
    ("set_rows_f32_q5_0", "set_rows_q.comp", &[("DST_Q5_0", "1")]),
    ("set_rows_f32_q5_1", "set_rows_q.comp", &[("DST_Q5_1", "1")]),
    ("set_rows_f32_iq4_nl", "set_rows_q.comp", &[("DST_IQ4_NL", "1")]),
    ("set_rows_f16_q4_1", "set_rows_q.comp", &[("SRC_F16", "1"), ("DST_Q4_1", "1")]),
    ("set_rows_f16_q5_0", "set_rows_q.comp", &[("SRC_F16", "1"), ("DST_Q5_0", "1")]),
    ("set_rows_f16_q5_1", "set_rows_q.comp", &[("SRC_F16", "1"), ("DST_Q5_1", "1")]),
    ("set_rows_f16_iq4_nl", "set_rows_q.comp", &[("SRC_F16", "1"), ("DST_IQ4_NL", "1")]),
    // -- Q1_0, Q2_0, NVFP4: quantizing writes (SET_ROWS, CPY) and block moves --
    ("set_rows_f32_q1_0", "set_rows_q.comp", &[("DST_Q1_0", "1")]),
    ("set_rows_f32_q2_0", "set_rows_q.comp", &[("DST_Q2_0", "1")]),
    ("set_rows_f32_nvfp4", "set_rows_q.comp", &[("DST_NVFP4", "1")]),
    ("set_rows_f16_q1_0", "set_rows_q.comp", &[("SRC_F16", "1"), ("DST_Q1_0", "1")]),
    ("set_rows_f16_q2_0", "set_rows_q.comp", &[("SRC_F16", "1"), ("DST_Q2_0", "1")]),
    ("set_rows_f16_nvfp4", "set_rows_q.comp", &[("SRC_F16", "1"), ("DST_NVFP4", "1")]),
    ("cpy_f32_q1_0", "cpy_q.comp", &[("DST_Q1_0", "1")]),
    ("cpy_f32_q2_0", "cpy_q.comp", &[("DST_Q2_0", "1")]),
    ("cpy_f32_nvfp4", "cpy_q.comp", &[("DST_NVFP4", "1")]),
    ("cpy_f16_q1_0", "cpy_q.comp", &[("SRC_F16", "1"), ("DST_Q1_0", "1")]),
    ("cpy_f16_q2_0", "cpy_q.comp", &[("SRC_F16", "1"), ("DST_Q2_0", "1")]),
    ("cpy_f16_nvfp4", "cpy_q.comp", &[("SRC_F16", "1"), ("DST_NVFP4", "1")]),
    // -- attention --
    ("flash_attn", "flash_attn.comp", &[]),
    ("flash_attn_decode", "flash_attn_decode.comp", &[]),
    ("flash_attn_reduce", "flash_attn_reduce.comp", &[]),
    ("flash_attn_reduce_qx", "flash_attn_reduce.comp", &[("EMIT_QX", "1")]),
    ("flash_attn_reduce_q8k", "flash_attn_reduce.comp", &[("EMIT_Q8K", "1")]),
    // -- reductions --
    ("reduce_sum", "reduce.comp", &[]),
    ("reduce_argmax", "reduce.comp", &[("ARGMAX", "1")]),
    // -- mixture of experts: MUL_MAT_ID through the mat-vec kernels (expert per workgroup z, read from ids) --
    ("mul_mat_vec_f32_id", "mul_mat_vec.comp", &[("A_F32", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_f16_id", "mul_mat_vec.comp", &[("A_F16", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q4_0_id", "mul_mat_vec.comp", &[("A_Q4_0", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q8_0_id", "mul_mat_vec.comp", &[("A_Q8_0", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_f32_id_shmem", "mul_mat_vec.comp", &[("A_F32", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_f16_id_shmem", "mul_mat_vec.comp", &[("A_F16", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_bf16_id", "mul_mat_vec.comp", &[("A_BF16", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_bf16_id_shmem", "mul_mat_vec.comp", &[("A_BF16", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q4_0_id_shmem", "mul_mat_vec.comp", &[("A_Q4_0", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q8_0_id_shmem", "mul_mat_vec.comp", &[("A_Q8_0", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q4_0_idot_id", "mul_mat_vec.comp", &[("A_Q4_0", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q8_0_idot_id", "mul_mat_vec.comp", &[("A_Q8_0", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q4_1_idot_id", "mul_mat_vec.comp", &[("A_Q4_1", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q5_0_idot_id", "mul_mat_vec.comp", &[("A_Q5_0", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q5_1_idot_id", "mul_mat_vec.comp", &[("A_Q5_1", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_iq4_nl_idot_id", "mul_mat_vec.comp", &[("A_IQ4_NL", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_mxfp4_idot_id", "mul_mat_vec.comp", &[("A_MXFP4", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    (
        "mul_mat_vec_q4_0_idot_id_shmem",
        "mul_mat_vec.comp",
        &[("A_Q4_0", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_q8_0_idot_id_shmem",
        "mul_mat_vec.comp",
        &[("A_Q8_0", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    ("mul_mat_vec_q4_k_id", "mul_mat_vec_k.comp", &[("Q4K", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q5_k_id", "mul_mat_vec_k.comp", &[("Q5K", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q6_k_id", "mul_mat_vec_k.comp", &[("Q6K", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q4_k_idot_id", "mul_mat_vec_k.comp", &[("Q4K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q5_k_idot_id", "mul_mat_vec_k.comp", &[("Q5K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q6_k_idot_id", "mul_mat_vec_k.comp", &[("Q6K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q2_k_idot_id", "mul_mat_vec_k.comp", &[("Q2K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_q3_k_idot_id", "mul_mat_vec_k.comp", &[("Q3K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_iq4_xs_idot_id", "mul_mat_vec_k.comp", &[("IQ4XS", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1")]),
    (
        "mul_mat_vec_q4_k_idot_id_shmem",
        "mul_mat_vec_k.comp",
        &[("Q4K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_q5_k_idot_id_shmem",
        "mul_mat_vec_k.comp",
        &[("Q5K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_q6_k_idot_id_shmem",
        "mul_mat_vec_k.comp",
        &[("Q6K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_q4_1_idot_id_shmem",
        "mul_mat_vec.comp",
        &[("A_Q4_1", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_q5_0_idot_id_shmem",
        "mul_mat_vec.comp",
        &[("A_Q5_0", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_q5_1_idot_id_shmem",
        "mul_mat_vec.comp",
        &[("A_Q5_1", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_iq4_nl_idot_id_shmem",
        "mul_mat_vec.comp",
        &[("A_IQ4_NL", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_mxfp4_idot_id_shmem",
        "mul_mat_vec.comp",
        &[("A_MXFP4", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_q2_k_idot_id_shmem",
        "mul_mat_vec_k.comp",
        &[("Q2K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_q3_k_idot_id_shmem",
        "mul_mat_vec_k.comp",
        &[("Q3K", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    (
        "mul_mat_vec_iq4_xs_idot_id_shmem",
        "mul_mat_vec_k.comp",
        &[("IQ4XS", "1"), ("INT_DOT", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")],
    ),
    ("mul_mat_vec_q4_k_id_shmem", "mul_mat_vec_k.comp", &[("Q4K", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q5_k_id_shmem", "mul_mat_vec_k.comp", &[("Q5K", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_vec_q6_k_id_shmem", "mul_mat_vec_k.comp", &[("Q6K", "1"), ("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_id_map", "mul_mat_id_map.comp", &[]),
    // -- OUT_PROD --
    ("out_prod_f32", "out_prod.comp", &[("A_F32", "1")]),
    ("out_prod_f16", "out_prod.comp", &[("A_F16", "1")]),
    ("out_prod_bf16", "out_prod.comp", &[("A_BF16", "1")]),
    ("out_prod_q4_0", "out_prod.comp", &[("A_Q4_0", "1")]),
    ("out_prod_q8_0", "out_prod.comp", &[("A_Q8_0", "1")]),
    ("mul_mat_id_f32", "mul_mat_id_tiled.comp", &[("A_F32", "1")]),
    ("mul_mat_id_f16", "mul_mat_id_tiled.comp", &[("A_F16", "1")]),
    ("mul_mat_id_bf16", "mul_mat_id_tiled.comp", &[("A_BF16", "1")]),
    ("mul_mat_id_q4_0", "mul_mat_id_tiled.comp", &[("A_Q4_0", "1")]),
    ("mul_mat_id_q8_0", "mul_mat_id_tiled.comp", &[("A_Q8_0", "1")]),
    ("mul_mat_id_q4_0_bq8", "mul_mat_id_tiled.comp", &[("A_Q4_0", "1"), ("B_Q8", "1")]),
    ("mul_mat_id_q8_0_bq8", "mul_mat_id_tiled.comp", &[("A_Q8_0", "1"), ("B_Q8", "1")]),
    ("add_id", "add_id.comp", &[]),
    ("argsort", "argsort.comp", &[]),
    ("argsort_big", "argsort_big.comp", &[]),
    // -- data movement, scans, convolution helpers, pooling, resampling --
    ("movement_32", "movement.comp", &[]),
    ("movement_16", "movement.comp", &[("E16", "1")]),
    ("movement_8", "movement.comp", &[("E8", "1")]),
    ("col2im_1d_f32", "col2im_1d.comp", &[]),
    ("col2im_1d_f16", "col2im_1d.comp", &[("X_F16", "1")]),
    ("col2im_1d_bf16", "col2im_1d.comp", &[("X_BF16", "1")]),
    ("cumsum", "cumsum.comp", &[]),
    ("im2col_f32", "im2col.comp", &[]),
    ("im2col_f32_f16", "im2col.comp", &[("D_F16", "1")]),
    ("im2col_f16", "im2col.comp", &[("S_F16", "1"), ("D_F16", "1")]),
    ("pool_f32", "pool.comp", &[]),
    ("upscale_f32", "upscale.comp", &[]),
    ("conv_transpose_1d", "conv_transpose_1d.comp", &[]),
    ("conv_2d_f32", "conv_direct.comp", &[]),
    ("conv_2d_f16", "conv_direct.comp", &[("K_F16", "1")]),
    ("conv_3d_f32", "conv_direct.comp", &[("CONV3D", "1")]),
    ("conv_3d_f16", "conv_direct.comp", &[("CONV3D", "1"), ("K_F16", "1")]),
    ("conv_transpose_2d_f32", "conv_transpose_2d.comp", &[]),
    ("conv_transpose_2d_f16", "conv_transpose_2d.comp", &[("K_F16", "1")]),
    ("timestep_embedding", "timestep_embedding.comp", &[]),
    ("mask_f32", "mask.comp", &[]),
    ("mask_f16", "mask.comp", &[("X_F16", "1")]),
    ("acc", "acc.comp", &[]),
    ("optim", "optim.comp", &[]),
    ("get_rows_back_f32", "get_rows_back.comp", &[]),
    ("get_rows_back_f16", "get_rows_back.comp", &[("S_F16", "1")]),
    ("count_equal", "count_equal.comp", &[]),
    ("row_back", "row_back.comp", &[]),
    ("cross_entropy", "cross_entropy.comp", &[]),
    // -- recurrent models --
    ("ssm_conv", "ssm_conv.comp", &[]),
    ("ssm_scan", "ssm_scan.comp", &[]),
    ("rwkv_wkv6", "wkv.comp", &[]),
    ("gated_linear_attn", "wkv.comp", &[("GLA", "1")]),
    ("rwkv_wkv7", "wkv7.comp", &[]),
    ("gated_delta_net", "gated_delta_net.comp", &[]),
    // -- linear algebra, sparse-attention indexer, hyper-connections --
    ("solve_tri", "solve_tri.comp", &[]),
    ("lightning_indexer", "lightning_indexer.comp", &[]),
    ("lightning_indexer_decode", "lightning_indexer_decode.comp", &[]),
    ("dsv4_hc_pre", "dsv4_hc.comp", &[("HC_PRE", "1")]),
    ("dsv4_hc_post", "dsv4_hc.comp", &[("HC_POST", "1")]),
    ("dsv4_hc_comb", "dsv4_hc.comp", &[("HC_COMB", "1")]),
];

/// Generic dequantizing kernels: (kernel name, source file, defines), compiled once per `shaders/dequant/*.glsl`.
const DQ_KERNELS: &[(&str, &str, Defines)] = &[
    ("mul_mat_vec_dq", "mul_mat_vec_dq.comp", &[]),
    ("mul_mat_vec_dq_shmem", "mul_mat_vec_dq.comp", &[("NO_SUBGROUPS", "1")]),
    ("mul_mat_dq", "mul_mat.comp", &[("A_DQ", "1")]),
    ("mul_mat_cm_dq", "mul_mat_cm.comp", &[("A_DQ", "1")]),
    ("get_rows_dq", "get_rows.comp", &[("SRC_DQ", "1")]),
    ("cpy_dq", "cpy_q.comp", &[("SRC_DQ", "1")]),
    ("dequant_f16_dq", "dequant_f16.comp", &[("SRC_DQ", "1")]),
    ("mul_mat_vec_dq_id", "mul_mat_vec_dq.comp", &[("MUL_MAT_ID", "1")]),
    ("mul_mat_vec_dq_id_shmem", "mul_mat_vec_dq.comp", &[("MUL_MAT_ID", "1"), ("NO_SUBGROUPS", "1")]),
    ("mul_mat_id_dq", "mul_mat_id_tiled.comp", &[("A_DQ", "1")]),
    ("mul_mat_cm_id_dq", "mul_mat_cm.comp", &[("A_DQ", "1"), ("MUL_MAT_ID", "1")]),
    ("mul_mat_cm_id64_dq", "mul_mat_cm.comp", &[("A_DQ", "1"), ("MUL_MAT_ID", "1"), ("ID_BN64", "1")]),
    ("out_prod_dq", "out_prod.comp", &[("A_DQ", "1")]),
];

/// One SPIR-V module to build.
struct Module {
    name: String,
    file: &'static str,
    defines: Defines,
    /// The dequantization include `dq_type.glsl` resolves to (generic kernels only).
    dq: Option<PathBuf>,
}

/// Type names (file stems) of `shaders/dequant/*.glsl`, sorted.
fn dq_types(shader_dir: &Path) -> Vec<(String, PathBuf)> {
    let dir = shader_dir.join("dequant");
    let mut types: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "glsl"))
        .map(|p| (p.file_stem().expect("file stem").to_string_lossy().into_owned(), p))
        .collect();
    types.sort();
    types
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let shader_dir = manifest.join("shaders");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-changed=build.rs");
    // A Rust cdylib has no SONAME by default. Give it the ABI's: `libggvk.so.<major>` (what C programs record as
    // DT_NEEDED; scripts/install.sh installs libggvk.so -> libggvk.so.<major> -> libggvk.so.<major>.<minor>.<patch>).
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libggvk.so.{major}");

    let mut rs = String::from("// Generated by build.rs: SPIR-V of every shader variant.\n");
    let types = dq_types(&shader_dir);
    let mut modules: Vec<Module> = VARIANTS
        .iter()
        .map(|&(name, file, defines)| Module { name: name.to_string(), file, defines, dq: None })
        .collect();
    let mut lookup = String::new();
    for (ty, path) in &types {
        println!("cargo:rerun-if-changed={}", rel(&manifest, path));
        for &(kernel, file, defines) in DQ_KERNELS {
            let name = format!("{kernel}_{ty}");
            // ggml spells the K-quants with a capital K (`q4_K`); the files are lower case (`q4_k.glsl`).
            let ggml_name = ty.strip_suffix("_k").map(|t| format!("{t}_K"));
            let pattern = match ggml_name {
                Some(g) => format!("{ty:?} | {g:?}"),
                None => format!("{ty:?}"),
            };
            writeln!(lookup, "        ({kernel:?}, {pattern}) => ({name:?}, {}),", name.to_uppercase()).expect("write");
            modules.push(Module { name, file, defines, dq: Some(path.clone()) });
        }
    }
    for Module { name, file, defines, dq } in &modules {
        let spv = out.join(format!("{name}.spv"));
        let have = spirv(&shader_dir, name, file, defines, dq.as_deref(), &spv);
        let bytes = if have { format!("include_bytes!({:?})", spv.display().to_string()) } else { "&[]".into() };
        writeln!(rs, "/// SPIR-V of `{name}` ({file}).\npub const {}: &[u8] = {bytes};", name.to_uppercase())
            .expect("string write");
    }
    let all: Vec<String> = modules.iter().map(|m| format!("({:?}, {})", m.name, m.name.to_uppercase())).collect();
    let doc = "/// Every module: name and SPIR-V (empty where built without shaders).";
    writeln!(rs, "{doc}\npub const ALL: &[(&str, &[u8])] = &[{}];", all.join(", ")).expect("string write");
    writeln!(
        rs,
        "/// The generic dequantizing kernel `kernel` (`mul_mat_vec_dq`, `mul_mat_vec_dq_shmem`, `mul_mat_dq`, `mul_mat_cm_dq`, \
         `get_rows_dq`, `cpy_dq`, `dequant_f16_dq`)\n/// for weights of ggml type `ty` (ggml's name, e.g. `q5_0`): module name and SPIR-V, if \
         `shaders/dequant/<ty>.glsl` exists.\npub fn dq_module(kernel: &str, ty: &str) -> Option<(&'static str, \
         &'static [u8])> {{\n    Some(match (kernel, ty) {{\n{lookup}        _ => return None,\n    }})\n}}\n\n\
         /// SPIR-V of [`dq_module`].\npub fn dq_spirv(kernel: &str, ty: &str) -> Option<&'static [u8]> {{\n    \
         dq_module(kernel, ty).map(|(_, spirv)| spirv)\n}}\n\n/// ggml names of the types with a dequantization \
         include.\npub const DQ_TYPES: &[&str] = &{:?};",
        types.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>()
    )
    .expect("string write");
    println!("cargo:rerun-if-changed=shaders/dequant");
    for entry in std::fs::read_dir(&shader_dir).expect("shaders/ exists") {
        let p = entry.expect("dir entry").path();
        println!("cargo:rerun-if-changed={}", rel(&manifest, &p));
    }
    std::fs::write(out.join("shaders.rs"), rs).expect("writing shaders.rs");
}

/// Write the SPIR-V of one variant to `spv`: compiled with shaderc.
#[cfg(feature = "shaders")]
fn spirv(shader_dir: &Path, name: &str, file: &str, defines: Defines, dq: Option<&Path>, spv: &Path) -> bool {
    thread_local! {
        static COMPILER: shaderc::Compiler = shaderc::Compiler::new().expect("shaderc compiler");
    }
    let path = shader_dir.join(file);
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut opts = shaderc::CompileOptions::new().expect("shaderc options");
    // NV_cooperative_matrix2 kernels need SPIR-V 1.6 (Vulkan 1.3 devices: the only ones offering the extension).
    if file == "mul_mat_cm2.comp" || file == "flash_attn_cm2.comp" {
        opts.set_target_env(shaderc::TargetEnv::Vulkan, shaderc::EnvVersion::Vulkan1_3 as u32);
        opts.set_target_spirv(shaderc::SpirvVersion::V1_6);
    } else {
        opts.set_target_env(shaderc::TargetEnv::Vulkan, shaderc::EnvVersion::Vulkan1_2 as u32);
        opts.set_target_spirv(shaderc::SpirvVersion::V1_5);
    }
    opts.set_optimization_level(shaderc::OptimizationLevel::Performance);
    opts.set_warnings_as_errors();
    for (k, v) in defines.iter() {
        opts.add_macro_definition(k, Some(v));
    }
    let dir = shader_dir.to_path_buf();
    let dq = dq.map(Path::to_path_buf);
    opts.set_include_callback(move |requested, _ty, _from, _depth| {
        let p = match (&dq, requested) {
            (Some(dq), "dq_type.glsl") => dq.clone(),
            (None, "dq_type.glsl") => return Err(format!("{requested}: only the generic dequantizing kernels")),
            _ => dir.join(requested),
        };
        std::fs::read_to_string(&p)
            .map(|content| shaderc::ResolvedInclude { resolved_name: p.display().to_string(), content })
            .map_err(|e| format!("{}: {e}", p.display()))
    });
    let art = COMPILER
        .with(|c| c.compile_into_spirv(&source, shaderc::ShaderKind::Compute, file, "main", Some(&opts)))
        .unwrap_or_else(|e| panic!("compiling shader {name} ({file}): {e}"));
    std::fs::write(spv, art.as_binary_u8()).expect("writing SPIR-V");
    true
}

/// Without shaderc: copy the variant's SPIR-V from `GGVK_SPIRV_DIR` (a normal build's OUT_DIR) if it is there.
#[cfg(not(feature = "shaders"))]
fn spirv(_shader_dir: &Path, name: &str, _file: &str, _defines: Defines, _dq: Option<&Path>, spv: &Path) -> bool {
    println!("cargo:rerun-if-env-changed=GGVK_SPIRV_DIR");
    let Ok(dir) = std::env::var("GGVK_SPIRV_DIR") else { return false };
    let from = PathBuf::from(dir).join(format!("{name}.spv"));
    println!("cargo:rerun-if-changed={}", from.display());
    std::fs::copy(&from, spv).is_ok()
}

fn rel(base: &Path, p: &Path) -> String {
    p.strip_prefix(base).unwrap_or(p).display().to_string()
}

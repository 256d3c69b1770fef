// MUL_MAT_ID hook of the mat-vec kernels (mul_mat_vec.comp, mul_mat_vec_dq.comp, mul_mat_vec_k.comp compiled with
// MUL_MAT_ID; ops::matmul_id records them): one workgroup z per (slot, token) pair, z = slot + ne12 * token
// (ne12 = n_used), so the kernels' i12 is the slot and i13 the token. The weights of that pair are expert
// ids[slot, token] of src0 (stride a_s2); b's and dst's batch strides are set by the host (b: slot stride 0 when
// src1 is broadcast over the slots, token stride; dst: slot and token strides). The ids are read on the device
// (the router computed them in the same graph). Broadcast ratios have no meaning here, so the push block's r2, r3,
// pad0 and pad1 carry the ids instead (mirrors ops::matmul_id):
//   r2 = first id (in int32 elements of binding 3), r3 = slot stride, pad0 = token stride, pad1 = n_as (experts).
// An id outside [0, n_as) (ggml asserts it never is) is clamped, so no read leaves the weights.
layout(binding = 3) readonly buffer Ids { int ids[]; };

uint expert_of(uint slot, uint token) {
    const int e = ids[pc.r2 + slot * pc.r3 + token * pc.pad0];
    return uint(clamp(e, 0, int(pc.pad1) - 1));
}

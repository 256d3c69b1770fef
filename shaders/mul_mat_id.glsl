// MUL_MAT_ID hook of the mat-vec kernels (mul_mat_vec.comp, mul_mat_vec_dq.comp, mul_mat_vec_k.comp compiled with
// MUL_MAT_ID; ops::matmul_id records them): one workgroup z per (slot, token) pair, z = slot + ne12 * token
// (ne12 = n_used), so the kernels' i12 is the slot and i13 the token. The weights of that pair are expert
// ids[slot, token] of src0 (stride a_s2); b's and dst's batch strides are set by the host (b: slot stride 0 when
// src1 is broadcast over the slots, token stride; dst: slot and token strides). The ids are read on the device
// (the router computed them in the same graph). Broadcast ratios have no meaning here, so the push block's r2, r3,
// pad0, pad1 and a_s3 carry the ids instead (mirrors ops::matmul_id):
//   r2 = first id (in int32 elements of binding 3), r3 = slot stride, pad0 = token stride,
//   a_s3 = the first expert bound at a_off, pad1 = the number of experts bound.
// Experts too large for one storage window together are bound a range at a time, one dispatch per range; a pair
// whose expert lies outside the range (expert_of >= pad1, an invalid id included) is left to the other dispatches.
layout(binding = 3) readonly buffer Ids { int ids[]; };

// The pair's expert, relative to the first one bound (>= pc.pad1 when it is not bound here).
uint expert_of(uint slot, uint token) {
    return uint(ids[pc.r2 + slot * pc.r3 + token * pc.pad0] - int(pc.a_s3));
}

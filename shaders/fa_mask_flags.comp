#version 450
// What a FLASH_ATTN_EXT mask holds per (block of query rows, tile of keys), for flash_attn_cm2.comp: 0 when every
// entry is -inf (no row of the block sees a key of the tile: the tile is skipped), 2 when every entry is 0 (nothing
// to add), 1 otherwise. Over every mask batch (dims 2 and 3), so one flag serves every head and sequence.
//
// One workgroup of 256 invocations per (tile, block); keys of the tile across invocations (coalesced), rows and
// batches in a loop. Keys past n_kv and rows past n_q are not looked at.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_vote : require
#include "common.glsl"

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer M { uint16_t mask[]; };
layout(binding = 1) writeonly buffer F { uint flags[]; };

// Mirrors ops::flash_attn::MaskFlagsPush (mask offsets and strides in 16-bit words, flags in words).
layout(push_constant) uniform Push {
    uint n_q; uint n_kv; uint rows_per_block; uint bc;
    uint m_off; uint m_s1; uint m_s2; uint m_s3;
    uint m_ne2; uint m_ne3; uint n_tiles; uint f_off;
} pc;

shared uint seen[2];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint t = gl_WorkGroupID.x;
    const uint b = gl_WorkGroupID.y;
    if (tid < 2u) { seen[tid] = 0u; }
    barrier();
    const uint c0 = t * pc.bc;
    const uint keys = min(pc.bc, pc.n_kv - c0);
    const uint q0 = b * pc.rows_per_block;
    const uint qn = min(pc.rows_per_block, pc.n_q - min(pc.n_q, q0));
    const uint per_batch = qn * keys;
    bool live = false;
    bool nonzero = false;
    for (uint e = tid; e < per_batch * pc.m_ne2 * pc.m_ne3; e += 256u) {
        const uint batch = e / per_batch;
        const uint i = e % per_batch;
        const uint row = q0 + i / keys;
        const uint key = c0 + i % keys;
        const uint base = pc.m_off + (batch % pc.m_ne2) * pc.m_s2 + (batch / pc.m_ne2) * pc.m_s3;
        const uint h = uint(mask[base + row * pc.m_s1 + key]);
        // -inf is 0xFC00; +0 and -0 are both zero.
        live = live || h != 0xFC00u;
        nonzero = nonzero || (h & 0x7FFFu) != 0u;
    }
    if (subgroupAny(live) && subgroupElect()) { seen[0] = 1u; }
    if (subgroupAny(nonzero) && subgroupElect()) { seen[1] = 1u; }
    barrier();
    if (tid == 0u) { flags[pc.f_off + b * pc.n_tiles + t] = seen[0] == 0u ? 0u : (seen[1] == 0u ? 2u : 1u); }
}

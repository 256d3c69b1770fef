#version 450
// ARGSORT and TOP_K of rows longer than one workgroup's shared memory holds (argsort.comp sorts the shorter ones):
// the same bitonic network over N (a power of two >= the row's length) slots, (value, index) pairs kept in scratch
// (keys, idx: row r's slots at r * N), in passes chosen by `mode`:
//   0: per block of L slots (workgroup = (row, block)): load the row's values (padding slots past its end),
//      run every stage k = 2..L in shared memory, store the block;
//   1: one compare-exchange step (k, j) with j >= L over the whole row, a thread per pair;
//   2: per block of L slots: the steps j = L/2 .. 1 of stage k in shared memory;
//   3: write the first `count` indices of each row to dst.
// Directions follow the global slot index (a slot i sorts its k-block ascending when (i & k) == 0), so the passes
// together are the one-workgroup network of argsort.comp: same order, ties in index order, padding last.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint L = 1024;

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) buffer K { float keys[]; };
layout(binding = 2) buffer X { uint idx[]; };
layout(binding = 3) writeonly buffer D { int d[]; };

// Mirrors ops::moe::BigSortPush. Offsets and strides in elements.
layout(push_constant) uniform Push {
    uvec4 ne; uvec4 sa; uvec4 sd;
    uint a_off; uint d_off; uint count; uint desc;
    uint rows; uint n; uint k; uint j;
    uint mode; uint k_off; uint x_off; uint pad0;
} pc;

shared float sk[L];
shared uint sx[L];

bool before(float ka, uint ia, float kb, uint ib) {
    const bool pa = ia >= pc.ne.x;
    const bool pb = ib >= pc.ne.x;
    if (pa || pb) { return pa == pb ? ia < ib : pb; }
    if (ka != kb) { return pc.desc != 0u ? ka > kb : ka < kb; }
    return ia < ib;
}

// Row r's first element in src / dst.
uint src_row(uint r) {
    return pc.a_off + (r % pc.ne.y) * pc.sa.y + ((r / pc.ne.y) % pc.ne.z) * pc.sa.z + (r / (pc.ne.y * pc.ne.z)) * pc.sa.w;
}
uint dst_row(uint r) {
    return pc.d_off + (r % pc.ne.y) * pc.sd.y + ((r / pc.ne.y) % pc.ne.z) * pc.sd.z + (r / (pc.ne.y * pc.ne.z)) * pc.sd.w;
}

// Compare-exchange steps j = j0 .. 1 of stage k on the block in shared memory (block's first slot `first`).
void local_steps(uint first, uint k, uint j0) {
    const uint tid = gl_LocalInvocationID.x;
    for (uint j = j0; j > 0u; j >>= 1u) {
        for (uint t = tid; t < L / 2u; t += WG) {
            const uint lo = (t / j) * 2u * j + (t % j);
            const uint hi = lo + j;
            const float kl = sk[lo];
            const float kh = sk[hi];
            const uint il = sx[lo];
            const uint ih = sx[hi];
            const bool up = ((first + lo) & k) == 0u;
            if (up ? before(kh, ih, kl, il) : before(kl, il, kh, ih)) {
                sk[lo] = kh;
                sk[hi] = kl;
                sx[lo] = ih;
                sx[hi] = il;
            }
        }
        barrier();
    }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (pc.mode == 0u || pc.mode == 2u) {
        const uint blocks = pc.n / L;
        const uint row = group / blocks;
        if (row >= pc.rows) { return; }
        const uint first = (group % blocks) * L;
        const uint base = row * pc.n + first;
        if (pc.mode == 0u) {
            const uint src = src_row(row);
            for (uint i = tid; i < L; i += WG) {
                const uint e = first + i;
                sx[i] = e;
                sk[i] = e < pc.ne.x ? a[src + e * pc.sa.x] : 0.0;
            }
        } else {
            for (uint i = tid; i < L; i += WG) {
                sk[i] = keys[pc.k_off + base + i];
                sx[i] = idx[pc.x_off + base + i];
            }
        }
        barrier();
        if (pc.mode == 0u) {
            for (uint k = 2u; k <= L; k <<= 1u) { local_steps(first, k, k >> 1u); }
        } else {
            local_steps(first, pc.k, L >> 1u);
        }
        for (uint i = tid; i < L; i += WG) {
            keys[pc.k_off + base + i] = sk[i];
            idx[pc.x_off + base + i] = sx[i];
        }
    } else if (pc.mode == 1u) {
        const uint t = group * WG + tid;
        const uint half_n = pc.n / 2u;
        const uint row = t / half_n;
        if (row >= pc.rows) { return; }
        const uint tt = t % half_n;
        const uint lo = (tt / pc.j) * 2u * pc.j + (tt % pc.j);
        const uint hi = lo + pc.j;
        const uint b = pc.k_off + row * pc.n;
        const uint c = pc.x_off + row * pc.n;
        const float kl = keys[b + lo];
        const float kh = keys[b + hi];
        const uint il = idx[c + lo];
        const uint ih = idx[c + hi];
        const bool up = (lo & pc.k) == 0u;
        if (up ? before(kh, ih, kl, il) : before(kl, il, kh, ih)) {
            keys[b + lo] = kh;
            keys[b + hi] = kl;
            idx[c + lo] = ih;
            idx[c + hi] = il;
        }
    } else {
        const uint t = group * WG + tid;
        const uint row = t / pc.count;
        if (row >= pc.rows) { return; }
        const uint i = t % pc.count;
        d[dst_row(row) + i * pc.sd.x] = int(idx[pc.x_off + row * pc.n + i]);
    }
}

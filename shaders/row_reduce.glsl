// Workgroup-wide reductions for the one-workgroup-per-row kernels (rms_norm.comp, soft_max.comp): every
// invocation passes one value and gets the reduction over the whole workgroup back.
// The including shader declares `const uint WG` (the workgroup size, a power of two) and `shared float red[WG]`,
// and enables GL_KHR_shader_subgroup_arithmetic unless NO_SUBGROUPS is defined.
// Subgroup path: reduce within each subgroup, one partial per subgroup in `red`, then every invocation adds the
// partials in the same order (so all get the same value). NO_SUBGROUPS: a shared-memory tree.
// Both end with a barrier, so `red` may be reused right away. Call from uniform control flow only.

float wg_sum(float v) {
#ifndef NO_SUBGROUPS
    const float part = subgroupAdd(v);
    if (subgroupElect()) { red[gl_SubgroupID] = part; }
    barrier();
    float t = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; ++i) { t += red[i]; }
#else
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = v;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) { red[tid] += red[tid + s]; }
        barrier();
    }
    const float t = red[0];
#endif
    barrier();
    return t;
}

float wg_max(float v) {
#ifndef NO_SUBGROUPS
    const float part = subgroupMax(v);
    if (subgroupElect()) { red[gl_SubgroupID] = part; }
    barrier();
    float t = red[0];
    for (uint i = 1; i < gl_NumSubgroups; ++i) { t = max(t, red[i]); }
#else
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = v;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
        barrier();
    }
    const float t = red[0];
#endif
    barrier();
    return t;
}

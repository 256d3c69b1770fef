// Handoffs between dispatches without a barrier (src/vk/handoff.rs). A slot holds two words: [0] counts the
// producer's workgroups that are done, [1] is set to 1 by the last of them. The includer defines HANDOFF_BINDING
// (the binding after its own) and HANDOFF_SIGNAL (the producer) or HANDOFF_WAIT (a consumer).
// Polls are volatile loads (L2, no atomic traffic on the word the producer counts in); a wait gives up after
// HANDOFF_MAX_SPINS polls (2^22, about a second; src/vk/handoff.rs says so).
#define HANDOFF_MAX_SPINS 4194304u
layout(binding = HANDOFF_BINDING) volatile coherent buffer Handoff { uint handoff[]; };

#ifdef HANDOFF_SIGNAL
// Called by every invocation of every workgroup after its last store, in uniform control flow (it holds a
// barrier): each invocation fences its stores, then one per workgroup counts the workgroup; the last sets the flag.
void handoff_signal() {
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationIndex == 0u) {
        const uint groups = gl_NumWorkGroups.x * gl_NumWorkGroups.y * gl_NumWorkGroups.z;
        if (atomicAdd(handoff[0], 1u) == groups - 1u) {
            memoryBarrierBuffer();
            atomicExchange(handoff[1], 1u);
        }
    }
}
#endif

#ifdef HANDOFF_WAIT
// Called by every invocation before the first read of the producer's output, in uniform control flow: one
// invocation polls the flag, then fences; the workgroup's barrier holds the others until it is set.
void handoff_wait() {
    if (gl_LocalInvocationIndex == 0u) {
        for (uint i = 0u; i < HANDOFF_MAX_SPINS && handoff[1] == 0u; ++i) {
        }
        memoryBarrierBuffer();
    }
    barrier();
}
#endif

// Push constants of the FLASH_ATTN_EXT kernels (mirrors ops::flash_attn::FlashAttnPush). Offsets and strides: q and
// d in floats; k, v and the mask in 16-bit words.
layout(push_constant) uniform Push {
    uint n_q; uint n_kv; uint ratio; uint n_head_kv;
    uint q_off; uint q_s1; uint q_s2; uint q_s3;
    uint k_off; uint k_s1; uint k_s2; uint k_s3;
    uint v_off; uint v_s1; uint v_s2; uint v_s3;
    uint m_off; uint m_s1; uint m_s2; uint m_s3;
    uint m_ne23; uint flags; uint s_off; uint chunk;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    float scale; float softcap; float e0; float e1;
} pc;

#define FLAG_MASK 1u
#define FLAG_SINKS 2u
#define FLAG_ALIBI 4u
#define FLAG_SPLIT 8u
#define NEG_INF uintBitsToFloat(0xFF800000u)

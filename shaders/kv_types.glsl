// Runtime codes of the K/V cache types (flash attention, lightning indexer); they mirror
// ops::flash_attn::kv_type_code.
#ifndef KV_TYPES_GLSL
#define KV_TYPES_GLSL
#define T_F32 0u
#define T_F16 1u
#define T_Q4_0 2u
#define T_Q8_0 3u
#define T_Q4_1 4u
#define T_Q5_0 5u
#define T_Q5_1 6u
#define T_IQ4_NL 7u
#define T_BF16 8u
#endif // KV_TYPES_GLSL

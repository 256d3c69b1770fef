// The two 16-entry level tables that 4-bit codes index: ggml's kvalues_iq4nl (IQ4_NL, IQ4_XS) and kvalues_mxfp4
// (MXFP4, NVFP4). One source for the kernels' shared-memory copies: level_lut.glsl (8-bit lanes for integer dot
// products) and dq_levels16.glsl (floats for the generic dequantization). Read only when those copies are written.
#ifndef LEVELS16_GLSL
#define LEVELS16_GLSL
const int LEVELS16_IQ4NL[16] = int[16](-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
const int LEVELS16_FP4[16] = int[16](0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
// Invocations of the workgroup: the copies are written in strides of it, so that workgroups of fewer than 16
// invocations (`GGVK_MATVEC_WG=4` or `8`) write every entry too.
#define LEVELS16_WG (gl_WorkGroupSize.x * gl_WorkGroupSize.y * gl_WorkGroupSize.z)
#endif // LEVELS16_GLSL

#version 450
// IM2COL and IM2COL_3D as one 3-D scheme (1-D and 2-D have height / depth 1): dst is contiguous
// [IC * KD * KH * KW, OW, OH, OD * N]; element (k, ow, oh, od + OD * n) with k = ((ic * KD + kd) * KH + kh) * KW + kw
// is the image at (ow * s0 + kw * d0 - p0, oh * s1 + kh * d1 - p1, od * s2 + kd * d2 - p2) of channel ic, batch n,
// or 0 outside the image. One thread per dst element.
// Defines: S_F16 (F16 image, else F32), D_F16 (F16 dst, rounded to nearest even, else F32).
#include "elementwise.glsl"

#ifdef S_F16
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#define LOAD_A(i) half_to_float(uint(a[i]))
#else
layout(binding = 0) readonly buffer A { float a[]; };
#define LOAD_A(i) a[i]
#endif
#ifdef D_F16
layout(binding = 1) writeonly buffer D { uint16_t d[]; };
#if defined(S_F16)
// F16 -> F16 moves the bits.
#define COPY(o, i) d[o] = a[i]
#else
#define COPY(o, i) d[o] = uint16_t(float_to_half(a[i]))
#endif
#define ZERO(o) d[o] = uint16_t(0)
#else
layout(binding = 1) writeonly buffer D { float d[]; };
#define COPY(o, i) d[o] = LOAD_A(i)
#define ZERO(o) d[o] = 0.0
#endif

// Mirrors ops::im2col::Im2ColPush.
layout(push_constant) uniform Push {
    uvec4 k;  // KW, KH, KD, dst row length (IC * KD * KH * KW)
    uvec4 o;  // OW, OH, OD, N
    uvec4 i;  // IW, IH, ID, dst elements
    ivec4 s;  // strides
    ivec4 p;  // padding
    ivec4 dl; // dilation
    uvec4 st; // image strides (elements): width, height, depth, channel
    uint s_n; uint a_off; uint d_off; uint pad0;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.i.w) {
        return;
    }
    const uint k = id % pc.k.w;
    uint r = id / pc.k.w;
    const uint ow = r % pc.o.x;
    r /= pc.o.x;
    const uint oh = r % pc.o.y;
    r /= pc.o.y;
    const uint od = r % pc.o.z;
    const uint n = r / pc.o.z;
    const uint kw = k % pc.k.x;
    uint q = k / pc.k.x;
    const uint kh = q % pc.k.y;
    q /= pc.k.y;
    const uint kd = q % pc.k.z;
    const uint ic = q / pc.k.z;
    const int iw = int(ow) * pc.s.x + int(kw) * pc.dl.x - pc.p.x;
    const int ih = int(oh) * pc.s.y + int(kh) * pc.dl.y - pc.p.y;
    const int idp = int(od) * pc.s.z + int(kd) * pc.dl.z - pc.p.z;
    if (iw < 0 || ih < 0 || idp < 0 || uint(iw) >= pc.i.x || uint(ih) >= pc.i.y || uint(idp) >= pc.i.z) {
        ZERO(pc.d_off + id);
        return;
    }
    const uint src = pc.a_off + uint(iw) * pc.st.x + uint(ih) * pc.st.y + uint(idp) * pc.st.z + ic * pc.st.w + n * pc.s_n;
    COPY(pc.d_off + id, src);
}

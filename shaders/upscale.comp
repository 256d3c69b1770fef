#version 450
// UPSCALE, one thread per dst element (i0, i1, i2, i3): the source plane is (i2 / sf2, i3 / sf3) truncated, and
// within it, by MODE (push constant): 0 nearest (i0 / sf0, i1 / sf1 truncated); 1 bilinear between the clamped
// neighbours of (i + po) / sf - po, weights clamped to [0, 1]; 2 bicubic (alpha -0.75, clamped taps); 3 bilinear
// with ggml's antialiasing triangle filter over the source pixels within `support` of (i + po) / sf. The
// arithmetic is ggml's CPU one, term by term (`precise`, no fused multiply-adds), with correctly rounded divisions.
#include "elementwise.glsl"
#include "div_rn.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };

// Mirrors ops::upscale::UpscalePush.
layout(push_constant) uniform Push {
    uvec4 ne;   // dst shape
    uvec4 s_d;  // dst strides
    uvec4 ne_a; // src0 shape
    uvec4 s_a;  // src0 strides
    vec4 sf;    // scale factors
    float po; uint mode; uint a_off; uint d_off;
    uint n; float support0; float support1; float invscale0;
    float invscale1; uint pad0; uint pad1; uint pad2;
} pc;

uint plane_base;

float px(int x, int y) {
    return a[plane_base + uint(x) * pc.s_a.x + uint(y) * pc.s_a.y];
}

// Source index of dst index i along a dim scaled by s, truncated and kept inside the source.
uint nearest(uint i, float s, uint n) {
    return min(uint(div_rn(float(i), s)), n - 1u);
}

float weight1(float x) {
    const float al = -0.75;
    precise float w = ((al + 2.0) * x - (al + 3.0)) * x * x + 1.0;
    return w;
}

float weight2(float x) {
    const float al = -0.75;
    precise float w = ((al * x - 5.0 * al) * x + 8.0 * al) * x - 4.0 * al;
    return w;
}

float bicubic(float p0, float p1, float p2, float p3, float x) {
    const float w0 = weight2(x + 1.0);
    const float w1 = weight1(x + 0.0);
    const float w2 = weight1(1.0 - x);
    const float w3 = weight2(2.0 - x);
    precise float v = p0 * w0 + p1 * w1 + p2 * w2 + p3 * w3;
    return v;
}

float triangle(float x) {
    const float t = 1.0 - abs(x);
    return t < 0.0 ? 0.0 : t;
}

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint i0 = id % pc.ne.x;
    uint r = id / pc.ne.x;
    const uint i1 = r % pc.ne.y;
    r /= pc.ne.y;
    const uint i2 = r % pc.ne.z;
    const uint i3 = r / pc.ne.z;
    const uint i02 = nearest(i2, pc.sf.z, pc.ne_a.z);
    const uint i03 = nearest(i3, pc.sf.w, pc.ne_a.w);
    plane_base = pc.a_off + i02 * pc.s_a.z + i03 * pc.s_a.w;
    const int w = int(pc.ne_a.x);
    const int h = int(pc.ne_a.y);
    float val;
    if (pc.mode == 0u) {
        val = px(int(nearest(i0, pc.sf.x, pc.ne_a.x)), int(nearest(i1, pc.sf.y, pc.ne_a.y)));
    } else if (pc.mode == 1u) {
        const float y = div_rn(float(i1) + pc.po, pc.sf.y) - pc.po;
        const int y0 = clamp(int(floor(y)), 0, h - 1);
        const int y1 = clamp(int(floor(y)) + 1, 0, h - 1);
        const float dy = clamp(y - float(y0), 0.0, 1.0);
        const float x = div_rn(float(i0) + pc.po, pc.sf.x) - pc.po;
        const int x0 = clamp(int(floor(x)), 0, w - 1);
        const int x1 = clamp(int(floor(x)) + 1, 0, w - 1);
        const float dx = clamp(x - float(x0), 0.0, 1.0);
        precise float v = px(x0, y0) * (1.0 - dx) * (1.0 - dy) + px(x1, y0) * dx * (1.0 - dy)
            + px(x0, y1) * (1.0 - dx) * dy + px(x1, y1) * dx * dy;
        val = v;
    } else if (pc.mode == 2u) {
        const float y = div_rn(float(i1) + pc.po, pc.sf.y) - pc.po;
        const int y0 = int(floor(y));
        const float dy = y - float(y0);
        const float x = div_rn(float(i0) + pc.po, pc.sf.x) - pc.po;
        const int x0 = int(floor(x));
        const float dx = x - float(x0);
        float rows[4];
        for (int j = 0; j < 4; ++j) {
            const int yy = clamp(y0 + j - 1, 0, h - 1);
            rows[j] = bicubic(px(clamp(x0 - 1, 0, w - 1), yy), px(clamp(x0, 0, w - 1), yy),
                              px(clamp(x0 + 1, 0, w - 1), yy), px(clamp(x0 + 2, 0, w - 1), yy), dx);
        }
        val = bicubic(rows[0], rows[1], rows[2], rows[3], dy);
    } else {
        const float y = div_rn(float(i1) + pc.po, pc.sf.y);
        const float x = div_rn(float(i0) + pc.po, pc.sf.x);
        // ggml converts these bounds to integers by truncation before clamping them.
        const int x_min = max(int(x - pc.support0 + pc.po), 0);
        const int x_max = min(int(x + pc.support0 + pc.po), w);
        const int y_min = max(int(y - pc.support1 + pc.po), 0);
        const int y_max = min(int(y + pc.support1 + pc.po), h);
        float acc = 0.0;
        float total = 0.0;
        for (int sy = y_min; sy < y_max; ++sy) {
            const float wy = triangle((float(sy) - y + pc.po) * pc.invscale1);
            for (int sx = x_min; sx < x_max; ++sx) {
                const float wx = triangle((float(sx) - x + pc.po) * pc.invscale0);
                const float wt = wx * wy;
                if (wt <= 0.0) {
                    continue;
                }
                precise float t = acc + px(sx, sy) * wt;
                acc = t;
                total += wt;
            }
        }
        val = total > 0.0 ? div_rn(acc, total) : acc;
    }
    d[pc.d_off + i0 * pc.s_d.x + i1 * pc.s_d.y + i2 * pc.s_d.z + i3 * pc.s_d.w] = val;
}

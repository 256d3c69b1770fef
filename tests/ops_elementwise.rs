//! Elementwise kernels (ADD, MUL, SCALE, SILU, SWIGLU, CPY) against CPU references that follow ggml's CPU
//! backend, on the default Vulkan device (lavapipe in CI), validation on. Tensors are views with explicit
//! strides into buffers mirrored on the host: permuted, transposed, padded and in-place cases, broadcasts,
//! every supported type combination; bytes a kernel must not write are checked to be untouched.

mod common;

use std::sync::Arc;

use common::*;
use ggvk::graph::{GluOp, UnaryOp};
use ggvk::quant::GgmlType;
use ggvk::vk::Buffer;
use ggvk::{Backend, Error, Graph, Node, Op, Tensor};
use half::f16;

// ---------------------------------------------------------------------------------------------------------
// Host mirrors of device buffers and strided views

/// A strided view, as ggml describes tensors.
#[derive(Clone, Copy, Debug)]
struct View {
    ty: GgmlType,
    offset: u64,
    ne: [i64; 4],
    nb: [u64; 4],
}

impl View {
    fn contiguous(ty: GgmlType, offset: u64, ne: [i64; 4]) -> Self {
        View { ty, offset, ne, nb: Tensor::contiguous_strides(ty, ne).unwrap() }
    }

    /// ggml_permute(t, p0, p1, p2, p3): source dim i becomes dim p[i].
    fn permute(self, p: [usize; 4]) -> Self {
        let mut ne = [0; 4];
        let mut nb = [0; 4];
        for i in 0..4 {
            ne[p[i]] = self.ne[i];
            nb[p[i]] = self.nb[i];
        }
        View { ne, nb, ..self }
    }

    /// ggml_view_4d of this view: `ne` elements with this view's strides (a padded sub-block).
    fn sub(self, ne: [i64; 4]) -> Self {
        View { ne, ..self }
    }

    fn n(&self) -> usize {
        self.ne.iter().product::<i64>() as usize
    }

    fn byte(&self, idx: [i64; 4]) -> usize {
        (self.offset + (0..4).map(|d| idx[d] as u64 * self.nb[d]).sum::<u64>()) as usize
    }

    /// Index of the element with linear id `k` in logical (row-major, dim 0 innermost) order.
    fn index(&self, mut k: usize) -> [i64; 4] {
        self.ne.map(|n| {
            let i = k % n as usize;
            k /= n as usize;
            i as i64
        })
    }

    /// Byte end of the view (one past its last byte).
    fn end(&self) -> u64 {
        if self.n() == 0 {
            return self.offset;
        }
        self.offset + self.ty.type_size() as u64 + (0..4).map(|d| (self.ne[d] as u64 - 1) * self.nb[d]).sum::<u64>()
    }
}

/// A device buffer and the host's copy of what it should hold.
struct Mem {
    buf: Arc<Buffer>,
    host: Vec<u8>,
}

impl Mem {
    /// A buffer of `len` bytes filled with random bytes of type `ty` (valid finite values for F16/F32).
    fn random(be: &Backend, rng: &mut Rng, ty: GgmlType, len: usize, lo: f32, hi: f32) -> Mem {
        let mut host = vec![0u8; len];
        match ty {
            GgmlType::F32 => {
                for c in host.chunks_exact_mut(4) {
                    c.copy_from_slice(&uniform(rng, lo, hi).to_ne_bytes());
                }
            }
            GgmlType::F16 => {
                for c in host.chunks_exact_mut(2) {
                    c.copy_from_slice(&f16::from_f32(uniform(rng, lo, hi)).to_ne_bytes());
                }
            }
            _ => {
                for b in host.iter_mut() {
                    *b = rng.next_u64() as u8;
                }
            }
        }
        Mem::from_bytes(be, host)
    }

    fn from_bytes(be: &Backend, host: Vec<u8>) -> Mem {
        let buf = be.alloc(host.len().max(4) as u64).unwrap();
        buf.write(0, &host).unwrap();
        Mem { buf, host }
    }

    fn tensor(&self, v: View) -> Tensor {
        Tensor::new(self.buf.clone(), v.offset, v.ty, v.ne, v.nb).unwrap()
    }

    /// The element at `idx` of `v`, as f32.
    fn get(&self, v: &View, idx: [i64; 4]) -> f32 {
        let o = v.byte(idx);
        let b = &self.host[o..];
        match v.ty {
            GgmlType::F32 => f32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            GgmlType::F16 => f16::from_ne_bytes([b[0], b[1]]).to_f32(),
            ty => panic!("get on {}", ty.name()),
        }
    }

    /// The element's raw bits (zero-extended).
    fn bits(&self, v: &View, idx: [i64; 4]) -> u32 {
        let o = v.byte(idx);
        let b = &self.host[o..];
        match v.ty.type_size() {
            2 => u32::from(u16::from_ne_bytes([b[0], b[1]])),
            4 => u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            s => panic!("bits of {s}-byte elements"),
        }
    }

    /// Write an element's raw bits into the host copy (the expected contents).
    fn set_bits(&mut self, v: &View, idx: [i64; 4], bits: u32) {
        let o = v.byte(idx);
        match v.ty.type_size() {
            2 => self.host[o..o + 2].copy_from_slice(&(bits as u16).to_ne_bytes()),
            4 => self.host[o..o + 4].copy_from_slice(&bits.to_ne_bytes()),
            s => panic!("set_bits of {s}-byte elements"),
        }
    }

    /// The device's bytes now.
    fn download(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.host.len()];
        self.buf.read(0, &mut out).unwrap();
        out
    }
}

fn uniform(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + (rng.f32() + 1.0) * 0.5 * (hi - lo)
}

/// Bits of `x` stored as `ty` (ggml's CPU conversion: round to nearest even for F16).
fn to_bits(ty: GgmlType, x: f32) -> u32 {
    match ty {
        GgmlType::F32 => x.to_bits(),
        GgmlType::F16 => u32::from(f16::from_f32(x).to_bits()),
        t => panic!("to_bits {}", t.name()),
    }
}

fn from_bits(ty: GgmlType, b: u32) -> f32 {
    match ty {
        GgmlType::F32 => f32::from_bits(b),
        GgmlType::F16 => f16::from_bits(b as u16).to_f32(),
        t => panic!("from_bits {}", t.name()),
    }
}

/// Compare the device copy of `mem` with the expected host bytes: outside `dst` bit for bit (nothing else
/// was written), inside `dst` with `cmp(index, got_bits, want_bits)`.
fn verify(mem: &Mem, dst: &View, what: &str, cmp: impl Fn([i64; 4], u32, u32) -> Result<(), String>) {
    let got = mem.download();
    let dev = Mem { buf: mem.buf.clone(), host: got };
    let es = dst.ty.type_size();
    let mut inside = vec![false; mem.host.len()];
    for k in 0..dst.n() {
        let idx = dst.index(k);
        let o = dst.byte(idx);
        inside[o..o + es].iter_mut().for_each(|b| *b = true);
        if let Err(e) = cmp(idx, dev.bits(dst, idx), mem.bits(dst, idx)) {
            panic!("{what}: dst{idx:?}: {e}");
        }
    }
    for (i, (g, w)) in dev.host.iter().zip(&mem.host).enumerate() {
        assert!(inside[i] || g == w, "{what}: byte {i} outside dst was overwritten ({w:#x} -> {g:#x})");
    }
}

fn exact(ty: GgmlType) -> impl Fn([i64; 4], u32, u32) -> Result<(), String> {
    move |_, g, w| {
        if g == w {
            Ok(())
        } else {
            Err(format!("got {} ({g:#x}), want {} ({w:#x})", from_bits(ty, g), from_bits(ty, w)))
        }
    }
}

fn run(be: &Backend, nodes: Vec<Node>) {
    let mut g = Graph::new();
    for n in nodes {
        g.push(n).unwrap();
    }
    be.compute(&g).unwrap();
}

fn node(op: Op, src: &[&Tensor], dst: &Tensor) -> Node {
    Node { op, src: src.iter().map(|t| Some((*t).clone())).collect(), dst: dst.clone() }
}

fn push_err(n: Node) -> Error {
    Graph::new().push(n).expect_err("node should have been refused")
}

const PERMS: [[usize; 4]; 5] = [[0, 1, 2, 3], [1, 0, 2, 3], [0, 2, 1, 3], [2, 0, 1, 3], [1, 2, 0, 3]];

/// A view of shape `ne` laid out as `layout` selects: 0 contiguous, 1 padded sub-block of a larger tensor,
/// 2 transposed storage, 3 permuted storage (dims stored in another order), 4 element stride of 2.
/// Returns the view and the bytes its buffer needs. `base` is its byte offset.
fn layout_view(ty: GgmlType, ne: [i64; 4], layout: usize, base: u64) -> (View, usize) {
    let es = ty.type_size() as u64;
    let v = match layout {
        0 => View::contiguous(ty, base, ne),
        1 => View::contiguous(ty, base, [ne[0] * 3, ne[1] * 2, ne[2] + 1, ne[3]]).sub(ne),
        2 | 3 => {
            // Stored with dims in the order `p` applied backwards, then permuted back to `ne`.
            let p = PERMS[if layout == 2 { 1 } else { 3 }];
            let mut sne = [0; 4];
            for i in 0..4 {
                sne[i] = ne[p[i]];
            }
            let v = View::contiguous(ty, base, sne).permute(p);
            assert_eq!(v.ne, ne);
            v
        }
        4 => {
            let mut v = View::contiguous(ty, base, [ne[0] * 2, ne[1], ne[2], ne[3]]).sub(ne);
            v.nb[0] = 2 * es;
            v
        }
        _ => unreachable!(),
    };
    let end = v.end().max(base + es);
    (v, (end as usize + 8).next_multiple_of(8))
}

// ---------------------------------------------------------------------------------------------------------
// ADD / MUL

#[derive(Clone, Copy)]
struct BinCase {
    a_ty: GgmlType,
    b_ty: GgmlType,
    d_ty: GgmlType,
    ne: [i64; 4],
    ne_b: [i64; 4],
    a_layout: usize,
    b_layout: usize,
    d_layout: usize,
}

/// One ADD, MUL, SUB and DIV of `c`, each in its own buffers (src0 and dst share one, src1 has its own),
/// compared bit for bit with ggml's CPU arithmetic (f32 op, then rounding to dst's type); DIV within one ulp of
/// dst's type (Vulkan allows 2.5 ulp for f32 division; lavapipe rounds correctly).
fn bin_case(be: &Backend, rng: &mut Rng, c: BinCase) {
    for op in [Op::Add, Op::Mul, Op::Sub, Op::Div] {
        let (va, la) = layout_view(c.a_ty, c.ne, c.a_layout, 16);
        let (vd, ld) = layout_view(c.d_ty, c.ne, c.d_layout, la as u64);
        let (vb, lb) = layout_view(c.b_ty, c.ne_b, c.b_layout, 4);
        let (lo, hi) = if matches!(op, Op::Mul | Op::Div) { (0.9, 1.1) } else { (-1.0, 1.0) };
        let mut m = Mem::random(be, rng, c.a_ty, ld.next_multiple_of(4), lo, hi);
        // dst's region holds random bits of its own type (F16 dst may share with F32 src0 bytes: fine).
        let mb = Mem::random(be, rng, c.b_ty, lb.next_multiple_of(4), lo, hi);
        let (ta, tb, td) = (m.tensor(va), mb.tensor(vb), m.tensor(vd));
        run(be, vec![node(op.clone(), &[&ta, &tb], &td)]);
        // Expected: computed from the host copy before the dst writes land.
        let mut want = Vec::with_capacity(va.n());
        for k in 0..va.n() {
            let idx = va.index(k);
            let bidx = [0, 1, 2, 3].map(|d| idx[d] % c.ne_b[d]);
            let (x, y) = (m.get(&va, idx), mb.get(&vb, bidx));
            let v = match op {
                Op::Add => x + y,
                Op::Mul => x * y,
                Op::Sub => x - y,
                _ => x / y,
            };
            want.push(to_bits(c.d_ty, v));
        }
        for (k, w) in want.into_iter().enumerate() {
            m.set_bits(&vd, vd.index(k), w);
        }
        let what = format!(
            "{} {}x{}->{} ne{:?} ne_b{:?} layouts a{} b{} d{}",
            op.name(),
            c.a_ty.name(),
            c.b_ty.name(),
            c.d_ty.name(),
            c.ne,
            c.ne_b,
            c.a_layout,
            c.b_layout,
            c.d_layout
        );
        let ex = exact(c.d_ty);
        let is_div = matches!(op, Op::Div);
        verify(&m, &vd, &what, |idx, g, w| if is_div && g.abs_diff(w) <= 1 { Ok(()) } else { ex(idx, g, w) });
    }
}

#[test]
fn add_mul_broadcast_shapes() {
    let be = backend();
    let mut rng = Rng::new(101);
    let f = GgmlType::F32;
    let src0 = [10, 5, 4, 3];
    let shapes: &[([i64; 4], [i64; 4])] = &[
        (src0, [10, 1, 2, 3]),
        (src0, [1, 1, 1, 1]),
        (src0, src0),
        (src0, [5, 5, 4, 3]),
        (src0, [2, 1, 1, 1]),
        (src0, [10, 5, 1, 1]),
        (src0, [1, 5, 1, 3]),
        (src0, [10, 1, 1, 1]),
        ([20, 10, 8, 6], [10, 5, 4, 3]),
        ([1, 1, 8, 1], [1, 1, 8, 1]),
        ([32, 1, 1, 1], [1, 1, 1, 1]),
        ([1, 1, 320, 320], [1, 1, 320, 320]),
        ([1280, 16, 16, 1], [1280, 1, 1, 1]),
        ([16, 16, 1280, 1], [1, 1, 1280, 1]),
        ([33, 7, 3, 2], [33, 1, 3, 1]),
        ([33, 7, 3, 2], [1, 7, 1, 2]),
        ([1, 1, 1, 1], [1, 1, 1, 1]),
        ([7, 1, 1, 1], [7, 1, 1, 1]),
    ];
    for &(ne, ne_b) in shapes {
        bin_case(&be, &mut rng, BinCase { a_ty: f, b_ty: f, d_ty: f, ne, ne_b, a_layout: 0, b_layout: 0, d_layout: 0 });
    }
    assert_no_validation_errors();
}

#[test]
fn add_mul_every_type_combination() {
    use GgmlType::{F16, F32};
    let be = backend();
    let mut rng = Rng::new(102);
    for (a_ty, b_ty, d_ty) in [(F32, F32, F32), (F16, F16, F16), (F16, F32, F16), (F16, F32, F32)] {
        for (ne, ne_b) in
            [([10, 5, 4, 3], [10, 1, 2, 3]), ([10, 5, 4, 3], [10, 5, 4, 3]), ([33, 7, 3, 2], [33, 1, 1, 1])]
        {
            for (a_layout, b_layout, d_layout) in [(0, 0, 0), (3, 2, 1), (1, 3, 2)] {
                bin_case(&be, &mut rng, BinCase { a_ty, b_ty, d_ty, ne, ne_b, a_layout, b_layout, d_layout });
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn add_mul_permuted_transposed_strided_views() {
    let be = backend();
    let mut rng = Rng::new(103);
    let f = GgmlType::F32;
    for (ne, ne_b) in [
        ([10, 5, 4, 3], [10, 5, 4, 3]),
        ([10, 5, 4, 3], [10, 1, 2, 3]),
        ([10, 5, 4, 3], [1, 5, 4, 1]),
        ([7, 9, 2, 1], [7, 9, 2, 1]),
        ([16, 3, 5, 2], [16, 1, 5, 1]),
    ] {
        for a_layout in 0..5 {
            for b_layout in 0..5 {
                let d_layout = (a_layout + b_layout) % 5;
                bin_case(&be, &mut rng, BinCase { a_ty: f, b_ty: f, d_ty: f, ne, ne_b, a_layout, b_layout, d_layout });
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn add_mul_in_place_and_chains() {
    // dst == src0 (ggml_add_inplace), repeated 16 times in one graph (test-backend-ops' nf = 16 chains):
    // each node reads what the previous one wrote.
    let be = backend();
    let mut rng = Rng::new(104);
    for (ty, b_ty) in [(GgmlType::F32, GgmlType::F32), (GgmlType::F16, GgmlType::F32), (GgmlType::F16, GgmlType::F16)] {
        for (ne, ne_b, layout) in
            [([16, 5, 4, 3], [16, 5, 4, 3], 0), ([10, 5, 4, 3], [10, 1, 2, 1], 1), ([6, 5, 4, 3], [6, 5, 1, 3], 3)]
        {
            for mul in [false, true] {
                let (va, la) = layout_view(ty, ne, layout, 0);
                let mut m = Mem::random(&be, &mut rng, ty, la.next_multiple_of(4), 0.9, 1.1);
                let ta = m.tensor(va);
                let mut bs = Vec::new();
                let mut nodes = Vec::new();
                for _ in 0..16 {
                    let vb = View::contiguous(b_ty, 0, ne_b);
                    let mb = Mem::random(&be, &mut rng, b_ty, vb.end().next_multiple_of(4) as usize, 0.9, 1.1);
                    let tb = mb.tensor(vb);
                    nodes.push(node(if mul { Op::Mul } else { Op::Add }, &[&ta, &tb], &ta));
                    bs.push((mb, vb));
                }
                run(&be, nodes);
                for (mb, vb) in &bs {
                    for k in 0..va.n() {
                        let idx = va.index(k);
                        let y = mb.get(vb, [0, 1, 2, 3].map(|d| idx[d] % ne_b[d]));
                        let x = m.get(&va, idx);
                        let r = to_bits(ty, if mul { x * y } else { x + y });
                        m.set_bits(&va, idx, r);
                    }
                }
                verify(&m, &va, &format!("in-place chain {} {} {ne:?} mul {mul}", ty.name(), b_ty.name()), exact(ty));
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn add_mul_overlapping_sources() {
    // test-backend-ops' src_overlap: src0 and src1 are overlapping views of one buffer, dst another view of it
    // at src0's place (not in place: dst is its own tensor in ggml, here the rows src0 covers).
    let be = backend();
    let mut rng = Rng::new(105);
    for ne in [[10i64, 5, 4, 6], [10, 5, 4, 5], [1, 1, 120, 120]] {
        for mul in [false, true] {
            let full = View::contiguous(GgmlType::F32, 0, ne);
            let sub = [ne[0], ne[1], ne[2], 2 * (ne[3] / 3)];
            let va = full.sub(sub);
            let vb = View { offset: (ne[3] / 3) as u64 * full.nb[3], ..full.sub(sub) };
            let m = Mem::random(&be, &mut rng, GgmlType::F32, full.end() as usize, 0.9, 1.1);
            let out = Mem::random(&be, &mut rng, GgmlType::F32, va.end() as usize, 0.0, 1.0);
            let vd = View::contiguous(GgmlType::F32, 0, sub);
            let (ta, tb, td) = (m.tensor(va), m.tensor(vb), out.tensor(vd));
            run(&be, vec![node(if mul { Op::Mul } else { Op::Add }, &[&ta, &tb], &td)]);
            let mut want = Mem { buf: out.buf.clone(), host: out.host.clone() };
            for k in 0..vd.n() {
                let idx = vd.index(k);
                let (x, y) = (m.get(&va, idx), m.get(&vb, idx));
                want.set_bits(&vd, idx, (if mul { x * y } else { x + y }).to_bits());
            }
            verify(&want, &vd, &format!("overlap {ne:?}"), exact(GgmlType::F32));
        }
    }
    assert_no_validation_errors();
}

#[test]
fn add_more_workgroups_than_one_dimension_holds() {
    // ggml's {1, 1, 65536, 1} x {256, 1, 1, 1} case: 16.7M elements, 65536 workgroups of 256 (more than
    // maxComputeWorkGroupCount[0] on many devices), src1 broadcast along dim 0.
    let be = backend();
    let mut rng = Rng::new(106);
    let ne = [256i64, 1, 65536, 1];
    let ne_b = [1i64, 1, 65536, 1];
    let va = View::contiguous(GgmlType::F32, 0, ne);
    let vb = View::contiguous(GgmlType::F32, 0, ne_b);
    let mut m = Mem::random(&be, &mut rng, GgmlType::F32, va.end() as usize, -1.0, 1.0);
    let mb = Mem::random(&be, &mut rng, GgmlType::F32, vb.end() as usize, -1.0, 1.0);
    let (ta, tb) = (m.tensor(va), mb.tensor(vb));
    run(&be, vec![node(Op::Add, &[&ta, &tb], &ta)]);
    for k in 0..va.n() {
        let idx = va.index(k);
        let r = m.get(&va, idx) + mb.get(&vb, [0, 0, idx[2], 0]);
        m.set_bits(&va, idx, r.to_bits());
    }
    verify(&m, &va, "large add", exact(GgmlType::F32));
    assert_no_validation_errors();
}

#[test]
fn binary_bad_nodes_are_refused() {
    let be = backend();
    let mut rng = Rng::new(107);
    let m = Mem::random(&be, &mut rng, GgmlType::F32, 1 << 14, -1.0, 1.0);
    let t = |ty: GgmlType, ne: [i64; 4]| m.tensor(View::contiguous(ty, 0, ne));
    let a = t(GgmlType::F32, [10, 5, 4, 3]);
    // src1 dims must divide src0's.
    let e = push_err(node(Op::Add, &[&a, &t(GgmlType::F32, [3, 1, 1, 1])], &a));
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = push_err(node(Op::Mul, &[&a, &t(GgmlType::F32, [10, 5, 4, 6])], &a));
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    // dst has src0's shape.
    let e = push_err(node(Op::Add, &[&a, &a], &t(GgmlType::F32, [10, 5, 4, 1])));
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    // Types ggml's CPU does not combine this way.
    let e = push_err(node(Op::Add, &[&a, &t(GgmlType::F16, [10, 5, 4, 3])], &a));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let h = t(GgmlType::F16, [10, 5, 4, 3]);
    let e = push_err(node(Op::Add, &[&h, &h], &a));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let q = t(GgmlType::Q8_0, [32, 2, 1, 1]);
    let e = push_err(node(Op::Add, &[&q, &t(GgmlType::F32, [32, 1, 1, 1])], &q));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    // A stride that is not a whole number of elements.
    let odd = m.tensor(View { nb: [4, 6, 60, 240], ..View::contiguous(GgmlType::F32, 0, [1, 10, 4, 3]) });
    let e = push_err(node(Op::Add, &[&odd, &odd], &odd));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    // Missing src1.
    let e = push_err(Node { op: Op::Add, src: vec![Some(a.clone())], dst: a.clone() });
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// SCALE / SILU

/// f64 reference silu.
fn silu64(x: f32) -> f64 {
    let x = f64::from(x);
    x / (1.0 + (-x).exp())
}

/// |got - want| within `rel` of want, or both below 1e-35: for x < -87.3, exp(-|x|) is an f32 denormal that
/// GPUs may flush to zero, so silu(x) (at most 1e-36 in magnitude there) may come out as -0.
fn close(got: f32, want: f64, rel: f64) -> Result<(), String> {
    let g = f64::from(got);
    if g.is_nan() || (g - want).abs() > rel * want.abs() + 1e-35 {
        return Err(format!("got {got:e}, want {want:e}"));
    }
    Ok(())
}

/// Within one f16 ulp of the f16 rounding of `want`.
fn close_f16(got_bits: u32, want: f64) -> Result<(), String> {
    let g = f16::from_bits(got_bits as u16);
    let w = f16::from_f64(want);
    let ulp = (f64::from(w.to_f32()).abs() * 2f64.powi(-10)).max(2f64.powi(-24));
    if g.is_nan() || (f64::from(g.to_f32()) - f64::from(w.to_f32())).abs() > ulp {
        return Err(format!("got {g} ({got_bits:#x}), want {w} ({:#x}) from {want:e}", w.to_bits()));
    }
    Ok(())
}

/// One SCALE or SILU node over `ne` with the given layouts (in place when `in_place`).
fn unary_case(
    be: &Backend,
    rng: &mut Rng,
    op: Op,
    ty: GgmlType,
    ne: [i64; 4],
    layouts: (usize, usize),
    in_place: bool,
) {
    let (va, la) = layout_view(ty, ne, layouts.0, 8);
    let (vd, ld) = if in_place { (va, la) } else { layout_view(ty, ne, layouts.1, la as u64) };
    let mut m = Mem::random(be, rng, ty, ld.max(la).next_multiple_of(4), -150.0, 150.0);
    let (ta, td) = (m.tensor(va), m.tensor(vd));
    run(be, vec![node(op.clone(), &[&ta], &td)]);
    let xs: Vec<f32> = (0..va.n()).map(|k| m.get(&va, va.index(k))).collect();
    let what = format!("{op:?} {} {ne:?} layouts {layouts:?} in place {in_place}", ty.name());
    match op {
        Op::Scale { s, b } => {
            // ggml: x * s when b == 0; otherwise fused (vector path) or unfused (tail) multiply-add.
            let mut alt = Vec::new();
            for (k, &x) in xs.iter().enumerate() {
                let (w, w2) = if b == 0.0 { (x * s, x * s) } else { (x.mul_add(s, b), x * s + b) };
                m.set_bits(&vd, vd.index(k), w.to_bits());
                alt.push(w2.to_bits());
            }
            verify(&m, &vd, &what, |idx, g, w| {
                let k = (0..4).rev().fold(0usize, |acc, d| acc * ne[d] as usize + idx[d] as usize);
                if g == w || g == alt[k] {
                    Ok(())
                } else {
                    Err(format!("got {}, want {}", f32::from_bits(g), f32::from_bits(w)))
                }
            });
        }
        Op::Unary(UnaryOp::Silu) => {
            let mut want = Vec::new();
            for (k, &x) in xs.iter().enumerate() {
                want.push(silu64(x));
                m.set_bits(&vd, vd.index(k), to_bits(ty, silu64(x) as f32));
            }
            verify(&m, &vd, &what, |idx, g, _| {
                let k = (0..4).rev().fold(0usize, |acc, d| acc * ne[d] as usize + idx[d] as usize);
                if ty == GgmlType::F16 {
                    close_f16(g, want[k])
                } else {
                    close(f32::from_bits(g), want[k], 5e-5)
                }
            });
        }
        _ => unreachable!(),
    }
}

#[test]
fn scale_and_bias_contiguous_strided_in_place() {
    let be = backend();
    let mut rng = Rng::new(201);
    for (s, b) in [(2.0, 0.0), (2.0, 1.0), (-0.37, 0.125), (0.5, -3.0)] {
        for ne in [[10i64, 10, 10, 10], [100, 10, 10, 10], [5, 7, 11, 13], [1, 1, 1, 1]] {
            unary_case(&be, &mut rng, Op::Scale { s, b }, GgmlType::F32, ne, (0, 0), false);
            unary_case(&be, &mut rng, Op::Scale { s, b }, GgmlType::F32, ne, (0, 0), true);
        }
        for layouts in [(1, 0), (2, 1), (3, 4), (4, 2), (1, 1)] {
            unary_case(&be, &mut rng, Op::Scale { s, b }, GgmlType::F32, [6, 5, 4, 3], layouts, false);
        }
        unary_case(&be, &mut rng, Op::Scale { s, b }, GgmlType::F32, [6, 5, 4, 3], (3, 3), true);
    }
    assert_no_validation_errors();
}

#[test]
fn silu_f32_f16_shapes_and_views() {
    let be = backend();
    let mut rng = Rng::new(202);
    for ty in [GgmlType::F32, GgmlType::F16] {
        for ne in [[128i64, 2, 2, 2], [5, 7, 11, 13]] {
            // test-backend-ops: contiguous, and v = 1 (a padded view of a larger tensor).
            unary_case(&be, &mut rng, Op::Unary(UnaryOp::Silu), ty, ne, (0, 0), false);
            unary_case(&be, &mut rng, Op::Unary(UnaryOp::Silu), ty, ne, (1, 0), false);
        }
        for layouts in [(2, 0), (3, 1), (4, 4), (0, 2)] {
            unary_case(&be, &mut rng, Op::Unary(UnaryOp::Silu), ty, [9, 4, 3, 2], layouts, false);
        }
        unary_case(&be, &mut rng, Op::Unary(UnaryOp::Silu), ty, [9, 4, 3, 2], (0, 0), true);
        unary_case(&be, &mut rng, Op::Unary(UnaryOp::Silu), ty, [9, 4, 3, 2], (1, 1), true);
    }
    assert_no_validation_errors();
}

#[test]
fn silu_large_magnitudes_no_nan() {
    let be = backend();
    let xs: Vec<f32> = vec![
        0.0, -0.0, 1.0, -1.0, 20.0, -20.0, 88.0, -88.0, 88.8, -88.8, 100.0, -100.0, 104.0, -104.0, 150.0, -150.0, 1e4,
        -1e4, 3e38, -3e38, 1e-30, -1e-30, 1e-45, -1e-45,
    ];
    for ty in [GgmlType::F32, GgmlType::F16] {
        let xs: Vec<f32> = xs
            .iter()
            .copied()
            .filter(|x| ty == GgmlType::F32 || x.abs() < 6e4)
            .map(|x| if ty == GgmlType::F16 { f16::from_f32(x).to_f32() } else { x })
            .collect();
        let n = xs.len() as i64;
        let bytes: Vec<u8> = match ty {
            GgmlType::F32 => f32_bytes(&xs),
            _ => xs.iter().flat_map(|&x| f16::from_f32(x).to_ne_bytes()).collect(),
        };
        let a = upload(&be, ty, [n, 1, 1, 1], &bytes);
        let buf = be.alloc(bytes.len() as u64).unwrap();
        let d = Tensor::contiguous(buf, 0, ty, [n, 1, 1, 1]).unwrap();
        run(&be, vec![node(Op::Unary(UnaryOp::Silu), &[&a], &d)]);
        let mut out = vec![0u8; bytes.len()];
        d.read(0, &mut out).unwrap();
        for (i, &x) in xs.iter().enumerate() {
            let g = match ty {
                GgmlType::F32 => f32::from_ne_bytes(out[4 * i..4 * i + 4].try_into().unwrap()),
                _ => f16::from_ne_bytes([out[2 * i], out[2 * i + 1]]).to_f32(),
            };
            assert!(g.is_finite(), "{} silu({x}) = {g}", ty.name());
            let want = silu64(x);
            if ty == GgmlType::F32 {
                close(g, want, 5e-5).unwrap_or_else(|e| panic!("silu({x}): {e}"));
            } else {
                let bits = f16::from_f32(g).to_bits();
                close_f16(u32::from(bits), want).unwrap_or_else(|e| panic!("f16 silu({x}): {e}"));
            }
            if x >= 20.0 {
                assert_eq!(g, x, "silu of large positive x is x");
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn unary_bad_nodes_are_refused() {
    let be = backend();
    let mut rng = Rng::new(203);
    let m = Mem::random(&be, &mut rng, GgmlType::F32, 1 << 12, -1.0, 1.0);
    let a = m.tensor(View::contiguous(GgmlType::F32, 0, [8, 4, 1, 1]));
    let h = m.tensor(View::contiguous(GgmlType::F16, 0, [8, 4, 1, 1]));
    let wrong = m.tensor(View::contiguous(GgmlType::F32, 0, [8, 2, 1, 1]));
    let e = push_err(node(Op::Scale { s: 2.0, b: 0.0 }, &[&a], &wrong));
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = push_err(node(Op::Unary(UnaryOp::Silu), &[&a], &wrong));
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    // ggml's CPU SCALE has no F16; SILU keeps the type.
    let e = push_err(node(Op::Scale { s: 2.0, b: 0.0 }, &[&h], &h));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let e = push_err(node(Op::Unary(UnaryOp::Silu), &[&a], &h));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let e = push_err(Node { op: Op::Unary(UnaryOp::Silu), src: vec![None], dst: a.clone() });
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// SWIGLU

/// One SWIGLU node: fused (`split` false, src0 of `2 * nc + odd` columns) or split, with src views of
/// `layout` (0 contiguous, 1 padded like test-backend-ops' v = 1, 3 permuted storage).
fn swiglu_case(be: &Backend, rng: &mut Rng, ty: GgmlType, ne: [i64; 4], split: bool, swapped: bool, layout: usize) {
    let (va, la) = layout_view(ty, ne, layout, 0);
    let (vb, lb) = layout_view(ty, ne, layout, la as u64);
    let dne = if split { ne } else { [ne[0] / 2, ne[1], ne[2], ne[3]] };
    let vd = View::contiguous(ty, 0, dne);
    let src = Mem::random(be, rng, ty, lb.next_multiple_of(4), -150.0, 150.0);
    let mut out = Mem::random(be, rng, ty, (vd.end() as usize + 4).next_multiple_of(4), -1.0, 1.0);
    let (ta, tb, td) = (src.tensor(va), src.tensor(vb), out.tensor(vd));
    let op = Op::Glu { op: GluOp::SwiGlu, swapped };
    let n = if split { node(op, &[&ta, &tb], &td) } else { Node { op, src: vec![Some(ta), None], dst: td } };
    run(be, vec![n]);
    let nc = dne[0];
    let mut want = Vec::new();
    for k in 0..vd.n() {
        let idx = vd.index(k);
        let shifted = [idx[0] + nc, idx[1], idx[2], idx[3]];
        let (g, u) = if split {
            // ggml applies `swapped` to the fused form only.
            (src.get(&va, idx), src.get(&vb, idx))
        } else if swapped {
            (src.get(&va, shifted), src.get(&va, idx))
        } else {
            (src.get(&va, idx), src.get(&va, shifted))
        };
        let w = silu64(g) * f64::from(u);
        want.push((w, f64::from(u.abs().max(1.0))));
        out.set_bits(&vd, idx, to_bits(ty, w as f32));
    }
    let what = format!("SWIGLU {} ne{ne:?} split {split} swapped {swapped} layout {layout}", ty.name());
    verify(&out, &vd, &what, |idx, g, _| {
        let k = (0..4).rev().fold(0usize, |acc, d| acc * dne[d] as usize + idx[d] as usize);
        let (w, u) = want[k];
        if ty == GgmlType::F16 {
            close_f16(g, w)
        } else {
            // silu(gate) may flush to -0 below 1e-35 (see `close`); up scales that.
            close(f32::from_bits(g) / u as f32, w / u, 5e-5)
        }
    });
}

#[test]
fn swiglu_fused_split_swapped() {
    let be = backend();
    let mut rng = Rng::new(301);
    for ty in [GgmlType::F32, GgmlType::F16] {
        for ne in [[128i64, 2, 2, 2], [5, 7, 11, 13], [64, 3, 1, 1], [1, 4, 1, 1]] {
            for layout in [0, 1, 3] {
                for swapped in [false, true] {
                    swiglu_case(&be, &mut rng, ty, ne, false, swapped, layout);
                    swiglu_case(&be, &mut rng, ty, ne, true, swapped, layout);
                }
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn glu_bad_nodes_are_refused() {
    let be = backend();
    let mut rng = Rng::new(302);
    let m = Mem::random(&be, &mut rng, GgmlType::F32, 1 << 12, -1.0, 1.0);
    let t = |ty: GgmlType, ne: [i64; 4]| m.tensor(View::contiguous(ty, 0, ne));
    let op = Op::Glu { op: GluOp::SwiGlu, swapped: false };
    let a = t(GgmlType::F32, [8, 4, 1, 1]);
    // Fused: dst is [ne0 / 2, ...].
    let e = push_err(Node { op: op.clone(), src: vec![Some(a.clone()), None], dst: a.clone() });
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    // Split: same shapes and types.
    let e = push_err(node(op.clone(), &[&a, &t(GgmlType::F32, [8, 2, 1, 1])], &a));
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = push_err(node(op.clone(), &[&a, &t(GgmlType::F16, [8, 4, 1, 1])], &a));
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = push_err(node(op.clone(), &[&a, &a], &t(GgmlType::F16, [8, 4, 1, 1])));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// CPY / CONT / DUP

/// Copy `vs` (in `src`) into `vd` (in a fresh random buffer) and check every element bit for bit against
/// ggml's conversion, and that nothing outside dst changed.
fn cpy_views(be: &Backend, rng: &mut Rng, src: &Mem, vs: View, vd: View, dst_len: usize) {
    let mut out = Mem::random(be, rng, vd.ty, dst_len.next_multiple_of(4), -1.0, 1.0);
    let (ts, td) = (src.tensor(vs), out.tensor(vd));
    run(be, vec![node(Op::Cpy, &[&ts], &td)]);
    assert_eq!(vs.n(), vd.n());
    for k in 0..vs.n() {
        let (is, id) = (vs.index(k), vd.index(k));
        let b = src.bits(&vs, is);
        let w = match (vs.ty, vd.ty) {
            (a, d) if a == d => b,
            (GgmlType::F32, GgmlType::F16) => u32::from(f16::from_f32(f32::from_bits(b)).to_bits()),
            (GgmlType::F16, GgmlType::F32) => f16::from_bits(b as u16).to_f32().to_bits(),
            (GgmlType::BF16, GgmlType::F32) => b << 16,
            (GgmlType::F32, GgmlType::BF16) => u32::from(ref_bf16(b)),
            (GgmlType::F16, GgmlType::BF16) => u32::from(ref_bf16(f16::from_bits(b as u16).to_f32().to_bits())),
            (GgmlType::BF16, GgmlType::F16) => u32::from(f16::from_f32(f32::from_bits(b << 16)).to_bits()),
            (GgmlType::F32, GgmlType::I32) => ref_f32_to_i32(f32::from_bits(b)) as u32,
            (GgmlType::I32, GgmlType::F32) => (b as i32 as f32).to_bits(),
            (a, d) => panic!("{} -> {}", a.name(), d.name()),
        };
        out.set_bits(&vd, id, w);
    }
    let what = format!("CPY {}{:?} nb{:?} -> {}{:?} nb{:?}", vs.ty.name(), vs.ne, vs.nb, vd.ty.name(), vd.ne, vd.nb);
    verify(&out, &vd, &what, |_, g, w| if g == w { Ok(()) } else { Err(format!("got {g:#x}, want {w:#x}")) });
}

/// ggml's GGML_FP32_TO_BF16 on f32 bits: NaN keeps its top half, made quiet; else round to nearest even.
fn ref_bf16(u: u32) -> u16 {
    if u & 0x7FFF_FFFF > 0x7F80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7FFF + ((u >> 16) & 1)) >> 16) as u16
}

/// C's `(int32_t) x` as ggml's CPU backend runs it on x86: truncation toward zero; NaN and values outside the i32
/// range give INT_MIN (cvttss2si's "integer indefinite").
fn ref_f32_to_i32(x: f32) -> i32 {
    if x.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x.trunc() as i32
    }
}

/// Source buffer of `ty` holding `v` plus slack, random values in [-150, 150].
fn cpy_src(be: &Backend, rng: &mut Rng, v: &View) -> Mem {
    Mem::random(be, rng, v.ty, (v.end() as usize + 8).next_multiple_of(4), -150.0, 150.0)
}

#[test]
fn cpy_every_type_pair_permuted_transposed() {
    use GgmlType::{F16, F32, I32};
    let be = backend();
    let mut rng = Rng::new(401);
    for (st, dt) in [(F32, F32), (F32, F16), (F16, F32), (F16, F16), (I32, I32)] {
        // test-backend-ops: plain, permuted src {0,2,1,3} (copy by rows), transposed src {1,0,2,3},
        // src {0,3,1,2} into dst {0,2,1,3}.
        for (ne, ps, pd) in [
            ([256i64, 4, 4, 4], [0, 1, 2, 3], [0, 1, 2, 3]),
            ([256, 2, 3, 4], [0, 2, 1, 3], [0, 1, 2, 3]),
            ([256, 2, 3, 4], [1, 0, 2, 3], [0, 1, 2, 3]),
            ([3, 2, 3, 4], [0, 3, 1, 2], [0, 2, 1, 3]),
            ([10, 10, 5, 1], [1, 2, 0, 3], [2, 0, 1, 3]),
            ([256, 1, 4, 1], [1, 2, 0, 3], [0, 1, 2, 3]),
        ] {
            let vs = View::contiguous(st, 4, ne).permute(ps);
            let src = cpy_src(&be, &mut rng, &vs);
            // As test-backend-ops builds it: dst = permute(new tensor of src's shape), so dst's shape is a
            // permutation of src's (logical orders differ).
            let vd = View::contiguous(dt, 8, vs.ne).permute(pd);
            cpy_views(&be, &mut rng, &src, vs, vd, vd.end() as usize + 8);
            // dst of src's shape, stored permuted.
            let dne = pd.map(|i| vs.ne[i]);
            let vd = View::contiguous(dt, 8, dne).permute(pd);
            assert_eq!(vd.ne, vs.ne);
            cpy_views(&be, &mut rng, &src, vs, vd, vd.end() as usize + 8);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn cpy_bf16_i32_i16_pairs_permuted_transposed() {
    use GgmlType::{BF16, F16, F32, I16, I32};
    let be = backend();
    let mut rng = Rng::new(407);
    for (st, dt) in
        [(BF16, BF16), (BF16, F32), (F32, BF16), (BF16, F16), (F16, BF16), (F32, I32), (I32, F32), (I16, I16)]
    {
        for (ne, ps, pd) in [
            ([256i64, 4, 4, 4], [0, 1, 2, 3], [0, 1, 2, 3]),
            ([256, 2, 3, 4], [0, 2, 1, 3], [0, 1, 2, 3]),
            ([256, 2, 3, 4], [1, 0, 2, 3], [0, 1, 2, 3]),
            ([3, 2, 3, 4], [0, 3, 1, 2], [0, 2, 1, 3]),
            ([2, 1, 3, 5], [0, 1, 2, 3], [0, 1, 2, 3]),
        ] {
            let vs = View::contiguous(st, 4, ne).permute(ps);
            let src = cpy_src(&be, &mut rng, &vs);
            let vd = View::contiguous(dt, 8, vs.ne).permute(pd);
            cpy_views(&be, &mut rng, &src, vs, vd, vd.end() as usize + 8);
            // Into a reshaped contiguous dst.
            let vd = View::contiguous(dt, 0, [vs.n() as i64, 1, 1, 1]);
            cpy_views(&be, &mut rng, &src, vs, vd, vd.end() as usize + 4);
        }
    }
    assert_no_validation_errors();
}

/// One contiguous copy of the 32-bit patterns `xs` (as `st`) into `dt`, returned as dst's raw bits.
fn cpy_patterns(be: &Backend, st: GgmlType, dt: GgmlType, xs: &[u32]) -> Vec<u32> {
    let n = xs.len() as i64;
    let src: Vec<u8> = match st.type_size() {
        2 => xs.iter().flat_map(|&x| (x as u16).to_ne_bytes()).collect(),
        _ => xs.iter().flat_map(|x| x.to_ne_bytes()).collect(),
    };
    let src = Mem::from_bytes(be, src);
    let out = Mem::from_bytes(be, vec![0u8; dt.type_size() * xs.len()]);
    let vs = View::contiguous(st, 0, [n, 1, 1, 1]);
    let vd = View::contiguous(dt, 0, [n, 1, 1, 1]);
    run(be, vec![node(Op::Cpy, &[&src.tensor(vs)], &out.tensor(vd))]);
    let got = out.download();
    match dt.type_size() {
        2 => got.chunks_exact(2).map(|c| u32::from(u16::from_ne_bytes([c[0], c[1]]))).collect(),
        _ => got.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect(),
    }
}

#[test]
fn cpy_bf16_i32_conversions_bit_exact() {
    use GgmlType::{BF16, F16, F32, I32};
    let be = backend();
    let mut rng = Rng::new(408);
    // Every 16-bit pattern: BF16 -> F32 (the top half, NaN payloads untouched), BF16 -> F16 and F16 -> BF16
    // (through f32: F16C's quietened NaNs, ggml's rounding).
    let all16: Vec<u32> = (0..=u32::from(u16::MAX)).collect();
    for (i, &g) in cpy_patterns(&be, BF16, F32, &all16).iter().enumerate() {
        assert_eq!(g, (i as u32) << 16, "bf16 {i:#06x} -> f32");
    }
    for (i, &g) in cpy_patterns(&be, BF16, F16, &all16).iter().enumerate() {
        let w = f16::from_f32(f32::from_bits((i as u32) << 16)).to_bits();
        assert_eq!(g, u32::from(w), "bf16 {i:#06x} -> f16");
    }
    for (i, &g) in cpy_patterns(&be, F16, BF16, &all16).iter().enumerate() {
        let w = ref_bf16(f16::from_bits(i as u16).to_f32().to_bits());
        assert_eq!(g, u32::from(w), "f16 {i:#06x} -> bf16");
    }
    // F32 -> BF16: ties either way, a carry into the exponent and up to infinity, NaNs, random patterns.
    let mut xs: Vec<u32> = vec![
        0,
        0x8000_0000,
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0000,
        0x7F80_0001,
        0xFFBF_FFFF,
        0x7F7F_FFFF,
        0x7F7F_8000,
        0x0000_8000,
        0x0001_8000,
        0x3F80_8000,
        0x3F81_8000,
        0x3F80_7FFF,
        0x3FFF_FFFF,
    ];
    while xs.len() < 1 << 18 {
        let x = rng.next_u64() as u32;
        // Half of them exact ties (low half 0x8000).
        xs.push(if xs.len() % 2 == 0 { (x & 0xFFFF_0000) | 0x8000 } else { x });
    }
    for (x, g) in xs.iter().zip(cpy_patterns(&be, F32, BF16, &xs)) {
        assert_eq!(g, u32::from(ref_bf16(*x)), "f32 {x:#010x} -> bf16");
    }
    // F32 -> I32: fractions toward zero on both sides, the i32 range's ends, NaN, infinities, random magnitudes.
    let mut fs: Vec<f32> = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        0.999_999_9,
        -0.999_999_9,
        1.0,
        -1.0,
        1.5,
        -1.5,
        2.5,
        -2.5,
        149.99,
        -149.99,
        1e-40,
        2_147_483_520.0,
        -2_147_483_520.0,
        2_147_483_648.0,
        -2_147_483_648.0,
        4e9,
        -4e9,
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
    ];
    while fs.len() < 1 << 16 {
        let mag = [1.0f32, 100.0, 1e5, 1e7, 3e9][fs.len() % 5];
        fs.push(rng.f32() * mag);
    }
    let bits: Vec<u32> = fs.iter().map(|f| f.to_bits()).collect();
    for (x, g) in fs.iter().zip(cpy_patterns(&be, F32, I32, &bits)) {
        assert_eq!(g as i32, ref_f32_to_i32(*x), "f32 {x:e} -> i32");
    }
    // I32 -> F32: exact below 2^24, rounded to nearest even above (ties at every bit position), the ends.
    let mut is: Vec<i32> =
        vec![0, 1, -1, 16_777_216, 16_777_217, 16_777_219, -16_777_217, i32::MAX, i32::MIN, i32::MIN + 1];
    for p in 24..31 {
        for d in [-1i64, 0, 1] {
            let half_ulp = 1i64 << (p - 24);
            for base in [1i64 << p, (1i64 << p) + 2 * half_ulp, (1i64 << p) + 6 * half_ulp] {
                let v = base + half_ulp + d;
                if v <= i64::from(i32::MAX) {
                    is.push(v as i32);
                    is.push(-v as i32);
                }
            }
        }
    }
    while is.len() < 1 << 16 {
        is.push((rng.next_u64() as i32) >> (rng.below(31) as u32));
    }
    let bits: Vec<u32> = is.iter().map(|&i| i as u32).collect();
    for (i, g) in is.iter().zip(cpy_patterns(&be, I32, F32, &bits)) {
        assert_eq!(g, (*i as f32).to_bits(), "i32 {i} -> f32: got {}", f32::from_bits(g));
    }
    assert_no_validation_errors();
}

/// Same-type copies of every block type of an even byte size (all but MXFP4): random block bytes moved whole, into a
/// reshaped dst, from a source with dims 1 and 2 permuted, and into a dst with padded rows.
#[test]
fn cpy_blocks_every_block_type() {
    let be = backend();
    let mut rng = Rng::new(409);
    let types: Vec<GgmlType> =
        GgmlType::ALL.into_iter().filter(|t| t.is_quantized() && t.type_size() % 2 == 0).collect();
    assert_eq!(types.len(), 24);
    for ty in types {
        let (bs, ts) = (ty.block_size() as i64, ty.type_size());
        for ne in [[bs, 2, 3, 4], [3 * bs, 2, 3, 1], [2 * bs, 1, 1, 5]] {
            let rows = (ne[1] * ne[2] * ne[3]) as usize;
            let row = ty.row_size(ne[0]).unwrap();
            // Stored with dims 1 and 2 swapped; viewed back in logical order when `permuted`.
            for permuted in [false, true] {
                let store_ne = if permuted { [ne[0], ne[2], ne[1], ne[3]] } else { ne };
                let sv = View::contiguous(ty, 0, store_ne);
                let vs = if permuted { sv.permute([0, 2, 1, 3]) } else { sv };
                let host: Vec<u8> = (0..rows * row).map(|_| rng.next_u64() as u8).collect();
                let src = Mem::from_bytes(&be, host.clone());
                // The bytes of logical row r of vs.
                let src_row = |r: usize| {
                    let idx = [0, r as i64 % ne[1], (r as i64 / ne[1]) % ne[2], r as i64 / (ne[1] * ne[2])];
                    let o = vs.byte(idx);
                    host[o..o + row].to_vec()
                };
                let want: Vec<u8> = (0..rows).flat_map(src_row).collect();
                // Reshaped: one long row of blocks.
                let vd = View::contiguous(ty, 0, [ne[0] * rows as i64, 1, 1, 1]);
                let out = Mem::from_bytes(&be, vec![0x5Au8; rows * row]);
                run(&be, vec![node(Op::Cpy, &[&src.tensor(vs)], &out.tensor(vd))]);
                assert!(out.download() == want, "{} {ne:?} permuted {permuted} reshaped", ty.name());
                // Padded rows of the same shape.
                let pad = 2 * ts as u64;
                let nb = [ts as u64, row as u64 + pad, (row as u64 + pad) * ne[1] as u64, 0];
                let nb = [nb[0], nb[1], nb[2], nb[2] * ne[2] as u64];
                let len = nb[3] as usize * ne[3] as usize;
                let out = Mem::from_bytes(&be, vec![0xA5u8; len]);
                let vd = View { ty, offset: 0, ne, nb };
                run(&be, vec![node(Op::Cpy, &[&src.tensor(vs)], &out.tensor(vd))]);
                let got = out.download();
                for r in 0..rows {
                    let at = r * (row + pad as usize);
                    assert_eq!(&got[at..at + row], &want[r * row..(r + 1) * row], "{} padded row {r}", ty.name());
                    assert!(got[at + row..at + row + pad as usize].iter().all(|&b| b == 0xA5), "{} padding", ty.name());
                }
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn cpy_reshapes_between_shapes() {
    // test-backend-ops' reshaping copies: every permutation of {3, 5, 7, 32} into {3, 5, 7, 32} and
    // {32, 7, 5, 3}, plus views on both sides.
    use GgmlType::{F16, F32};
    let be = backend();
    let mut rng = Rng::new(402);
    let dims = [3i64, 5, 7, 32];
    let perms: Vec<[usize; 4]> = (0..24)
        .map(|mut k| {
            let mut left: Vec<usize> = (0..4).collect();
            let mut p = [0; 4];
            for (i, slot) in p.iter_mut().enumerate() {
                let f = [6, 2, 1, 1][i];
                *slot = left.remove(k / f);
                k %= f;
            }
            p
        })
        .collect();
    for (st, dt) in [(F32, F32), (F16, F16), (F32, F16), (F16, F32)] {
        for p in &perms {
            let ne = p.map(|i| dims[i]);
            let vs = View::contiguous(st, 0, ne);
            let src = cpy_src(&be, &mut rng, &vs);
            for dne in [[3i64, 5, 7, 32], [32, 7, 5, 3]] {
                let vd = View::contiguous(dt, 0, dne);
                cpy_views(&be, &mut rng, &src, vs, vd, vd.end() as usize);
            }
            // Transposed source into a padded destination view.
            let vt = vs.permute([1, 0, 2, 3]);
            let vd = View::contiguous(dt, 2 * dt.type_size() as u64, [ne[0] * ne[1] + 3, ne[2], ne[3], 1]).sub([
                ne[0] * ne[1],
                ne[2],
                ne[3],
                1,
            ]);
            cpy_views(&be, &mut rng, &src, vt, vd, vd.end() as usize + 8);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn cpy_cont_dup_views_and_strided_dst() {
    use GgmlType::{F16, F32, I32};
    let be = backend();
    let mut rng = Rng::new(403);
    for ty in [F32, F16, I32] {
        for ne in
            [[2i64, 1, 1, 1], [2, 1, 3, 5], [2, 3, 5, 7], [1, 4, 4, 1], [1, 8, 17, 1], [10, 10, 10, 1], [33, 5, 7, 1]]
        {
            let base = View::contiguous(ty, 0, ne);
            let src = cpy_src(&be, &mut rng, &base);
            // ggml_cont of a one-row slice (view_slice), of a transpose, and of permutations.
            let slice = View { offset: base.nb[0] * (ne[1] as u64 - 1), ..base.sub([ne[0], 1, ne[2], ne[3]]) };
            for vs in [
                slice,
                base.permute([1, 0, 2, 3]),
                base.permute([2, 1, 0, 3]),
                base.permute([1, 2, 0, 3]),
                base.permute([0, 2, 1, 3]),
            ] {
                let vd = View::contiguous(ty, 0, vs.ne);
                cpy_views(&be, &mut rng, &src, vs, vd, vd.end() as usize + 4);
            }
        }
        // Strided dst: a [128, 2, 3, 1] view of a [128, 4, 3, 1] buffer.
        let vs = View::contiguous(ty, 0, [128, 2, 3, 1]);
        let src = cpy_src(&be, &mut rng, &vs);
        let vd = View::contiguous(ty, 0, [128, 4, 3, 1]).sub([128, 2, 3, 1]);
        cpy_views(&be, &mut rng, &src, vs, vd, vd.end() as usize + 4);
        // Element stride: every other element on both sides.
        let (vs, ls) = layout_view(ty, [9, 4, 3, 2], 4, 0);
        let src = Mem::random(&be, &mut rng, ty, ls, -150.0, 150.0);
        let (vd, ld) = layout_view(ty, [9, 4, 3, 2], 4, 2 * ty.type_size() as u64);
        cpy_views(&be, &mut rng, &src, vs, vd, ld);
        // In place onto itself (ggml_dup_inplace): nothing changes.
        let v = View::contiguous(ty, 0, [7, 3, 2, 1]);
        let m = cpy_src(&be, &mut rng, &v);
        let t = m.tensor(v);
        run(&be, vec![node(Op::Cpy, &[&t], &t)]);
        assert_eq!(m.download(), m.host, "{} copy onto itself", ty.name());
    }
    assert_no_validation_errors();
}

#[test]
fn cpy_large_transposed() {
    // test-backend-ops' {2, 2097121, 1, 1} transposed copy (4M elements, a skinny transpose).
    let be = backend();
    let mut rng = Rng::new(404);
    let vs = View::contiguous(GgmlType::F32, 0, [2, 2097121, 1, 1]).permute([1, 0, 2, 3]);
    let src = cpy_src(&be, &mut rng, &vs);
    let vd = View::contiguous(GgmlType::F32, 0, vs.ne);
    cpy_views(&be, &mut rng, &src, vs, vd, vd.end() as usize);
    assert_no_validation_errors();
}

/// Transposed sources over several 32 x 32 tiles (the tiled kernel): every type pair, partial tiles on both
/// edges, the packed dim at 1, 2 and 3 with the other two batched, packed and padded dst rows (`cpy_views` checks
/// every element against ggml's conversion and that the padding is untouched).
#[test]
fn cpy_transposed_sources_in_tiles() {
    use GgmlType::{BF16, F16, F32, I16, I32};
    let be = backend();
    let mut rng = Rng::new(410);
    let pairs = [
        (F32, F32),
        (F32, F16),
        (F16, F32),
        (F16, F16),
        (BF16, F32),
        (F32, BF16),
        (BF16, F16),
        (F16, BF16),
        (F32, I32),
        (I32, F32),
        (I16, I16),
    ];
    for (st, dt) in pairs {
        for (ne, perm) in [
            ([67i64, 45, 3, 2], [1, 0, 2, 3]),
            ([40, 3, 70, 2], [2, 1, 0, 3]),
            ([33, 2, 3, 65], [3, 1, 2, 0]),
            ([96, 64, 2, 1], [1, 2, 0, 3]),
        ] {
            let vs = View::contiguous(st, 4, ne).permute(perm);
            let src = cpy_src(&be, &mut rng, &vs);
            let vd = View::contiguous(dt, 8, vs.ne);
            cpy_views(&be, &mut rng, &src, vs, vd, vd.end() as usize + 8);
            // dst rows padded by 3 elements.
            let ts = dt.type_size() as u64;
            let row = (vs.ne[0] as u64 + 3) * ts;
            let nb = [ts, row, row * vs.ne[1] as u64, row * (vs.ne[1] * vs.ne[2]) as u64];
            let vd = View { ty: dt, offset: 0, ne: vs.ne, nb };
            cpy_views(&be, &mut rng, &src, vs, vd, (nb[3] * vs.ne[3] as u64) as usize + 8);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn cpy_f16_conversions_bit_exact() {
    let be = backend();
    // F16 -> F32: every half, NaNs included (quietened, payload kept, as F16C and `half` do).
    let halves: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_ne_bytes()).collect();
    let src = Mem::from_bytes(&be, halves);
    let vs = View::contiguous(GgmlType::F16, 0, [256, 256, 1, 1]);
    let out = Mem::from_bytes(&be, vec![0u8; 4 * 65536]);
    let vd = View::contiguous(GgmlType::F32, 0, [256, 256, 1, 1]);
    run(&be, vec![node(Op::Cpy, &[&src.tensor(vs)], &out.tensor(vd))]);
    let got = out.download();
    for h in 0..=u16::MAX {
        let g = u32::from_ne_bytes(got[4 * h as usize..4 * h as usize + 4].try_into().unwrap());
        let w = f16::from_bits(h).to_f32().to_bits();
        assert_eq!(g, w, "f16 {h:#06x} -> f32: got {g:#010x}, want {w:#010x}");
    }

    // F32 -> F16: rounding boundaries (ties to even, just above/below), subnormals, overflow, specials, and
    // random bit patterns over the whole f32 range.
    let mut rng = Rng::new(405);
    let mut xs: Vec<u32> = Vec::new();
    for e in 90u32..=160 {
        for m in
            [0u32, 1, 0xFFF, 0x1000, 0x1001, 0x2000, 0x2FFF, 0x3000, 0x3001, 0x7FE000, 0x7FEFFF, 0x7FF000, 0x7FFFFF]
        {
            for s in [0u32, 0x8000_0000] {
                xs.push(s | (e << 23) | m);
            }
        }
        for _ in 0..64 {
            // Exact ties at every subnormal/normal rounding position: low bits 1000...0.
            let sh = 13 + (rng.below(12) as u32);
            let m = ((rng.next_u64() as u32) & 0x7FFFFF & !((1 << sh) - 1)) | (1 << (sh - 1));
            xs.push((e << 23) | m);
        }
    }
    xs.extend([
        0,
        0x8000_0000,
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0000,
        0xFFC0_0000,
        0x7F80_0001,
        0x7FA0_1234,
        0xFFBF_FFFF,
        0x0000_0001,
        0x807F_FFFF,
        0x477F_E000,
        0x477F_EFFF,
        0x477F_F000,
        0x4780_0000,
        0x3380_0000,
        0x3300_0000,
        0x3300_0001,
        0x3380_0001,
    ]);
    while xs.len() < (1 << 20) {
        xs.push(rng.next_u64() as u32);
    }
    let n = xs.len() as i64;
    let src = Mem::from_bytes(&be, xs.iter().flat_map(|x| x.to_ne_bytes()).collect());
    let out = Mem::from_bytes(&be, vec![0u8; 2 * xs.len()]);
    let vs = View::contiguous(GgmlType::F32, 0, [n, 1, 1, 1]);
    let vd = View::contiguous(GgmlType::F16, 0, [n, 1, 1, 1]);
    run(&be, vec![node(Op::Cpy, &[&src.tensor(vs)], &out.tensor(vd))]);
    let got = out.download();
    for (i, &x) in xs.iter().enumerate() {
        let g = u16::from_ne_bytes([got[2 * i], got[2 * i + 1]]);
        let w = f16::from_f32(f32::from_bits(x)).to_bits();
        assert_eq!(g, w, "f32 {x:#010x} ({:e}) -> f16: got {g:#06x}, want {w:#06x}", f32::from_bits(x));
    }
    assert_no_validation_errors();
}

#[test]
fn cpy_bad_nodes_are_refused() {
    let be = backend();
    let mut rng = Rng::new(406);
    let m = Mem::random(&be, &mut rng, GgmlType::F32, 1 << 12, -1.0, 1.0);
    let t = |ty: GgmlType, ne: [i64; 4]| m.tensor(View::contiguous(ty, 0, ne));
    let a = t(GgmlType::F32, [8, 4, 1, 1]);
    let e = push_err(node(Op::Cpy, &[&a], &t(GgmlType::F32, [8, 3, 1, 1])));
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = push_err(node(Op::Cpy, &[&a], &t(GgmlType::I16, [8, 4, 1, 1])));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let e = push_err(node(Op::Cpy, &[&t(GgmlType::I32, [8, 4, 1, 1])], &t(GgmlType::F16, [8, 4, 1, 1])));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    // Quantized copies: f32/f16 <-> q8_0/q4_0 and same-type blocks only (MXFP4's 17-byte blocks: not moved).
    let e = push_err(node(Op::Cpy, &[&t(GgmlType::I32, [32, 1, 1, 1])], &t(GgmlType::Q8_0, [32, 1, 1, 1])));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let e = push_err(node(Op::Cpy, &[&t(GgmlType::Q4_0, [32, 1, 1, 1])], &t(GgmlType::F16, [32, 1, 1, 1])));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let e = push_err(node(Op::Cpy, &[&t(GgmlType::MXFP4, [64, 1, 1, 1])], &t(GgmlType::MXFP4, [64, 1, 1, 1])));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    // An F16 view at an odd byte offset cannot be addressed in 16-bit elements.
    let odd = Tensor::new(m.buf.clone(), 1, GgmlType::F16, [8, 1, 1, 1], [2, 16, 16, 16]).unwrap();
    let e = push_err(node(Op::Cpy, &[&odd], &t(GgmlType::F16, [8, 1, 1, 1])));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert_no_validation_errors();
}

#[test]
fn elementwise_graph_with_dependencies() {
    // A small MLP-style chain in one graph: y = silu(x * w) + x; g = swiglu(cat) ; c = cpy(y -> f16);
    // barriers must order every read after the write it depends on.
    let be = backend();
    let mut rng = Rng::new(501);
    let ne = [64i64, 8, 1, 1];
    let n = 64 * 8;
    let xv = rng.vec(n);
    let wv = rng.vec(64);
    let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
    let w = upload(&be, GgmlType::F32, [64, 1, 1, 1], &f32_bytes(&wv));
    let buf = be.alloc(16 * n as u64).unwrap();
    let t1 = Tensor::contiguous(buf.clone(), 0, GgmlType::F32, ne).unwrap();
    let t2 = Tensor::contiguous(buf.clone(), 4 * n as u64, GgmlType::F32, ne).unwrap();
    let t3 = Tensor::contiguous(buf.clone(), 8 * n as u64, GgmlType::F32, [32, 8, 1, 1]).unwrap();
    let t4 = Tensor::contiguous(buf.clone(), 12 * n as u64, GgmlType::F16, [32, 8, 1, 1]).unwrap();
    let mut g = Graph::new();
    g.push(node(Op::Mul, &[&x, &w], &t1)).unwrap();
    g.push(node(Op::Unary(UnaryOp::Silu), &[&t1], &t1)).unwrap();
    g.push(node(Op::Add, &[&t1, &x], &t2)).unwrap();
    g.push(Node {
        op: Op::Glu { op: GluOp::SwiGlu, swapped: false },
        src: vec![Some(t2.clone()), None],
        dst: t3.clone(),
    })
    .unwrap();
    g.push(node(Op::Scale { s: 0.5, b: 0.0 }, &[&t3], &t3)).unwrap();
    g.push(node(Op::Cpy, &[&t3], &t4)).unwrap();
    be.compute(&g).unwrap();
    let mut out = vec![0u8; n];
    t4.read(0, &mut out).unwrap();
    for r in 0..8 {
        for c in 0..32 {
            let y = |i: usize| {
                let v = xv[r * 64 + i] * wv[i];
                silu64(v) as f32 + xv[r * 64 + i]
            };
            let want = (silu64(y(c)) * f64::from(y(c + 32))) * 0.5;
            let k = r * 32 + c;
            let got = f16::from_ne_bytes([out[2 * k], out[2 * k + 1]]).to_f32();
            assert!((f64::from(got) - want).abs() <= 2e-3 * want.abs() + 1e-4, "[{r},{c}]: got {got}, want {want}");
        }
    }
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// Throughput (not run by default: `cargo test --release --test ops_elementwise -- --ignored --nocapture`)

#[test]
#[ignore]
fn bench_elementwise_bandwidth() {
    use GgmlType::{F16, F32};
    let be = backend();
    let mut rng = Rng::new(601);
    let big = |ty: GgmlType, ne: [i64; 4], rng: &mut Rng| {
        let v = View::contiguous(ty, 0, ne);
        let m = Mem::random(&be, rng, ty, v.end() as usize, -1.0, 1.0);
        (m, v)
    };
    let (k, r) = (4096i64, 4096i64);
    let (ma, va) = big(F32, [k, r, 1, 1], &mut rng);
    let (mb, vb) = big(F32, [k, r, 1, 1], &mut rng);
    let (mw, vw) = big(F32, [k, 1, 1, 1], &mut rng);
    let (md, vd) = big(F32, [k, r, 1, 1], &mut rng);
    let (mh, vh) = big(F16, [k, r, 1, 1], &mut rng);
    let (mg, vg) = big(F32, [2 * 14336, 512, 1, 1], &mut rng);
    let (mgd, vgd) = big(F32, [14336, 512, 1, 1], &mut rng);
    let (mkv, vkv) = big(F16, [128, 512, 32, 1], &mut rng);
    let (mkd, vkd) = big(F16, [128, 32, 512, 1], &mut rng);
    let (a, b, w, d, h) = (ma.tensor(va), mb.tensor(vb), mw.tensor(vw), md.tensor(vd), mh.tensor(vh));
    let at = ma.tensor(va.permute([1, 0, 2, 3]));
    let (g, gd) = (mg.tensor(vg), mgd.tensor(vgd));
    let kv = mkv.tensor(vkv.permute([0, 2, 1, 3]));
    let kd = mkd.tensor(vkd);
    let n = (k * r) as f64;
    let glu = Node { op: Op::Glu { op: GluOp::SwiGlu, swapped: false }, src: vec![Some(g), None], dst: gd };
    let cases: Vec<(&str, Node, f64)> = vec![
        ("add f32 contiguous", node(Op::Add, &[&a, &b], &d), 12.0 * n),
        ("mul f32 row broadcast", node(Op::Mul, &[&a, &w], &d), 8.0 * n),
        ("add f32 transposed src0", node(Op::Add, &[&at, &b], &d), 12.0 * n),
        ("scale f32", node(Op::Scale { s: 0.5, b: 1.0 }, &[&a], &d), 8.0 * n),
        ("silu f32", node(Op::Unary(UnaryOp::Silu), &[&a], &d), 8.0 * n),
        ("swiglu fused f32 [14336 x 512]", glu, 12.0 * 14336.0 * 512.0),
        ("cpy f32 -> f16", node(Op::Cpy, &[&a], &h), 6.0 * n),
        ("cpy f32 transposed", node(Op::Cpy, &[&at], &d), 8.0 * n),
        ("cpy f16 permute 0213 (kv)", node(Op::Cpy, &[&kv], &kd), 4.0 * 128.0 * 512.0 * 32.0),
    ];
    be.set_profiling(true);
    for (name, nd, bytes) in cases {
        let mut gr = Graph::new();
        for _ in 0..20 {
            gr.push(nd.clone()).unwrap();
        }
        be.compute(&gr).unwrap();
        let mut t: Vec<f64> = be.last_times().iter().map(|t| t.micros).collect();
        t.sort_by(f64::total_cmp);
        let med = t[t.len() / 2];
        println!("{name:<34} {med:>10.1} us  {:>8.1} GB/s", bytes / med / 1e3);
    }
    be.set_profiling(false);
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// CPY with a quantized side

/// F32/F16/BF16 -> Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/IQ4_NL and F32/F16 -> Q1_0/Q2_0/NVFP4 (contiguous, and from a source with
/// dims 1 and 2 permuted as test-backend-ops' "cpy by rows"), Q -> F32 and Q -> Q, all bit-exact with ggml's CPU
/// backend (x86 Q8_0 path, reference quantizers, dequantization). The types of blocks longer than 32 take two shapes.
#[test]
fn cpy_quantize_dequantize_bit_exact() {
    use ggvk::quant;
    let be = backend();
    let mut rng = Rng::new(301);
    use GgmlType::{IQ4_NL, NVFP4, Q1_0, Q2_0, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};
    for qty in [Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q1_0, Q2_0, NVFP4] {
        let shapes: &[[i64; 4]] = if qty.block_size() > 32 {
            &[[256, 4, 3, 2], [384, 1, 1, 1]]
        } else {
            &[[256, 4, 3, 2], [96, 1, 1, 1], [64, 3, 5, 1]]
        };
        let sources: &[GgmlType] = if matches!(qty, Q1_0 | Q2_0 | NVFP4) {
            &[GgmlType::F32, GgmlType::F16]
        } else {
            &[GgmlType::F32, GgmlType::F16, GgmlType::BF16]
        };
        for &sty in sources {
            for &ne in shapes {
                for permuted in [false, true] {
                    let n = ne.iter().product::<i64>() as usize;
                    let vals: Vec<f32> = (0..n).map(|_| uniform(&mut rng, -2.0, 2.0)).collect();
                    let vals: Vec<f32> = match sty {
                        GgmlType::F16 => vals.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
                        GgmlType::BF16 => {
                            vals.iter().map(|&v| f32::from_bits(u32::from(ref_bf16(v.to_bits())) << 16)).collect()
                        }
                        _ => vals,
                    };
                    // Storage holds the values with dims 1 and 2 swapped when `permuted`; the view reads them back
                    // in logical order.
                    let store_ne = if permuted { [ne[0], ne[2], ne[1], ne[3]] } else { ne };
                    let sv = View::contiguous(sty, 0, store_ne);
                    let view = if permuted { sv.permute([0, 2, 1, 3]) } else { sv };
                    let mut host = vec![0u8; sv.end() as usize];
                    for (k, &v) in vals.iter().enumerate() {
                        let o = view.byte(view.index(k));
                        let b = match sty {
                            GgmlType::F32 => v.to_ne_bytes().to_vec(),
                            GgmlType::BF16 => ref_bf16(v.to_bits()).to_ne_bytes().to_vec(),
                            _ => f16::from_f32(v).to_ne_bytes().to_vec(),
                        };
                        host[o..o + b.len()].copy_from_slice(&b);
                    }
                    let m = Mem::from_bytes(&be, host);
                    let src = m.tensor(view);
                    let qbytes = qty.row_size(ne[0]).unwrap() * n / ne[0] as usize;
                    let dq = Tensor::contiguous(be.alloc(qbytes as u64).unwrap(), 0, qty, ne).unwrap();
                    run(&be, vec![node(Op::Cpy, &[&src], &dq)]);
                    let mut got = vec![0u8; qbytes];
                    dq.read(0, &mut got).unwrap();
                    let want = cpu_backend_quantize(qty, &vals);
                    assert!(got == want, "{} -> {} {ne:?} permuted {permuted}: blocks differ", sty.name(), qty.name());
                    // Back to F32 (Q8_0 and Q4_0 by their own kernel, the others by the generic dequantizing one),
                    // and a block copy into a padded (row-strided) Q tensor.
                    {
                        let df = Tensor::contiguous(be.alloc(4 * n as u64).unwrap(), 0, GgmlType::F32, ne).unwrap();
                        run(&be, vec![node(Op::Cpy, &[&dq], &df)]);
                        let back = quant::dequantize_to_f32(qty, &want, n).unwrap();
                        let mut fb = vec![0u8; 4 * n];
                        df.read(0, &mut fb).unwrap();
                        let same = bytes_f32(&fb).iter().zip(&back).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "dequantize");
                    }
                    let row = qty.row_size(ne[0]).unwrap() as u64;
                    let pnb =
                        [qty.type_size() as u64, row + 6, (row + 6) * ne[1] as u64, (row + 6) * (ne[1] * ne[2]) as u64];
                    let pbuf = be.alloc(pnb[3] * ne[3] as u64).unwrap();
                    pbuf.fill(0, pbuf.size(), 0xA5).unwrap();
                    let pq = Tensor::new(pbuf.clone(), 0, qty, ne, pnb).unwrap();
                    run(&be, vec![node(Op::Cpy, &[&dq], &pq)]);
                    let mut pb = vec![0u8; pbuf.size() as usize];
                    pbuf.read(0, &mut pb).unwrap();
                    for r in 0..n / ne[0] as usize {
                        let at = r * (row as usize + 6);
                        assert_eq!(
                            &pb[at..at + row as usize],
                            &want[r * row as usize..(r + 1) * row as usize],
                            "q copy"
                        );
                        assert!(pb[at + row as usize..at + row as usize + 6].iter().all(|&b| b == 0xA5), "padding");
                    }
                }
            }
        }
    }
    // Mixed quantized types are refused.
    let q8 = Tensor::contiguous(be.alloc(34).unwrap(), 0, GgmlType::Q8_0, [32, 1, 1, 1]).unwrap();
    let q4 = Tensor::contiguous(be.alloc(18).unwrap(), 0, GgmlType::Q4_0, [32, 1, 1, 1]).unwrap();
    assert!(matches!(push_err(node(Op::Cpy, &[&q8], &q4)), Error::Unsupported(_)));
    assert_no_validation_errors();
}

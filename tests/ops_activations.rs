//! Activations and plain elementwise ops (every ggml unary op but XIELU, SQR, SQRT, SIN, COS, LOG, CLAMP,
//! LEAKY_RELU), the GLU family (REGLU, GEGLU, GEGLU_ERF, GEGLU_QUICK, SWIGLU; fused, swapped and split) on
//! F32 and F16, against f64 CPU references that follow ggml's CPU formulas (GELU and GELU_QUICK through f16
//! as ggml's tables), on the default Vulkan device, validation on.

mod common;

use common::*;
use ggvk::graph::{GluOp, UnaryOp};
use ggvk::quant::GgmlType;
use ggvk::{Backend, Error, Graph, Node, Op, Tensor};
use half::f16;

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

fn uniform(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + (rng.f32() + 1.0) * 0.5 * (hi - lo)
}

/// Values of type `ty` (F32 or F16) as bytes, and the values they hold.
fn values(ty: GgmlType, xs: &[f32]) -> (Vec<u8>, Vec<f32>) {
    match ty {
        GgmlType::F32 => (f32_bytes(xs), xs.to_vec()),
        _ => {
            let h: Vec<f16> = xs.iter().map(|&x| f16::from_f32(x)).collect();
            (h.iter().flat_map(|v| v.to_ne_bytes()).collect(), h.iter().map(|v| v.to_f32()).collect())
        }
    }
}

fn read_values(ty: GgmlType, t: &Tensor) -> Vec<f32> {
    let mut out = vec![0u8; t.nbytes() as usize];
    t.read(0, &mut out).unwrap();
    match ty {
        GgmlType::F32 => bytes_f32(&out),
        _ => out.chunks_exact(2).map(|c| f16::from_ne_bytes([c[0], c[1]]).to_f32()).collect(),
    }
}

fn f16r(x: f64) -> f64 {
    f64::from(f16::from_f64(x).to_f32())
}

/// erf in f64: Taylor series below 4 (terms below 1e7, so ~1e-9 absolute), +-1 beyond (erfc(4) = 1.5e-8).
fn erf64(x: f64) -> f64 {
    if x.abs() >= 4.0 {
        return x.signum();
    }
    let mut sum = 0.0;
    let mut term = x; // (-1)^n x^(2n+1) / n!
    for n in 0..200 {
        let t = term / f64::from(2 * n + 1);
        sum += t;
        if t.abs() < 1e-17 {
            break;
        }
        term *= -x * x / f64::from(n + 1);
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

/// ggml's GELU table entry formula, in f32 as ggml computes it (1 + tanh cancels for x below about -3, so the
/// f32 result differs from the exact one by up to an ulp of 1 times x / 2; the kernel's tanh may differ by
/// as much, see `gelu_slack`).
fn gelu32(x: f32) -> f64 {
    f64::from(0.5f32 * x * (1.0f32 + (0.797_884_6f32 * x * (1.0f32 + 0.044715f32 * x * x)).tanh()))
}

/// Absolute slack for GELU-tanh results at x: an ulp of 1 in the tanh, times |x|.
fn gelu_slack(x: f32) -> f64 {
    f64::from(x.abs()) * 1.2e-7
}

fn gelu_quick64(x: f64) -> f64 {
    x / (1.0 + (-1.702 * x).exp())
}

/// The op's value at x (ggml's CPU formula; GELU / GELU_QUICK via f16 as its tables), and whether the result
/// went through f16 (so F32 outputs are compared at f16 precision).
fn reference(op: &Op, x: f32) -> (f64, bool) {
    let xd = f64::from(x);
    let v = match op {
        Op::Unary(u) => match u {
            UnaryOp::Silu => xd / (1.0 + (-xd).exp()),
            UnaryOp::Abs => xd.abs(),
            UnaryOp::Sgn => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            UnaryOp::Neg => -xd,
            UnaryOp::Step => f64::from(u8::from(x > 0.0)),
            UnaryOp::Tanh => xd.tanh(),
            UnaryOp::Elu => {
                if x > 0.0 {
                    xd
                } else {
                    xd.exp_m1()
                }
            }
            UnaryOp::Relu => xd.max(0.0),
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-xd).exp()),
            UnaryOp::Gelu => {
                if x <= -10.0 {
                    0.0
                } else if x >= 10.0 {
                    xd
                } else {
                    return (f16r(gelu32(f16::from_f32(x).to_f32())), true);
                }
            }
            UnaryOp::GeluQuick => return (f16r(gelu_quick64(f16r(xd))), true),
            UnaryOp::HardSwish => xd * ((xd + 3.0) / 6.0).clamp(0.0, 1.0),
            UnaryOp::HardSigmoid => ((xd + 3.0) / 6.0).clamp(0.0, 1.0),
            UnaryOp::Exp => xd.exp(),
            UnaryOp::Expm1 => xd.exp_m1(),
            UnaryOp::Softplus => {
                if x > 20.0 {
                    xd
                } else {
                    xd.exp().ln_1p()
                }
            }
            UnaryOp::GeluErf => 0.5 * xd * (1.0 + erf64(xd / std::f64::consts::SQRT_2)),
            UnaryOp::Floor => xd.floor(),
            UnaryOp::Ceil => xd.ceil(),
            UnaryOp::Round => xd.round(),
            UnaryOp::Trunc => xd.trunc(),
            UnaryOp::Sqr => xd * xd,
            UnaryOp::Sqrt => xd.sqrt(),
            UnaryOp::Sin => xd.sin(),
            UnaryOp::Cos => xd.cos(),
            UnaryOp::Log => xd.ln(),
        },
        Op::Clamp { min, max } => {
            let lo = if x < *max { x } else { *max };
            f64::from(if lo > *min { lo } else { *min })
        }
        Op::LeakyRelu { slope } => xd.max(0.0) + f64::from(*slope) * xd.min(0.0),
        other => panic!("no reference for {other:?}"),
    };
    (v, false)
}

/// `got` within tolerance of `want`: F16 outputs (or results ggml rounds through f16) within one f16 ulp of the
/// f16 rounding of `want`, F32 within `rel` relative plus `abs` absolute.
/// [`check`] with an extra absolute `slack`.
fn check_slack(got: f32, want: f64, via16: bool, ty: GgmlType, rel: f64, abs: f64, slack: f64) -> Result<(), String> {
    // Results beyond f32's (or f16's) range are infinities in ggml too.
    let limit = if ty == GgmlType::F16 { f64::from(f16::MAX.to_f32()) + 16.0 } else { f64::from(f32::MAX) };
    if want.abs() > limit || got.is_infinite() {
        return if got.is_infinite() && want.abs() > limit && (f64::from(got) > 0.0) == (want > 0.0) {
            Ok(())
        } else {
            Err(format!("got {got:e}, want {want:e}"))
        };
    }
    if ty == GgmlType::F16 || via16 {
        let w = f16r(want);
        let ulp = (w.abs() * 2f64.powi(-10)).max(2f64.powi(-24));
        if got.is_nan() || (f64::from(got) - w).abs() > ulp + slack {
            return Err(format!("got {got:e}, want {w:e} (f16 of {want:e})"));
        }
        return Ok(());
    }
    if got.is_nan() || (f64::from(got) - want).abs() > rel * want.abs() + abs + slack {
        return Err(format!("got {got:e}, want {want:e}"));
    }
    Ok(())
}

/// Slack of `op` at x (GELU-tanh's cancellation, see `gelu32`).
fn slack(op: &Op, x: f32) -> f64 {
    match op {
        Op::Unary(UnaryOp::Gelu | UnaryOp::GeluErf) => gelu_slack(x),
        _ => 0.0,
    }
}

/// Tolerances (relative, absolute) per op for F32 outputs: exp-based ops lose a few ulp times |x|.
fn tolerance(op: &Op) -> (f64, f64) {
    match op {
        Op::Unary(UnaryOp::Exp | UnaryOp::Expm1 | UnaryOp::Softplus | UnaryOp::Elu) => (5e-5, 1e-6),
        Op::Unary(UnaryOp::Sin | UnaryOp::Cos | UnaryOp::Log) => (1e-5, 2e-6),
        Op::Unary(UnaryOp::GeluErf | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Silu) => (2e-5, 1e-6),
        _ => (1e-6, 0.0),
    }
}

/// Input range per op and type (test-backend-ops' ranges, plus a dense range around 0 for the smooth ops).
fn ranges(op: &Op, ty: GgmlType) -> Vec<(f32, f32)> {
    match op {
        Op::Unary(UnaryOp::Sqrt | UnaryOp::Log) => vec![(0.01, 100.0), (0.9, 1.1)],
        Op::Unary(UnaryOp::Sin | UnaryOp::Cos) => vec![(-6.5, 6.5)],
        Op::Unary(UnaryOp::Exp | UnaryOp::Expm1) if ty == GgmlType::F16 => vec![(-10.0, 10.0), (-0.6, 0.6)],
        _ => vec![(-150.0, 150.0), (-4.0, 4.0), (-0.6, 0.6)],
    }
}

const ALL_UNARY: [UnaryOp; 26] = [
    UnaryOp::Silu,
    UnaryOp::Abs,
    UnaryOp::Sgn,
    UnaryOp::Neg,
    UnaryOp::Step,
    UnaryOp::Tanh,
    UnaryOp::Elu,
    UnaryOp::Relu,
    UnaryOp::Sigmoid,
    UnaryOp::Gelu,
    UnaryOp::GeluQuick,
    UnaryOp::HardSwish,
    UnaryOp::HardSigmoid,
    UnaryOp::Exp,
    UnaryOp::Expm1,
    UnaryOp::Softplus,
    UnaryOp::GeluErf,
    UnaryOp::Floor,
    UnaryOp::Ceil,
    UnaryOp::Round,
    UnaryOp::Trunc,
    UnaryOp::Sqr,
    UnaryOp::Sqrt,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Log,
];

/// Runs `op` over `xs` (F32 or F16), contiguous into a fresh dst, and over a padded view of the same values
/// in place, and checks every element against the reference.
fn unary_values(be: &Backend, op: &Op, ty: GgmlType, xs: &[f32]) {
    let n = xs.len() as i64;
    let (bytes, held) = values(ty, xs);
    let a = upload(be, ty, [n, 1, 1, 1], &bytes);
    let d = Tensor::contiguous(be.alloc(bytes.len() as u64).unwrap(), 0, ty, [n, 1, 1, 1]).unwrap();
    run(be, vec![node(op.clone(), &[&a], &d)]);
    let got = read_values(ty, &d);
    let (rel, abs) = tolerance(op);
    for (i, (&x, &g)) in held.iter().zip(&got).enumerate() {
        let (want, via16) = reference(op, x);
        check_slack(g, want, via16, ty, rel, abs, slack(op, x))
            .unwrap_or_else(|e| panic!("{op:?} {} [{i}] x = {x:e}: {e}", ty.name()));
    }
    // In place on a padded 2-D view (rows of 8 of 11): the padding must stay untouched.
    let rows = xs.len().div_ceil(8);
    let es = ty.type_size();
    let mut padded = vec![0u8; rows * 11 * es];
    for (i, c) in bytes.chunks_exact(es).enumerate().take(rows * 8) {
        let o = ((i / 8) * 11 + i % 8) * es;
        padded[o..o + es].copy_from_slice(c);
    }
    let buf = be.alloc(padded.len() as u64).unwrap();
    buf.write(0, &padded).unwrap();
    let nr = (xs.len() / 8) as i64;
    let v = Tensor::new(buf, 0, ty, [8, nr, 1, 1], [es as u64, 11 * es as u64, 11 * es as u64 * nr as u64, 0]).unwrap();
    run(be, vec![node(op.clone(), &[&v], &v)]);
    let mut out = vec![0u8; padded.len()];
    v.buffer.read(0, &mut out).unwrap();
    let (_, vals_out) = match ty {
        GgmlType::F32 => ((), bytes_f32(&out)),
        _ => ((), out.chunks_exact(2).map(|c| f16::from_ne_bytes([c[0], c[1]]).to_f32()).collect()),
    };
    for r in 0..nr as usize {
        for c in 0..11 {
            let o = r * 11 + c;
            if c < 8 {
                let x = held[r * 8 + c];
                let (want, via16) = reference(op, x);
                check_slack(vals_out[o], want, via16, ty, rel, abs, slack(op, x))
                    .unwrap_or_else(|e| panic!("{op:?} {} in place x = {x:e}: {e}", ty.name()));
            } else {
                assert_eq!(out[o * es..(o + 1) * es], padded[o * es..(o + 1) * es], "{op:?}: padding was written");
            }
        }
    }
}

#[test]
fn unary_ops_f32_f16_against_references() {
    let be = backend();
    let mut rng = Rng::new(401);
    let mut ops: Vec<Op> = ALL_UNARY.iter().map(|&u| Op::Unary(u)).collect();
    ops.push(Op::Clamp { min: -0.5, max: 0.5 });
    ops.push(Op::Clamp { min: -3.0, max: 100.0 });
    ops.push(Op::LeakyRelu { slope: 0.1 });
    for op in &ops {
        for ty in [GgmlType::F32, GgmlType::F16] {
            for (lo, hi) in ranges(op, ty) {
                let xs: Vec<f32> = (0..1000).map(|_| uniform(&mut rng, lo, hi)).collect();
                unary_values(&be, op, ty, &xs);
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn unary_edge_values() {
    let be = backend();
    // Exact halves for ROUND, the GELU cut-offs, signed zeros, large magnitudes.
    let xs: Vec<f32> = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        0.49999997,
        -0.49999997,
        10.0,
        -10.0,
        9.999,
        -9.999,
        20.0,
        21.0,
        -20.0,
        88.0,
        -88.0,
        100.0,
        -100.0,
        150.0,
        -150.0,
        1e-3,
        -1e-3,
        1e-6,
        -1e-6,
        3.0,
        -3.0,
        7.25,
        -7.25,
        1.0,
    ];
    for u in ALL_UNARY {
        if matches!(u, UnaryOp::Sqrt | UnaryOp::Log | UnaryOp::Sin | UnaryOp::Cos) {
            continue;
        }
        for ty in [GgmlType::F32, GgmlType::F16] {
            if ty == GgmlType::F16 && matches!(u, UnaryOp::Exp | UnaryOp::Expm1) {
                continue; // e^88 overflows f16 differently than the f64 reference rounds; test-backend-ops skips it too
            }
            unary_values(&be, &Op::Unary(u), ty, &xs);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn unary_refuses_mixed_types_and_shapes() {
    let be = backend();
    let a = upload(&be, GgmlType::F32, [8, 2, 1, 1], &f32_bytes(&[0.5; 16]));
    let h = Tensor::contiguous(be.alloc(64).unwrap(), 0, GgmlType::F16, [8, 2, 1, 1]).unwrap();
    let wrong = Tensor::contiguous(be.alloc(64).unwrap(), 0, GgmlType::F32, [8, 1, 1, 1]).unwrap();
    for op in [Op::Unary(UnaryOp::Gelu), Op::Clamp { min: 0.0, max: 1.0 }, Op::LeakyRelu { slope: 0.1 }] {
        let e = Graph::new().push(node(op.clone(), &[&a], &h)).expect_err("mixed types");
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        let e = Graph::new().push(node(op, &[&a], &wrong)).expect_err("shape");
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// GLU family

/// One f16 ulp at v: the activation's f16 rounding may land on either neighbour when the kernel's f32 value
/// and ggml's differ in the last bits.
fn ulp16(v: f64) -> f64 {
    (v.abs() * 2f64.powi(-10)).max(2f64.powi(-24))
}

/// act(x) * g as ggml's CPU computes it, and the absolute slack (see `gelu32`).
fn glu_reference(op: GluOp, x: f32, g: f32) -> (f64, f64) {
    let (xd, gd) = (f64::from(x), f64::from(g));
    match op {
        GluOp::SwiGlu => (xd / (1.0 + (-xd).exp()) * gd, 0.0),
        GluOp::ReGlu => (if x > 0.0 { xd * gd } else { 0.0 }, 0.0),
        GluOp::GeGlu => {
            if x <= -10.0 {
                (0.0, 0.0)
            } else if x >= 10.0 {
                (xd * gd, 0.0)
            } else {
                let act = f16r(gelu32(f16::from_f32(x).to_f32()));
                (act * gd, (gelu_slack(x) + ulp16(act)) * gd.abs())
            }
        }
        // 1 + erf(x / sqrt 2) cancels in f32 (ggml's too) for negative x: the same slack as GELU-tanh.
        GluOp::GeGluErf => (0.5 * xd * (1.0 + erf64(xd / std::f64::consts::SQRT_2)) * gd, gelu_slack(x) * gd.abs()),
        GluOp::GeGluQuick => {
            let act = f16r(gelu_quick64(f16r(xd)));
            (act * gd, ulp16(act) * gd.abs())
        }
    }
}

/// One GLU node over `[ne0, ne1, 1, 1]` outputs: fused (src0 `[2 * ne0, ne1]`, halves swapped or not) or split.
fn glu_case(be: &Backend, rng: &mut Rng, op: GluOp, ty: GgmlType, ne0: i64, ne1: i64, form: usize) {
    let (split, swapped) = (form == 2, form == 1);
    let n_a = if split { ne0 * ne1 } else { 2 * ne0 * ne1 };
    let xa: Vec<f32> = (0..n_a).map(|_| uniform(rng, -12.0, 12.0)).collect();
    let (ba, va) = values(ty, &xa);
    let a = upload(be, ty, [if split { ne0 } else { 2 * ne0 }, ne1, 1, 1], &ba);
    let xb: Vec<f32> = (0..ne0 * ne1).map(|_| uniform(rng, -3.0, 3.0)).collect();
    let (bb, vb) = values(ty, &xb);
    let b = upload(be, ty, [ne0, ne1, 1, 1], &bb);
    let es = ty.type_size() as u64;
    let d = Tensor::contiguous(be.alloc((ne0 * ne1) as u64 * es).unwrap(), 0, ty, [ne0, ne1, 1, 1]).unwrap();
    let n = if split {
        node(Op::Glu { op, swapped: false }, &[&a, &b], &d)
    } else {
        Node { op: Op::Glu { op, swapped }, src: vec![Some(a.clone()), None], dst: d.clone() }
    };
    run(be, vec![n]);
    let got = read_values(ty, &d);
    for r in 0..ne1 as usize {
        for c in 0..ne0 as usize {
            let (x, g) = if split {
                (va[r * ne0 as usize + c], vb[r * ne0 as usize + c])
            } else {
                let row = &va[r * 2 * ne0 as usize..(r + 1) * 2 * ne0 as usize];
                let (first, second) = (row[c], row[ne0 as usize + c]);
                if swapped {
                    (second, first)
                } else {
                    (first, second)
                }
            };
            let (want, sl) = glu_reference(op, x, g);
            let (rel, abs) = match op {
                GluOp::SwiGlu | GluOp::GeGluErf => (2e-5, 1e-6),
                _ => (1e-6, 0.0),
            };
            check_slack(got[r * ne0 as usize + c], want, false, ty, rel, abs, sl)
                .unwrap_or_else(|e| panic!("{op:?} {} form {form} x = {x}, g = {g}: {e}", ty.name()));
        }
    }
}

#[test]
fn glu_family_fused_swapped_split() {
    let be = backend();
    let mut rng = Rng::new(402);
    for op in [GluOp::SwiGlu, GluOp::ReGlu, GluOp::GeGlu, GluOp::GeGluErf, GluOp::GeGluQuick] {
        for ty in [GgmlType::F32, GgmlType::F16] {
            for form in 0..3 {
                glu_case(&be, &mut rng, op, ty, 64, 5, form);
                glu_case(&be, &mut rng, op, ty, 7, 3, form);
            }
        }
    }
    assert_no_validation_errors();
}

//! SWIGLU_OAI, XIELU and SILU_BACK against CPU references written from ggml's CPU semantics, on the default Vulkan
//! device (lavapipe in CI), validation on.

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Backend, Graph, Node, Op, Tensor};

fn run(be: &Backend, op: Op, src: &[Option<&Tensor>], dst: &Tensor) {
    let mut g = Graph::new();
    g.push(Node { op, src: src.iter().map(|t| t.cloned()).collect(), dst: dst.clone() }).unwrap();
    be.compute(&g).unwrap();
}

fn swiglu_oai(x: f32, y: f32, alpha: f32, limit: f32) -> f32 {
    let x = x.min(limit);
    let y = y.clamp(-limit, limit);
    x / (1.0 + (alpha * -x).exp()) * (y + 1.0)
}

#[test]
fn swiglu_oai_fused_and_split() {
    let be = backend();
    let mut rng = Rng::new(41);
    let (alpha, limit) = (1.702, 0.6);
    let ne = [24i64, 5, 2, 1];
    let n = ne.iter().product::<i64>() as usize;
    // Split: gate and up apart.
    let (gv, uv) = (rng.vec(n), rng.vec(n));
    let g = upload(&be, GgmlType::F32, ne, &f32_bytes(&gv));
    let u = upload(&be, GgmlType::F32, ne, &f32_bytes(&uv));
    let d = output(&be, ne);
    run(&be, Op::SwigluOai { swapped: false, alpha, limit }, &[Some(&g), Some(&u)], &d);
    let want: Vec<f32> = gv.iter().zip(&uv).map(|(&x, &y)| swiglu_oai(x, y, alpha, limit)).collect();
    assert_close("swiglu_oai split", &download(&d), &want, 1e-5);
    // Fused: both halves in one row, gate first or (swapped) second.
    let fne = [48i64, 5, 2, 1];
    let fv = rng.vec(2 * n);
    let f = upload(&be, GgmlType::F32, fne, &f32_bytes(&fv));
    for swapped in [false, true] {
        let d = output(&be, ne);
        run(&be, Op::SwigluOai { swapped, alpha, limit }, &[Some(&f), None], &d);
        let want: Vec<f32> = (0..n)
            .map(|k| {
                let (row, c) = (k / 24, k % 24);
                let (a, b) = (fv[row * 48 + c], fv[row * 48 + 24 + c]);
                if swapped {
                    swiglu_oai(b, a, alpha, limit)
                } else {
                    swiglu_oai(a, b, alpha, limit)
                }
            })
            .collect();
        assert_close(&format!("swiglu_oai fused swapped {swapped}"), &download(&d), &want, 1e-5);
    }
    assert_no_validation_errors();
}

#[test]
fn xielu_and_silu_back() {
    let be = backend();
    let mut rng = Rng::new(42);
    let ne = [33i64, 4, 3, 1];
    let n = ne.iter().product::<i64>() as usize;
    let xv: Vec<f32> = rng.vec(n).iter().map(|v| v * 4.0).collect();
    let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
    let (alpha_n, alpha_p, beta, eps) = (0.9, 0.7, 0.5, -1e-6);
    let d = output(&be, ne);
    run(&be, Op::Xielu { alpha_n, alpha_p, beta, eps }, &[Some(&x)], &d);
    let want: Vec<f32> = xv
        .iter()
        .map(|&v| if v > 0.0 { alpha_p * v * v + beta * v } else { (v.min(eps).exp_m1() - v) * alpha_n + beta * v })
        .collect();
    assert_close("xielu", &download(&d), &want, 1e-5);

    let dyv = rng.vec(n);
    let dy = upload(&be, GgmlType::F32, ne, &f32_bytes(&dyv));
    let d = output(&be, ne);
    run(&be, Op::SiluBack, &[Some(&dy), Some(&x)], &d);
    let want: Vec<f32> = xv
        .iter()
        .zip(&dyv)
        .map(|(&v, &g)| {
            let s = 1.0 / (1.0 + (-v).exp());
            g * s * (1.0 + v * (1.0 - s))
        })
        .collect();
    assert_close("silu_back", &download(&d), &want, 1e-5);
    assert!(Graph::new().push(Node { op: Op::SiluBack, src: vec![Some(dy.clone()), None], dst: d.clone() }).is_err());
    assert_no_validation_errors();
}

#[test]
fn swiglu_clamp_f32_f16() {
    let be = backend();
    let mut rng = Rng::new(43);
    let limit = 0.8f32;
    let ne = [40i64, 3, 2, 1];
    let n = ne.iter().product::<i64>() as usize;
    let (gv, uv): (Vec<f32>, Vec<f32>) =
        (rng.vec(n).iter().map(|v| v * 2.0).collect(), rng.vec(n).iter().map(|v| v * 2.0).collect());
    let f = |x: f32, y: f32| {
        let x = x.min(limit);
        x / (1.0 + (-x).exp()) * y.clamp(-limit, limit)
    };
    for ty in [GgmlType::F32, GgmlType::F16] {
        let r16 = |v: &[f32]| -> Vec<f32> {
            if ty == GgmlType::F16 {
                v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
            } else {
                v.to_vec()
            }
        };
        let (gq, uq) = (r16(&gv), r16(&uv));
        let bytes = |v: &[f32]| -> Vec<u8> {
            if ty == GgmlType::F16 {
                v.iter().flat_map(|&x| half::f16::from_f32(x).to_bits().to_ne_bytes()).collect()
            } else {
                f32_bytes(v)
            }
        };
        let g = upload(&be, ty, ne, &bytes(&gq));
        let u = upload(&be, ty, ne, &bytes(&uq));
        let d = upload(&be, ty, ne, &bytes(&vec![0.0; n]));
        run(&be, Op::SwigluClamp { swapped: false, limit }, &[Some(&g), Some(&u)], &d);
        let mut raw = vec![0u8; d.nbytes() as usize];
        d.read(0, &mut raw).unwrap();
        let got = ggvk::quant::dequantize_to_f32(ty, &raw, n).unwrap();
        let want: Vec<f32> = gq.iter().zip(&uq).map(|(&x, &y)| f(x, y)).collect();
        let tol = if ty == GgmlType::F16 { 1e-3 } else { 1e-5 };
        assert_close(&format!("swiglu_clamp {}", ty.name()), &got, &r16(&want), tol);
    }
    assert_no_validation_errors();
}

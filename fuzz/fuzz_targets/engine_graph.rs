//! Engine graphs over real device memory: random tensors (types, shapes, strides, offsets, including misaligned
//! offsets, zero-sized tensors and views reaching past the end) in two small buffers filled with arbitrary bytes
//! (NaN and Inf included), random ops and parameters. What the checks accept is computed on the device; a kernel
//! must not write outside its destination's bytes (every other byte of both buffers is compared before and after),
//! and errors must be ordinary ones (no internal error, no device loss).
#![no_main]

#[path = "input.rs"]
mod input;

use std::sync::{Arc, Mutex, OnceLock};

use ggvk::graph::{GluOp, UnaryOp};
use ggvk::ops::rope::RopeParams;
use ggvk::quant::GgmlType;
use ggvk::vk::Buffer;
use ggvk::{Backend, Error, Graph, Node, Op, Tensor};
use input::Input;
use libfuzzer_sys::fuzz_target;

const BUF: u64 = 8192;

struct State {
    be: Backend,
    bufs: [Arc<Buffer>; 2],
}

fn state() -> Option<&'static Mutex<State>> {
    static S: OnceLock<Option<Mutex<State>>> = OnceLock::new();
    S.get_or_init(|| {
        let be = Backend::new(None).ok()?;
        let bufs = [be.alloc(BUF).ok()?, be.alloc(BUF).ok()?];
        Some(Mutex::new(State { be, bufs }))
    })
    .as_ref()
}

fn ty(inp: &mut Input) -> GgmlType {
    inp.pick(&[
        GgmlType::F32,
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::BF16,
        GgmlType::Q5_1,
    ])
}

fn small_dim(inp: &mut Input) -> i64 {
    inp.pick(&[1, 1, 1, 2, 3, 4, 8, 32, 33, 64, 0, 5, 7])
}

fn tensor(inp: &mut Input, bufs: &[Arc<Buffer>; 2]) -> Option<Tensor> {
    let buf = bufs[inp.u8() as usize % 2].clone();
    let ty = ty(inp);
    let mut ne = [small_dim(inp), small_dim(inp), small_dim(inp), small_dim(inp)];
    if ty.block_size() > 1 && inp.u8() % 4 != 0 {
        ne[0] = 32 * i64::from(1 + inp.u8() % 3);
    }
    let offset = match inp.u8() % 4 {
        0 => 0,
        1 => u64::from(inp.u16()) % BUF,
        2 => u64::from(inp.u16() % 64) * 64,
        _ => u64::from(inp.u8()),
    };
    let mut nb = Tensor::contiguous_strides(ty, ne).ok()?;
    match inp.u8() % 6 {
        0 => nb.swap(1, 2),
        1 => nb[1] += u64::from(inp.u8() % 16) * ty.type_size() as u64,
        2 => nb[2] = u64::from(inp.u16()),
        3 if ty.block_size() == 1 => nb[0] = u64::from(inp.u8() % 16),
        _ => {}
    }
    Tensor::new(buf, offset, ty, ne, nb).ok()
}

fn op(inp: &mut Input) -> Op {
    match inp.u8() % 18 {
        0 => Op::MulMat,
        1 => Op::Add,
        2 => Op::Mul,
        3 => Op::Scale { s: inp.f32(), b: inp.f32() },
        4 => Op::Unary(UnaryOp::Silu),
        5 => Op::Glu { op: GluOp::SwiGlu, swapped: inp.u8() % 2 == 0 },
        6 => Op::Cpy,
        7 => Op::RmsNorm { eps: inp.f32() },
        8 => Op::SoftMax { scale: inp.f32(), max_bias: inp.f32() },
        9 => Op::GetRows,
        10 => Op::SetRows,
        11 => Op::Concat { dim: i32::from(inp.u8() % 5) },
        12 => Op::Repeat,
        13 => Op::Diag,
        14 => Op::RepeatBack,
        15 => Op::Col2Im1d { s0: i32::from(inp.u8() % 5), oc: i32::from(inp.u8() % 5), p0: i32::from(inp.u8() % 3) },
        16 => Op::SoftMaxBack { scale: inp.f32(), max_bias: inp.f32() },
        _ => Op::Rope(RopeParams {
            n_dims: i32::from(inp.u8() % 70) - 2,
            mode: inp.pick(&[0, 2, 8, 1, 24, 40]),
            n_ctx_orig: i32::from(inp.u16()),
            freq_base: inp.f32(),
            freq_scale: inp.f32(),
            ext_factor: inp.f32(),
            attn_factor: inp.f32(),
            beta_fast: inp.f32(),
            beta_slow: inp.f32(),
            n_offs: 0,
            sections: [0; 4].map(|_: i32| i32::from(inp.u8() % 40)),
            back: inp.u8() % 2 == 0,
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(state) = state() else { return };
    let st = state.lock().unwrap_or_else(|p| p.into_inner());
    let mut inp = Input(data);
    // Arbitrary contents: the bytes of the input, repeated (NaN/Inf/denormal patterns included).
    let fill: Vec<u8> = (0..BUF as usize).map(|i| data.get(i % data.len().max(1)).copied().unwrap_or(0)).collect();
    for b in &st.bufs {
        b.write(0, &fill).expect("fill");
    }
    let mut g = Graph::new();
    for _ in 0..1 + inp.u8() % 3 {
        let op = op(&mut inp);
        let nsrc = 1 + inp.u8() as usize % 3;
        let src: Vec<Option<Tensor>> =
            (0..nsrc).map(|_| if inp.u8() % 8 == 0 { None } else { tensor(&mut inp, &st.bufs) }).collect();
        let Some(dst) = tensor(&mut inp, &st.bufs) else { continue };
        let node = Node { op, src, dst };
        if ggvk::ops::check_on(st.be.device(), &node).is_ok() {
            g.push(node).expect("check_on accepted what push refuses");
        }
        if inp.done() {
            break;
        }
    }
    if g.is_empty() {
        return;
    }
    let before: Vec<Vec<u8>> = st.bufs.iter().map(|_| fill.clone()).collect();
    match st.be.compute(&g) {
        Ok(_) => {}
        Err(e @ (Error::Internal(_) | Error::DeviceLost(_) | Error::Vulkan { .. })) => panic!("compute: {e}"),
        Err(_) => return,
    }
    // Bytes no destination covers are unchanged.
    for (k, b) in st.bufs.iter().enumerate() {
        let mut after = vec![0u8; BUF as usize];
        b.read(0, &mut after).expect("read back");
        for (i, (x, y)) in before[k].iter().zip(&after).enumerate() {
            if x != y {
                let i = i as u64;
                let covered = g.nodes().iter().any(|n| {
                    let (s, e) = n.dst.byte_range();
                    n.dst.buffer.id() == b.id() && s <= i && i < e
                });
                assert!(covered, "byte {i} of buffer {k} changed outside every destination: {:?}", g.nodes());
            }
        }
    }
});

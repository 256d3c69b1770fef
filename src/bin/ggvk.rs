//! `ggvk info`: describe every Vulkan device (its ggml name and id as llama.cpp sees them). `ggvk bench`: the
//! mat-vec benchmark (Q4_0 weights x F32 vector, ggml's shapes), with weights rotated across >= 256 MiB so they
//! stream from memory, next to the CPU reference. `ggvk peak`: the tensor cores' rate through cooperative matrices
//! (the ceiling of the prompt products' tile loop). `ggvk stream`: the rate one mat-vec-shaped kernel streams a
//! matrix at, by load width and loads in flight.

use std::time::Instant;

use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Graph, Tensor};

struct Args {
    device: Option<usize>,
    m: i64,
    k: i64,
    n: i64,
    ty: GgmlType,
    resident: bool,
    rotate_mib: u64,
    seconds: f64,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        device: None,
        m: 4096,
        k: 14336,
        n: 1,
        ty: GgmlType::Q4_0,
        resident: false,
        rotate_mib: 256,
        seconds: 2.0,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => a.device = Some(val()?.parse().map_err(|e| format!("--device: {e}"))?),
            "--m" => a.m = val()?.parse().map_err(|e| format!("--m: {e}"))?,
            "--k" => a.k = val()?.parse().map_err(|e| format!("--k: {e}"))?,
            "--n" => a.n = val()?.parse().map_err(|e| format!("--n: {e}"))?,
            "--type" => {
                let v = val()?;
                a.ty = GgmlType::ALL
                    .into_iter()
                    .filter(|t| !matches!(t, GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64))
                    .find(|t| t.name().eq_ignore_ascii_case(&v))
                    .ok_or_else(|| format!("--type: unknown type {v}"))?
            }
            "--resident" => a.resident = true,
            "--rotate-mib" => a.rotate_mib = val()?.parse().map_err(|e| format!("--rotate-mib: {e}"))?,
            "--seconds" => a.seconds = val()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn info() -> Result<(), ggvk::Error> {
    let inst = ggvk::vk::Instance::global()?;
    let devs = inst.physical_devices();
    let names = ggvk::ggml::device_names(devs.iter().map(|p| p.caps.usable()));
    println!(
        "{} Vulkan device(s), {} usable as ggml devices (GGVK<n>, as llama.cpp lists them); default: {:?}",
        devs.len(),
        names.iter().flatten().count(),
        inst.default_device_index()
    );
    for ((i, p), name) in devs.iter().enumerate().zip(names) {
        match (name, p.caps.missing()) {
            (Some(name), _) => match p.caps.ggml_device_id() {
                Some(id) => println!("{name} (Vulkan device {i}, id {id}):"),
                None => println!("{name} (Vulkan device {i}):"),
            },
            (None, missing) => println!("not a ggml device (Vulkan device {i}, lacks {}):", missing.unwrap_or("?")),
        }
        println!("{}", ggvk::vk::device::describe_caps(i, &p.caps));
        println!("{}", inst.interop(i)?);
        for s in &p.caps.coopmat2.shapes {
            println!(
                "  workgroup-scope shapes {:?} x {:?} -> {:?}: M, N, K multiples of {}, {}, {}; {} invocations",
                s.ab, s.ab, s.c, s.m_granularity, s.n_granularity, s.k_granularity, s.invocations
            );
        }
    }
    let groups: Vec<String> = inst
        .device_groups()?
        .iter()
        .map(|(members, subset)| {
            format!("{members:?}{}", if members.len() > 1 && *subset { " (subset allocation)" } else { "" })
        })
        .collect();
    println!("device groups (Vulkan devices one logical device could span, with peer memory): {}", groups.join(" "));
    Ok(())
}

/// Single-threaded CPU reference mat-vec over the quantized rows (dequantize a row, dot in f32).
fn cpu_matvec(ty: GgmlType, a: &[u8], x: &[f32], m: usize, k: usize, out: &mut [f32]) {
    let row_bytes = ty.row_size(k as i64).expect("row size");
    let mut row = vec![0f32; k];
    for (r, o) in out.iter_mut().enumerate().take(m) {
        quant::dequantize(ty, &a[r * row_bytes..(r + 1) * row_bytes], &mut row).expect("dequantize");
        *o = row.iter().zip(x).map(|(p, q)| p * q).sum();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn bench(a: Args) -> Result<(), ggvk::Error> {
    if a.n > 1 {
        return bench_mm(a);
    }
    let be = Backend::new(a.device)?;
    println!("{}", be.device().describe());
    let (m, k) = (a.m as usize, a.k as usize);
    let row_bytes = a.ty.row_size(a.k)?;
    let w_bytes = (row_bytes * m) as u64;
    let copies = if a.resident { 1 } else { (a.rotate_mib << 20).div_ceil(w_bytes) as usize + 1 };
    println!(
        "mat-vec {} x f32: m={m} k={k}, {:.1} MiB of weights per op, {copies} cop{} ({:.0} MiB{})",
        a.ty.name(),
        w_bytes as f64 / (1 << 20) as f64,
        if copies == 1 { "y" } else { "ies" },
        (w_bytes * copies as u64) as f64 / (1 << 20) as f64,
        if a.resident { ", cache-resident" } else { ", rotated so weights stream from memory" }
    );
    let mut rnd = rng(0x1234_5678_9abc_def0);
    let w = random_weights(a.ty, m, k, &mut rnd)?;
    let x: Vec<f32> = (0..k).map(|_| rnd()).collect();
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_ne_bytes()).collect();

    let mut weights = Vec::with_capacity(copies);
    for _ in 0..copies {
        let buf = be.alloc(w_bytes)?;
        let t = Tensor::contiguous(buf, 0, a.ty, [a.k, a.m, 1, 1])?;
        t.write(0, &w)?;
        weights.push(t);
    }
    let xt = Tensor::contiguous(be.alloc(xb.len() as u64)?, 0, GgmlType::F32, [a.k, 1, 1, 1])?;
    xt.write(0, &xb)?;
    // One graph: `nodes` mat-vecs cycling through the weight copies, each into its own output slice.
    let nodes = copies.max(8) * if a.resident { 4 } else { 2 };
    let out = be.alloc((m * 4 * nodes) as u64)?;
    let mut g = Graph::new();
    let mut outs = Vec::new();
    for i in 0..nodes {
        let d = Tensor::contiguous(out.clone(), (i * m * 4) as u64, GgmlType::F32, [a.m, 1, 1, 1])?;
        g.mul_mat(&weights[i % copies], &xt, &d)?;
        outs.push(d);
    }
    // Warm-up (pipeline creation) and a correctness check against the CPU reference.
    be.compute(&g)?;
    let mut got = vec![0u8; m * 4];
    outs[0].read(0, &mut got)?;
    let got: Vec<f32> = got.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
    let mut want = vec![0f32; m];
    // Generic weight types multiply x rounded onto the CPU backend's grid (ops::matmul::rounds_activations): the
    // reference takes the same rounded x.
    let x_seen = match ggvk::ops::matmul::rounds_activations(&weights[0]) {
        Some(r) => quant::round_activations_to_vec(r, &x),
        None => x.clone(),
    };
    let t0 = Instant::now();
    cpu_matvec(a.ty, &w, &x_seen, m, k, &mut want);
    let cpu_s = t0.elapsed().as_secs_f64();
    // Allowed error: f32 rounding, plus, on the integer-dot path, the 8-bit rounding of x
    // (|x - x'| <= d/2 + 127 d 2^-11 per 32-value block, d = max|x| / 127 kept as f16, times sum|a| over it).
    let int_dot = ggvk::ops::matmul::uses_int_dot(be.device(), &weights[0], &xt);
    let mut worst = 0f64;
    let mut row = vec![0f32; k];
    for (r, (g, ref_val)) in got.iter().zip(&want).enumerate() {
        quant::dequantize(a.ty, &w[r * row_bytes..(r + 1) * row_bytes], &mut row)?;
        // The CPU reference itself sums k terms in f32.
        let mut allowed = 1e-3 * (1.0 + f64::from(ref_val.abs()));
        if int_dot {
            for (ab, xb) in row.chunks(32).zip(x.chunks(32)) {
                let d = xb.iter().fold(0f32, |m, v| m.max(v.abs())) as f64 / 127.0;
                allowed += d * (0.5 + 127.0 / 2048.0) * ab.iter().map(|v| f64::from(v.abs())).sum::<f64>();
            }
        }
        worst = worst.max(f64::from((g - ref_val).abs()) / allowed);
    }
    println!(
        "check vs CPU reference over {m} rows: worst error / allowed = {worst:.3}{}",
        if int_dot { " (integer-dot path: x rounded to 8 bits per block)" } else { "" }
    );
    if worst.is_nan() || worst > 1.0 {
        return Err(ggvk::Error::Internal(format!("GPU result differs from the CPU reference ({worst})")));
    }
    // Host-timed graphs.
    let mut per_op = Vec::new();
    let mut record = Vec::new();
    let start = Instant::now();
    while per_op.len() < 3 || (start.elapsed().as_secs_f64() < a.seconds && per_op.len() < 200) {
        let t = Instant::now();
        be.compute_async(&g)?;
        record.push(t.elapsed().as_secs_f64() * 1e6 / nodes as f64);
        be.synchronize()?;
        per_op.push(t.elapsed().as_secs_f64() * 1e6 / nodes as f64);
    }
    let wall = median(&mut per_op);
    let record = median(&mut record);
    // GPU timestamps per dispatch.
    be.set_profiling(true);
    let mut gpu = Vec::new();
    for _ in 0..3 {
        be.compute(&g)?;
        gpu.extend(node_times(&be));
    }
    be.set_profiling(false);
    let flops = 2.0 * m as f64 * k as f64;
    let gbs = |us: f64| w_bytes as f64 / (us * 1e-6) / 1e9;
    println!("graphs of {nodes} mat-vecs, {} runs; host recording + submit: {record:.2} us per node", per_op.len());
    println!(
        "  wall (host clock, median graph / nodes): {wall:9.2} us/op  {:8.1} GB/s of weights  {:8.1} GFLOPS",
        gbs(wall),
        flops / wall / 1e3
    );
    if !gpu.is_empty() {
        let t = median(&mut gpu);
        println!(
            "  GPU timestamps (median node):            {t:9.2} us/op  {:8.1} GB/s of weights  {:8.1} GFLOPS",
            gbs(t),
            flops / t / 1e3
        );
    }
    println!(
        "  CPU reference (1 thread, scalar):        {:9.2} us/op  {:8.1} GB/s of weights  {:8.1} GFLOPS",
        cpu_s * 1e6,
        gbs(cpu_s * 1e6),
        flops / (cpu_s * 1e6) / 1e3
    );
    Ok(())
}

/// Deterministic pseudo-random values in [-1, 1).
fn rng(seed: u64) -> impl FnMut() -> f32 {
    let mut next = xorshift(seed);
    move || ((next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// Deterministic pseudo-random 64-bit words (xorshift64).
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

/// A storage binding of `range` bytes of `buffer` from `offset`, touching exactly those bytes.
fn window(buffer: &std::sync::Arc<ggvk::vk::Buffer>, offset: u64, range: u64, write: bool) -> ggvk::vk::Binding {
    ggvk::vk::Binding { buffer: buffer.clone(), offset, range, touched: (offset, offset + range), write }
}

/// `m` rows of `k` random values quantized to `ty`; for types without a CPU quantizer (the K-quants) random blocks
/// in which every 16-bit word, so every f16 scale, is a small finite half (blocks start at even offsets).
fn random_weights(ty: GgmlType, m: usize, k: usize, rnd: &mut impl FnMut() -> f32) -> Result<Vec<u8>, ggvk::Error> {
    let vals: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
    match quant::quantize_to_vec(ty, &vals) {
        Err(ggvk::Error::Unsupported(_)) => Ok((0..ty.row_size(k as i64)? * m)
            .map(|i| {
                let r = ((rnd() + 1.0) * 128.0) as u8;
                if i % 2 == 1 {
                    r % 0x3C
                } else {
                    r
                }
            })
            .collect()),
        other => other,
    }
}

/// GPU time of each node of the backend's last profiled graph: its dispatches summed (the integer-dot path is two:
/// quantize x, multiply; labels start "#i ").
fn node_times(be: &Backend) -> Vec<f64> {
    let mut per_node: Vec<(String, f64)> = Vec::new();
    for t in be.last_times() {
        let node = t.label.split(' ').next().unwrap_or("").to_string();
        match per_node.last_mut() {
            Some((n, us)) if *n == node => *us += t.micros,
            _ => per_node.push((node, t.micros)),
        }
    }
    per_node.into_iter().map(|(_, us)| us).collect()
}

/// Matrix x matrix (`--n` columns: prompt processing): GPU time per product from timestamps, TFLOPS, and a check of
/// a few output columns against the CPU reference.
fn bench_mm(a: Args) -> Result<(), ggvk::Error> {
    let be = Backend::new(a.device)?;
    println!("{}", be.device().describe());
    let (m, k, n) = (a.m as usize, a.k as usize, a.n as usize);
    let row_bytes = a.ty.row_size(a.k)?;
    let mut rnd = rng(0x1234_5678_9abc_def0);
    let w = random_weights(a.ty, m, k, &mut rnd)?;
    let x: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let wt = Tensor::contiguous(be.alloc((row_bytes * m) as u64)?, 0, a.ty, [a.k, a.m, 1, 1])?;
    wt.write(0, &w)?;
    let xt = Tensor::contiguous(be.alloc(xb.len() as u64)?, 0, GgmlType::F32, [a.k, a.n, 1, 1])?;
    xt.write(0, &xb)?;
    let nodes = 4;
    let out = be.alloc((m * n * 4 * nodes) as u64)?;
    let mut g = Graph::new();
    let mut outs = Vec::new();
    for i in 0..nodes {
        let d = Tensor::contiguous(out.clone(), (i * m * n * 4) as u64, GgmlType::F32, [a.m, a.n, 1, 1])?;
        g.mul_mat(&wt, &xt, &d)?;
        outs.push(d);
    }
    println!(
        "mat-mat {} x f32: m={m} k={k} n={n}; kernel: {}",
        a.ty.name(),
        if ggvk::ops::coopmat::uses_coopmat(be.device(), &wt, &xt) { "cooperative matrix" } else { "tiled" }
    );
    be.compute(&g)?;
    let mut got = vec![0u8; m * n * 4];
    outs[0].read(0, &mut got)?;
    let got: Vec<f32> = got.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
    // Check three columns: first, middle, last. Allowed error: f32 sums, f16 operands (2^-10 relative per product),
    // and the 8-bit rounding of activations where the type's products use it.
    let rounds = ggvk::ops::matmul::rounds_activations(&wt);
    let mut rows = vec![0f32; m * k];
    for r in 0..m {
        quant::dequantize(a.ty, &w[r * row_bytes..(r + 1) * row_bytes], &mut rows[r * k..(r + 1) * k])?;
    }
    let mut worst = 0f64;
    for c in [0, n / 2, n - 1] {
        let xc = &x[c * k..(c + 1) * k];
        let x_seen = match rounds {
            Some(r) => quant::round_activations_to_vec(r, xc),
            None => xc.to_vec(),
        };
        for r in 0..m {
            let row = &rows[r * k..(r + 1) * k];
            let want: f64 = row.iter().zip(&x_seen).map(|(p, q)| f64::from(*p) * f64::from(*q)).sum();
            let mag: f64 = row.iter().zip(&x_seen).map(|(p, q)| f64::from((p * q).abs())).sum();
            let mut allowed = 1e-3 * (1.0 + want.abs()) + mag * 2f64.powi(-10);
            if rounds.is_some() {
                for (ab, xb) in row.chunks(32).zip(xc.chunks(32)) {
                    let d = xb.iter().fold(0f32, |m, v| m.max(v.abs())) as f64 / 127.0;
                    allowed += d * (0.5 + 127.0 / 2048.0) * ab.iter().map(|v| f64::from(v.abs())).sum::<f64>();
                }
            }
            worst = worst.max((f64::from(got[c * m + r]) - want).abs() / allowed);
        }
    }
    println!("check vs CPU reference over 3 columns x {m} rows: worst error / allowed = {worst:.3}");
    if worst.is_nan() || worst > 1.0 {
        return Err(ggvk::Error::Internal(format!("GPU result differs from the CPU reference ({worst})")));
    }
    be.set_profiling(true);
    let mut gpu = Vec::new();
    let start = Instant::now();
    while gpu.len() < 12 || (start.elapsed().as_secs_f64() < a.seconds && gpu.len() < 400) {
        be.compute(&g)?;
        gpu.extend(node_times(&be));
    }
    be.set_profiling(false);
    let t = median(&mut gpu);
    let best = gpu.iter().copied().fold(f64::INFINITY, f64::min);
    let flops = 2.0 * m as f64 * k as f64 * n as f64;
    println!(
        "  GPU timestamps: median {t:9.1} us/op ({:6.1} TFLOPS), best {best:9.1} us ({:6.1} TFLOPS), {} products",
        flops / t / 1e6,
        flops / best / 1e6,
        gpu.len()
    );
    Ok(())
}

/// `ggvk peak`: the rate of the tensor cores through KHR cooperative matrices (`shaders/peak_coopmat.comp`), with
/// operands in registers and fed from shared memory, f16 and s8: the ceiling a product kernel's tile loop works
/// against on this device and driver. Needs 16x16x16 f16 (16x16x32 s8) subgroup fragments and subgroups of 32.
fn peak(device: Option<usize>) -> Result<(), ggvk::Error> {
    use ggvk::vk::caps::{CoopmatShape, CoopmatType};
    use ggvk::vk::{Binding, Buffer, CommandStream, Device, Shader};
    let dev = Device::open(device)?;
    println!("{}", dev.describe());
    let caps = dev.caps();
    let listed =
        |ab, c, k| caps.coopmat_feature && caps.coopmat_shapes.contains(&CoopmatShape { m: 16, n: 16, k, ab, c });
    let f16 = listed(CoopmatType::F16, CoopmatType::F32, 16);
    let s8 = listed(CoopmatType::S8, CoopmatType::S32, 32) && caps.int8;
    if !f16 || caps.subgroup_size != 32 || !caps.vulkan_memory_model {
        println!(
            "peak: this device lists no 16x16x16 f16 cooperative matrices for subgroups of 32; nothing to measure"
        );
        return Ok(());
    }
    const GROUPS: u32 = 1056;
    // (name, SPIR-V, k per fragment product, k steps per round, measured)
    let kernels: [(&'static str, &'static [u8], u64, u64, bool); 4] = [
        ("peak_f16", ggvk::ops::spirv::PEAK_F16, 16, 1, true),
        ("peak_f16_smem", ggvk::ops::spirv::PEAK_F16_SMEM, 16, 4, true),
        ("peak_s8", ggvk::ops::spirv::PEAK_S8, 32, 1, s8),
        ("peak_s8_smem", ggvk::ops::spirv::PEAK_S8_SMEM, 32, 4, s8),
    ];
    let input = Buffer::new(&dev, 1 << 20, "peak input")?;
    input.write(0, &[0x3c; 1 << 20])?;
    let output = Buffer::new(&dev, u64::from(GROUPS) * 8 * 8 * 256 * 4, "peak output")?;
    let bindings = [
        Binding { buffer: input.clone(), offset: 0, range: input.size(), touched: (0, input.size()), write: false },
        Binding { buffer: output.clone(), offset: 0, range: output.size(), touched: (0, output.size()), write: true },
    ];
    let mut stream = CommandStream::new(&dev)?;
    for (name, spirv, k, steps, measured) in kernels {
        if !measured {
            println!("{name:14} not listed here (s8 16x16x32)");
            continue;
        }
        let shader = Shader { name, spirv, bindings: 2, push_size: 4 };
        let pipeline = dev.pipelines().get(&dev, &shader, &[])?;
        let mut time = |iters: u32| -> Result<f64, ggvk::Error> {
            let mut rec = stream.begin(Some(1), 0, 0)?;
            rec.dispatch(name, &pipeline, &bindings, &iters.to_le_bytes(), [GROUPS, 1, 1])?;
            rec.submit()?;
            stream.synchronize()?;
            Ok(stream.last_times().first().map_or(f64::NAN, |t| t.micros))
        };
        // Rounds until a dispatch takes 2 ms or more, then the best of five.
        let mut iters = 64u32;
        while time(iters)? < 2000.0 && iters < 1 << 20 {
            iters *= 2;
        }
        let best = (0..5).map(|_| time(iters)).collect::<Result<Vec<_>, _>>()?.into_iter().fold(f64::MAX, f64::min);
        // 8 subgroups x 4 x 2 fragment products of 16 x 16 x k per k step.
        let ops = 2.0 * (8 * 8 * 256 * k * steps) as f64 * f64::from(iters) * f64::from(GROUPS);
        println!("{name:14} {iters:7} rounds x {GROUPS} workgroups: {best:9.1} us, {:7.1} T(FL)OPS", ops / best / 1e6);
    }
    Ok(())
}

/// `ggvk stream`: how fast one mat-vec-shaped kernel streams a matrix from memory by the width of its loads and how
/// many it keeps in flight (`shaders/stream_probe.comp`), each configuration timed alone (GPU timestamps around
/// each dispatch, median) and back to back (host clock over a submission of dispatches without barriers, as a
/// token's independent products overlap), with copies of the matrix rotated so that nothing stays in the cache
/// unless `--resident` (about `--dispatches` per submission, three submissions per figure). Every run's row sums
/// are checked against the host's. The shader copy (`copy`) is the
/// reference rate: its bytes read plus written.
fn stream(a: StreamArgs) -> Result<(), ggvk::Error> {
    use ggvk::vk::{Buffer, CommandStream, Device, Shader};
    let dev = Device::open(a.device)?;
    println!("{}", dev.describe());
    let (m, row_bytes) = (a.m, a.row_bytes);
    let bytes = m * row_bytes;
    let copies = if a.resident { 1 } else { ((a.rotate_mib << 20).div_ceil(bytes) + 1) as usize };
    println!(
        "matrix of {m} rows x {row_bytes} bytes ({:.1} MiB), {copies} cop{} ({:.0} MiB{})",
        bytes as f64 / (1 << 20) as f64,
        if copies == 1 { "y" } else { "ies" },
        (bytes * copies as u64) as f64 / (1 << 20) as f64,
        if copies == 1 {
            ", one copy: cache-resident where it fits"
        } else {
            ", rotated so every read comes from memory"
        }
    );
    // Bytes that never sum to zero by accident; every copy holds the same, so every run's sums are the same.
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let data: Vec<u8> = (0..bytes).map(|_| (next() >> 32) as u8).collect();
    let want: Vec<u32> = data
        .chunks_exact(row_bytes as usize)
        .map(|row| row.chunks_exact(2).fold(0u32, |t, h| t.wrapping_add(u32::from(u16::from_le_bytes([h[0], h[1]])))))
        .collect();
    let mut srcs = Vec::with_capacity(copies);
    for i in 0..copies {
        let b = Buffer::new(&dev, bytes, &format!("stream copy {i}"))?;
        b.write(0, &data)?;
        srcs.push(b);
    }
    // Each copy's sums at their own 256-byte aligned offset (a storage binding's offset alignment), m words each.
    let sums_bytes = m * 4;
    let sums_stride = sums_bytes.next_multiple_of(256);
    let sums = Buffer::new(&dev, sums_stride * copies as u64, "stream sums")?;
    let dst = Buffer::new(&dev, bytes, "stream copy destination")?;
    let shader = Shader { name: "stream_probe", spirv: ggvk::ops::spirv::STREAM_PROBE, bindings: 3, push_size: 8 };
    let push: Vec<u8> = [row_bytes as u32, m as u32].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut stream = CommandStream::new(&dev)?;
    println!(
        "{:>5} {:>5} {:>5} {:>4} {:>5} | {:>9} {:>8} | {:>9} {:>8}",
        "wg", "width", "loads", "rows", "copy", "alone us", "GB/s", "b2b us", "GB/s"
    );
    for cfg in stream_configs(&a) {
        let (wg, width, loads, rows, copy) = cfg;
        let pipeline = dev.pipelines().get(&dev, &shader, &[wg, width, loads, rows, u32::from(copy)])?;
        let groups = [(m as u32).div_ceil(rows), 1, 1];
        // The copy writes one destination (its dispatches wait for each other); the reads write disjoint sums.
        let bindings = |c: usize| {
            vec![
                window(&srcs[c], 0, bytes, false),
                window(&sums, c as u64 * sums_stride, sums_bytes, true),
                window(&dst, 0, bytes, copy),
            ]
        };
        let rotation = Rotation { pipeline: &pipeline, push: &push, groups, copies, bindings: &bindings };
        rotation.submit(&mut stream, 1, false)?;
        let mut got = vec![0u8; sums_bytes as usize];
        for c in 0..copies {
            sums.read(c as u64 * sums_stride, &mut got)?;
            let ok = got.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).eq(want.iter().copied());
            if !ok {
                return Err(ggvk::Error::Internal(format!(
                    "stream {cfg:?}: row sums of copy {c} differ from the host's"
                )));
            }
        }
        if copy {
            let mut back = vec![0u8; bytes as usize];
            dst.read(0, &mut back)?;
            if back != data {
                return Err(ggvk::Error::Internal(format!("stream {cfg:?}: the copy differs from its source")));
            }
        }
        let (alone, b2b) = rotation.alone_and_back_to_back(&mut stream, a.dispatches)?;
        let moved = bytes as f64 * if copy { 2.0 } else { 1.0 };
        let gbs = |us: f64| moved / (us * 1e-6) / 1e9;
        println!(
            "{wg:>5} {width:>5} {loads:>5} {rows:>4} {:>5} | {alone:>9.2} {:>8.1} | {b2b:>9.2} {:>8.1}",
            if copy { "yes" } else { "" },
            gbs(alone),
            gbs(b2b)
        );
    }
    stream_q4_0(&dev, &a, copies)
}

/// `ggvk stream`'s Q4_0 tables: a one-column Q4_0 product over the same bytes, by rows per workgroup and blocks in
/// flight, each result checked against the host's sums, in two layouts: split (`shaders/stream_q4_0_split.comp`:
/// each block's 16 code bytes one 16-byte load, the scales apart) and ggml's own interleaved 18-byte blocks staged
/// through shared memory with 16-byte loads (`shaders/stream_q4_0_staged.comp`; rows of a multiple of 8 blocks).
fn stream_q4_0(dev: &std::sync::Arc<ggvk::vk::Device>, a: &StreamArgs, copies: usize) -> Result<(), ggvk::Error> {
    use ggvk::vk::{Buffer, CommandStream, Shader};
    let (m, nb) = (a.m as usize, (a.row_bytes / 18) as usize);
    if nb == 0 {
        return Ok(());
    }
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let codes: Vec<u8> = (0..m * nb * 16).map(|_| (next() >> 24) as u8).collect();
    // Scales 2^-10 .. 2^-7 as f16 bits; activations' codes -127..127, scales 0.01 .. 0.1.
    let scales: Vec<u16> = (0..m * nb).map(|_| 0x1400 + (next() >> 40) as u16 % 0x0C00).collect();
    let xq: Vec<i8> = (0..nb * 32).map(|_| (((next() >> 33) % 255) as i32 - 127) as i8).collect();
    let xd: Vec<f32> = (0..nb).map(|_| 0.01 + (next() >> 40) as f32 / (1u64 << 24) as f32 * 0.09).collect();
    let xsum: Vec<i32> = xq.chunks_exact(32).map(|c| c.iter().map(|&q| i32::from(q)).sum()).collect();
    let half = |h: u16| half::f16::from_bits(h).to_f64();
    // The host's product and, per row, the sum of its blocks' magnitudes (the tolerance's scale).
    let (want, scale): (Vec<f64>, Vec<f64>) = (0..m)
        .map(|r| {
            (0..nb).fold((0.0, 0.0), |(t, mag), b| {
                let blk = &codes[(r * nb + b) * 16..(r * nb + b + 1) * 16];
                let x = &xq[b * 32..(b + 1) * 32];
                let dot: i32 = (0..16)
                    .map(|j| i32::from(blk[j] & 15) * i32::from(x[j]) + i32::from(blk[j] >> 4) * i32::from(x[j + 16]))
                    .sum();
                let v = half(scales[r * nb + b]) * f64::from(xd[b]) * f64::from(dot - 8 * xsum[b]);
                (t + v, mag + v.abs())
            })
        })
        .unzip();
    let x_codes = Buffer::new(dev, (nb * 32) as u64, "q4_0 activations")?;
    x_codes.write(0, &xq.iter().map(|&q| q as u8).collect::<Vec<u8>>())?;
    let x_ds = Buffer::new(dev, (nb * 8) as u64, "q4_0 activation scales")?;
    let ds: Vec<u8> =
        xd.iter().zip(&xsum).flat_map(|(d, s)| [d.to_le_bytes(), (*s as f32).to_le_bytes()]).flatten().collect();
    x_ds.write(0, &ds)?;
    let out_bytes = ((m * 4) as u64).next_multiple_of(256);
    let out = Buffer::new(dev, out_bytes * copies as u64, "q4_0 results")?;
    let push: Vec<u8> = [nb as u32, m as u32].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut stream = CommandStream::new(dev)?;
    for staged in [false, true] {
        // Split: [codes of every block] [scales]; staged: ggml's blocks (scale, 16 code bytes), rows back to back.
        let (bytes, scales_at) = if staged {
            if nb % 8 != 0 || a.wg.iter().any(|w| w % 8 != 0) {
                println!("Q4_0 staged through shared memory: needs rows of a multiple of 8 blocks (and --wg of 8s)");
                continue;
            }
            let mut v = Vec::with_capacity(m * nb * 18);
            for (c, d) in codes.chunks_exact(16).zip(&scales) {
                v.extend_from_slice(&d.to_le_bytes());
                v.extend_from_slice(c);
            }
            (v, 0)
        } else {
            let at = (m * nb * 16).next_multiple_of(256);
            let mut v = codes.clone();
            v.resize(at, 0);
            v.extend(scales.iter().flat_map(|d| d.to_le_bytes()));
            (v, at as u64)
        };
        let mut srcs = Vec::with_capacity(copies);
        for i in 0..copies {
            let b = Buffer::new(dev, bytes.len() as u64, &format!("q4_0 copy {i}"))?;
            b.write(0, &bytes)?;
            srcs.push(b);
        }
        let shader = if staged {
            Shader {
                name: "stream_q4_0_staged",
                spirv: ggvk::ops::spirv::STREAM_Q4_0_STAGED,
                bindings: 4,
                push_size: 8,
            }
        } else {
            Shader { name: "stream_q4_0_split", spirv: ggvk::ops::spirv::STREAM_Q4_0_SPLIT, bindings: 5, push_size: 8 }
        };
        println!(
            "Q4_0 product over the same {:.1} MiB, k = {}, {}:",
            (m * nb * 18) as f64 / (1 << 20) as f64,
            nb * 32,
            if staged {
                "ggml's 18-byte blocks staged through shared memory by 16-byte loads"
            } else {
                "split layout (a block's 16 code bytes one 16-byte load, the scales apart)"
            }
        );
        println!(
            "{:>5} {:>5} {:>4} | {:>9} {:>8} | {:>9} {:>8}",
            "wg", "loads", "rows", "alone us", "GB/s", "b2b us", "GB/s"
        );
        for &wg in &a.wg {
            for rows in [1u32, 2, 4] {
                for loads in [1u32, 2, 4] {
                    // The staged trip (rows x wg x loads blocks of 18 bytes) and the reduction in shared memory.
                    let shared = if staged { rows * wg * loads * 18 } else { 0 } + rows * wg * 4;
                    if shared > dev.caps().max_shared_memory {
                        println!(
                            "{wg:>5} {loads:>5} {rows:>4} | needs {shared} bytes of shared memory, the device has {}",
                            dev.caps().max_shared_memory
                        );
                        continue;
                    }
                    let pipeline = dev.pipelines().get(dev, &shader, &[wg, loads, rows])?;
                    let groups = [(m as u32).div_ceil(rows), 1, 1];
                    let bindings = |c: usize| {
                        let mut v = if staged {
                            vec![window(&srcs[c], 0, bytes.len() as u64, false)]
                        } else {
                            vec![
                                window(&srcs[c], 0, (m * nb * 16) as u64, false),
                                window(&srcs[c], scales_at, (m * nb * 2) as u64, false),
                            ]
                        };
                        v.push(window(&x_codes, 0, x_codes.size(), false));
                        v.push(window(&x_ds, 0, x_ds.size(), false));
                        v.push(window(&out, c as u64 * out_bytes, (m * 4) as u64, true));
                        v
                    };
                    let rotation = Rotation { pipeline: &pipeline, push: &push, groups, copies, bindings: &bindings };
                    rotation.submit(&mut stream, 1, false)?;
                    let mut got = vec![0u8; m * 4];
                    for c in 0..copies {
                        out.read(c as u64 * out_bytes, &mut got)?;
                        for (r, w) in got.chunks_exact(4).enumerate() {
                            let g = f64::from(f32::from_le_bytes([w[0], w[1], w[2], w[3]]));
                            let err = (g - want[r]).abs();
                            if err.is_nan() || err > 1e-5 * scale[r] + 1e-6 {
                                return Err(ggvk::Error::Internal(format!(
                                    "q4_0 {} (wg {wg}, loads {loads}, rows {rows}): row {r} of copy {c} is {g}, \
                                     the host's {}",
                                    if staged { "staged" } else { "split" },
                                    want[r]
                                )));
                            }
                        }
                    }
                    let (alone, b2b) = rotation.alone_and_back_to_back(&mut stream, a.dispatches)?;
                    let gbs = |us: f64| (m * nb * 18) as f64 / (us * 1e-6) / 1e9;
                    println!(
                        "{wg:>5} {loads:>5} {rows:>4} | {alone:>9.2} {:>8.1} | {b2b:>9.2} {:>8.1}",
                        gbs(alone),
                        gbs(b2b)
                    );
                }
            }
        }
    }
    Ok(())
}

/// One `ggvk stream` configuration: its pipeline, push constants and grid, and the bindings of the dispatch that
/// reads copy `c` of `copies`.
struct Rotation<'a> {
    pipeline: &'a std::sync::Arc<ggvk::vk::pipeline::Pipeline>,
    push: &'a [u8],
    groups: [u32; 3],
    copies: usize,
    bindings: &'a dyn Fn(usize) -> Vec<ggvk::vk::Binding>,
}

impl Rotation<'_> {
    /// `copies * reps` dispatches in one submission, cycling through the copies, each timed if `timed`: the host
    /// microseconds per dispatch (submission to completion) and each dispatch's GPU time.
    fn submit(
        &self,
        stream: &mut ggvk::vk::CommandStream,
        reps: usize,
        timed: bool,
    ) -> Result<(f64, Vec<f64>), ggvk::Error> {
        let n = self.copies * reps;
        let mut rec = stream.begin(timed.then_some(n as u32), 0, 0)?;
        for i in 0..n {
            rec.dispatch("stream", self.pipeline, &(self.bindings)(i % self.copies), self.push, self.groups)?;
        }
        let t = Instant::now();
        rec.submit()?;
        stream.synchronize()?;
        let host = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        Ok((host, if timed { stream.last_times().iter().map(|t| t.micros).collect() } else { Vec::new() }))
    }

    /// The median GPU time of a dispatch alone (timestamps around each, three submissions) and the median host time
    /// per dispatch back to back (three submissions without them), about `dispatches` dispatches a submission.
    fn alone_and_back_to_back(
        &self,
        stream: &mut ggvk::vk::CommandStream,
        dispatches: u32,
    ) -> Result<(f64, f64), ggvk::Error> {
        let reps = (dispatches as usize / self.copies).max(1);
        let mut alone = Vec::new();
        for _ in 0..3 {
            alone.extend(self.submit(stream, reps, true)?.1);
        }
        let mut b2b =
            (0..3).map(|_| self.submit(stream, reps.max(4), false).map(|r| r.0)).collect::<Result<Vec<_>, _>>()?;
        Ok((median(&mut alone), median(&mut b2b)))
    }
}

struct StreamArgs {
    device: Option<usize>,
    m: u64,
    row_bytes: u64,
    rotate_mib: u64,
    resident: bool,
    wg: Vec<u32>,
    dispatches: u32,
}

fn parse_stream(args: &[String]) -> Result<StreamArgs, String> {
    // A Q4_0 matrix of 4096 rows of 14336 values (an 8B model's feed-forward down product).
    let mut a = StreamArgs {
        device: None,
        m: 4096,
        row_bytes: 8064,
        rotate_mib: 1024,
        resident: false,
        wg: vec![128],
        dispatches: 64,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => a.device = Some(val()?.parse().map_err(|e| format!("--device: {e}"))?),
            "--m" => a.m = val()?.parse().map_err(|e| format!("--m: {e}"))?,
            "--row-bytes" => a.row_bytes = val()?.parse().map_err(|e| format!("--row-bytes: {e}"))?,
            "--rotate-mib" => a.rotate_mib = val()?.parse().map_err(|e| format!("--rotate-mib: {e}"))?,
            "--resident" => a.resident = true,
            "--dispatches" => a.dispatches = val()?.parse().map_err(|e| format!("--dispatches: {e}"))?,
            "--wg" => {
                a.wg = val()?
                    .split(',')
                    .map(|w| match w.parse::<u32>() {
                        Ok(w) if w.is_power_of_two() && (4..=1024).contains(&w) => Ok(w),
                        _ => Err(format!("--wg: {w} is not a power of two from 4 to 1024")),
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.m == 0 || a.m > u64::from(u32::MAX) || a.row_bytes == 0 || a.row_bytes % 16 != 0 {
        return Err("--m must be positive and --row-bytes a positive multiple of 16".into());
    }
    Ok(a)
}

/// The configurations `ggvk stream` times: (invocations, bytes per load, loads in flight per row, rows per
/// workgroup, copy): every width with 1-8 loads for one row and for four (the product kernels' shapes), then the
/// copies.
fn stream_configs(a: &StreamArgs) -> Vec<(u32, u32, u32, u32, bool)> {
    let mut v = Vec::new();
    for &wg in &a.wg {
        for rows in [1, 4] {
            for width in [2, 4, 8, 16] {
                for loads in [1, 2, 4, 8] {
                    v.push((wg, width, loads, rows, false));
                }
            }
        }
        for loads in [1, 2, 4] {
            v.push((wg, 16, loads, 1, true));
        }
    }
    v
}

/// What `ggvk --help` prints (to stdout; to stderr with exit status 2 after a wrong command).
const USAGE: &str = "usage: ggvk info\n       ggvk bench [--device N] \
                     [--type q4_0|q4_1|q5_0|q5_1|q8_0|q2_K..q6_K|bf16|f16|f32] [--m 4096] [--k 14336] [--n 1] \
                     [--resident] [--rotate-mib 256] [--seconds 2]\n       ggvk peak [--device N]\n       \
                     ggvk stream [--device N] [--m 4096] [--row-bytes 8064] [--rotate-mib 1024] [--resident] \
                     [--wg 128,...] [--dispatches 64]\n       \
                     ggvk --help | --version";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `ggvk info --help`, `ggvk bench -h`: the usage, as `ggvk --help` prints it.
    if args.len() > 1 && args[1..].iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let result = match args.first().map(String::as_str) {
        Some("info") if args.len() == 1 => info(),
        Some("info") => {
            eprintln!("ggvk info: unexpected argument {}\n{USAGE}", args[1]);
            std::process::exit(2);
        }
        Some("bench") => match parse(&args[1..]) {
            Ok(a) => bench(a),
            Err(e) => {
                eprintln!("ggvk bench: {e}");
                std::process::exit(2);
            }
        },
        Some("stream") => match parse_stream(&args[1..]) {
            Ok(a) => stream(a),
            Err(e) => {
                eprintln!("ggvk stream: {e}");
                std::process::exit(2);
            }
        },
        Some("peak") => match args.get(1..) {
            Some([]) => peak(None),
            Some([flag, n]) if flag == "--device" => match n.parse() {
                Ok(n) => peak(Some(n)),
                Err(e) => {
                    eprintln!("ggvk peak: --device: {e}");
                    std::process::exit(2);
                }
            },
            _ => {
                eprintln!("ggvk peak: unexpected arguments\n{USAGE}");
                std::process::exit(2);
            }
        },
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            return;
        }
        Some("--version" | "-V") => {
            println!("ggvk {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("ggvk: {e}");
        std::process::exit(1);
    }
    if ggvk::vk::validation_error_count() > 0 {
        eprintln!("ggvk: {} Vulkan validation error(s) reported", ggvk::vk::validation_error_count());
        std::process::exit(1);
    }
}

//! `ggvk info`: describe every Vulkan device (its ggml name and id as llama.cpp sees them). `ggvk bench`: the mat-vec benchmark (Q4_0 weights x F32 vector,
//! ggml's shapes), with weights rotated across >= 256 MiB so they stream from memory, next to the CPU reference.

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
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
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

/// What `ggvk --help` prints (to stdout; to stderr with exit status 2 after a wrong command).
const USAGE: &str = "usage: ggvk info\n       ggvk bench [--device N] \
                     [--type q4_0|q4_1|q5_0|q5_1|q8_0|q2_K..q6_K|bf16|f16|f32] [--m 4096] [--k 14336] [--n 1] \
                     [--resident] [--rotate-mib 256] [--seconds 2]\n       ggvk --help | --version";

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

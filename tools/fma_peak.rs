//! The machine's FP32 peak, measured: every core runs a loop of independent fused
//! multiply-adds, and the example prints the GFLOP/s it reaches.
//!
//! ```text
//! cargo run --example fma_peak -- --threads 2 --format lines
//! ```
//!
//! Each thread keeps 12 accumulator registers busy with `vfmadd231ps` (enough independent
//! chains to cover the FMA latency times the number of FMA pipes on current x86 cores),
//! on 256-bit (AVX2 + FMA) and, where the CPU has it, 512-bit (AVX-512F) registers. The
//! loop is written in inline assembly so that the figure does not depend on the optimisation
//! level the example is built with. One FMA counts as two floating-point operations, the
//! convention of GEMM GFLOP/s figures. The best of `--repeats` runs is reported.
//!
//! `--format lines` prints `RESULT impl=fma-peak ...` lines for `benches/reference/compare.py`.

use std::time::Instant;

use clap::Parser;

/// Accumulator registers each loop iteration updates.
const ACCUMULATORS: u64 = 12;

#[path = "../benches/common/mod.rs"]
mod bench;

use bench::Format;

#[derive(Parser, Debug)]
struct Args {
    /// Threads to run at once; 0 means one per available core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Loop iterations per thread and run.
    #[arg(long, default_value_t = 200_000_000)]
    iters: u64,
    /// Runs of each measurement; the best is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// One SIMD width the CPU can run FMAs at.
#[derive(Clone, Copy, Debug)]
struct Width {
    name: &'static str,
    lanes: u64,
    run: fn(u64),
}

fn main() {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if args.threads == 0 {
        cores
    } else {
        args.threads
    };
    let widths = widths();
    if widths.is_empty() {
        eprintln!("this CPU has no AVX2 + FMA (or this is not x86-64): nothing to measure");
        std::process::exit(1);
    }
    let mut best = 0.0f64;
    for width in &widths {
        for n in [1, threads] {
            let gflops = (0..args.repeats.max(1))
                .map(|_| gflops(width, n, args.iters))
                .fold(0.0, f64::max);
            best = best.max(if n == threads { gflops } else { 0.0 });
            match args.format {
                Format::Table => println!(
                    "{:<8} {n} thread(s): {gflops:8.1} GFLOP/s ({:.1} per thread)",
                    width.name,
                    gflops / n as f64
                ),
                Format::Lines => println!(
                    "RESULT impl=fma-peak isa={} threads={n} gflops={gflops:.2}",
                    width.name
                ),
            }
        }
    }
    match args.format {
        Format::Table => println!("peak with {threads} thread(s): {best:.1} GFLOP/s"),
        Format::Lines => {
            println!("RESULT impl=fma-peak isa=best threads={threads} gflops={best:.2}")
        }
    }
}

/// GFLOP/s of `threads` threads each running `iters` loop iterations at `width`.
fn gflops(width: &Width, threads: usize, iters: u64) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| (width.run)(iters));
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    let flops = 2 * ACCUMULATORS * width.lanes * iters * threads as u64;
    flops as f64 / seconds / 1e9
}

/// The widths this CPU supports, narrowest first.
fn widths() -> Vec<Width> {
    #[allow(unused_mut)]
    let mut widths = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            widths.push(Width {
                name: "avx2",
                lanes: 8,
                run: |iters| {
                    // SAFETY: the CPU was checked for AVX2 and FMA just above.
                    unsafe { x86::fma_ymm(iters) }
                },
            });
        }
        if is_x86_feature_detected!("avx512f") {
            widths.push(Width {
                name: "avx512",
                lanes: 16,
                run: |iters| {
                    // SAFETY: the CPU was checked for AVX-512F just above.
                    unsafe { x86::fma_zmm(iters) }
                },
            });
        }
    }
    widths
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;

    /// `iters` iterations of 12 independent 256-bit FMAs (on zeros: no denormals).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_ymm(iters: u64) {
        if iters == 0 {
            return;
        }
        // SAFETY: only registers declared as clobbered are written.
        unsafe {
            asm!(
                "vxorps ymm0, ymm0, ymm0",
                "vxorps ymm1, ymm1, ymm1",
                "vxorps ymm2, ymm2, ymm2",
                "vxorps ymm3, ymm3, ymm3",
                "vxorps ymm4, ymm4, ymm4",
                "vxorps ymm5, ymm5, ymm5",
                "vxorps ymm6, ymm6, ymm6",
                "vxorps ymm7, ymm7, ymm7",
                "vxorps ymm8, ymm8, ymm8",
                "vxorps ymm9, ymm9, ymm9",
                "vxorps ymm10, ymm10, ymm10",
                "vxorps ymm11, ymm11, ymm11",
                "vxorps ymm14, ymm14, ymm14",
                "vxorps ymm15, ymm15, ymm15",
                "2:",
                "vfmadd231ps ymm0, ymm14, ymm15",
                "vfmadd231ps ymm1, ymm14, ymm15",
                "vfmadd231ps ymm2, ymm14, ymm15",
                "vfmadd231ps ymm3, ymm14, ymm15",
                "vfmadd231ps ymm4, ymm14, ymm15",
                "vfmadd231ps ymm5, ymm14, ymm15",
                "vfmadd231ps ymm6, ymm14, ymm15",
                "vfmadd231ps ymm7, ymm14, ymm15",
                "vfmadd231ps ymm8, ymm14, ymm15",
                "vfmadd231ps ymm9, ymm14, ymm15",
                "vfmadd231ps ymm10, ymm14, ymm15",
                "vfmadd231ps ymm11, ymm14, ymm15",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) iters => _,
                out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
                out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
                out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
                out("ymm14") _, out("ymm15") _,
                options(nostack, nomem),
            );
        }
    }

    /// `iters` iterations of 12 independent 512-bit FMAs (on zeros: no denormals).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_zmm(iters: u64) {
        if iters == 0 {
            return;
        }
        // SAFETY: only registers declared as clobbered are written.
        unsafe {
            asm!(
                "vxorps zmm0, zmm0, zmm0",
                "vxorps zmm1, zmm1, zmm1",
                "vxorps zmm2, zmm2, zmm2",
                "vxorps zmm3, zmm3, zmm3",
                "vxorps zmm4, zmm4, zmm4",
                "vxorps zmm5, zmm5, zmm5",
                "vxorps zmm6, zmm6, zmm6",
                "vxorps zmm7, zmm7, zmm7",
                "vxorps zmm8, zmm8, zmm8",
                "vxorps zmm9, zmm9, zmm9",
                "vxorps zmm10, zmm10, zmm10",
                "vxorps zmm11, zmm11, zmm11",
                "vxorps zmm14, zmm14, zmm14",
                "vxorps zmm15, zmm15, zmm15",
                "2:",
                "vfmadd231ps zmm0, zmm14, zmm15",
                "vfmadd231ps zmm1, zmm14, zmm15",
                "vfmadd231ps zmm2, zmm14, zmm15",
                "vfmadd231ps zmm3, zmm14, zmm15",
                "vfmadd231ps zmm4, zmm14, zmm15",
                "vfmadd231ps zmm5, zmm14, zmm15",
                "vfmadd231ps zmm6, zmm14, zmm15",
                "vfmadd231ps zmm7, zmm14, zmm15",
                "vfmadd231ps zmm8, zmm14, zmm15",
                "vfmadd231ps zmm9, zmm14, zmm15",
                "vfmadd231ps zmm10, zmm14, zmm15",
                "vfmadd231ps zmm11, zmm14, zmm15",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) iters => _,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
                out("zmm14") _, out("zmm15") _,
                options(nostack, nomem),
            );
        }
    }
}

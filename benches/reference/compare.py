#!/usr/bin/env python3
"""Burn beside PyTorch, in one go: forward and training throughput of the `koch` and
`compact` networks on Burn's CPU backends (flex, ndarray) and on PyTorch's CPU, with the
same batch sizes and thread count, plus the machine's FP32 peak; prints a table with the
Burn/PyTorch ratio of every figure and the fraction of peak the Koch embed reaches.

    pip install torch
    python3 benches/reference/compare.py                       # everything (~6 min, 2 cores)
    python3 benches/reference/compare.py --presets compact --modes train
    python3 benches/reference/compare.py --devices flex,ndarray,wgpu

It builds and runs `tools/throughput.rs` (`--format lines`) and `tools/fma_peak.rs`
with cargo (dev profile by default: the crate's dev profile builds Burn's kernels at
opt-level 3, like release), then `torch_reference.py`. Every program prints
`RESULT key=value ...` lines; `--raw FILE` keeps them all. Runs are sequential, so run
it on a quiet machine. Not part of CI.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def run(command, env=None):
    """Runs `command`, echoing its stderr, and returns the parsed RESULT lines."""
    print("$ " + " ".join(str(c) for c in command), file=sys.stderr, flush=True)
    proc = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    results = []
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            results.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
        else:
            print(line, file=sys.stderr)
    if proc.returncode != 0:
        print(f"warning: {command[0]} exited with {proc.returncode}", file=sys.stderr)
    return results


def cargo_binaries(profile: str, features: str, build: bool):
    """Builds the two examples (unless `build` is false) and returns their paths."""
    if build:
        subprocess.run(
            ["cargo", "build", "--profile", profile, "--features", features,
             "--example", "throughput", "--example", "fma_peak"],
            cwd=ROOT, check=True)
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout)
    folder = Path(meta["target_directory"]) / ("debug" if profile == "dev" else profile)
    return folder / "examples" / "throughput", folder / "examples" / "fma_peak"


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for Burn (rayon) and PyTorch (default: every core)")
    parser.add_argument("--devices", default="flex,ndarray", help="Burn devices")
    parser.add_argument("--presets", default="koch,compact")
    parser.add_argument("--modes", default="embed,forward,train")
    parser.add_argument("--batches", default="1,20,128", help="batches of embed and forward")
    parser.add_argument("--train-batches", default="32,128")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--profile", default="dev", help="cargo profile (dev or release)")
    parser.add_argument("--features", default="ndarray,wgpu", help="cargo features")
    parser.add_argument("--no-torch", action="store_true", help="Burn only")
    parser.add_argument("--no-build", action="store_true",
                        help="use the examples as last built (to keep a timed window free of compiling)")
    parser.add_argument("--raw", type=Path, help="write every RESULT line here as JSON")
    args = parser.parse_args()

    throughput, fma_peak = cargo_binaries(args.profile, args.features, not args.no_build)
    env = dict(os.environ, CUBECL_AUTOTUNE_LEVEL=os.environ.get("CUBECL_AUTOTUNE_LEVEL", "minimal"))
    common = ["--presets", args.presets, "--batches", args.batches,
              "--train-batches", args.train_batches, "--iters", str(args.iters),
              "--warmup", str(args.warmup)]

    results = run([fma_peak, "--threads", str(args.threads), "--format", "lines"])
    for device in args.devices.split(","):
        results += run([throughput, "--devices", device, "--mode", args.modes,
                        "--threads", str(args.threads), "--format", "lines"] + common, env)
    if not args.no_torch:
        results += run([sys.executable, HERE / "torch_reference.py", "--mode", args.modes,
                        "--threads", str(args.threads)] + common)
    if args.raw:
        args.raw.write_text(json.dumps(results, indent=1))

    peak = next((float(r["gflops"]) for r in results
                 if r["impl"] == "fma-peak" and r["isa"] == "best"), None)
    flops = {}
    for r in results:
        if r["impl"] == "flops":
            gflop = float(r["gflop_per_image"])
            if flops.setdefault(r["preset"], gflop) != gflop:
                print(f"warning: {r['preset']}: {r['source']} counts {gflop} GFLOP an image, "
                      f"not {flops[r['preset']]}", file=sys.stderr)
    impls = [f"burn-{d}" for d in args.devices.split(",")] + ([] if args.no_torch else ["pytorch"])
    figures = {}
    for r in results:
        if r["impl"] in impls:
            key = (r["preset"], r["mode"], int(r["batch"]))
            figures.setdefault(key, {})[r["impl"]] = float(r["items_per_s"])

    threads = sorted({r["threads"] for r in results if "threads" in r and r["impl"] != "fma-peak"})
    print(f"\nItems per second (images for embed, pairs for forward and train), "
          f"threads {'/'.join(threads)}, median of {args.iters} after {args.warmup} warm-up:\n")
    burn = [i for i in impls if i != "pytorch"]
    header = ["preset", "mode", "batch"] + impls
    if "pytorch" in impls:
        header += [f"{i[5:]}/pytorch" for i in burn]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key in sorted(figures, key=lambda k: (k[0], ["embed", "forward", "train"].index(k[1]), k[2])):
        row = figures[key]
        cells = [key[0], key[1], str(key[2])] + [fmt(row.get(i)) for i in impls]
        if "pytorch" in impls:
            for i in burn:
                ratio = (row[i] / row["pytorch"]) if i in row and row.get("pytorch") else None
                cells.append(fmt(ratio, 2))
        print("| " + " | ".join(cells) + " |")

    if peak:
        print(f"\nFP32 peak (fma_peak, {args.threads} threads): {peak:.1f} GFLOP/s")
        for preset, gflop in sorted(flops.items()):
            for batch in sorted({k[2] for k in figures if k[0] == preset and k[1] == "embed"}):
                row = figures[(preset, "embed", batch)]
                parts = [f"{impl} {row[impl] * gflop:.1f} GFLOP/s = {100 * row[impl] * gflop / peak:.0f}%"
                         for impl in impls if impl in row]
                print(f"{preset} embed batch {batch} ({gflop:.3f} GFLOP/image): " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""PyTorch reference for the throughput figures of `tools/throughput.rs`.

Builds the crate's two encoders and Koch's weighted L1 head exactly as
`src/model/encoder.rs` and `src/model/head.rs` do, on the CPU, and times:

- embed:   embeddings per second (encoder only, inference mode, eval mode);
- forward: pair forwards per second (both batches through the encoder as one batch,
           then the head, as `Siamese::forward` does; inference mode, eval mode);
- train:   pairs per second of one SGD step (momentum 0.5, learning rate 1e-3, BCE with
           logits; forward, backward, update; train mode, so batch norm uses batch
           statistics), as `tools/throughput.rs --mode train` does.

Inputs are fresh uniform random images each iteration, made before the clock starts;
the median of `--iters` timed runs after `--warmup` untimed ones is reported. The
output is one `RESULT key=value ...` line per figure, the format of
`cargo run --example throughput -- --format lines`, plus one `RESULT impl=flops source=pytorch ...` line
per network giving its forward FLOPs per image (two per multiply-add), counted from the
layer shapes.

    pip install torch   # CPU is enough
    python3 benches/reference/torch_reference.py --threads 2 --presets koch,compact

Not part of CI. `benches/reference/compare.py` runs it beside Burn and prints ratios.
"""

import argparse
import sys
import time

import torch
from torch import nn


def koch_encoder() -> nn.Module:
    """Koch et al. (2015), figure 4: 1x105x105 -> 4096, with Koch's initialisation."""
    encoder = nn.Sequential(
        nn.Conv2d(1, 64, 10), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 7), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(128, 128, 4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 4), nn.ReLU(),
        nn.Flatten(), nn.Linear(9216, 4096), nn.Sigmoid(),
    )
    with torch.no_grad():
        for layer in encoder:
            if isinstance(layer, nn.Conv2d):
                layer.weight.normal_(0.0, 1e-2)
                layer.bias.normal_(0.5, 1e-2)
            elif isinstance(layer, nn.Linear):
                layer.weight.normal_(0.0, 0.2)
                layer.bias.normal_(0.5, 1e-2)
    return encoder


def compact_encoder() -> nn.Module:
    """1x52x52 -> 384: four blocks of 3x3 padded conv, batch norm, ReLU, 2x2 max-pool."""
    layers = []
    channels_in = 1
    for channels in (32, 64, 64, 128):
        conv = nn.Conv2d(channels_in, channels, 3, padding=1)
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2)]
        channels_in = channels
    fc = nn.Linear(128 * 3 * 3, 384)
    nn.init.xavier_normal_(fc.weight)
    nn.init.zeros_(fc.bias)
    layers += [nn.Flatten(), fc, nn.Sigmoid()]
    return nn.Sequential(*layers)


class Siamese(nn.Module):
    """Twin encoder with tied weights and the weighted L1 head
    `logit = sum_j alpha_j |h1_j - h2_j| + b`."""

    def __init__(self, encoder: nn.Module, width: int):
        super().__init__()
        self.encoder = encoder
        self.alpha = nn.Parameter(torch.randn(width, 1) * 0.2)
        self.bias = nn.Parameter(0.5 + 0.01 * torch.randn(1))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        batch = left.shape[0]
        embeddings = self.encoder(torch.cat([left, right], 0))
        h1, h2 = embeddings[:batch], embeddings[batch:]
        return (h1 - h2).abs() @ self.alpha + self.bias


PRESETS = {
    "koch": (koch_encoder, 105, 4096),
    "compact": (compact_encoder, 52, 384),
}


def flops_per_image(encoder: nn.Module, side: int) -> int:
    """Forward FLOPs of one image (2 per multiply-add of the convolutions and the fully
    connected layer; activations, pooling and batch norm not counted), from the shapes."""
    macs = 0

    def count(module, _inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups
            per_output *= module.kernel_size[0] * module.kernel_size[1]
            macs += output.numel() * per_output
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in encoder.modules()]
    was_training = encoder.training
    encoder.eval()
    with torch.inference_mode():
        encoder(torch.zeros(1, 1, side, side))
    encoder.train(was_training)
    for hook in hooks:
        hook.remove()
    return 2 * macs


def median_ms(run, make_inputs, iters: int, warmup: int) -> float:
    times = []
    for i in range(warmup + iters):
        inputs = make_inputs()
        start = time.perf_counter()
        run(*inputs)
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed * 1e3)
    return sorted(times)[len(times) // 2]  # the upper median, as tools/throughput.rs


def measure(preset: str, mode: str, batch: int, args) -> float:
    make_encoder, side, width = PRESETS[preset]
    model = Siamese(make_encoder(), width)

    def images():
        return torch.rand(batch, 1, side, side)

    if mode in ("embed", "forward"):
        model.eval()
        with torch.inference_mode():
            if mode == "embed":
                # CPU tensors are complete when the call returns: nothing to sync.
                return median_ms(model.embed, lambda: (images(),), args.iters, args.warmup)
            return median_ms(model, lambda: (images(), images()), args.iters, args.warmup)

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.5, dampening=0.0)
    loss_fn = nn.BCEWithLogitsLoss()
    targets = (torch.arange(batch) % 2).float()

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x, y).flatten(), targets)
        loss.backward()
        optimizer.step()
        return loss.item()

    return median_ms(step, lambda: (images(), images()), args.iters, args.warmup)


def csv_ints(text: str):
    return [int(v) for v in text.split(",") if v]


def csv_words(text: str):
    return [v.strip() for v in text.split(",") if v.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads (torch.set_num_threads); 0 keeps PyTorch's default")
    parser.add_argument("--presets", type=csv_words, default=["koch", "compact"])
    parser.add_argument("--mode", type=csv_words, default=["embed"],
                        help="comma-separated: embed, forward, train")
    parser.add_argument("--batches", type=csv_ints, default=[1, 20, 128],
                        help="batch sizes of embed and forward (and of train without --train-batches)")
    parser.add_argument("--train-batches", type=csv_ints, default=None)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    if args.iters < 1:
        parser.error("--iters must be at least 1")
    for preset in args.presets:
        if preset not in PRESETS:
            parser.error(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    for mode in args.mode:
        if mode not in ("embed", "forward", "train"):
            parser.error(f"unknown mode {mode!r} (known: embed, forward, train)")

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, {threads} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}", file=sys.stderr)

    for preset in args.presets:
        make_encoder, side, _ = PRESETS[preset]
        flops = flops_per_image(make_encoder(), side)
        print(f"RESULT impl=flops source=pytorch preset={preset} gflop_per_image={flops / 1e9:.4f}", flush=True)
        for mode in args.mode:
            batches = args.train_batches if (mode == "train" and args.train_batches) else args.batches
            for batch in batches:
                ms = measure(preset, mode, batch, args)
                print(f"RESULT impl=pytorch preset={preset} mode={mode} batch={batch} "
                      f"threads={threads} median_ms={ms:.3f} items_per_s={batch / (ms / 1e3):.3f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

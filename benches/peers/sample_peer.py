"""PyTorch peer of `examples/sample_throughput.rs`: deterministic DDIM (eta = 0) sampling with the
same DDPM-style U-Net (tiny or paper preset, imported from train_peer.py, default init, seed 0)
over the DDPM-linear schedule (beta 1e-4 -> 0.02, T = 1000), starting from coloured noise with
the same power-law spectrum the training peer uses, images 3 x 32 x 32, float32, no autograd.
Timed the same way as the Rust example: one untimed warm-up run, then `--repeats` timed full
sampling runs over one batch, median. Prints one JSON line with images/s and peak RSS.

    python benches/peers/sample_peer.py tiny [--batch 64] [--steps 50] [--repeats 3] [--device cpu]

On cuda each timed run ends with a synchronize; the forward pass's floating-point operations
(torch's FlopCounterMode) give the achieved TFLOP/s.

Time conditioning mirrors train_peer.py exactly: the network gets the 0-based level index t
(0..999) as a float, fed to `sinusoidal(t, widths[0])`.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_peer import PRESETS, UNet, coloured_noise  # noqa: E402

T = 1000


def power_law_amplitude(size=32):
    """The amplitude train_peer.py builds inline in main(): power law (alpha = -0.5, eps = 0.05)
    on the rfft2 grid, energy-normalised over the full fft2 grid."""
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    amp = (torch.sqrt(fy**2 + fx**2) + 0.05) ** -0.5
    full = (torch.sqrt(torch.fft.fftfreq(size)[:, None] ** 2 + torch.fft.fftfreq(size)[None, :] ** 2) + 0.05) ** -0.5
    return amp / torch.sqrt((full**2).mean())


def ddim_timesteps(steps):
    """Level indices round(i * (T - 1) / (steps - 1)) for i = steps-1 down to 0. Rounds half away
    from zero (like Rust's f64::round), not Python's banker's rounding."""
    if steps == 1:
        return [T - 1]
    return [int(math.floor(i * (T - 1) / (steps - 1) + 0.5)) for i in range(steps - 1, -1, -1)]


def sample(model, amp, alpha_bar, levels, batch, gen):
    """One full DDIM (eta = 0) run; returns x0_hat at the last level."""
    shape = (batch, 3, 32, 32)
    a = [math.sqrt(alpha_bar[t]) for t in levels]
    s = [math.sqrt(1.0 - alpha_bar[t]) for t in levels]
    x = s[0] * coloured_noise(amp, shape, gen)
    for k, t in enumerate(levels):
        eps = model(x, torch.full((batch,), float(t), dtype=torch.float32, device=x.device))
        x0 = (x - s[k] * eps) / a[k]
        if k + 1 == len(levels):
            return x0
        x = a[k + 1] * x0 + s[k + 1] * eps
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("preset", nargs="?", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0).tolist()
    amp = power_law_amplitude(32).to(device)
    levels = ddim_timesteps(args.steps)

    torch.manual_seed(0)
    model = UNet(3, 32, **PRESETS[args.preset]).float().eval().to(device)
    params = sum(p.numel() for p in model.parameters())
    gen = torch.Generator(device=device).manual_seed(0)
    from torch.utils.flop_counter import FlopCounterMode
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros((args.batch, 3, 32, 32), device=device),
              torch.zeros((args.batch,), device=device))
    flops = counter.get_total_flops() * args.steps

    times = []
    with torch.inference_mode():
        out = sample(model, amp, alpha_bar, levels, args.batch, gen)  # warm-up, untimed
        assert torch.isfinite(out).all()
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = sample(model, amp, alpha_bar, levels, args.batch, gen)
            sync()
            times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": f"torch {torch.__version__}", "preset": args.preset, "params": params,
                      "batch": args.batch, "steps": args.steps, "median_run_s": median,
                      "images_per_s": args.batch / median, "peak_rss_mib": peak,
                      "threads": threads, "device": str(device), "flops_per_run": flops,
                      "tflops": flops / median / 1e12}))


if __name__ == "__main__":
    main()

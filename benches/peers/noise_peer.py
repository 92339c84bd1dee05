#!/usr/bin/env python3
"""Peer benchmark: coloured-noise generation throughput on CPU (NumPy and PyTorch).

What it measures
----------------
Throughput, in images per second, of generating a batch of *coloured* Gaussian
noise of shape (N, C, H, W), for two batch shapes:

    (256, 3, 32, 32)    many small images
    (16, 3, 256, 256)   few large images

Coloured noise is defined as

    eps ~ N(0, I)                          white real noise, shape (N, C, H, W)
    x   = Re( IFFT2( w * FFT2(eps) ) )     per image and channel, over (H, W)

where ``w`` is a real H x W amplitude table in NumPy ``fftfreq`` order
(row k <-> f_y = fftfreq(H)[k], column l <-> f_x = fftfreq(W)[l]).  The table
used here is the power law

    w(f) = (r + 1e-10) ** alpha,   alpha = -0.5,   r = sqrt(f_x**2 + f_y**2)

with r in cycles per pixel, energy-normalised so that mean(w**2) over the H x W
grid equals 1 (w <- w / sqrt(mean(w**2))).  Because w depends only on |f| it is
Hermitian-symmetric (w(-f) = w(f)), so the full complex FFT path followed by
taking the real part and the real-FFT (rfft2/irfft2) path give the same result.

Three implementations are timed, each *including* the random number generation:

    numpy-fftn   numpy Generator.standard_normal (float32) -> np.fft.fftn over
                 (-2, -1) -> multiply by w -> np.fft.ifftn -> .real -> float32
                 (the Appendix-E style of the papers)
    numpy-rfft2  the same with np.fft.rfft2 / np.fft.irfft2 and w restricted to
                 the rfft half-plane (columns 0 .. W//2)
    torch-rfft2  torch.randn(float32, generator=g) -> torch.fft.rfft2 -> multiply
                 by the float32 half-plane table -> torch.fft.irfft2(s=(H, W))

Each implementation is warmed up once, then run repeatedly for at least
``--min-time`` seconds (default 2) and at least ``--min-iters`` iterations
(default 5), whichever takes longer; the median wall-clock time per batch is
reported together with images/s = N / median.  NumPy's FFT (pocketfft) and its
random generator are single-threaded, so the NumPy rows report threads = 1; the
torch row reports ``torch.get_num_threads()`` (set it with ``--threads``).

Before timing, a correctness self-check applies all three colouring paths to the
same white noise on small odd/even grids (e.g. 1x3x7x6) and checks that they
agree with a float64 reference to 1e-5.

Relation to the Rust project
----------------------------
This is the external reference point for ``cargo bench --bench noise`` in the
sagd repository, which benchmarks sagd's own coloured-noise generation on the
same two batch shapes.  Compare the Rust per-batch times (images/s = N / time)
with the rows printed here, on the same machine and with comparable thread
counts.

Usage
-----
    python benches/peers/noise_peer.py                 # table
    python benches/peers/noise_peer.py --json          # JSON list on stdout
    python benches/peers/noise_peer.py --threads 1     # single-threaded torch

With ``--json`` the JSON list of {impl, shape, median_s, images_per_s, threads}
is the only thing written to stdout; the header and the table go to stderr.
PyTorch is optional: without it the torch row is skipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

try:
    import torch
except ImportError:  # torch is optional; its row is skipped without it
    torch = None

SHAPES: List[Tuple[int, int, int, int]] = [(256, 3, 32, 32), (16, 3, 256, 256)]
ALPHA = -0.5
RADIUS_EPS = 1e-10
CHECK_SHAPES: List[Tuple[int, int, int, int]] = [
    (1, 3, 7, 6),
    (1, 3, 6, 7),
    (2, 1, 8, 8),
    (1, 2, 5, 5),
]
CHECK_TOL = 1e-5


# --------------------------------------------------------------------------- #
# Amplitude table
# --------------------------------------------------------------------------- #
def power_law_amplitude(height: int, width: int, alpha: float = ALPHA) -> np.ndarray:
    """Energy-normalised power-law amplitude table, shape (H, W), float64, fftfreq order."""
    fy = np.fft.fftfreq(height)[:, None]  # row k  <-> fftfreq(H)[k]
    fx = np.fft.fftfreq(width)[None, :]  # col l  <-> fftfreq(W)[l]
    r = np.sqrt(fx * fx + fy * fy)
    w = (r + RADIUS_EPS) ** alpha
    return w / np.sqrt(np.mean(w * w))


def half_plane(w_full: np.ndarray) -> np.ndarray:
    """Restrict a full (H, W) table to the rfft half-plane: columns 0 .. W//2."""
    width = w_full.shape[-1]
    return np.ascontiguousarray(w_full[:, : width // 2 + 1])


class Tables:
    """The amplitude table of one (H, W) in the layouts each implementation needs."""

    def __init__(self, height: int, width: int) -> None:
        self.height = height
        self.width = width
        self.full64 = power_law_amplitude(height, width)
        self.full32 = self.full64.astype(np.float32)
        self.half32 = half_plane(self.full64).astype(np.float32)
        self.half_torch = torch.from_numpy(self.half32.copy()) if torch is not None else None


# --------------------------------------------------------------------------- #
# Colouring: white noise in, coloured noise out (shared by timing and check)
# --------------------------------------------------------------------------- #
def colour_numpy_fftn(eps: np.ndarray, t: Tables) -> np.ndarray:
    spec = np.fft.fftn(eps, axes=(-2, -1))
    spec *= t.full32
    return np.fft.ifftn(spec, axes=(-2, -1)).real.astype(np.float32, copy=False)


def colour_numpy_rfft2(eps: np.ndarray, t: Tables) -> np.ndarray:
    spec = np.fft.rfft2(eps)
    spec *= t.half32
    return np.fft.irfft2(spec, s=(t.height, t.width)).astype(np.float32, copy=False)


def colour_torch_rfft2(eps: "torch.Tensor", t: Tables) -> "torch.Tensor":
    spec = torch.fft.rfft2(eps)
    spec.mul_(t.half_torch)
    return torch.fft.irfft2(spec, s=(t.height, t.width))


# --------------------------------------------------------------------------- #
# Full generators (random numbers + colouring), as timed
# --------------------------------------------------------------------------- #
def make_numpy_fftn(shape, t: Tables, seed: int) -> Callable[[], np.ndarray]:
    rng = np.random.default_rng(seed)

    def run() -> np.ndarray:
        return colour_numpy_fftn(rng.standard_normal(shape, dtype=np.float32), t)

    return run


def make_numpy_rfft2(shape, t: Tables, seed: int) -> Callable[[], np.ndarray]:
    rng = np.random.default_rng(seed)

    def run() -> np.ndarray:
        return colour_numpy_rfft2(rng.standard_normal(shape, dtype=np.float32), t)

    return run


def make_torch_rfft2(shape, t: Tables, seed: int) -> Callable[[], "torch.Tensor"]:
    g = torch.Generator().manual_seed(seed)

    def run() -> "torch.Tensor":
        with torch.no_grad():
            eps = torch.randn(shape, dtype=torch.float32, generator=g)
            return colour_torch_rfft2(eps, t)

    return run


IMPLS: Dict[str, Callable] = {
    "numpy-fftn": make_numpy_fftn,
    "numpy-rfft2": make_numpy_rfft2,
}
if torch is not None:
    IMPLS["torch-rfft2"] = make_torch_rfft2


# --------------------------------------------------------------------------- #
# Correctness self-check
# --------------------------------------------------------------------------- #
def self_check(seed: int) -> float:
    """All colouring paths on the same white noise agree with a float64 reference."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for shape in CHECK_SHAPES:
        _, _, h, w = shape
        t = Tables(h, w)
        eps = rng.standard_normal(shape, dtype=np.float32)
        ref = np.fft.ifftn(np.fft.fftn(eps.astype(np.float64), axes=(-2, -1)) * t.full64,
                           axes=(-2, -1)).real
        outs = {
            "numpy-fftn": colour_numpy_fftn(eps, t),
            "numpy-rfft2": colour_numpy_rfft2(eps, t),
        }
        if torch is not None:
            outs["torch-rfft2"] = colour_torch_rfft2(torch.from_numpy(eps.copy()), t).numpy()
        for name, out in outs.items():
            if out.shape != shape or out.dtype != np.float32:
                raise AssertionError(f"{name} {shape}: got {out.shape} {out.dtype}")
            err = float(np.max(np.abs(out.astype(np.float64) - ref)))
            worst = max(worst, err)
            if not err <= CHECK_TOL:
                raise AssertionError(f"{name} {shape}: max |diff| = {err:.3e} > {CHECK_TOL}")
    return worst


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #
def time_batches(run: Callable[[], object], min_time: float, min_iters: int) -> List[float]:
    run()  # warm-up (plans, allocations, thread pools)
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true",
                    help="print a JSON list of results on stdout (human output to stderr)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads(N) (default: torch's default)")
    ap.add_argument("--min-time", type=float, default=2.0,
                    help="minimum timed seconds per implementation and shape (default 2)")
    ap.add_argument("--min-iters", type=int, default=5,
                    help="minimum timed iterations per implementation and shape (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-check", action="store_true", help="skip the correctness self-check")
    args = ap.parse_args(argv)

    info = sys.stderr if args.json else sys.stdout

    if args.threads is not None:
        if torch is None:
            ap.error("--threads needs torch")
        torch.set_num_threads(args.threads)
    torch_threads = torch.get_num_threads() if torch is not None else None

    print(f"python {platform.python_version()}  numpy {np.__version__}  "
          f"torch {torch.__version__ if torch is not None else 'not installed'}  "
          f"torch.get_num_threads() = {torch_threads}", file=info)

    if not args.skip_check:
        worst = self_check(args.seed)
        print(f"self-check: {', '.join(IMPLS)} agree on {len(CHECK_SHAPES)} small grids "
              f"(max |diff| vs float64 = {worst:.2e} <= {CHECK_TOL:g})", file=info)

    results = []
    for shape in SHAPES:
        t = Tables(shape[2], shape[3])
        for name, make in IMPLS.items():
            times = time_batches(make(shape, t, args.seed), args.min_time, args.min_iters)
            median = statistics.median(times)
            results.append({
                "impl": name,
                "shape": list(shape),
                "median_s": median,
                "images_per_s": shape[0] / median,
                "threads": torch_threads if name.startswith("torch") else 1,
                "iters": len(times),
            })

    header = f"{'impl':<12} {'shape':<18} {'threads':>7} {'iters':>6} {'median ms':>10} {'images/s':>10}"
    print(header, file=info)
    print("-" * len(header), file=info)
    for r in results:
        shape = "x".join(str(d) for d in r["shape"])
        print(f"{r['impl']:<12} {shape:<18} {r['threads']:>7} {r['iters']:>6} "
              f"{r['median_s'] * 1e3:>10.3f} {r['images_per_s']:>10.1f}", file=info)

    if args.json:
        print(json.dumps([{k: r[k] for k in ("impl", "shape", "median_s", "images_per_s", "threads")}
                          for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

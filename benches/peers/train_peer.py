"""PyTorch peer of `examples/train_throughput.rs`: the same DDPM-style U-Net (tiny or paper
preset), the same training step (coloured noise, uniform DDPM levels, epsilon-MSE, AdamW with
global-norm clipping, EMA update) on batches of 64 x 3 x 32 x 32, timed the same way (2 warm-up
steps, median of at least 5). Prints one JSON line per preset with images/s and peak RSS.

    python benches/peers/train_peer.py tiny paper

DEVICE (cpu, or cuda) and BATCH (64) in the environment choose the device and the batch; on
cuda each timed step ends with a synchronize. Also reports the step's floating-point operations
(torch's FlopCounterMode over one forward and backward) and the achieved TFLOP/s.
"""
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "tiny": dict(widths=[32, 64, 64], blocks=1, attention=[8], groups=8),
    "paper": dict(widths=[32, 64, 128, 256], blocks=2, attention=[8], groups=8),
}


def sinusoidal(t, dim):
    half = dim // 2
    scale = math.log(10000.0) / (half - 1)
    freqs = torch.exp(-scale * torch.arange(half, dtype=torch.float32))
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(min(groups, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(e))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, c), c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3 * c, h * w).chunk(3, dim=1)
        attn = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=2)
        out = (attn @ v.transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj(out)


class Stage(nn.Module):
    def __init__(self, cin, cout, emb, groups, attn):
        super().__init__()
        self.res = ResBlock(cin, cout, emb, groups)
        self.attn = Attention(cout, groups) if attn else None

    def forward(self, x, e):
        h = self.res(x, e)
        return self.attn(h) if self.attn is not None else h


class UNet(nn.Module):
    def __init__(self, channels, size, widths, blocks, attention, groups):
        super().__init__()
        w0 = widths[0]
        emb = 4 * w0
        self.w0, self.blocks, self.levels = w0, blocks, len(widths)
        self.time1, self.time2 = nn.Linear(w0, emb), nn.Linear(emb, emb)
        self.conv_in = nn.Conv2d(channels, w0, 3, padding=1)
        skips, ch, res = [w0], w0, size
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for i, width in enumerate(widths):
            for _ in range(blocks):
                self.down.append(Stage(ch, width, emb, groups, res in attention))
                ch = width
                skips.append(ch)
            if i + 1 < len(widths):
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
                res //= 2
        self.mid1 = ResBlock(ch, ch, emb, groups)
        self.mid_attn = Attention(ch, groups)
        self.mid2 = ResBlock(ch, ch, emb, groups)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, width in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                self.up.append(Stage(ch + skips.pop(), width, emb, groups, res in attention))
                ch = width
            if i > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
                res *= 2
        self.norm_out = nn.GroupNorm(min(groups, ch), ch)
        self.conv_out = nn.Conv2d(ch, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, t):
        e = self.time2(F.silu(self.time1(sinusoidal(t, self.w0))))
        h = self.conv_in(x)
        skips = [h]
        stages = iter(self.down)
        for level in range(self.levels):
            for _ in range(self.blocks):
                h = next(stages)(h, e)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, e)), e)
        stages = iter(self.up)
        for level in range(self.levels):
            for _ in range(self.blocks + 1):
                h = next(stages)(torch.cat([h, skips.pop()], dim=1), e)
            if level < len(self.upsample):
                h = self.upsample[level](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def coloured_noise(amplitude, shape, gen):
    white = torch.randn(shape, generator=gen, device=amplitude.device)
    return torch.fft.irfft2(torch.fft.rfft2(white) * amplitude, s=shape[-2:])


def main():
    presets = [a for a in sys.argv[1:] if not a.startswith("-")] or ["tiny"]
    threads = int(os.environ.get("TORCH_THREADS", os.cpu_count() or 1))
    torch.set_num_threads(threads)
    steps = int(os.environ.get("SAGD_BENCH_STEPS", "5"))
    device = torch.device(os.environ.get("DEVICE", "cpu"))
    batch, shape = int(os.environ.get("BATCH", "64")), (3, 32, 32)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0).float()
    # Power-law amplitude (alpha = -0.5, eps = 0.05), energy-normalised, on the rfft2 grid.
    fy = torch.fft.fftfreq(32)[:, None]
    fx = torch.fft.rfftfreq(32)[None, :]
    amp = (torch.sqrt(fy**2 + fx**2) + 0.05) ** -0.5
    full = (torch.sqrt(torch.fft.fftfreq(32)[:, None] ** 2 + torch.fft.fftfreq(32)[None, :] ** 2) + 0.05) ** -0.5
    amp = (amp / torch.sqrt((full**2).mean())).to(device)
    alpha_bar = alpha_bar.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for name in presets:
        torch.manual_seed(0)
        gen = torch.Generator(device=device).manual_seed(0)
        model = UNet(3, 32, **PRESETS[name]).to(device)
        ema = [p.detach().clone() for p in model.parameters()]
        params = sum(p.numel() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        data = torch.rand((1024, *shape), generator=gen, device=device) * 2 - 1
        flops = None
        times = []
        for step in range(2 + steps):
            start = time.perf_counter()
            idx = torch.randint(0, 1024, (batch,), generator=gen, device=device)
            x0 = data[idx]
            t = torch.randint(0, 1000, (batch,), generator=gen, device=device)
            eps = coloured_noise(amp, (batch, *shape), gen)
            a = alpha_bar[t][:, None, None, None]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
            if step == 0:
                # Count the forward and backward once (untimed warm-up step).
                from torch.utils.flop_counter import FlopCounterMode
                with FlopCounterMode(display=False) as counter:
                    loss = F.mse_loss(model(xt, t.float()), eps)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                flops = counter.get_total_flops()
            else:
                loss = F.mse_loss(model(xt, t.float()), eps)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                for e, p in zip(ema, model.parameters()):
                    e.mul_(0.999).add_(p, alpha=0.001)
            sync()
            if step >= 2:
                times.append(time.perf_counter() - start)
        times.sort()
        median = times[len(times) // 2]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps({"impl": f"torch {torch.__version__}", "preset": name, "params": params,
                          "batch": batch, "median_step_s": median, "images_per_s": batch / median,
                          "peak_rss_mib": peak, "threads": threads, "device": str(device),
                          "flops_per_step": flops, "tflops": flops / median / 1e12}))


if __name__ == "__main__":
    main()

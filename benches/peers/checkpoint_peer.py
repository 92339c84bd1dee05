"""Round trip of a sagd checkpoint into PyTorch: loads a `sagd train` U-Net checkpoint
(`.safetensors`) into the PyTorch twin of the architecture (`train_peer.UNet`), runs it on the
input that `examples/checkpoint_forward.rs` fed sagd, and compares the outputs. Prints one JSON
line; exits 1 when the largest absolute difference exceeds the tolerance (1e-4).

    python benches/peers/checkpoint_peer.py CHECKPOINT DIR [--ema]

DIR holds `x.npy`, `time.npy` and `out.npy` from `checkpoint_forward`. Only the safetensors
package and the checkpoint's own metadata are used to rebuild the network: the architecture
comes from the `config` metadata (TOML), the image shape from `image_shape`.

Name mapping: sagd's module paths are burn's, `Unet.` (the variant of sagd's `Net` enum) followed
by the twin's own paths (`Unet.down.0.res.conv1.weight` → `down.0.res.conv1.weight`); burn's GroupNorm calls its affine
parameters `gamma`/`beta` (PyTorch: `weight`/`bias`) and burn stores a Linear weight as
[in, out] (PyTorch: [out, in]). Everything else is loaded as it lies, with strict=True, so a
missing or extra tensor fails loudly.
"""
import json
import math
import os
import sys
import tomllib

import numpy as np
import torch
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_peer  # noqa: E402

TOLERANCE = 1e-4


def sinusoidal_f64(t, dim):
    """sagd's embedding (sagd-models/src/nets/embedding.rs): the arguments in float64, then
    float32; the float32 arguments of train_peer differ by up to ~1e-4 rad at t near 1000."""
    half = dim // 2
    scale = math.log(10000.0) / (half - 1)
    freqs = torch.exp(-scale * torch.arange(half, dtype=torch.float64))
    args = t[:, None].double() * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1).float()


def architecture(model):
    if model.get("kind") != "unet":
        raise SystemExit(f"the checkpoint's model is {model.get('kind')!r}; this round trip is for unet")
    arch = dict(train_peer.PRESETS[model.get("preset", "tiny")])
    for key in ("widths", "blocks", "attention", "groups"):
        if key in model:
            arch[key] = model[key]
    return arch


def state_dict(tensors, ema):
    state = {}
    for key, value in tensors.items():
        if ema:
            if not key.startswith("ema."):
                continue
            key = key[len("ema."):]
        elif key.startswith("ema.") or key.startswith("optim."):
            continue
        # burn's module path starts with the variant of sagd's `Net` enum.
        if not key.startswith("Unet."):
            raise SystemExit(f"tensor {key!r}: expected a `Unet.` module path")
        key = key[len("Unet."):]
        if key.endswith(".gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith(".beta"):
            key = key[: -len("beta")] + "bias"
        elif key.endswith(".weight") and value.ndim == 2:
            value = value.T.contiguous()
        state[key] = value
    return state


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    ema = "--ema" in sys.argv[1:]
    if len(args) != 2:
        raise SystemExit(__doc__)
    checkpoint, folder = args
    with safe_open(checkpoint, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != "sagd-checkpoint":
        raise SystemExit(f"{checkpoint}: not a sagd checkpoint (metadata format = {meta.get('format')!r})")
    config = tomllib.loads(meta["config"])
    channels, height, width = json.loads(meta["image_shape"])
    arch = architecture(config["model"])
    train_peer.sinusoidal = sinusoidal_f64
    net = train_peer.UNet(channels, height, arch["widths"], arch["blocks"], arch["attention"], arch["groups"])
    net.load_state_dict(state_dict(tensors, ema), strict=True)
    net.eval()

    x = torch.from_numpy(np.load(os.path.join(folder, "x.npy")))
    t = torch.from_numpy(np.load(os.path.join(folder, "time.npy")))
    want = np.load(os.path.join(folder, "out.npy"))
    with torch.no_grad():
        got = net(x, t).numpy()
    diff = np.abs(got - want)
    result = {
        "checkpoint": checkpoint,
        "weights": "ema" if ema else "network",
        "step": int(meta["step"]),
        "format_version": meta["format_version"],
        "tensors": len(tensors),
        "params": sum(p.numel() for p in net.parameters()),
        "shape": list(want.shape),
        "max_abs_diff": float(diff.max()),
        "max_abs_output": float(np.abs(want).max()),
        "rms_output": float(np.sqrt((want.astype(np.float64) ** 2).mean())),
        "tolerance": TOLERANCE,
        "torch": torch.__version__,
    }
    result["pass"] = result["max_abs_diff"] <= TOLERANCE
    print(json.dumps(result))
    sys.exit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()

"""pytorch-fid, the peer of `sagd eval`: the FID of two image sets with the same weights.

Images come from float32 .npy files (N, C, H, W) in [0, 1] (as `sagd data export` and
`sagd sample` write them). They are written as 8-bit PNG files (floor(255 x + 0.5)) into
temporary folders, and pytorch-fid 0.3.0's own pipeline runs on those folders
(`calculate_fid_given_paths`: PIL -> ToTensor -> its InceptionV3 with resize and
normalisation, `calculate_frechet_distance`). The FID Inception weights are read from the
safetensors file (pytorch-fid's key names) instead of downloaded.

    python fid_peer.py A.npy B.npy --weights pt_inception-2015-12-05.safetensors
        [--threads 2] [--batch 50] [--save-stats B.npz] [--write-pth OUT.pth]

Prints one JSON line: fid, n, seconds of feature extraction, images per second, threads.
`--write-pth` also writes the weights as a PyTorch state dict in pytorch-fid's layout (the
format of pt_inception-2015-12-05-6726825d.pth; its unused `fc` is zeros here).
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file


def state_dict(weights):
    sd = load_file(weights)
    # pytorch-fid builds torchvision's inception_v3(num_classes=1008, aux_logits=False): an fc
    # the pool3 features never use.
    sd.setdefault("fc.weight", torch.zeros(1008, 2048))
    sd.setdefault("fc.bias", torch.zeros(1008))
    return sd


def write_pngs(array, folder):
    u8 = np.floor(np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    for i, img in enumerate(u8):
        img = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
        Image.fromarray(img).save(os.path.join(folder, f"{i:06d}.png"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--weights", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--save-stats")
    p.add_argument("--write-pth")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    import pytorch_fid.inception as inception
    from pytorch_fid import fid_score

    sd = state_dict(args.weights)
    if args.write_pth:
        torch.save(sd, args.write_pth)
    inception.load_state_dict_from_url = lambda *a, **k: sd

    a, b = np.load(args.a), np.load(args.b)
    with tempfile.TemporaryDirectory() as da, tempfile.TemporaryDirectory() as db:
        write_pngs(a, da)
        write_pngs(b, db)
        model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
        started = time.perf_counter()
        m1, s1 = fid_score.calculate_activation_statistics(
            sorted(os.path.join(da, f) for f in os.listdir(da)),
            model, args.batch, 2048, "cpu", 0)
        m2, s2 = fid_score.calculate_activation_statistics(
            sorted(os.path.join(db, f) for f in os.listdir(db)),
            model, args.batch, 2048, "cpu", 0)
        seconds = time.perf_counter() - started
        fid = fid_score.calculate_frechet_distance(m1, s1, m2, s2)
        if args.save_stats:
            np.savez_compressed(args.save_stats, mu=m2, sigma=s2)
    n = len(a) + len(b)
    print(json.dumps({
        "fid": float(fid), "n": [len(a), len(b)], "seconds": seconds,
        "images_per_s": n / seconds, "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    sys.exit(main())

"""``imagestats``: a weight-free image descriptor, so the pipeline runs with no weights and no network.

Input: RGB in 0-1, the whole image squashed to 224 x 224 (bilinear), ``[B, 3, 224, 224]``.
Output: ``[B, 154]``, the concatenation of five blocks, each L2-normalised and weighted:

=====================  ====  ======================================================================
block                  dims  what
=====================  ====  ======================================================================
colour histogram         64  joint RGB histogram, 4 bins per channel, fraction of pixels, square-
                             rooted (Hellinger) so that cosine similarity compares distributions
colour moments            9  mean, standard deviation and cube-rooted third central moment of the
                             three opponent channels O1 = (R-G)/sqrt2, O2 = (R+G-2B)/sqrt6,
                             O3 = (R+G+B)/sqrt3
colour layout            48  mean opponent colour in each cell of a 4 x 4 grid
gradient orientation     24  8-bin histogram of unsigned gradient orientation (Sobel, grey =
                             O3/sqrt3), weighted by gradient magnitude, at scales 1, 1/2, 1/4,
                             square-rooted
texture energy            9  mean and standard deviation of gradient magnitude and mean absolute
                             Laplacian, at the same three scales
=====================  ====  ======================================================================

Block weights (colour histogram 1.0, moments 0.5, layout 1.0, orientation 1.0, energy 0.5) balance
colour against structure; the whole vector is then L2-normalised. Everything is computed with
deterministic tensor operations (integer bincount, no float scatter), so a batch gives the same
numbers every time on a given device.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from curate.embed.preprocess import Preprocessing

VERSION = 1
INPUT_SIZE = 224
COLOUR_BINS = 4
ORIENTATION_BINS = 8
SCALES = (1, 2, 4)
GRID = 4
BLOCK_WEIGHTS = {"colour_hist": 1.0, "colour_moments": 0.5, "colour_layout": 1.0, "orientation": 1.0, "energy": 0.5}


def imagestats_preprocessing() -> Preprocessing:
    return Preprocessing(
        size=INPUT_SIZE,
        resize=INPUT_SIZE,
        resize_mode="squash",
        interpolation="bilinear",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )


def imagestats_identity(preprocessing: Preprocessing) -> dict[str, Any]:
    return {
        "name": "imagestats",
        "library": "curate",
        "model": f"imagestats-v{VERSION}",
        "weights": None,
        "preprocessing": preprocessing.to_meta(),
        "preprocessing_source": "fixed",
        "activation": None,
        "output": "colour histogram, colour moments, colour layout, gradient orientation, texture energy",
        "block_weights": BLOCK_WEIGHTS,
    }


def _opponent(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return torch.stack(
        [(r - g) / math.sqrt(2.0), (r + g - 2 * b) / math.sqrt(6.0), (r + g + b) / math.sqrt(3.0)], dim=1
    )


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=1, eps=1e-12)


class ImageStats(torch.nn.Module):
    """Colour and texture statistics; ``forward([B, 3, H, W] in 0-1) -> [B, 154]``."""

    dim = COLOUR_BINS**3 + 9 + 3 * GRID * GRID + ORIENTATION_BINS * len(SCALES) + 3 * len(SCALES)

    def __init__(self) -> None:
        super().__init__()
        sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
        laplace = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        self.register_buffer("kernels", torch.stack([sobel_x, sobel_x.T, laplace])[:, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().clamp(0.0, 1.0)
        batch = x.shape[0]
        # Colour histogram: integer bin index per pixel, counted with an integer bincount.
        q = (x * COLOUR_BINS).long().clamp_(0, COLOUR_BINS - 1)
        index = (q[:, 0] * COLOUR_BINS + q[:, 1]) * COLOUR_BINS + q[:, 2]
        bins = COLOUR_BINS**3
        offsets = torch.arange(batch, device=x.device)[:, None] * bins
        counts = torch.bincount((index.flatten(1) + offsets).flatten(), minlength=batch * bins)
        hist = counts.view(batch, bins).float() / float(index[0].numel())
        colour_hist = hist.sqrt()

        opp = _opponent(x)
        flat = opp.flatten(2)
        mean = flat.mean(dim=2)
        centred = flat - mean[..., None]
        std = centred.pow(2).mean(dim=2).sqrt()
        third = centred.pow(3).mean(dim=2)
        moments = torch.cat([mean, std, third.sign() * third.abs().pow(1.0 / 3.0)], dim=1)
        layout = F.adaptive_avg_pool2d(opp, GRID).flatten(1)

        grey = opp[:, 2:3] / math.sqrt(3.0)
        orientation, energy = [], []
        for scale in SCALES:
            g = grey if scale == 1 else F.avg_pool2d(grey, scale)
            responses = F.conv2d(F.pad(g, (1, 1, 1, 1), mode="replicate"), self.kernels)
            gx, gy, lap = responses[:, 0], responses[:, 1], responses[:, 2]
            magnitude = torch.sqrt(gx * gx + gy * gy)
            angle = torch.atan2(gy, gx) % math.pi  # unsigned orientation in [0, pi)
            which = (angle / math.pi * ORIENTATION_BINS).long().clamp_(0, ORIENTATION_BINS - 1)
            weights = torch.stack([(magnitude * (which == k)).flatten(1).sum(1) for k in range(ORIENTATION_BINS)], 1)
            orientation.append((weights / weights.sum(1, keepdim=True).clamp_min(1e-12)).sqrt())
            energy.append(
                torch.stack([magnitude.flatten(1).mean(1), magnitude.flatten(1).std(1), lap.abs().flatten(1).mean(1)], 1)
            )
        blocks = {
            "colour_hist": colour_hist,
            "colour_moments": moments,
            "colour_layout": layout,
            "orientation": torch.cat(orientation, 1),
            "energy": torch.cat(energy, 1),
        }
        return torch.cat([BLOCK_WEIGHTS[name] * _unit(block) for name, block in blocks.items()], dim=1)

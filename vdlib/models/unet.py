"""The space-time factorised 3D U-Net, for the base model and the 2x upsamplers.

Input and output are (B, C, F, H, W). Per-frame 2D convolutions and ResNet blocks carry space;
temporal attention with rotary position embeddings carries time (at every level, or at the chosen
ones and the middle); spatial attention runs at the lower resolutions. One attention block serves
both axes by rearranging.

Every frame has its own embedding: noise level + frame position + an MLP of that frame's label
vector (a learned null embedding where labels are absent or dropped), plus the noise-augmentation
level for upsamplers. It scales and shifts each ResNet block's GroupNorm per frame.

Pose-labelled base models can also *see* their labels: with ``keypoint_maps`` K, the label vector's
K (x, y, confidence) keypoints are drawn as K Gaussian maps at the frame's size (weighted by
confidence; zeros where labels are dropped) and given as extra input channels, so a convolution
finds where each body part should be instead of decoding it from an embedding. With a ``skeleton``
(pairs of keypoints joined by a limb) the pose is instead drawn as an image, as the field's pose
adapters do: one channel per limb (a Gaussian of the distance to the segment) and one per joint, at
twice the stem's resolution, read by a small strided pose encoder whose last convolution starts at
zero, its features added to the stem's.

With ``label_maps`` each frame's label vector is also given as ``cond_dim`` constant input channels
(zeros where labels are dropped), so the first convolution, not only the normalisation layers'
modulation, can tie a label to what is drawn where.

With ``patch`` P > 1 the stem reads each P x P block of input pixels as one position (space to
depth) and the output layer writes one back (depth to space): every level then runs at 1/P of the
frame's side, so a 64 px model with P = 2 costs about what a 32 px one does.

Optional inputs:
- ``context`` / ``context_mask``: clean frames given for some positions (e.g. the last frames of the
  previous window), concatenated as extra input channels with the mask.
- ``lowres`` (upsamplers): the low-resolution clip, already resized to the output size. A mapping
  network encodes it, and every ResNet block applies it through spatially adaptive normalisation
  (per-pixel scale *and* shift).

The network knows nothing of files, schedulers or training.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from einops import rearrange
from torch import nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class UNetConfig:
    """Constructor arguments of :class:`UNet3D`; saved as ``config.json`` beside the weights."""

    channels: int = 32  # width of the first level
    mults: tuple[int, ...] = (1, 2, 2)  # width multiplier per level; each level halves H and W
    res_blocks: int = 1  # ResNet blocks per level
    spatial_attn_levels: tuple[int, ...] = (2,)  # levels (0 = full resolution) with spatial attention
    heads: int = 4
    dropout: float = 0.0
    image_channels: int = 3
    cond_dim: int = 0  # length of each frame's label vector (0: unconditioned)
    lowres: bool = False  # True for an upsampler
    mapping_channels: int = 32  # width of the upsampler's mapping network
    temporal_conv: bool = False  # a residual convolution over time after every ResNet block
    temporal_attn_levels: tuple[int, ...] | None = None  # levels with temporal attention; None = all
    keypoint_maps: int = 0  # cond holds this many (x, y, confidence) keypoints, drawn as maps or a skeleton
    keypoint_sigma: float = 0.03  # their Gaussian's width, a fraction of the frame's side
    patch: int = 1  # pixels per side folded into channels at the input and unfolded at the output
    label_maps: bool = False  # each frame's label vector also given as cond_dim constant input channels
    skeleton: tuple[tuple[int, int], ...] = ()  # limbs: the keypoints drawn for a pose encoder, not as maps

    def __post_init__(self) -> None:
        object.__setattr__(self, "mults", tuple(self.mults))
        object.__setattr__(self, "skeleton", tuple(tuple(limb) for limb in self.skeleton))
        object.__setattr__(self, "spatial_attn_levels", tuple(self.spatial_attn_levels))
        if self.temporal_attn_levels is not None:
            object.__setattr__(self, "temporal_attn_levels", tuple(self.temporal_attn_levels))

    def attention(self, level: int) -> tuple[bool, bool]:
        """Whether the blocks of ``level`` (0 = full resolution) have (spatial, temporal) attention."""
        temporal = self.temporal_attn_levels is None or level in self.temporal_attn_levels
        return level in self.spatial_attn_levels, temporal


def sinusoidal(values: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features (..., dim) of real ``values`` (...)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=values.device) / half)
    args = values.float()[..., None] * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with as many groups (up to 8) as divide ``channels``."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels, affine=False)


@functools.lru_cache(maxsize=64)
def _rotary_angles(seq: int, half: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """The cosines and sines of :func:`rotary` (seq, half), made once per shape, device and dtype."""
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / half)
    angles = torch.arange(seq, device=device, dtype=torch.float32)[:, None] * freqs
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding along the sequence axis of (batch, heads, seq, head_dim)."""
    seq, dim = x.shape[-2], x.shape[-1]
    half = dim // 2
    cos, sin = _rotary_angles(seq, half, x.device, x.dtype)
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return torch.cat([out, x[..., 2 * half :]], dim=-1) if dim % 2 else out


class Attention(nn.Module):
    """Multi-head self-attention over time or over space of a (B*F, C, H, W) tensor."""

    def __init__(self, channels: int, heads: int, axis: str) -> None:
        super().__init__()
        assert axis in ("time", "space")
        self.axis, self.heads = axis, heads
        self.norm = nn.GroupNorm(next(g for g in (8, 4, 2, 1) if channels % g == 0), channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, frames: int, independent: torch.Tensor | None = None) -> torch.Tensor:
        """``independent`` (B,) True where a clip's frames are unrelated images: over time, each of
        their frames then attends to itself only."""
        _bf, _c, h, w = x.shape
        y = self.norm(x)
        if self.axis == "time":  # sequences of F frames, one per pixel
            seq = rearrange(y, "(b f) c h w -> (b h w) f c", f=frames)
        else:  # sequences of H*W pixels, one per frame
            seq = rearrange(y, "bf c h w -> bf (h w) c")
        q, k, v = rearrange(
            self.qkv(seq), "n s (three heads d) -> three n heads s d", three=3, heads=self.heads
        )
        if self.axis == "time":
            q, k = rotary(q), rotary(k)
        if q.device.type == "cpu" and q.dtype != torch.float32:
            # Under CPU autocast: PyTorch's CPU attention kernels are several times slower in bf16.
            with torch.autocast("cpu", enabled=False):
                attended = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(q.dtype)
        else:
            attended = F.scaled_dot_product_attention(q, k, v)  # softmax over the key axis
        if self.axis == "time" and independent is not None:
            alone = independent.repeat_interleave(h * w)[:, None, None, None]  # sequences are (b h w)
            attended = torch.where(alone, v, attended)
        seq = self.out(rearrange(attended, "n heads s d -> n s (heads d)"))
        if self.axis == "time":
            seq = rearrange(seq, "(b h w) f c -> (b f) c h w", h=h, w=w)
        else:
            seq = rearrange(seq, "bf (h w) c -> bf c h w", h=h)
        return x + seq


class SeededDropout(nn.Module):
    """Dropout whose masks come from an explicit generator (see :meth:`UNet3D.dropout_generator`),
    never from torch's global one, so a training step is a pure function of its seed."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.p:
            return x
        if self.generator is None:
            raise RuntimeError("dropout in training mode needs a generator: use UNet3D.dropout_generator")
        keep = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)


Modulation = tuple[torch.Tensor, torch.Tensor]  # an upsampler block's per-pixel SPADE scale and shift


class ResBlock(nn.Module):
    """Two 3x3 convolutions per frame; GroupNorm modulated per frame by the embedding and, for
    upsamplers, per pixel by the mapped low-res clip (SPADE)."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float, map_channels: int) -> None:
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = group_norm(cout)
        self.emb = nn.Linear(emb_dim, 2 * cout)  # per-frame scale and shift
        self.spade = nn.Conv2d(map_channels, 2 * cout, 3, padding=1) if map_channels else None
        self.dropout = SeededDropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor, modulation: Modulation | None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        scale, shift = self.emb(emb)[..., None, None].chunk(2, dim=1)
        h = torch.addcmul(shift, h, 1 + scale)  # h * (1 + scale) + shift in one pass
        if modulation is not None:
            gamma, beta = modulation
            h = torch.addcmul(beta, h, 1 + gamma)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class TemporalConv(nn.Module):
    """A residual convolution over time at every pixel (kernel 3 over frames; the output starts at
    zero, so it begins as the identity). Neighbouring frames are mostly alike; attention over time
    has to learn that from nothing, a convolution over time starts local. Frames of ``independent``
    clips (unrelated images) each see only themselves, as a clip of one frame would."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.conv = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, frames: int, independent: torch.Tensor | None = None) -> torch.Tensor:
        act = F.silu(self.norm(x))
        y = rearrange(
            self.conv(rearrange(act, "(b f) c h w -> b c f h w", f=frames)), "b c f h w -> (b f) c h w"
        )
        if independent is not None:  # the middle tap alone: the frame without its neighbours
            alone = F.conv2d(act, self.conv.weight[:, :, 1], self.conv.bias)
            y = torch.where(independent.repeat_interleave(frames)[:, None, None, None], alone, y)
        return x + y


class Level(nn.Module):
    """One resolution: ResNet blocks, each followed by (maybe) spatial and temporal attention."""

    def __init__(
        self, cin: int, cout: int, n: int, emb_dim: int, cfg: UNetConfig, spatial: bool, temporal: bool
    ) -> None:
        super().__init__()
        map_channels = cfg.mapping_channels if cfg.lowres else 0
        self.res = nn.ModuleList(
            ResBlock(cin if i == 0 else cout, cout, emb_dim, cfg.dropout, map_channels) for i in range(n)
        )
        self.time_attn = (
            nn.ModuleList(Attention(cout, cfg.heads, "time") for _ in range(n)) if temporal else None
        )
        self.time_conv = nn.ModuleList(TemporalConv(cout) for _ in range(n)) if cfg.temporal_conv else None
        self.space_attn = (
            nn.ModuleList(Attention(cout, cfg.heads, "space") for _ in range(n)) if spatial else None
        )

    def forward(self, x, emb, frames, modulation: Iterator[Modulation] | None, independent=None):
        for i, block in enumerate(self.res):
            x = block(x, emb, None if modulation is None else next(modulation))
            if self.time_conv is not None:
                x = self.time_conv[i](x, frames, independent)
            if self.space_attn is not None:
                x = self.space_attn[i](x, frames)
            if self.time_attn is not None:
                x = self.time_attn[i](x, frames, independent)
        return x


class UNet3D(nn.Module):
    """Predicts the diffusion target (epsilon, v or x0) for a noisy clip (B, C, F, H, W)."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        emb_dim = 4 * ch
        self.emb_dim = emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.frame_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if cfg.cond_dim:
            self.cond_mlp = nn.Sequential(
                nn.Linear(cfg.cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
            )
        self.null_cond = nn.Parameter(torch.zeros(emb_dim))
        # Input: noisy clip + context frames + context mask (+ low-res clip for upsamplers, + keypoint maps).
        in_ch = 2 * cfg.image_channels + 1 + (cfg.image_channels if cfg.lowres else 0)
        in_ch += (0 if cfg.skeleton else cfg.keypoint_maps) + (cfg.cond_dim if cfg.label_maps else 0)
        if cfg.keypoint_maps and 3 * cfg.keypoint_maps > cfg.cond_dim:
            raise ValueError(f"{cfg.keypoint_maps} keypoint maps need cond_dim >= {3 * cfg.keypoint_maps}")
        if cfg.skeleton:
            last = cfg.keypoint_maps - 1
            if last < 0 or max(max(limb) for limb in cfg.skeleton) > last:
                raise ValueError(f"a skeleton joins keypoints 0 to {last}, got {cfg.skeleton}")
            drawn = len(cfg.skeleton) + cfg.keypoint_maps
            self.pose_encoder = nn.Sequential(
                nn.Conv2d(drawn, ch, 3, stride=2, padding=1), nn.SiLU(),
                nn.Conv2d(ch, ch, 3, padding=1), nn.SiLU(),
                nn.Conv2d(ch, ch, 3, padding=1),
            )  # fmt: skip
            nn.init.zeros_(self.pose_encoder[-1].weight)
            nn.init.zeros_(self.pose_encoder[-1].bias)
        if cfg.lowres:
            self.aug_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
            m = cfg.mapping_channels
            self.mapping = nn.Sequential(
                nn.Conv2d(cfg.image_channels, m, 3, padding=1), nn.SiLU(),
                nn.Conv2d(m, m, 3, padding=1), nn.SiLU(),
                nn.Conv2d(m, m, 3, padding=1),
            )  # fmt: skip
        self.stem = nn.Conv2d(in_ch * cfg.patch**2, ch, 3, padding=1)

        widths = [ch * m for m in cfg.mults]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        cin = ch
        for level, width in enumerate(widths):
            self.down.append(Level(cin, width, cfg.res_blocks, emb_dim, cfg, *cfg.attention(level)))
            cin = width
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.mid = Level(cin, cin, 1, emb_dim, cfg, True, True)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(widths))):
            width = widths[level]
            self.up.append(Level(cin + width, width, cfg.res_blocks, emb_dim, cfg, *cfg.attention(level)))
            cin = width
            if level > 0:
                self.upsample.append(nn.Conv2d(width, width, 3, padding=1))
        self.out_norm = group_norm(ch)
        self.out = nn.Conv2d(ch, cfg.image_channels * cfg.patch**2, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @contextmanager
    def dropout_generator(self, generator: torch.Generator | None) -> Iterator[None]:
        """Draw every dropout mask of the forward passes inside the block from ``generator`` (on the
        model's device)."""
        layers = [m for m in self.modules() if isinstance(m, SeededDropout)]
        for layer in layers:
            layer.generator = generator
        try:
            yield
        finally:
            for layer in layers:
                layer.generator = None

    @property
    def downscale(self) -> int:
        """H and W must be multiples of this."""
        return self.cfg.patch * 2 ** (len(self.cfg.mults) - 1)

    def res_blocks(self) -> Iterator[tuple[int, ResBlock]]:
        """Every ResNet block with its level (0 = full resolution), in the order ``forward`` runs them."""
        last = len(self.down) - 1
        for level, stage in enumerate(self.down):
            yield from ((level, block) for block in stage.res)
        yield from ((last, block) for block in self.mid.res)
        for i, stage in enumerate(self.up):
            yield from ((last - i, block) for block in stage.res)

    def lowres_modulation(self, lowres: torch.Tensor) -> list[Modulation]:
        """An upsampler's per-pixel scale and shift of every ResNet block, in ``res_blocks`` order, from
        the low-res clip (B, C, F, H, W) resized to the output size: the mapping network's features,
        area-averaged to each level's size, through each block's SPADE convolution. They depend on
        the low-res clip alone, so a sampler makes them once for all its steps."""
        flat = rearrange(lowres, "b c f h w -> (b f) c h w").contiguous(memory_format=torch.channels_last)
        full = self.mapping(flat)
        p = self.cfg.patch  # level 0 runs at 1/p of the frame's side
        at_level = {0: full} if p == 1 else {}
        out = []
        for level, block in self.res_blocks():  # each level's size made once, for all its blocks
            if level not in at_level:
                size = (full.shape[-2] // p >> level, full.shape[-1] // p >> level)
                at_level[level] = F.interpolate(full, size=size, mode="area")
            gamma, beta = block.spade(at_level[level]).chunk(2, dim=1)
            out.append((gamma, beta))
        return out

    def embed(
        self,
        timesteps: torch.Tensor,
        frames: int,
        cond: torch.Tensor | None,
        cond_mask: torch.Tensor | None,
        aug_level: torch.Tensor | None,
    ) -> torch.Tensor:
        """Per-frame embeddings (B, F, E)."""
        b = timesteps.shape[0]
        ch = self.cfg.channels
        emb = self.time_mlp(sinusoidal(timesteps, ch))[:, None, :]  # (B, 1, E)
        positions = torch.arange(frames, device=timesteps.device)
        emb = emb + self.frame_mlp(sinusoidal(positions, ch, max_period=1000.0))[None]  # (B, F, E)
        null = self.null_cond.expand(b, frames, -1)
        if self.cfg.cond_dim and cond is not None:
            if cond.shape != (b, frames, self.cfg.cond_dim):
                raise ValueError(
                    f"cond must be (B, F, {self.cfg.cond_dim}) = ({b}, {frames}, ...), "
                    f"got {tuple(cond.shape)}"
                )
            labelled = self.cond_mlp(cond.to(emb.dtype))
            if cond_mask is not None:
                labelled = torch.where(cond_mask[:, None, None], labelled, null)
            emb = emb + labelled
        else:
            emb = emb + null
        if self.cfg.lowres:
            level = aug_level if aug_level is not None else torch.zeros(b, device=timesteps.device)
            emb = emb + self.aug_mlp(sinusoidal(level * 1000.0, ch))[:, None, :]
        return emb

    def _pose_points(
        self, cond: torch.Tensor | None, cond_mask: torch.Tensor | None, b: int, frames: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """The x, y (in [0, 1] of the frame) and confidence (B, F, K) of the keypoints in ``cond``,
        confidence zero where ``cond_mask`` is False; None without labels."""
        if cond is None:
            return None
        points = cond[..., : 3 * self.cfg.keypoint_maps].reshape(b, frames, -1, 3).float()
        px, py, conf = points.unbind(-1)
        if cond_mask is not None:
            conf = conf * cond_mask.float()[:, None, None]
        return px, py, conf

    def keypoint_maps(
        self, cond: torch.Tensor | None, cond_mask: torch.Tensor | None, x: torch.Tensor
    ) -> torch.Tensor:
        """(B, K, F, H, W) Gaussian maps of the K keypoints in ``cond`` (B, F, D), for a clip ``x`` (B, C,
        F, H, W); zeros where there are no labels or ``cond_mask`` is False."""
        b, _c, frames, h, w = x.shape
        points = self._pose_points(cond, cond_mask, b, frames)
        if points is None:
            return x.new_zeros(b, self.cfg.keypoint_maps, frames, h, w)
        px, py, conf = points
        scale = -0.5 / self.cfg.keypoint_sigma**2  # sigma: a share of the frame's shorter side
        xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) / w
        ys = (torch.arange(h, device=x.device, dtype=torch.float32) + 0.5) / h
        gx = torch.exp(scale * ((xs - px[..., None]) * (w / min(h, w))) ** 2)  # (B, F, K, W)
        gy = (
            torch.exp(scale * ((ys - py[..., None]) * (h / min(h, w))) ** 2) * conf[..., None]
        )  # (B, F, K, H)
        return torch.einsum("bfkh,bfkw->bkfhw", gy, gx).to(x.dtype)

    def skeleton_image(
        self, cond: torch.Tensor | None, cond_mask: torch.Tensor | None, b: int, frames: int, h: int, w: int
    ) -> torch.Tensor:
        """((B F), L + K, H, W): the pose in ``cond`` (B, F, D) drawn at H x W, one channel per limb of
        ``skeleton`` (a Gaussian of each pixel's distance to the segment, weighted by the lower of its
        two keypoints' confidences) and one per joint (its Gaussian, weighted by its confidence);
        zeros where there are no labels or ``cond_mask`` is False."""
        drawn = len(self.cfg.skeleton) + self.cfg.keypoint_maps
        device = self.null_cond.device
        points = self._pose_points(cond, cond_mask, b, frames)
        if points is None:
            return torch.zeros(b * frames, drawn, h, w, device=device)
        px, py, conf = (rearrange(p, "b f k -> (b f) k") for p in points)
        side = min(h, w)  # distances in shares of the shorter side, as the keypoint maps' sigma
        px, py = px * (w / side), py * (h / side)
        xs = ((torch.arange(w, device=device, dtype=torch.float32) + 0.5) / side)[None, None, None, :]
        ys = ((torch.arange(h, device=device, dtype=torch.float32) + 0.5) / side)[None, None, :, None]
        scale = -0.5 / self.cfg.keypoint_sigma**2
        joints = torch.exp(scale * ((xs - px[..., None, None]) ** 2 + (ys - py[..., None, None]) ** 2))
        joints = joints * conf[..., None, None]  # (BF, K, H, W)
        first, second = (torch.tensor(ends, device=device) for ends in zip(*self.cfg.skeleton, strict=True))
        ax, ay, bx, by = px[:, first], py[:, first], px[:, second], py[:, second]  # (BF, L) each
        ax, ay, dx, dy = (v[..., None, None] for v in (ax, ay, bx - ax, by - ay))  # (BF, L, 1, 1)
        along = ((xs - ax) * dx + (ys - ay) * dy) / (dx**2 + dy**2).clamp_min(1e-8)
        along = along.clamp(0.0, 1.0)  # the share of the limb to the nearest point on it
        near_x, near_y = ax + along * dx, ay + along * dy
        limbs = torch.exp(scale * ((xs - near_x) ** 2 + (ys - near_y) ** 2))
        limbs = limbs * torch.minimum(conf[:, first], conf[:, second])[..., None, None]  # (BF, L, H, W)
        return torch.cat([limbs, joints], dim=1)

    def pose_features(
        self, cond: torch.Tensor | None, cond_mask: torch.Tensor | None, b: int, frames: int, h: int, w: int
    ) -> torch.Tensor:
        """((B F), channels, H/patch, W/patch): the pose encoder's features of the skeleton in ``cond``
        for frames of H x W, added to the stem's. They depend on the labels alone, so a sampler makes
        them once for all its steps."""
        size = (2 * h // self.cfg.patch, 2 * w // self.cfg.patch)
        drawn = self.skeleton_image(cond, cond_mask, b, frames, *size)
        return self.pose_encoder(drawn.contiguous(memory_format=torch.channels_last))

    def label_maps(
        self, cond: torch.Tensor | None, cond_mask: torch.Tensor | None, x: torch.Tensor
    ) -> torch.Tensor:
        """(B, D, F, H, W): each frame's label vector in ``cond`` (B, F, D) as constant maps for a clip
        ``x`` (B, C, F, H, W); zeros where there are no labels or ``cond_mask`` is False."""
        b, _c, frames, h, w = x.shape
        if cond is None:
            return x.new_zeros(b, self.cfg.cond_dim, frames, h, w)
        labels = cond.to(x.dtype)
        if cond_mask is not None:
            labels = labels * cond_mask.to(x.dtype)[:, None, None]
        return rearrange(labels, "b f d -> b d f")[..., None, None].expand(-1, -1, -1, h, w)

    def _input_channels(
        self, x: torch.Tensor, cond: torch.Tensor | None, cond_mask: torch.Tensor | None,
        context: torch.Tensor | None, context_mask: torch.Tensor | None, lowres: torch.Tensor | None,
    ) -> torch.Tensor:  # fmt: skip
        """What the stem reads, per frame ((B F), C, H, W): the noisy frames, the given clean ones and
        their mask, and the low-res clip (upsamplers) and keypoint maps (pose)."""
        b, _c, frames, h, w = x.shape
        if context_mask is None:
            context_mask = torch.zeros(b, frames, dtype=torch.bool, device=x.device)
        mask = context_mask.to(x.dtype)[:, None, :, None, None].expand(b, 1, frames, h, w)
        given = context * mask if context is not None else torch.zeros_like(x)
        inputs = [x, given, mask]
        if self.cfg.lowres:
            if lowres is None:
                raise ValueError("an upsampler needs the low-res clip (lowres)")
            inputs.append(lowres)
        if self.cfg.keypoint_maps and not self.cfg.skeleton:
            inputs.append(self.keypoint_maps(cond, cond_mask, x))
        if self.cfg.label_maps:
            inputs.append(self.label_maps(cond, cond_mask, x))
        stacked = rearrange(torch.cat(inputs, dim=1), "b c f h w -> (b f) c h w")
        return F.pixel_unshuffle(stacked, self.cfg.patch) if self.cfg.patch > 1 else stacked

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        cond: torch.Tensor | None = None,
        cond_mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        lowres: torch.Tensor | None = None,
        aug_level: torch.Tensor | None = None,
        independent: torch.Tensor | None = None,
        lowres_modulation: list[Modulation] | None = None,
        pose_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, C, F, H, W) noisy clip; timesteps (B,); cond (B, F, D) labels; cond_mask (B,) False =
        use the null embedding; context (B, C, F, H, W) clean frames where context_mask (B, F) is
        True; lowres (B, C, F, H, W) the low-res clip resized to H x W; aug_level (B,) in [0, 1];
        independent (B,) True where the frames are unrelated images (joint image-video training);
        lowres_modulation: ``self.lowres_modulation(lowres)`` and pose_features: ``self.pose_features(cond,
        cond_mask, ...)``, when the caller has them already."""
        b, _c, frames, h, w = x.shape
        if independent is not None and not bool(independent.any()):
            independent = None  # decided once here, not in every attention layer (a device sync each)
        if h % self.downscale or w % self.downscale:
            raise ValueError(f"frame size {h}x{w} must be a multiple of {self.downscale}")
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(b)
        emb = rearrange(self.embed(timesteps, frames, cond, cond_mask, aug_level), "b f e -> (b f) e")
        stacked = self._input_channels(x, cond, cond_mask, context, context_mask, lowres)
        modulation = None
        if self.cfg.lowres:
            modulation = iter(lowres_modulation or self.lowres_modulation(lowres))
        # Channels-last activations: oneDNN convolves them without reordering, and spatial attention
        # reads them without a copy (with the fused modulation below, a CPU training step of the
        # base model 3% and of an upsampler 7% faster).
        h_ = self.stem(stacked.contiguous(memory_format=torch.channels_last))
        if self.cfg.skeleton:
            if pose_features is None:
                pose_features = self.pose_features(cond, cond_mask, b, frames, h, w)
            h_ = h_ + pose_features.to(h_.dtype)

        skips = []
        for i, level in enumerate(self.down):
            h_ = level(h_, emb, frames, modulation, independent)
            skips.append(h_)
            if i < len(self.downsample):
                h_ = self.downsample[i](h_)
        h_ = self.mid(h_, emb, frames, modulation, independent)
        for i, level in enumerate(self.up):
            h_ = level(torch.cat([h_, skips.pop()], dim=1), emb, frames, modulation, independent)
            if i < len(self.upsample):
                h_ = self.upsample[i](F.interpolate(h_, scale_factor=2.0, mode="nearest"))
        out = self.out(F.silu(self.out_norm(h_)))
        if self.cfg.patch > 1:
            out = F.pixel_shuffle(out, self.cfg.patch)
        return rearrange(out, "(b f) c h w -> b c f h w", b=b)


__all__ = ["UNet3D", "UNetConfig"]

"""The ``vdlib`` command: the pipeline's functions by hand (demo video, fetch, extract, labels, train,
generate).

Flag defaults come from the same dataclasses as ``params.yaml``, so both agree.
"""

from __future__ import annotations

import argparse
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from vdlib import __version__
from vdlib.config import (
    ASPECTS,
    CASCADE,
    POSE_RUNTIMES,
    VIDEO_FORMATS,
    DemoConfig,
    ExtractConfig,
    FetchConfig,
    LabelsConfig,
    PoseConfig,
    RenderConfig,
    load_section,
)
from vdlib.core.common import VdlibError, run_main
from vdlib.models.schedule import SamplingConfig
from vdlib.params_file import KEY_DOCS


def _cmd_demo_video(args: argparse.Namespace) -> None:
    from vdlib.data.demo import render_demo_video

    cfg = DemoConfig(seconds=args.seconds, fps=args.fps, width=args.width, height=args.height, seed=args.seed)
    cfg.validate("vdlib demo-video")
    render_demo_video(cfg, args.output, table=args.table)
    print(f"wrote {args.output}" + (f" and {args.table}" if args.table else ""))


def _cmd_digits_video(args: argparse.Namespace) -> None:
    from vdlib.data.digits import DigitsConfig, render_digits_video

    cfg = DigitsConfig(
        seconds=args.seconds, fps=args.fps, width=args.width, height=args.height, seed=args.seed
    )
    render_digits_video(cfg, args.output, table=args.table)
    print(f"wrote {args.output} and {args.table}")


def _cmd_fetch(args: argparse.Namespace) -> None:
    from vdlib.data.fetch import fetch

    out = fetch(args.source, args.output, max_height=args.max_height)
    print(f"wrote {out}")


def _extract_config(args: argparse.Namespace) -> ExtractConfig:
    cfg = ExtractConfig(
        resolution=args.resolution,
        aspect=args.aspect,
        fps=args.fps,
        pad_color=args.pad_color,
        start=args.start,
        end=args.end,
        allow_partial=args.allow_partial,
    )
    cfg.validate("vdlib extract")
    return cfg


def _cmd_extract(args: argparse.Namespace) -> None:
    from vdlib.data.extract import extract_frames, extract_png_folders

    cfg = _extract_config(args)
    if args.format == "png":
        count = extract_png_folders(args.video, args.output, cfg, max_file_count=args.max_file_count)
        print(f"wrote {count} frames to {args.output}")
    else:
        store = extract_frames(args.video, args.output, cfg)
        height, width = store.shape
        print(f"wrote {len(store)} frames of {height}x{width} (height x width) to {args.output}")


def _write_labels_outputs(args: argparse.Namespace, cfg: LabelsConfig) -> None:
    from vdlib.labels.labelling import label_frames

    cfg.validate("vdlib labels")
    labels = label_frames(args.frames, cfg, args.output, args.preview, args.summary)
    print(
        f"wrote {labels.kind} labels ({labels.dim} values per frame) "
        f"for {len(labels)} frames to {args.output}"
    )


def _cmd_labels_timestamps(args: argparse.Namespace) -> None:
    _write_labels_outputs(args, LabelsConfig(kind="timestamps", tables=[str(t) for t in args.tables]))


def _cmd_labels_pose(args: argparse.Namespace) -> None:
    pose = PoseConfig(
        model=args.model, batch=args.batch, imgsz=args.imgsz, conf=args.conf, device=args.device,
        runtime=args.runtime,
    )  # fmt: skip
    _write_labels_outputs(args, replace(LabelsConfig(kind="pose"), pose=pose))


def _cmd_train(args: argparse.Namespace) -> None:
    from vdlib.training.launch import launch, needs_launch
    from vdlib.training.train import train_job_from_params, train_model

    if args.kind == "autoencoder":
        from vdlib.evaluation.evaluate import autoencoder_fidelity
        from vdlib.training.autoencoder import autoencoder_job_from_params, train_autoencoder

        out = args.output or Path("models") / "autoencoder"
        coder = autoencoder_job_from_params(
            args.frames, out, args.reports or Path("reports") / "train_autoencoder", args.params
        )
        result = train_autoencoder(coder, autoencoder_fidelity)
        held_out = (
            f" (held-out PSNR {result['psnr']:.2f} dB)"
            if "psnr" in result
            else " (none: autoencoder.steps 0)"
        )
        print(f"wrote {out}{held_out}")
        return
    name = "base" if args.kind == "base" else f"upsampler_{args.resolution}"
    job = train_job_from_params(
        args.kind,
        args.frames,
        args.labels,
        args.output or Path("models") / name,
        args.reports or Path("reports") / f"train_{name}",
        args.resolution,
        params_file=args.params,
        autoencoder=args.autoencoder if args.kind == "base" else None,
    )
    if needs_launch(job.train):
        launch(job.train, ["-m", "vdlib.cli", *sys.argv[1:]])
        print(f"trained {job.name} (the machine with node_rank 0 wrote {job.model_out})")
        return
    result = train_model(job)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone writes
        print(f"wrote {job.model_out} (validation loss {result['val_loss']:.4f})")


def _per_model(text: str | None, count: int, flag: str, kind: type) -> list | None:
    """``--steps 20`` (every model) or ``--steps 20,4,4`` (one per model) → a list of ``count`` values."""
    if text is None:
        return None
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        raise VdlibError(f"{flag}: expected one {kind.__name__} or one per model, got {text!r}") from None
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise VdlibError(f"{flag}: {len(values)} values for {count} models ({text!r})")
    return values


def _flag(name: str) -> str:
    """The command-line flag of a setting: ``window_frames`` → ``--window-frames``."""
    return "--" + name.replace("_", "-")


def _value_type(name: str) -> type:
    """The type of a :class:`SamplingConfig` setting's values (``float`` for ``float | None``)."""
    hint = typing.get_type_hints(SamplingConfig)[name]
    return next((t for t in typing.get_args(hint) if t is not type(None)), hint)


REQUEST_FLAGS = {"labels": "--labels", "timelines": "--timeline", "pose_from": "--pose-from"}


def _requests(args: argparse.Namespace, cfg: RenderConfig) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The render requests and how messages name them: the flags' when any is given (the rest then
    empty), else the params' (named as params)."""
    if not (args.labels or args.timeline or args.pose_from):
        return {"labels": cfg.labels, "timelines": cfg.timelines, "pose_from": cfg.pose_from}, None
    requests = {
        "labels": args.labels or [],
        "timelines": [str(t) for t in args.timeline or []],
        "pose_from": [str(p) for p in args.pose_from or []],
    }
    return requests, REQUEST_FLAGS


def _cmd_generate(args: argparse.Namespace) -> None:
    from vdlib.generation.render import render_videos

    from_params = args.params.is_file()
    cfg: RenderConfig = load_section("render", args.params) if from_params else RenderConfig()
    pose = load_section("labels", args.params).pose if from_params else PoseConfig()
    models = args.models or [Path("models") / name for name in CASCADE[: cfg.cascade]]
    if len(models) > len(CASCADE):
        raise VdlibError(f"at most {len(CASCADE)} models (a base model and up to two upsamplers)")
    overrides = {
        f.name: _per_model(getattr(args, f.name), len(models), _flag(f.name), _value_type(f.name))
        for f in fields(SamplingConfig)
    }
    sampling = {}
    for i, name in enumerate(CASCADE[: len(models)]):
        changes = {key: values[i] for key, values in overrides.items() if values is not None}
        sampling[name] = replace(getattr(cfg, name), **changes)
    formats = [f.strip() for f in args.formats.split(",")] if args.formats else cfg.formats
    requests, keys = _requests(args, cfg)
    cfg = replace(
        cfg,
        cascade=len(models),
        seeds=[args.seed + i for i in range(args.n)],
        frames=args.frames if args.frames is not None else cfg.frames,
        fps=args.fps if args.fps is not None else cfg.fps,
        formats=formats,
        batch=args.batch if args.batch is not None else cfg.batch,
        **requests,
        device=args.device or cfg.device,
        **sampling,
    )
    cfg.validate("vdlib generate")
    if args.n < 1:
        raise VdlibError(f"-n: expected an integer >= 1, got {args.n}")
    videos = render_videos(
        cfg, models, args.out_dir, pose, args.data / "frames", args.data / "labels.parquet", keys=keys
    )
    for video in videos:
        cost = sum(s.seconds for s in video.stages)  # its share of its batch's time
        print(f"wrote {args.out_dir / video.stem}.* ({len(video.frames)} frames, {cost:.1f} s)")


def _cmd_params(args: argparse.Namespace) -> None:
    from vdlib.core.common import atomic_output
    from vdlib.params_file import params_yaml

    if args.output is None:
        print(params_yaml(), end="")
        return
    with atomic_output(args.output) as tmp:
        tmp.write_text(params_yaml())
    print(f"wrote {args.output}")


def _cmd_init(args: argparse.Namespace) -> None:
    from vdlib.init import plan_params, write_params

    labels = [str(x) for x in args.labels] if args.labels else ["none"]
    params, reasons = plan_params(
        [str(s) for s in args.sources], labels, args.minutes, aspect=args.aspect, latent=args.latent
    )
    path = write_params(params, reasons, args.params, force=args.force)
    print(f"wrote {path}:")
    for reason in reasons:
        print(f"  {reason}")
    print("next: dvc repro (or dvc exp run), then look at reports/gifs and reports/eval/metrics.json")


Subparsers = Any  # argparse's private _SubParsersAction


def _add_clip_args(p: argparse.ArgumentParser, defaults: Any, table: str, func: Callable) -> None:
    """The options of a built-in clip's command: output, table, length, rate, size and seed."""
    p.add_argument("-o", "--output", type=Path, required=True, help="video file (.mkv, .mp4, .webm)")
    p.add_argument("--table", type=Path, default=Path(table), help="where to write the schedule")
    for name in ("seconds", "fps", "width", "height", "seed"):
        default = getattr(defaults, name)
        p.add_argument(f"--{name}", type=type(default), default=default)
    p.set_defaults(func=func)


def _add_demo_video(sub: Subparsers) -> None:
    p = sub.add_parser("demo-video", help="render the built-in procedural demo clip and its timestamp table")
    _add_clip_args(p, DemoConfig(), "labels/tables/demo.csv", _cmd_demo_video)


def _add_digits_video(sub: Subparsers) -> None:
    from vdlib.data.digits import DigitsConfig

    p = sub.add_parser(
        "digits-video",
        help="render the fine-grained dataset (real handwritten digits drifting) and its table",
    )
    _add_clip_args(p, DigitsConfig(), "labels/tables/digits.csv", _cmd_digits_video)


def _add_fetch(sub: Subparsers) -> None:
    fetch = FetchConfig()
    p = sub.add_parser(
        "fetch", help="download a video (YouTube or other page URL, direct URL) or copy a file"
    )
    p.add_argument("source", help="page URL, direct video URL, local path, or 'demo'")
    p.add_argument("-o", "--output", type=Path, required=True, help="video file (.mkv, .mp4, .webm, .mov)")
    p.add_argument("--max-height", type=int, default=fetch.max_height, help="best stream up to this height")
    p.set_defaults(func=_cmd_fetch)


def _add_extract(sub: Subparsers) -> None:
    ext = ExtractConfig()
    p = sub.add_parser("extract", help="decode videos into frames (frame store or PNG folders)")
    p.add_argument("video", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--resolution", type=int, default=ext.resolution, help="the frames' shorter side (pixels)")
    p.add_argument(
        "--aspect", choices=ASPECTS, default=ext.aspect,
        help="keep: the videos' own shape; pad: square with bars; crop: square, centre cut",
    )  # fmt: skip
    p.add_argument("--fps", type=float, default=ext.fps, help="frames sampled per second of video")
    p.add_argument("--pad-color", default=ext.pad_color, help="ffmpeg colour for the padding")
    p.add_argument("--start", type=float, default=ext.start, help="first second to extract")
    p.add_argument("--end", type=float, default=ext.end, help="last second to extract")
    p.add_argument("--allow-partial", action="store_true", help="keep the frames of a truncated video")
    p.add_argument("--format", choices=("store", "png"), default="store", help="frame store or PNG folders")
    p.add_argument("--max-file-count", type=int, default=1000, help="PNGs per numbered folder (--format png)")
    p.set_defaults(func=_cmd_extract)


def _label_outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("frames", type=Path, help="frame store folder")
    p.add_argument("-o", "--output", type=Path, required=True, help="labels Parquet file")
    p.add_argument("--preview", type=Path, help="also write a GIF with the labels drawn on the frames")
    p.add_argument("--summary", type=Path, help="also write a JSON summary")


def _add_labels(sub: Subparsers) -> None:
    labels = sub.add_parser("labels", help="make per-frame labels for a frame store")
    lsub = labels.add_subparsers(dest="labels_kind", required=True, metavar="KIND")
    p = lsub.add_parser("timestamps", help="labels from tables of time ranges (start,end,label[,group])")
    _label_outputs(p)
    p.add_argument("tables", type=Path, nargs="+", help="CSV tables")
    p.set_defaults(func=_cmd_labels_timestamps)

    pose = PoseConfig()
    p = lsub.add_parser("pose", help="labels from Ultralytics YOLO pose keypoints")
    _label_outputs(p)
    p.add_argument("--model", default=pose.model, help="Ultralytics pose model path or name")
    p.add_argument("--batch", type=int, default=pose.batch, help="frames per forward pass")
    p.add_argument("--imgsz", type=int, default=pose.imgsz, help="inference size (multiple of 32)")
    p.add_argument("--conf", type=float, default=pose.conf, help="minimum person confidence")
    p.add_argument("--device", default=pose.device, help="cpu, cuda, cuda:0, ...")
    p.add_argument(
        "--runtime", choices=POSE_RUNTIMES, default=pose.runtime,
        help="auto: ONNX Runtime on CPU, PyTorch on CUDA",
    )  # fmt: skip
    p.set_defaults(func=_cmd_labels_pose)


def _add_init(sub: Subparsers) -> None:
    p = sub.add_parser(
        "init",
        help="write params.yaml for your own videos (sizes, windows, labels, steps for --minutes)",
        description="Probe the videos and write a params.yaml that fits them and this machine; print "
        "what was chosen and why. Refuses to replace a params.yaml with uncommitted edits.",
    )
    p.add_argument("sources", nargs="+", help="video files, folders of videos, or URLs")
    p.add_argument(
        "--labels", nargs="+", metavar="none|pose|TABLE.csv",
        help="none (default), pose, or timestamp tables (start,end,label[,group][,video]), "
        "copied into labels/tables/",
    )  # fmt: skip
    p.add_argument("--minutes", type=float, default=15.0, help="training time to plan for (default 15)")
    p.add_argument(
        "--aspect", choices=ASPECTS, default="keep",
        help="frame shape: keep (default: the videos' own), pad or crop (squares)",
    )  # fmt: skip
    p.add_argument(
        "--latent", action=argparse.BooleanOptionalAction, default=None,
        help="a base model that diffuses the latents of an autoencoder trained on the footage, making "
        "frames at the stored size without upsamplers; --no-latent: 32 px frames and two upsamplers "
        "(default: latents for unlabelled videos, 32 px frames for labelled ones)",
    )  # fmt: skip
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="the file to write")
    p.add_argument("--force", action="store_true", help="replace a params.yaml that has edits")
    p.set_defaults(func=_cmd_init)


def _add_params(sub: Subparsers) -> None:
    p = sub.add_parser("params", help="print (or write) the default params.yaml, every key with its comment")
    p.add_argument("-o", "--output", type=Path, help="write to this file instead of printing")
    p.set_defaults(func=_cmd_params)


def _add_train(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train", help="train the autoencoder, the base model or an upsampler with the settings in params.yaml"
    )
    p.add_argument("kind", choices=("autoencoder", "base", "upsampler"))
    p.add_argument("--resolution", type=int, help="upsampler output's shorter side (64, 128, ...)")
    p.add_argument(
        "--autoencoder",
        type=Path,
        help="base: the autoencoder folder whose latents it diffuses (default: pixels)",
    )
    p.add_argument("--frames", type=Path, default=Path("data/frames"), help="frame store")
    p.add_argument("--labels", type=Path, default=Path("data/labels.parquet"), help="labels Parquet file")
    p.add_argument(
        "-o", "--output", type=Path, help="model folder (default models/autoencoder, base or upsampler_SIZE)"
    )
    p.add_argument("--reports", type=Path, help="DVCLive folder (default reports/train_NAME)")
    p.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="sections train and autoencoder/base/upsampler",
    )
    p.set_defaults(func=_cmd_train)


def _add_generate(sub: Subparsers) -> None:
    p = sub.add_parser(
        "generate",
        help="generate videos through the cascade (base, then upsamplers)",
        description="Generate videos with a base model and optional upsamplers. Settings not given as "
        "flags come from the render section of --params (when that file exists).",
    )
    p.add_argument(
        "models", type=Path, nargs="*",
        help="model folders, base first (default: models/base models/upsampler_64 models/upsampler_128, "
        "as many as render.cascade says)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the first video")
    p.add_argument("-n", type=int, default=1, help="videos per request, with seeds SEED, SEED+1, ...")
    p.add_argument("--frames", type=int, help="frames per video (K); longer than a window is fine")
    p.add_argument("--out-dir", type=Path, default=Path("generated"), help="where to write the videos")
    p.add_argument("--formats", help=f"comma-separated: {', '.join(VIDEO_FORMATS)}")
    p.add_argument("--fps", type=float, help="playback frame rate (default: the base model's)")
    p.add_argument(
        "--labels", action="append",
        help="labels for every frame, e.g. 'shape=circle,colour=red' (repeat for more videos)",
    )  # fmt: skip
    p.add_argument(
        "--timeline", type=Path, action="append",
        help="timestamp table (start,end,label[,group]) in output time: labels that change (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--pose-from", type=Path, action="append",
        help="a video or pose labels Parquet file whose poses drive a pose-conditioned model",
    )  # fmt: skip
    p.add_argument(
        "--data", type=Path, default=Path("data"),
        help="folder with the training frames/ and labels.parquet, where 'auto' requests come from "
        "(label combinations, held-out poses)",
    )  # fmt: skip
    for f in fields(SamplingConfig):  # one flag per sampling setting, named and explained as the param
        doc = KEY_DOCS[SamplingConfig][f.name]
        p.add_argument(
            _flag(f.name), help=f"{doc}; one value, or one per model (default: render.<model>.{f.name})"
        )
    p.add_argument("--batch", type=int, help="videos sampled together (default: render.batch)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: render.device)")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="defaults (section render)")
    p.set_defaults(func=_cmd_generate)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vdlib`` command: one subcommand per pipeline function."""
    parser = argparse.ArgumentParser(prog="vdlib", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vdlib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    adders = (_add_demo_video, _add_digits_video, _add_fetch, _add_extract, _add_labels, _add_init,
              _add_params, _add_train, _add_generate)  # fmt: skip
    for add in adders:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``vdlib`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run_main(args.func, args)


if __name__ == "__main__":
    sys.exit(main())

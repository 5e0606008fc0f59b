"""Typed configuration: each ``params.yaml`` section maps 1:1 to a dataclass, validated at load time.

Errors name the file and the key (``params.yaml: extract.fps: expected a positive number, got 'ten'``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vdlib.errors import VdlibError

T = TypeVar("T")

PARAMS_FILE = Path("params.yaml")


class ConfigError(VdlibError):
    """A parameter is missing, unknown or of the wrong type or range."""


def _fail(where: str, key: str, expected: str, got: Any) -> typing.NoReturn:
    raise ConfigError(f"{where}: {key}: expected {expected}, got {got!r}")


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchConfig:
    """Where the video comes from: ``demo``, a page URL (yt-dlp), a direct http(s) URL, or a local path."""

    source: str = "demo"
    max_height: int = 720

    def validate(self, where: str) -> None:
        if not self.source.strip():
            _fail(where, "fetch.source", "'demo', a URL or a local path", self.source)
        if self.max_height < 16:
            _fail(where, "fetch.max_height", "an integer >= 16 (pixels)", self.max_height)


@dataclass(frozen=True)
class DemoConfig:
    """The built-in procedural demo video (used when ``fetch.source`` is ``demo``)."""

    seconds: float = 120.0
    fps: int = 10
    width: int = 192
    height: int = 144
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.seconds <= 0:
            _fail(where, "demo.seconds", "a positive number of seconds", self.seconds)
        if self.fps < 1:
            _fail(where, "demo.fps", "an integer >= 1", self.fps)
        for key, value in (("width", self.width), ("height", self.height)):
            if value < 32 or value % 2:
                _fail(where, f"demo.{key}", "an even integer >= 32", value)


@dataclass(frozen=True)
class ExtractConfig:
    """Frame extraction: square size, sampling rate, padding colour and optional trim."""

    size: int = 128
    fps: float = 10.0
    pad_color: str = "black"
    start: float | None = None
    end: float | None = None
    allow_partial: bool = False

    def validate(self, where: str) -> None:
        if self.size < 8:
            _fail(where, "extract.size", "an integer >= 8 (pixels)", self.size)
        if self.fps <= 0:
            _fail(where, "extract.fps", "a positive number of frames per second", self.fps)
        if self.start is not None and self.start < 0:
            _fail(where, "extract.start", "null or seconds >= 0", self.start)
        if self.end is not None and self.end <= (self.start or 0.0):
            _fail(where, "extract.end", "null or seconds after extract.start", self.end)


@dataclass(frozen=True)
class PoseConfig:
    """Ultralytics pose labelling."""

    model: str = "yolo11n-pose.pt"
    batch: int = 32
    imgsz: int = 320
    conf: float = 0.25
    device: str = "cpu"

    def validate(self, where: str) -> None:
        if self.batch < 1:
            _fail(where, "labels.pose.batch", "an integer >= 1", self.batch)
        if self.imgsz < 32 or self.imgsz % 32:
            _fail(where, "labels.pose.imgsz", "a multiple of 32 (pixels)", self.imgsz)
        if not 0.0 <= self.conf <= 1.0:
            _fail(where, "labels.pose.conf", "a confidence between 0 and 1", self.conf)


LABEL_KINDS = ("none", "timestamps", "pose")


@dataclass(frozen=True)
class LabelsConfig:
    """Per-frame labels: none, from timestamp tables, or from pose keypoints."""

    kind: str = "timestamps"
    tables: list[str] = field(default_factory=lambda: ["labels/demo.csv"])
    pose: PoseConfig = field(default_factory=PoseConfig)

    def validate(self, where: str) -> None:
        if self.kind not in LABEL_KINDS:
            _fail(where, "labels.kind", " | ".join(LABEL_KINDS), self.kind)
        if self.kind == "timestamps" and not self.tables:
            _fail(
                where, "labels.tables", "at least one CSV table when labels.kind is timestamps", self.tables
            )
        self.pose.validate(where)


SECTIONS: dict[str, type] = {
    "fetch": FetchConfig,
    "demo": DemoConfig,
    "extract": ExtractConfig,
    "labels": LabelsConfig,
}


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, where: str, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, key)
            except ConfigError:
                continue
        _fail(where, key, _type_name(tp), value)
    if origin is list:
        if not isinstance(value, list):
            _fail(where, key, _type_name(tp), value)
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, key)
    if tp is bool:
        if not isinstance(value, bool):
            _fail(where, key, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(where, key, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(where, key, "a number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(where, key, "a string", value)
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def _build(cls: type[T], data: Any, where: str, prefix: str) -> T:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        _fail(where, prefix, "a mapping of keys", data)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(
            f"{where}: {prefix}.{unknown[0]}: unknown key (valid keys: {', '.join(sorted(fields))})"
        )
    kwargs = {name: _coerce(data[name], hints[name], where, f"{prefix}.{name}") for name in data}
    return cls(**kwargs)


def section_from_dict(name: str, data: Any, where: str = "params") -> Any:
    """Build and validate the dataclass for section ``name`` from a plain mapping."""
    if name not in SECTIONS:
        raise ConfigError(f"{where}: {name}: unknown section (valid: {', '.join(SECTIONS)})")
    cfg = _build(SECTIONS[name], data, where, name)
    cfg.validate(where)
    return cfg


def read_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read ``params.yaml`` as a mapping, with a clear error when it is missing or malformed."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (run from the project root)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load_section(name: str, path: str | Path = PARAMS_FILE) -> Any:
    """Load one validated section of ``params.yaml`` (missing keys take their defaults)."""
    return section_from_dict(name, read_params(path).get(name), where=str(path))

# SPDX-License-Identifier: GPL-2.0-only
"""Run manifests (``run.json``) and run-folder discovery.

Implements ``/work/shared/contract/run-manifest.md``: one migration ("run")
is a folder holding its captures and a ``run.json``; a folder without one is
still one run with unknown metadata.  Unknown fields are kept (``extra``) and
ignored; a malformed ``run.json`` raises :class:`ManifestError` naming the
file and the field.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

MANIFEST_NAME = "run.json"
KINDS = ("real", "simulated")
ROLES = ("source-stream", "destination-stream", "source-trace", "destination-trace", "guest-trace",
         "qemu-log-source", "qemu-log-destination", "qmp-source", "qmp-destination", "admin", "other")
POLICIES = ("cap128", "ratelimited", "unknown")
_KNOWN = {"schema", "run_id", "kind", "firmware", "kernel", "qemu", "driver_precopy_policy",
          "vm", "link", "labels", "captures", "truth"}
#: Files a run folder without run.json never treats as captures.
_SKIP_SUFFIXES = {".md", ".json", ".py", ".ipynb", ".html", ".png", ".svg", ".csv", ".parquet"}
_COMPRESSION_SUFFIXES = {".zst", ".zstd", ".gz", ".xz", ".bz2"}


class ManifestError(ValueError):
    """A malformed ``run.json``: the message names the file and the field."""

    def __init__(self, path: Path | str, field_name: str, problem: str):
        super().__init__(f"{path}: field {field_name!r}: {problem}")
        self.path = Path(path)
        self.field = field_name
        self.problem = problem


@dataclass(slots=True)
class CaptureRef:
    """One capture of a run: absolute ``path`` and its ``role`` (run-manifest.md)."""

    path: Path
    role: str = "other"


@dataclass(slots=True)
class RunManifest:
    """A parsed ``run.json`` (or the implicit manifest of a folder without one)."""

    run_id: str
    kind: str | None
    folder: Path
    captures: list[CaptureRef]
    schema: int = 1
    firmware: dict[str, Any] = field(default_factory=dict)
    kernel: str | None = None
    qemu: str | None = None
    driver_precopy_policy: str | None = None
    vm: dict[str, Any] = field(default_factory=dict)
    link: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    truth: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the run.json; None for a folder without one

    @property
    def firmware_version(self) -> str | None:
        v = self.firmware.get("version")
        return None if v is None else str(v)

    @property
    def link_bytes_per_s(self) -> float | None:
        g = self.link.get("gbit_per_s")
        return float(g) * 1e9 / 8 if isinstance(g, (int, float)) and g > 0 else None

    def role_of(self, path: Path) -> str | None:
        rp = Path(path).resolve()
        for c in self.captures:
            if c.path.resolve() == rp:
                return c.role
        return None

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = dict(self.extra)
        obj.update({"schema": self.schema, "run_id": self.run_id, "kind": self.kind,
                    "firmware": self.firmware, "kernel": self.kernel, "qemu": self.qemu,
                    "driver_precopy_policy": self.driver_precopy_policy, "vm": self.vm,
                    "link": self.link, "labels": self.labels,
                    "captures": [{"path": _rel(c.path, self.folder), "role": c.role}
                                 for c in self.captures]})
        if self.truth is not None:
            obj["truth"] = self.truth
        return obj


def _rel(p: Path, folder: Path) -> str:
    try:
        return str(p.relative_to(folder))
    except ValueError:
        return str(p)


def _opt_str(path: Path, obj: dict, name: str) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    if not isinstance(v, str):
        raise ManifestError(path, name, f"expected a string, got {type(v).__name__}")
    return v


def _opt_obj(path: Path, obj: dict, name: str) -> dict:
    v = obj.get(name)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ManifestError(path, name, f"expected an object, got {type(v).__name__}")
    return v


def parse_manifest(obj: Any, path: Path | str) -> RunManifest:
    """Validate a decoded ``run.json`` object; ``path`` is used for messages and relative paths."""
    path = Path(path)
    if not isinstance(obj, dict):
        raise ManifestError(path, "(top level)", "expected a JSON object")
    schema = obj.get("schema")
    if schema is None:
        raise ManifestError(path, "schema", "required field missing")
    if schema != 1 or isinstance(schema, bool):
        raise ManifestError(path, "schema", f"unsupported schema {schema!r} (expected 1)")
    run_id = obj.get("run_id")
    if run_id is None:
        raise ManifestError(path, "run_id", "required field missing")
    if not isinstance(run_id, str) or not run_id:
        raise ManifestError(path, "run_id", "expected a non-empty string")
    kind = obj.get("kind")
    if kind is None:
        raise ManifestError(path, "kind", "required field missing")
    if kind not in KINDS:
        raise ManifestError(path, "kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    caps = obj.get("captures")
    if caps is None:
        raise ManifestError(path, "captures", "required field missing")
    if not isinstance(caps, list):
        raise ManifestError(path, "captures", "expected a list")
    folder = path.parent
    refs: list[CaptureRef] = []
    for i, c in enumerate(caps):
        where = f"captures[{i}]"
        if not isinstance(c, dict):
            raise ManifestError(path, where, "expected an object with path and role")
        p = c.get("path")
        if not isinstance(p, str) or not p:
            raise ManifestError(path, where + ".path", "expected a non-empty string")
        role = c.get("role", "other")
        if role not in ROLES:
            raise ManifestError(path, where + ".role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        refs.append(CaptureRef(folder / p, role))
    policy = obj.get("driver_precopy_policy")
    if policy is not None and policy not in POLICIES:
        raise ManifestError(path, "driver_precopy_policy",
                            f"expected one of {', '.join(POLICIES)}, got {policy!r}")
    labels = _opt_obj(path, obj, "labels")
    for k, v in labels.items():
        if not isinstance(v, str):
            raise ManifestError(path, f"labels.{k}", "labels is a flat string map")
    truth = obj.get("truth")
    if truth is not None and not isinstance(truth, dict):
        raise ManifestError(path, "truth", "expected an object")
    return RunManifest(
        run_id=run_id, kind=kind, folder=folder, captures=refs, schema=1,
        firmware=_opt_obj(path, obj, "firmware"), kernel=_opt_str(path, obj, "kernel"),
        qemu=_opt_str(path, obj, "qemu"), driver_precopy_policy=policy,
        vm=_opt_obj(path, obj, "vm"), link=_opt_obj(path, obj, "link"), labels=labels,
        truth=truth, extra={k: v for k, v in obj.items() if k not in _KNOWN}, path=path)


def read_manifest(path: Path | str) -> RunManifest:
    """Read ``run.json`` (or the ``run.json`` inside a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ManifestError(path, "(file)", e.strerror or str(e)) from None
    except UnicodeDecodeError:
        raise ManifestError(path, "(file)", "not UTF-8 text") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(path, "(json)", f"line {e.lineno} column {e.colno}: {e.msg}") from None
    return parse_manifest(obj, path)


def _inner_suffix(p: Path) -> str:
    """The suffix that names what a file is: ``notes.md.gz`` is a ``.md``, not a capture
    (a compressed capture itself is recognised by content, dissect/capture/compressed.py)."""
    suffixes = [x.lower() for x in p.suffixes]
    while len(suffixes) > 1 and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def implicit_manifest(folder: Path | str) -> RunManifest:
    """The manifest of a folder without ``run.json``: its files, unknown metadata."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and _inner_suffix(p) not in _SKIP_SUFFIXES)
    return RunManifest(run_id=folder.name or str(folder), kind=None, folder=folder,
                       captures=[CaptureRef(p, "other") for p in files])


def find_runs(paths: Iterable[Path | str]) -> list[RunManifest]:
    """Every run under ``paths`` (run-manifest.md: a corpus is any folder tree).

    A ``run.json`` path or a folder holding one is that run; a folder tree is
    searched for every ``run.json``; a folder without any ``run.json`` below
    it is one run of unknown metadata.  Malformed manifests raise
    :class:`ManifestError`.  Hidden folders and ``__pycache__`` are skipped.
    """
    runs: list[RunManifest] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_file() and p.name == MANIFEST_NAME:
            found = [p]
        elif p.is_dir():
            found = sorted(m for m in p.rglob(MANIFEST_NAME)
                           if not any(part.startswith(".") or part == "__pycache__"
                                      for part in m.relative_to(p).parts[:-1]))
            if not found:
                key = p.resolve()
                if key not in seen:
                    seen.add(key)
                    runs.append(implicit_manifest(p))
                continue
        else:
            raise ManifestError(p, "(file)", "not a run folder or run.json")
        for m in found:
            key = m.resolve()
            if key not in seen:
                seen.add(key)
                runs.append(read_manifest(m))
    return runs

"""The built index on disk: FAISS utterance vectors, metadata, fitted arrays and a manifest.

Layout of an index folder::

    index/
      CURRENT                 name of the complete build in use (replaced atomically)
      builds/<build-id>/
        manifest.json         encoder id, dimension, normalisation, route fingerprints, counts,
                              none routes, loader warnings, overlapping routes
        utterances.faiss      IndexFlatIP over the L2-normalised utterance vectors
        utterances.json       [{"route": name, "text": utterance}, ...] in vector order
        scorer.npz            arrays fitted at build time from the utterance vectors (with
                              the none-route utterances and the negatives)
        thresholds.json       written by `intent-router fit` (absent until then)
      embedding-cache/        text → vector cache for incremental rebuilds

A build is written into a fresh folder and only then published by replacing ``CURRENT``,
so a crashed build never leaves a half index: readers see the old build or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from intent_router.embedding.encoder import Vectors
from intent_router.errors import EncoderMismatchError, IndexMissingError, StaleIndexError

FORMAT_VERSION = 1
CURRENT = "CURRENT"


@dataclass
class Thresholds:
    """Fitted thresholds; a route's own YAML ``threshold`` still overrides them."""

    global_threshold: float | None = None
    per_route: dict[str, float] = field(default_factory=dict)
    fitted_on: str | None = None
    fitted_at: float | None = None
    objective: str | None = None
    """The objective the threshold was fitted under (``intent-router fit --objective``)."""
    blocks: dict[str, BlockThresholds] = field(default_factory=dict)
    """A hybrid encoder's other blocks, by encoder name (``global_threshold`` and
    ``per_route`` are its first block's, or a single encoder's)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "global": self.global_threshold,
            "per_route": self.per_route,
            "fitted_on": self.fitted_on,
            "fitted_at": self.fitted_at,
            "objective": self.objective,
        }
        if self.blocks:
            out["blocks"] = {
                name: {"global": b.global_threshold, "per_route": b.per_route}
                for name, b in self.blocks.items()
            }
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Thresholds:
        return cls(
            global_threshold=data.get("global"),
            per_route=_per_route(data),
            fitted_on=data.get("fitted_on"),
            fitted_at=data.get("fitted_at"),
            objective=data.get("objective"),
            blocks={
                str(name): BlockThresholds(block.get("global"), _per_route(block))
                for name, block in (data.get("blocks") or {}).items()
            },
        )


@dataclass(frozen=True)
class BlockThresholds:
    """The fitted thresholds of one block of a hybrid encoder's vectors."""

    global_threshold: float | None = None
    per_route: dict[str, float] = field(default_factory=dict)


def _per_route(data: dict[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in (data.get("per_route") or {}).items()}


@dataclass
class RouteIndex:
    """Everything built from the route files, in memory."""

    manifest: dict[str, Any]
    vectors: Vectors
    labels: np.ndarray  # route position (in manifest["routes"] order) of each vector
    texts: list[str]
    scorer_arrays: dict[str, np.ndarray]
    thresholds: Thresholds
    folder: Path | None = None  # the build folder it was read from

    @property
    def route_names(self) -> list[str]:
        return [r["name"] for r in self.manifest["routes"]]

    def faiss_index(self) -> Any:
        index = faiss.IndexFlatIP(self.vectors.shape[1])
        if len(self.vectors):
            index.add(self.vectors)
        return index


def make_manifest(
    *,
    encoder_id: str,
    encoder_model: str,
    dimension: int,
    encoder_name: str | None = None,
    routes_fingerprint: str,
    routes: list[dict[str, Any]],
    build_seconds: float,
    embedded: int,
    reused: int,
    scorer: dict[str, Any],
    none_routes: list[dict[str, Any]] | None = None,
    warnings: dict[str, Any] | None = None,
    overlaps: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The build's description. ``routes`` are the routes a query may go to (their order
    is the label order of the vectors); ``none_routes`` the ``kind: none`` ones; ``warnings``
    the loader's (dropped repeated utterances) and ``overlaps`` the overlapping routes."""
    none_routes = none_routes or []
    return {
        "format_version": FORMAT_VERSION,
        "encoder": {
            "id": encoder_id,
            "model": encoder_model,
            "dimension": dimension,
            "name": encoder_name or encoder_model,
        },
        "normalization": "l2",
        "similarity": "cosine",
        "routes_fingerprint": routes_fingerprint,
        "routes": routes,
        "none_routes": none_routes,
        "counts": {
            "routes": len(routes),
            "utterances": sum(r["utterances"] for r in routes),
            "none_routes": len(none_routes),
            "none_utterances": sum(r["utterances"] for r in none_routes),
            "negatives": sum(r.get("negatives", 0) for r in routes),
            "embedded": embedded,
            "reused_from_cache": reused,
        },
        "scorer": scorer,
        "warnings": warnings or {"count": 0, "first": []},
        "overlaps": overlaps or {"count": 0, "pairs": [], "top": []},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(build_seconds, 3),
    }


def save_index(folder: Path, index: RouteIndex) -> Path:
    """Write ``index`` as a new build under ``folder`` and publish it atomically."""
    builds = folder / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=builds))
    try:
        faiss.write_index(index.faiss_index(), str(staging / "utterances.faiss"))
        rows = [
            {"route": index.route_names[int(label)], "text": text}
            for label, text in zip(index.labels, index.texts, strict=True)
        ]
        _write_json(staging / "utterances.json", rows)
        np.savez(staging / "scorer.npz", **index.scorer_arrays)  # type: ignore[arg-type]
        if index.thresholds.global_threshold is not None or index.thresholds.per_route:
            _write_json(staging / "thresholds.json", index.thresholds.to_json())
        _write_json(staging / "manifest.json", index.manifest)  # last: marks it complete
        final = builds / build_id
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _atomic_write_text(folder / CURRENT, build_id + "\n")
    index.folder = final
    _remove_old_builds(builds, keep=build_id)
    return final


def save_thresholds(index: RouteIndex, thresholds: Thresholds) -> Path:
    """Store fitted thresholds with the build in use (atomically)."""
    if index.folder is None:
        raise IndexMissingError("cannot store thresholds: the index was never saved")
    path = index.folder / "thresholds.json"
    _atomic_write_text(path, json.dumps(thresholds.to_json(), indent=2) + "\n")
    index.thresholds = thresholds
    return path


def current_build(folder: Path) -> Path:
    pointer = folder / CURRENT
    if not pointer.is_file():
        raise IndexMissingError(
            f"no index in {folder}: run `intent-router build` (or start with --build)"
        )
    build = folder / "builds" / pointer.read_text().strip()
    if not (build / "manifest.json").is_file():
        raise IndexMissingError(
            f"index build {build} is incomplete or was removed: run `intent-router build`"
        )
    return build


def load_index(
    folder: Path,
    *,
    routes_fingerprint: str | None = None,
    encoder_id: str | None = None,
    encoder_name: str | None = None,
) -> RouteIndex:
    """Read the build in use; refuse it when it no longer matches the routes or encoder."""
    build = current_build(folder)
    manifest: dict[str, Any] = json.loads((build / "manifest.json").read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StaleIndexError(
            f"index {build} has format {manifest.get('format_version')}, this version reads "
            f"{FORMAT_VERSION}: rebuild with `intent-router build`"
        )
    if encoder_id is not None and manifest["encoder"]["id"] != encoder_id:
        raise EncoderMismatchError(build, manifest["encoder"], encoder_id, encoder_name)
    if routes_fingerprint is not None and manifest["routes_fingerprint"] != routes_fingerprint:
        raise StaleIndexError(
            f"route files changed since index {build.name} was built: rebuild with "
            "`intent-router build` (or start the server with --build)"
        )
    stored = faiss.read_index(str(build / "utterances.faiss"))
    vectors = np.ascontiguousarray(stored.reconstruct_n(0, stored.ntotal), dtype=np.float32)
    rows = json.loads((build / "utterances.json").read_text())
    position = {r["name"]: i for i, r in enumerate(manifest["routes"])}
    labels = np.array([position[row["route"]] for row in rows], dtype=np.int64)
    with np.load(build / "scorer.npz", allow_pickle=False) as data:
        scorer_arrays = {k: data[k] for k in data.files}
    thresholds_file = build / "thresholds.json"
    thresholds = (
        Thresholds.from_json(json.loads(thresholds_file.read_text()))
        if thresholds_file.is_file()
        else Thresholds()
    )
    return RouteIndex(
        manifest=manifest,
        vectors=vectors,
        labels=labels,
        texts=[row["text"] for row in rows],
        scorer_arrays=scorer_arrays,
        thresholds=thresholds,
        folder=build,
    )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_old_builds(builds: Path, *, keep: str) -> None:
    """Drop superseded builds, and staging folders a crashed build left over an hour ago."""
    for child in builds.iterdir():
        if child.name == keep or not child.is_dir():
            continue
        crashed = time.time() - child.stat().st_mtime > 3600
        if not child.name.startswith(".staging-") or crashed:
            shutil.rmtree(child, ignore_errors=True)

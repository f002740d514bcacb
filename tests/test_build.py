"""Index build: manifest, incremental rebuild, stale refusal and crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from intent_router.build import build_index
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import current_build, load_index
from intent_router.errors import IndexMissingError, StaleIndexError
from intent_router.routing.loader import load_routes


def test_build_writes_manifest_and_loads_back(
    routes_dir: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "index"
    index, report = build_index(routes_dir, index_dir, encoder)
    manifest = json.loads((current_build(index_dir) / "manifest.json").read_text())
    routes = load_routes(routes_dir)
    assert manifest["encoder"] == {
        "id": encoder.id,
        "model": encoder.model_name,
        "dimension": encoder.dimension,
        "name": "minilm",
    }
    assert manifest["normalization"] == "l2"
    assert manifest["routes_fingerprint"] == routes.fingerprint
    assert manifest["counts"]["routes"] == 4 and manifest["counts"]["utterances"] == 40
    assert report.embedded == 40 and report.reused == 0
    loaded = load_index(index_dir, routes_fingerprint=routes.fingerprint, encoder_id=encoder.id)
    assert loaded.texts == index.texts
    assert loaded.vectors.shape == (40, encoder.dimension)
    assert abs(float((loaded.vectors**2).sum(axis=1).mean()) - 1.0) < 1e-5


def test_rebuild_after_editing_one_route_embeds_only_its_new_utterances(
    routes_dir: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "index"
    build_index(routes_dir, index_dir, encoder)
    path = routes_dir / "math.yaml"
    data = yaml.safe_load(path.read_text())
    data["utterances"] += ["what is seven times eight", "factor x squared minus one"]
    path.write_text(yaml.safe_dump(data))
    _, report = build_index(routes_dir, index_dir, encoder)
    assert (report.embedded, report.reused) == (2, 40)
    _, again = build_index(routes_dir, index_dir, encoder)
    assert (again.embedded, again.reused) == (0, 42)


def test_stale_and_missing_index_are_refused_with_the_command_to_run(
    routes_dir: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "index"
    with pytest.raises(IndexMissingError, match="intent-router build"):
        load_index(index_dir)
    build_index(routes_dir, index_dir, encoder)
    (routes_dir / "extra.yaml").write_text("utterances: [book a flight to rome]\n")
    with pytest.raises(StaleIndexError, match="intent-router build"):
        load_index(index_dir, routes_fingerprint=load_routes(routes_dir).fingerprint)
    with pytest.raises(StaleIndexError, match="encoder"):
        load_index(index_dir, encoder_id="some/other-model@0")


def test_serve_refuses_a_stale_index_before_starting(
    routes_dir: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "index"
    build_index(routes_dir, index_dir, encoder)
    (routes_dir / "extra.yaml").write_text("utterances: [book a flight to rome]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "intent_router.cli",
            "-q",
            "serve",
            "--routes",
            str(routes_dir),
            "--index",
            str(index_dir),
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "route files changed" in result.stderr and "intent-router build" in result.stderr


def test_killed_build_never_leaves_a_half_index(
    routes_dir: Path, tmp_path: Path, encoder: Encoder
) -> None:
    """Kill real build processes at many points; the index always loads, old or new."""
    index_dir = tmp_path / "index"
    build_index(routes_dir, index_dir, encoder)
    old_fp = load_routes(routes_dir).fingerprint
    many = {"utterances": [f"question number {i} about topic {i % 7}" for i in range(300)]}
    (routes_dir / "bulk.yaml").write_text(yaml.safe_dump(many))
    new_fp = load_routes(routes_dir).fingerprint
    cmd = [
        sys.executable,
        "-m",
        "intent_router.cli",
        "-q",
        "build",
        "--routes",
        str(routes_dir),
        "--index",
        str(index_dir),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    seen = set()
    for delay in (0.5, 1.5, 2.5, 3.5, 4.5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        fingerprint = load_index(index_dir).manifest["routes_fingerprint"]
        assert fingerprint in (old_fp, new_fp)
        seen.add(fingerprint)
        # The embedding cache may be old or new, never corrupt: a full build still works.
    subprocess.run(cmd, env=env, check=True, timeout=300)
    assert load_index(index_dir).manifest["routes_fingerprint"] == new_fp
    # One build is kept; a killed build's staging folder may stay (it is only removed once
    # over an hour old, so a concurrent build's staging is never deleted under it).
    finished = [p for p in (index_dir / "builds").iterdir() if not p.name.startswith(".staging-")]
    assert len(finished) == 1

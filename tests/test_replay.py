"""Replay: a decision log recorded by the real app (prompts logged in full), replayed
against the same routes, against routes without ``code``, and through the CLI."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import SMALL_ROUTES
from tests.router_server import model

from intent_router.api.app import create_app
from intent_router.build import build_index
from intent_router.cli import main
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import Thresholds, save_thresholds
from intent_router.replay import (
    Recorded,
    ReplayReport,
    Sources,
    compare,
    read_decision_log,
    replay,
    skip_reason,
)
from intent_router.routing.loader import load_routes
from intent_router.testing import FakeUpstream
from intent_router.testing.server import serve_in_thread

CODE = [
    "write a python function that reverses a linked list",
    "my javascript code throws undefined is not a function, fix it",
    "write a SQL query that counts orders per customer",
]
OTHERS = [
    "solve the equation 5x - 3 = 12",
    "what is the integral of x squared",
    "translate good night into spanish",
    "how do you say thank you in german",
    "what is the capital city of australia",
]
CHITCHAT = "hey, how is your day going"


@dataclass(frozen=True)
class Recording:
    log: Path
    routes: Path
    index: Path
    rows: list[dict[str, Any]]


def chat(url: str, *messages: str, model_name: str = "auto") -> httpx.Response:
    roles = ["user", "assistant"]
    body = {
        "model": model_name,
        "messages": [{"role": roles[i % 2], "content": m} for i, m in enumerate(messages)],
    }
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Iterator[Recording]:
    """Traffic through the real server (``--log-prompts full``), chitchat's threshold fitted
    out of reach so that its request was recorded as going nowhere."""
    folder = tmp_path_factory.mktemp("recorded")
    log = folder / "decisions.jsonl"
    routes = folder / "routes"
    routes.mkdir()
    for name, fields in SMALL_ROUTES.items():
        (routes / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **fields}))
    with FakeUpstream() as fake:
        models = {
            name: model(fake, "openai", f"{name}-up")
            for name in ("strong-coder", "cheap-general", "strong-reasoner", "fast-small")
        }
        config = {"default_chain": ["cheap-general"], "models": models}
        (folder / "models.yaml").write_text(yaml.safe_dump(config))
        settings = Settings(
            routes_dir=routes, index_dir=folder / "index", models_file=folder / "models.yaml",
            build_on_start=True, cache_backend="off", log_prompts="full",
            decision_log=log,
        )  # fmt: skip
        index, _ = build_index(load_routes(routes), settings.index_dir, encoder)
        save_thresholds(index, Thresholds(per_route={"chitchat": 0.99}, fitted_on="test"))
        with serve_in_thread(create_app(settings, encoder=encoder)) as url:
            for text in [*CODE, *OTHERS, CHITCHAT]:
                assert chat(url, text).status_code == 200
            assert chat(url, CODE[0], model_name="fast-small").status_code == 200  # pinned
            follow_up = chat(url, CODE[0], "here it is", "ok, now make it faster")
            assert follow_up.status_code == 200
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    yield Recording(log, routes, settings.index_dir, rows)


def run_replay(encoder: Encoder, rec: Recording, candidate: Path, scratch: Path) -> ReplayReport:
    settings = Settings(routes_dir=candidate, index_dir=scratch, cache_backend="off")
    sources = Sources(candidate=candidate, index=scratch / "candidate", fitted_from=rec.index)
    report, _ = asyncio.run(replay(settings, encoder, rec.log, sources, labelled=False))
    return report


def without_code(rec: Recording, folder: Path) -> Path:
    candidate = folder / "candidate-routes"
    shutil.copytree(rec.routes, candidate)
    (candidate / "code.yaml").unlink()
    return candidate


def test_the_recorded_log_has_what_replay_needs(recording: Recording) -> None:
    rows = recording.rows
    assert len(rows) == len(CODE) + len(OTHERS) + 3
    assert all(row["prompt"] for row in rows)
    assert sum(row["route"] == "code" for row in rows) == len(CODE) + 1  # + the follow-up
    assert [row["route"] for row in rows if row["prompt"] == CHITCHAT] == [None]
    follow_up = rows[-1]
    assert follow_up["conversation"]["context_turns"] == [0]
    assert skip_reason(follow_up) == "multi_turn"
    assert skip_reason(rows[-2]) == "pinned"


def test_same_routes_change_nothing(recording: Recording, encoder: Encoder, tmp_path: Path) -> None:
    report = run_replay(encoder, recording, recording.routes, tmp_path)
    assert report.requests == len(recording.rows)
    assert report.skipped == {"pinned": 1, "multi_turn": 1}
    assert report.replayed == len(CODE) + len(OTHERS) + 1
    assert report.changed == 0
    assert report.matrix["none"]["none"] >= 2  # chitchat (fitted threshold) and the capital


def test_removing_code_changes_exactly_the_code_requests(
    recording: Recording, encoder: Encoder, tmp_path: Path
) -> None:
    report = run_replay(encoder, recording, without_code(recording, tmp_path), tmp_path)
    assert report.changed == len(CODE)
    assert sum(report.matrix["code"].values()) == len(CODE)
    assert "code" not in {to for row in report.matrix.values() for to in row}
    moved = [text for key, texts in report.examples.items() if key.startswith("code -> ")
             for text in texts]  # fmt: skip
    assert set(moved) == set(CODE)


def test_rows_without_prompts_are_counted_as_skipped(recording: Recording, tmp_path: Path) -> None:
    log = tmp_path / "no-prompts.jsonl"
    log.write_text("".join(
        json.dumps({k: v for k, v in row.items() if k != "prompt"}) + "\n"
        for row in recording.rows
    ))  # fmt: skip
    traffic = read_decision_log(log)
    assert traffic.requests == len(recording.rows) and traffic.rows == []
    assert traffic.skipped == {"no_prompt": len(recording.rows)}
    log.write_text("{not json\n")
    with pytest.raises(Exception, match=rf"{log}:1: not valid JSON"):
        read_decision_log(log)


def test_compare_counts_labels_and_keeps_a_few_examples() -> None:
    rows = [Recorded(i, f"q{i}", "a") for i in range(5)]
    report = compare(rows, ["a", "b", "b", "b", None], requests=6, labels=["a"] * 4 + [None])
    assert report.changed == 4 and report.replayed == 5
    assert report.matrix == {"a": {"a": 1, "b": 3, "none": 1}}
    assert report.examples["a -> b"] == ["q1", "q2", "q3"]
    assert report.accuracy == {"before": 0.8, "after": 0.4}
    assert "a -> b: 3" in report.format()


def test_cli_json_line_and_max_changed_exit_status(
    recording: Recording,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTENT_ROUTER_INDEX_DIR", str(recording.index))  # the server's index
    monkeypatch.setenv("INTENT_ROUTER_ROUTES_DIR", str(recording.routes))
    candidate = without_code(recording, tmp_path)
    argv = ["-q", "replay", "--log", str(recording.log), "--routes", str(candidate), "--json"]
    assert main([*argv, "--max-changed", "0"]) == 1
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["requests"] == len(recording.rows) and summary["changed"] == len(CODE)
    assert summary["skipped"] == 2 and set(summary["matrix"]["code"]) <= {
        "none",
        "math",
        "translation",
        "chitchat",
    }
    assert "more than --max-changed 0" in err
    # A labelled eval file: accuracy before (the server's routes) and after (the candidate).
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(
        json.dumps({"text": t, "route": r}) + "\n"
        for t, r in [*((c, "code") for c in CODE), (OTHERS[0], "math"), (OTHERS[2], "translation")]
    ))  # fmt: skip
    assert main([*argv[:3], str(labelled), *argv[4:], "--max-changed", "3"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["changed"] == len(CODE)
    assert summary["accuracy"] == {"before": 1.0, "after": 0.4}

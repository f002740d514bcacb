"""The ``intent-router`` command, through its real entry point on a tiny route set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import SMALL_ROUTES, RouteWriter

from intent_router.build import build_index
from intent_router.cli import main
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import current_build

# Four clear in-scope requests, four clear out-of-scope ones, and one row labelled wrong on
# purpose (a math request with gold "translation"), so every metric has a known value.
ROWS = [
    ("write a python function that reverses a string", "code"),
    ("solve 2x + 3 = 11", "math"),
    ("translate 'good night' into spanish", "translation"),
    ("hello, how are you doing", "chitchat"),
    ("what is the capital of australia", None),
    ("my washing machine is leaking water", None),
    ("what time does the pharmacy close", None),
    ("recommend a good hiking boot", None),
    ("solve 2x + 3 = 11", "translation"),
]


@pytest.fixture
def index_dir(routes_dir: Path, tmp_path: Path, encoder: Encoder) -> Path:
    """An index of the small route set, built with the session's encoder."""
    folder = tmp_path / "index"
    build_index(routes_dir, folder, encoder)
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps({"text": t, "route": r}) + "\n" for t, r in ROWS))
    return path


def _flags(routes_dir: Path, index_dir: Path) -> list[str]:
    return ["-q", "--routes", str(routes_dir), "--index", str(index_dir)]


def _cli(command: str, routes_dir: Path, index_dir: Path, *extra: str) -> int:
    flags = _flags(routes_dir, index_dir)
    return main([flags[0], command, *flags[1:], *extra])


def test_build_prints_the_counts(
    routes_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("build", routes_dir, tmp_path / "index") == 0
    out = capsys.readouterr().out
    assert "4 routes, 40 utterances (40 embedded, 0 reused)" in out
    assert str(current_build(tmp_path / "index")) in out


def test_eval_json_prints_one_object_consistent_with_the_data(
    routes_dir: Path, index_dir: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("eval", routes_dir, index_dir, "--dataset", str(dataset), "--json") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert {"n", "in_scope_accuracy", "oos_recall", "overall_accuracy", "macro_f1"} <= set(summary)
    # No none route and no negatives in this route set: nothing refused by either.
    assert summary["oos_refused_by_none_route"] == 0.0
    assert summary["negatives_refused"] == 0
    assert summary["n"] == len(ROWS)
    assert summary["in_scope_accuracy"] == pytest.approx(4 / 5, abs=1e-4)
    assert summary["oos_recall"] == pytest.approx(1.0)
    assert summary["overall_accuracy"] == pytest.approx(8 / 9, abs=1e-4)
    # F1 per class: code 1, chitchat 1, none 1, math 2/3 (one false positive),
    # translation 2/3 (one miss): the mean over the five classes.
    assert summary["macro_f1"] == pytest.approx((3 + 4 / 3) / 5, abs=1e-4)


def test_eval_report_shows_per_route_precision_recall_and_confusions(
    routes_dir: Path, index_dir: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("eval", routes_dir, index_dir, "--dataset", str(dataset)) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("route"))
    assert "precision" in header and "recall" in header
    names = {"chitchat", "code", "math", "translation", "<none>"}
    rows = {
        parts[0]: parts[1:3]
        for line in out.splitlines()
        if len(parts := line.split()) == 5 and parts[0] in names
    }
    assert rows == {
        "chitchat": ["1.000", "1.000"],
        "code": ["1.000", "1.000"],
        "math": ["0.500", "1.000"],
        "translation": ["1.000", "0.500"],
        "<none>": ["1.000", "1.000"],
    }
    assert "most confused (gold -> predicted):" in out
    assert "translation -> math: 1" in out


def test_fit_writes_thresholds_into_the_current_build(
    routes_dir: Path, index_dir: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("fit", routes_dir, index_dir, "--dataset", str(dataset)) == 0
    assert "fitted global threshold" in capsys.readouterr().out
    stored = json.loads((current_build(index_dir) / "thresholds.json").read_text())
    assert isinstance(stored["global"], float)
    assert stored["fitted_on"] == str(dataset)
    assert _cli("eval", routes_dir, index_dir, "--dataset", str(dataset), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == len(ROWS)


def test_a_malformed_dataset_line_is_refused_with_file_and_line(
    routes_dir: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "solve 2x + 3 = 11", "route": "math"}\n{"text": "oops", \n')
    assert _cli("eval", routes_dir, index_dir, "--dataset", str(bad), "--json") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{bad}:2" in captured.err and "not valid JSON" in captured.err


def test_a_missing_index_names_the_build_command(
    routes_dir: Path, tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("eval", routes_dir, tmp_path / "nothing", "--dataset", str(dataset)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "intent-router build" in captured.err


@pytest.mark.parametrize(("floor", "status"), [("0.95", 1), ("0.8", 0), (str(8 / 9), 0)])
def test_eval_min_accuracy_gates_on_overall_accuracy(
    routes_dir: Path,
    index_dir: Path,
    dataset: Path,
    capsys: pytest.CaptureFixture[str],
    floor: str,
    status: int,
) -> None:
    # Overall accuracy on ROWS is 8/9 = 0.8889 (see the test above).
    code = _cli("eval", routes_dir, index_dir, "--dataset", str(dataset), "--min-accuracy", floor)
    assert code == status
    err = capsys.readouterr().err
    assert ("below --min-accuracy" in err) == (status == 1)


@pytest.mark.parametrize("floor", ["1.5", "-0.1", "high"])
def test_eval_min_accuracy_must_be_a_fraction(
    routes_dir: Path, index_dir: Path, dataset: Path, floor: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli("eval", routes_dir, index_dir, "--dataset", str(dataset), "--min-accuracy", floor)
    assert exit_info.value.code == 2


def test_fit_objective_is_stored_and_reported_per_route(
    routes_dir: Path, index_dir: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--dataset", str(dataset), "--objective", "oos-recall:1.0", "--report")
    assert _cli("fit", routes_dir, index_dir, *args) == 0
    out = capsys.readouterr().out
    assert "under objective oos-recall:1" in out
    assert "precision" in out and "<none>" in out and "out-of-scope refused: 4 of 4" in out
    stored = json.loads((current_build(index_dir) / "thresholds.json").read_text())
    assert stored["objective"] == "oos-recall:1"


def test_fit_refuses_an_unknown_objective(
    routes_dir: Path, index_dir: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("fit", routes_dir, index_dir, "--dataset", str(dataset), "--objective", "f2") == 2
    assert "unknown objective 'f2'" in capsys.readouterr().err


def test_build_prints_repeats_and_overlaps(
    write_routes: RouteWriter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    math = dict(SMALL_ROUTES["math"])
    math["utterances"] = [*math["utterances"], "SOLVE the equation 3x + 7 = 22"]  # type: ignore[misc]
    math["utterances"].append("write a python function that computes a derivative")
    folder = write_routes({**SMALL_ROUTES, "math": math})
    assert _cli("build", folder, tmp_path / "index") == 0
    out = capsys.readouterr().out
    assert "warning: " in out and "math.yaml:" in out and "copy dropped" in out
    assert "overlapping routes:" in out and "math -> code" in out


def test_serve_refuses_a_bad_decision_log_setting_before_loading_anything(
    routes_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "decisions.jsonl"
    code = _cli(
        "serve", routes_dir, tmp_path / "nothing", "--decision-log", str(log),
        "--decision-log-max-bytes", "10",
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "decision_log_max_bytes" in err and "--decision-log-max-bytes" in err
    assert not log.exists()

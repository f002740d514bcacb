"""Route files: what is accepted, and how each refusal names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from intent_router.errors import RouteFileError
from intent_router.routing.loader import load_routes


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_loads_routes_sorted_with_name_defaulting_to_file_name(tmp_path: Path) -> None:
    write(tmp_path, "zeta.yaml", "utterances: [hello there]\nchain: [m1, m2]\n")
    write(tmp_path, "alpha.yml", "name: alpha\nutterances: ['a b', c]\nthreshold: 0.4\n")
    routes = load_routes(tmp_path)
    assert routes.names == ["alpha", "zeta"]
    assert routes.get("zeta").chain == ["m1", "m2"]
    assert routes.get("alpha").threshold == 0.4


def test_unknown_key_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "code.yaml", "name: code\nutterances: [x]\nthreshhold: 0.5\n")
    with pytest.raises(RouteFileError) as err:
        load_routes(tmp_path)
    assert err.value.path == str(path)
    assert err.value.line == 3
    assert err.value.field == "threshhold"
    assert "unknown key" in str(err.value) and f"{path}:3" in str(err.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "name: bad\nutterances:\n  - ok\n  - [unclosed\n")
    with pytest.raises(RouteFileError) as err:
        load_routes(tmp_path)
    assert "YAML syntax error" in str(err.value)
    assert err.value.line is not None and err.value.line >= 4


@pytest.mark.parametrize(
    ("body", "field", "line", "words"),
    [
        ("name: r\nutterances: []\n", "utterances", 2, "at least 1"),
        ("name: r\n", "utterances", None, "required"),
        ("name: r\nutterances:\n  - fine\n  - 42\n", "utterances", 2, "not a string"),
        ("name: r\nutterances:\n  - fine\n  - '   '\n", "utterances.1", 4, "at least 1"),
        ("name: r\nutterances: [a]\nthreshold: high\n", "threshold", 3, "number"),
        ("name: 'bad name!'\nutterances: [a]\n", "name", 1, "pattern"),
    ],
)
def test_invalid_fields_are_refused(
    tmp_path: Path, body: str, field: str, line: int | None, words: str
) -> None:
    write(tmp_path, "r.yaml", body)
    with pytest.raises(RouteFileError) as err:
        load_routes(tmp_path)
    assert err.value.field == field
    if line is not None:
        assert err.value.line == line
    assert words in str(err.value)


def test_duplicate_names_across_files_name_both(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "name: same\nutterances: [x]\n")
    second = write(tmp_path, "b.yaml", "name: same\nutterances: [y]\n")
    with pytest.raises(RouteFileError) as err:
        load_routes(tmp_path)
    assert str(second) in str(err.value) and str(first) in str(err.value)


def test_not_a_mapping_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(RouteFileError, match="no route files"):
        load_routes(tmp_path)
    write(tmp_path, "list.yaml", "- just\n- a list\n")
    with pytest.raises(RouteFileError, match="must be a mapping"):
        load_routes(tmp_path)


def test_fingerprint_ignores_chain_and_threshold_but_not_utterances(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", "name: r\nutterances: [a, b]\nchain: [x]\n")
    before = load_routes(tmp_path).fingerprint
    path.write_text("name: r\nutterances: [a, b]\nchain: [y]\nthreshold: 0.3\n")
    assert load_routes(tmp_path).fingerprint == before
    path.write_text("name: r\nutterances: [a, b, c]\n")
    assert load_routes(tmp_path).fingerprint != before


def test_a_none_route_is_kept_apart_from_the_routes(tmp_path: Path) -> None:
    write(tmp_path, "code.yaml", "utterances: [write a function]\nnegatives: [a haiku]\n")
    write(tmp_path, "oos.yaml", "kind: none\ndescription: no route\nutterances: [weather]\n")
    routes = load_routes(tmp_path)
    assert routes.names == ["code"]
    assert [r.name for r in routes.none_routes] == ["oos"]
    assert routes.get("oos").is_none and routes.get("oos").utterances == ["weather"]
    assert routes.get("code").negatives == ["a haiku"]


@pytest.mark.parametrize(
    ("extra", "field", "line"),
    [
        ("chain: [m1]\n", "chain", 3),
        ("threshold: 0.4\n", "threshold", 3),
        ("negatives: [x]\n", "negatives", 3),
        ("cache: {enabled: false}\n", "cache", 3),
    ],
)
def test_a_none_route_refuses_what_only_a_route_may_have(
    tmp_path: Path, extra: str, field: str, line: int
) -> None:
    path = write(tmp_path, "oos.yaml", "kind: none\nutterances: [weather]\n" + extra)
    with pytest.raises(RouteFileError) as err:
        load_routes(tmp_path)
    assert err.value.path == str(path)
    assert err.value.field == field and err.value.line == line
    assert "kind none takes no" in str(err.value) and f"{path}:{line}" in str(err.value)


def test_an_unknown_kind_is_refused_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "utterances: [a]\nkind: nothing\n")
    with pytest.raises(RouteFileError) as err:
        load_routes(tmp_path)
    assert err.value.field == "kind" and err.value.line == 2


def test_repeated_utterances_are_dropped_with_a_warning_naming_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path,
        "r.yaml",
        "name: r\nutterances:\n  - Hello there\n  - other\n  - hello   THERE\nnegatives: [x, X]\n",
    )
    routes = load_routes(tmp_path)
    assert routes.get("r").utterances == ["Hello there", "other"]
    assert routes.get("r").negatives == ["x"]
    messages = [str(w) for w in routes.warnings]
    assert messages[0].startswith(f"{path}:5: field 'utterances':")
    assert "repeats an earlier one (line 3)" in messages[0]
    assert messages[1].startswith(f"{path}:6: field 'negatives':")
    assert len(messages) == 2
    assert f"{path}:5" in caplog.text  # also logged, for `serve`


def test_an_utterance_of_two_routes_stays_with_the_first(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "utterances: [shared one, only a]\n")
    second = write(tmp_path, "b.yaml", "utterances:\n  - only b\n  - Shared one\n")
    write(tmp_path, "z.yaml", "kind: none\nutterances: [only b, nowhere]\n")
    routes = load_routes(tmp_path)
    assert routes.get("a").utterances == ["shared one", "only a"]
    assert routes.get("b").utterances == ["only b"]
    assert routes.get("z").utterances == ["nowhere"]
    first = str(routes.warnings[0])
    assert first.startswith(f"{second}:3: field 'utterances':")
    assert "also an utterance of route 'a'" in first and "a.yaml:1" in first
    assert "route 'b'" in str(routes.warnings[1])


def test_a_negative_that_is_one_of_its_own_utterances_is_dropped(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "utterances: [a, b]\nnegatives: [B, c]\n")
    routes = load_routes(tmp_path)
    assert routes.get("r").negatives == ["c"]
    assert "negative dropped" in str(routes.warnings[0])


def test_a_route_left_without_utterances_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "utterances: [x, y]\n")
    path = write(tmp_path, "b.yaml", "utterances: [X]\n")
    with pytest.raises(RouteFileError) as err:
        load_routes(tmp_path)
    assert err.value.path == str(path) and err.value.field == "utterances"


def test_fingerprint_covers_negatives_and_kind(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", "name: r\nutterances: [a, b]\n")
    plain = load_routes(tmp_path).fingerprint
    path.write_text("name: r\nutterances: [a, b]\nnegatives: [c]\n")
    with_negative = load_routes(tmp_path).fingerprint
    write(tmp_path, "n.yaml", "kind: none\nutterances: [d]\n")
    with_none = load_routes(tmp_path).fingerprint
    (tmp_path / "n.yaml").write_text("utterances: [d]\n")
    assert len({plain, with_negative, with_none, load_routes(tmp_path).fingerprint}) == 4

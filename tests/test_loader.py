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

"""The models file: typed, strict, errors naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from intent_router.errors import ModelsFileError, UpstreamError
from intent_router.models import ModelsConfig, load_models

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
default_chain: [a, b]
deadline_s: 12
breaker: {failure_rate: 0.4, minimum_calls: 3, cooldown_s: 5}
models:
  a:
    provider: openai
    base_url: http://127.0.0.1:9/v1/
    model: gpt-x
    api_key_env: TEST_IR_KEY_A
    price_per_mtok_input: 1.0
    price_per_mtok_output: 2.0
  b:
    provider: anthropic
    base_url: https://api.anthropic.com
    model: claude-x
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_loads_a_valid_file(tmp_path: Path) -> None:
    cfg = load_models(write(tmp_path, GOOD))
    assert cfg.default_chain == ["a", "b"]
    assert cfg.deadline_s == 12
    assert (cfg.breaker.failure_rate, cfg.breaker.minimum_calls) == (0.4, 3)
    a = cfg.get("a")
    assert a.base_url == "http://127.0.0.1:9/v1"  # trailing slash dropped
    assert a.max_retries == 2 and a.timeout_s == 30
    assert a.cost_usd(1_000_000, 500_000) == pytest.approx(2.0)
    assert cfg.get("b").api_key("b") is None  # no api_key_env: keyless local server


def test_repo_models_yaml_is_valid_and_covers_the_routes() -> None:
    cfg = load_models(REPO / "models.yaml")
    for name in ("cheap-general", "strong-general", "strong-coder", "strong-reasoner",
                 "fast-small", "local-llama"):  # fmt: skip
        assert name in cfg.models
    assert {m.provider for m in cfg.models.values()} == {"openai", "anthropic", "gemini"}
    cfg.check_chains({"default": cfg.default_chain})


@pytest.mark.parametrize("name", ["models.yaml", "models.fake.yaml"])
def test_shipped_models_files_cover_every_shipped_route(name: str) -> None:
    from intent_router.routing.loader import load_routes

    cfg = load_models(REPO / name)
    cfg.check_chains({r.name: r.chain for r in load_routes(REPO / "routes").routes})


def test_local_llama_does_not_point_at_the_routers_own_port() -> None:
    from intent_router.cli import DEFAULT_PORT

    assert f":{DEFAULT_PORT}/" not in load_models(REPO / "models.yaml").get("local-llama").base_url


def test_api_key_is_read_from_env_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_models(write(tmp_path, GOOD))
    monkeypatch.delenv("TEST_IR_KEY_A", raising=False)
    with pytest.raises(UpstreamError, match="TEST_IR_KEY_A is not set") as info:
        cfg.get("a").api_key("a")
    assert info.value.retryable is False
    monkeypatch.setenv("TEST_IR_KEY_A", "sk-secret")
    assert cfg.get("a").api_key("a") == "sk-secret"
    assert "sk-secret" not in repr(cfg)


@pytest.mark.parametrize(
    ("old", "new", "line", "field"),
    [
        ("    model: gpt-x\n", "    model: gpt-x\n    colour: red\n", 9, "models.a.colour"),
        ("provider: anthropic", "provider: mistral", 13, "models.b.provider"),
        (
            "    model: claude-x\n",
            "    model: claude-x\n    timeout_s: -1\n",
            16,
            "models.b.timeout_s",
        ),
        ("    model: gpt-x\n", "", 5, "models.a.model"),
        ("cooldown_s: 5", "cooldown_s: soon", 3, "breaker.cooldown_s"),
        ("http://127.0.0.1:9/v1/", "127.0.0.1:9", 7, "models.a.base_url"),
    ],
)
def test_errors_name_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str
) -> None:
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ModelsFileError) as info:
        load_models(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert f"{path}:{line}: field '{field}'" in str(err)


def test_default_chain_must_name_known_models(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match="unknown model 'zz'") as info:
        load_models(write(tmp_path, GOOD.replace("[a, b]", "[a, zz]")))
    assert info.value.line == 1


def test_fallbacks_are_read_and_must_name_other_known_models(tmp_path: Path) -> None:
    with_fallback = GOOD.replace("    model: gpt-x\n", "    model: gpt-x\n    fallbacks: [b]\n")
    cfg = load_models(write(tmp_path, with_fallback))
    assert cfg.get("a").fallbacks == ["b"] and cfg.get("b").fallbacks == []
    for names, why, index in (("[b, zz]", "unknown model 'zz'", 1), ("[a]", "lists itself", 0),
                              ("[b, b]", "listed twice", 1)):  # fmt: skip
        path = write(tmp_path, with_fallback.replace("fallbacks: [b]", f"fallbacks: {names}"))
        with pytest.raises(ModelsFileError, match=why) as info:
            load_models(path)
        assert (info.value.line, info.value.field) == (9, f"models.a.fallbacks.{index}")


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match="YAML syntax error") as info:
        load_models(write(tmp_path, GOOD.replace("  b:\n", "  b: [\n")))
    assert info.value.line is not None and info.value.line >= 12


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match="cannot read"):
        load_models(tmp_path / "nope.yaml")
    with pytest.raises(ModelsFileError, match="mapping"):
        load_models(write(tmp_path, "- a\n- b\n"))


def test_check_chains_names_route_and_model(tmp_path: Path) -> None:
    cfg: ModelsConfig = load_models(write(tmp_path, GOOD))
    cfg.check_chains({"code": ["a", "b"]})
    with pytest.raises(ModelsFileError, match="route 'code' names unknown model 'gpt-9'"):
        cfg.check_chains({"chat": ["a"], "code": ["b", "gpt-9"]})
    with pytest.raises(ModelsFileError, match="route 'empty' has an empty chain"):
        cfg.check_chains({"empty": []})
    with pytest.raises(ModelsFileError, match="unknown model 'q'"):
        cfg.get("q")


def test_a_model_defined_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    twice = GOOD + "  a:\n    provider: gemini\n    base_url: http://x\n    model: g\n"
    path = write(tmp_path, twice)
    with pytest.raises(ModelsFileError) as info:
        load_models(path)
    assert str(info.value) == f"{path}:16: duplicate key 'a' (first defined on line 5)"


def test_duplicate_keys_are_refused_at_any_depth(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    model: claude-x\n", "    model: claude-x\n" * 2))
    with pytest.raises(ModelsFileError, match="duplicate key 'model'") as info:
        load_models(path)
    assert info.value.line == 16


def test_the_old_breaker_key_is_refused_naming_the_new_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("failure_rate: 0.4", "failure_threshold: 5"))
    with pytest.raises(ModelsFileError) as info:
        load_models(path)
    message = str(info.value)
    assert info.value.line == 3 and "'failure_threshold'" in message
    assert "failure_rate, minimum_calls and window_s" in message


def test_models_with_an_unset_key_variable_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_models(write(tmp_path, GOOD))
    monkeypatch.delenv("TEST_IR_KEY_A", raising=False)
    assert cfg.missing_keys() == {"a": "TEST_IR_KEY_A"}
    monkeypatch.setenv("TEST_IR_KEY_A", "sk-x")
    assert cfg.missing_keys() == {}

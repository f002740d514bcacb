"""The fake upstream as a dev tool: its flags configure a real server (``--fault``)."""

from __future__ import annotations

import re

import httpx
import pytest

from intent_router.testing.cli import fake_from_args, parse_fault
from intent_router.testing.fake_upstream import Fault


def chat(base: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}]}
    return httpx.post(f"{base}/chat/completions", json=body, timeout=10)


def test_flags_script_faults_per_model_on_a_real_server() -> None:
    fake = fake_from_args(["--port", "0", "--fault", "gpt-down=503", "--retry-after", "2"])
    with fake:
        answered = chat(fake.openai_base, "gpt-up")
        failed = chat(fake.openai_base, "gpt-down")
    assert answered.status_code == 200
    assert answered.json()["choices"][0]["message"]["content"] == "[gpt-up] hello there"
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "2"


def test_fault_specs() -> None:
    assert parse_fault("claude-x=hang") == ("claude-x", Fault.hang())
    assert parse_fault("gemini=slow:2.5") == ("gemini", Fault.slow(2.5))
    assert parse_fault("org/model=v1=429", "1") == ("org/model=v1", Fault.http(429, "1"))
    refused = {
        "gpt": "expected MODEL=SPEC",
        "=503": "expected MODEL=SPEC",
        "gpt=200": "unknown fault '200'",
        "gpt=slow:x": "slow needs seconds",
        "gpt=explode": "unknown fault 'explode'",
    }
    for bad, message in refused.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_fault(bad)


def test_a_bad_fault_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        fake_from_args(["--fault", "gpt=explode"])
    assert exited.value.code == 2
    assert "--fault 'gpt=explode': unknown fault 'explode'" in capsys.readouterr().err

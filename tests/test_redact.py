"""PII redaction: typed placeholders, validators, the labelled sets, and the log modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intent_router.observability import contains_pii, find_pii, prompt_for_log, redact
from intent_router.observability.redact import iban_valid, luhn_valid, ssn_valid

DATA = Path(__file__).parent.parent / "scripts" / "data"

TEN_ITEMS = (
    "Hi, I'm Dana. Email dana.w@example.org or call +1 646 555 0147 (home 020 7946 0958). "
    "Refund card 4111 1111 1111 1111 or IBAN DE89 3704 0044 0532 0130 00. SSN 123-45-6789. "
    "The server 203.0.113.77 (and 2001:db8::8a2e:370:7334) rejects my key "
    "sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW0xY5zA2bC7dE. Please write a short apology in French."
)


def test_ten_items_are_replaced_by_their_types_and_the_rest_is_kept() -> None:
    text, findings = redact(TEN_ITEMS)
    assert [f.kind for f in findings] == [
        "EMAIL", "PHONE", "PHONE", "CARD", "IBAN", "SSN", "IP", "IP", "SECRET",
    ]  # fmt: skip
    assert text == (
        "Hi, I'm Dana. Email <EMAIL> or call <PHONE> (home <PHONE>). "
        "Refund card <CARD> or IBAN <IBAN>. SSN <SSN>. "
        "The server <IP> (and <IP>) rejects my key "
        "<SECRET>. Please write a short apology in French."
    )
    for f in findings:  # spans point into the original text
        assert TEN_ITEMS[f.start : f.end].strip() == TEN_ITEMS[f.start : f.end]
        assert f.to_dict()["type"] == f.kind


@pytest.mark.parametrize(
    "text",
    [
        "My order number is 1234567890123456, it cost $1,299.99 on 2024-03-15",
        "upgrade from 1.2.3 to 1.2.4; Chrome 120.0.6099.109; python 3.11.4",
        "request 123e4567-e89b-12d3-a456-426614174000 at commit a94a8fe5ccb19ba61c4c0873d391e987",
        "ISBN 978-3-16-148410-0, compute 555 - 123 - 4567, we shipped 3 500 units in 1999",
        "the train leaves at 12:30:45; std::vector<int>; MAC 00:1A:2B:3C:4D:5E",
        "set api_key to your own key; the password field needs 8 characters",
    ],
)
def test_ordinary_numbers_and_code_are_left_alone(text: str) -> None:
    assert redact(text) == (text, [])
    assert not contains_pii(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("card 4111 1111 1111 1112", None),  # Luhn fails
        ("card 4111 1111 1111 1111", "CARD"),
        ("DE00 3704 0044 0532 0130 00", None),  # checksum fails
        ("DE89 3704 0044 0532 0130 00", "IBAN"),
        ("666-12-3456 and 900-12-3456 and 123-00-4567", None),  # never issued
        ("SSN 536-22-1234", "SSN"),
        ("999.168.1.1", None),
        ("10.0.0.1", "IP"),
        ("AKIAIOSFODNN7EXAMPLE", "SECRET"),
        ("Authorization: Bearer abcdef1234567890xyz", "SECRET"),
        ('{"api_key": "3f9a2b7c8d1e4f60a5b9c2d7e8f1a3b4"}', "SECRET"),
    ],
)
def test_validators_decide(text: str, kind: str | None) -> None:
    kinds = {f.kind for f in find_pii(text)}
    assert kinds == ({kind} if kind else set())


def test_bearer_keeps_the_scheme_word() -> None:
    assert (
        redact("Authorization: Bearer abcdef1234567890xyz")[0] == "Authorization: Bearer <SECRET>"
    )


def test_checksums() -> None:
    assert luhn_valid("4242424242424242") and not luhn_valid("4242424242424241")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765433")
    assert not iban_valid("GB82WEST1234569876543")  # GB IBANs have 22 characters
    assert ssn_valid("123", "45", "6789") and not ssn_valid("000", "45", "6789")


@pytest.mark.parametrize("name", ["pii.jsonl", "pii_holdout.jsonl"])
def test_labelled_sets(name: str) -> None:
    """Every labelled item is replaced by a placeholder of its type; negatives stay."""
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line]
    missed, touched = [], []
    for row in rows:
        text, findings = redact(row["text"])
        for item in row["pii"]:
            start = row["text"].index(item["value"])
            end = start + len(item["value"])
            kinds = {f.kind for f in findings if f.start <= start and end <= f.end}
            if item["value"] in text or kinds != {item["type"]}:
                missed.append((row["id"], item["value"]))
        if not row["pii"] and findings:
            touched.append(row["id"])
    assert not missed
    negatives = sum(not row["pii"] for row in rows)
    assert negatives >= 20 and len(touched) <= negatives // 50, touched


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("off", None),
        ("redacted", "write to <EMAIL> about order 1234"),
        ("full", "write to ana@example.com about order 1234"),
    ],
)
def test_prompt_for_log(mode: str, expected: str | None) -> None:
    text = "write to ana@example.com about order 1234"
    assert prompt_for_log(text, mode) == expected  # type: ignore[arg-type]


def test_prompt_for_log_refuses_an_unknown_mode() -> None:
    from intent_router.errors import ConfigError

    with pytest.raises(ConfigError, match=r"log_prompts.*off, redacted, full"):
        prompt_for_log("x", "some")  # type: ignore[arg-type]


def test_log_prompts_setting_defaults_off_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from intent_router.config import Settings

    assert Settings().log_prompts == "off"
    monkeypatch.setenv("INTENT_ROUTER_LOG_PROMPTS", "redacted")
    assert Settings().log_prompts == "redacted"
    monkeypatch.setenv("INTENT_ROUTER_LOG_PROMPTS", "some")
    with pytest.raises(ValidationError, match="log_prompts"):
        Settings()


def test_serve_takes_log_prompts(capsys: pytest.CaptureFixture[str]) -> None:
    from intent_router.cli import _parser

    assert _parser().parse_args(["serve", "--log-prompts", "redacted"]).log_prompts == "redacted"
    assert _parser().parse_args(["serve"]).log_prompts is None  # the setting's default: off
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--log-prompts", "all"])
    assert "invalid choice: 'all'" in capsys.readouterr().err

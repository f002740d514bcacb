"""Find personal data and secrets in text and replace them with typed placeholders.

Pure and offline: regular expressions find candidates, and a validator accepts each one
only when its structure says it is real (Luhn for cards, mod-97 for IBANs, the SSA ranges
for SSNs, :mod:`ipaddress` for IPs, grouping and context for phone numbers), so ordinary
numbers (years, prices, quantities, dates, order numbers, versions, UUIDs, git SHAs) stay.

Kinds and their placeholders: ``EMAIL`` ``PHONE`` ``CARD`` ``IBAN`` ``SSN`` ``IP`` ``SECRET``
→ ``<EMAIL>`` … ``<SECRET>``. Where two candidates overlap, the kind listed first wins.
Measured on ``scripts/data/pii.jsonl`` by ``scripts/bench_redaction.py``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

Kind = Literal["SECRET", "EMAIL", "IBAN", "CARD", "SSN", "IP", "PHONE"]
KINDS: tuple[Kind, ...] = ("SECRET", "EMAIL", "IBAN", "CARD", "SSN", "IP", "PHONE")


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: its kind and where it is (``text[start:end]``)."""

    kind: Kind
    start: int
    end: int

    @property
    def placeholder(self) -> str:
        return f"<{self.kind}>"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.kind, "start": self.start, "end": self.end}


Span = tuple[int, int]
Detector = Callable[[str], Iterator[Span]]

# Numbers must stand alone: not glued to words, other digits, decimals, paths or dashes,
# and not the tail of a longer run of digit groups ("DE00 3704 0044 0532 0130 00").
_NUM_BEFORE = r"(?<![\w.,/+\-])(?<!\d )"
_NUM_AFTER = r"(?![\w\-/]|[.,]\d)"


def _context(text: str, start: int, pattern: re.Pattern[str], window: int = 32) -> bool:
    return pattern.search(text[max(0, start - window) : start]) is not None


# -- secrets -------------------------------------------------------------------------------

_SECRET_TOKENS = re.compile(
    r"(?<![\w-])(?:"
    r"sk-(?:proj-|ant-(?:api\d\d-)?|live_|test_)?[A-Za-z0-9_\-]{16,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abpr]-[A-Za-z0-9\-]{10,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r")(?![\w-])"
)
_BEARER = re.compile(r"\bBearer\s+([A-Za-z0-9\-._~+/]{12,}=*)", re.IGNORECASE)
_ASSIGNED = re.compile(
    r"(?i)\b(?:[a-z_]*[_-])?(?:api[_-]?key|apikey|secret|token|access[_-]?key|private[_-]?key"
    r"|client[_-]?secret|auth)[a-z_]*[\"']?\s*(?:[:=]|=>|\bis\b)\s*[\"']?"
    r"([A-Za-z0-9+/_\-.]{16,}=*)"
)
_PASSWORD = re.compile(
    r"(?i)\b(?:password|passwd|pwd|passphrase)[\"']?\s*(?:[:=]|\bis\b)\s*[\"']?([^\s\"',;]{6,})"
)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _looks_random(value: str) -> bool:
    """Long hex or base64: digits among letters, many distinct characters."""
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return has_digit and has_alpha and _entropy(value) >= 3.0


def _secrets(text: str) -> Iterator[Span]:
    for m in _SECRET_TOKENS.finditer(text):
        yield m.span()
    for m in _BEARER.finditer(text):
        yield m.span(1)
    for m in _ASSIGNED.finditer(text):
        if _looks_random(m.group(1)):
            yield m.span(1)
    for m in _PASSWORD.finditer(text):
        yield m.span(1)


# -- email ---------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w\-])"
)


def _emails(text: str) -> Iterator[Span]:
    for m in _EMAIL.finditer(text):
        yield m.span()


# -- IBAN ----------------------------------------------------------------------------------

_IBAN_COUNTRIES = (  # country code and length
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 CH21 CR22 CY28 CZ24 DE22 DK18 DO28 "
    "EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 "
    "IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 ME22 MK19 MR27 MT31 "
    "MU30 NL18 NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SE24 SI19 SK24 SM27 TN24 "
    "TR26 UA29 VG24 XK20"
)
_IBAN_LENGTHS = {entry[:2]: int(entry[2:]) for entry in _IBAN_COUNTRIES.split(" ")}
_IBAN = re.compile(r"(?<![\w-])([A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)")


def iban_valid(compact: str) -> bool:
    """ISO 13616: the country's length, then mod 97 of the rearranged digits equals 1."""
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    if not 15 <= len(compact) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def _ibans(text: str) -> Iterator[Span]:
    for m in _IBAN.finditer(text):
        start = m.start(1)
        expected = _IBAN_LENGTHS.get(m.group(1)[:2])
        # Take exactly the country's length, so a following code ("… 00 EUR") is not eaten.
        seen, end = 0, start
        for i in range(start, m.end(1)):
            if text[i] != " ":
                seen += 1
                end = i + 1
            if expected is not None and seen == expected:
                break
        compact = text[start:end].replace(" ", "")
        if end < len(text) and text[end].isalnum():
            continue
        if iban_valid(compact):
            yield start, end


# -- payment cards -------------------------------------------------------------------------

_CARD = re.compile(_NUM_BEFORE + r"(\d(?:[ \-]?\d){12,18})" + _NUM_AFTER)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix(digits: str) -> bool:
    """Issuer ranges of the networks in use: Visa, Mastercard, Amex, Discover, JCB, Diners…"""
    if digits[0] in "3456":
        return True
    return 2221 <= int(digits[:4]) <= 2720  # Mastercard 2-series


def _cards(text: str) -> Iterator[Span]:
    for m in _CARD.finditer(text):
        raw = m.group(1)
        seps = {c for c in raw if not c.isdigit()}
        if len(seps) > 1:
            continue
        digits = re.sub(r"\D", "", raw)
        if len(set(digits)) > 1 and _card_prefix(digits) and luhn_valid(digits):
            yield m.span(1)


# -- US social security numbers --------------------------------------------------------------

_SSN = re.compile(_NUM_BEFORE + r"(\d{3})([ \-])(\d{2})\2(\d{4})" + _NUM_AFTER)
_SSN_BARE = re.compile(_NUM_BEFORE + r"(\d{3})(\d{2})(\d{4})" + _NUM_AFTER)
_SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|social security|social-security|ss#|tin)\b")


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """SSA rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _ssns(text: str) -> Iterator[Span]:
    for m in _SSN.finditer(text):
        if ssn_valid(m.group(1), m.group(3), m.group(4)):
            yield m.span()
    for m in _SSN_BARE.finditer(text):
        if _context(text, m.start(), _SSN_CONTEXT) and ssn_valid(*m.groups()):
            yield m.span()


# -- IP addresses --------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.\-])(\d{1,3}(?:\.\d{1,3}){3})(?![\w\-]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])((?:[0-9A-Fa-f]{0,4}:){2,7}"  # groups and the :: of the short form
    r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4}|:)?)"  # last group, or an embedded IPv4
    r"(?:%[\w.]+)?(?![\w:])"  # an optional zone (fe80::1%eth0)
)
_VERSION_CONTEXT = re.compile(
    r"(?i)(?:\bv|\b(?:version|release|build|ver\.?|section|chapter|clause|step|figure|table|§)\s*)$"
)


def _ips(text: str) -> Iterator[Span]:
    for m in _IPV4.finditer(text):
        if _context(text, m.start(), _VERSION_CONTEXT, window=12):
            continue
        try:
            ipaddress.IPv4Address(m.group(1))
        except ValueError:
            continue
        yield m.span(1)
    for m in _IPV6.finditer(text):
        candidate = m.group(1)
        if candidate.strip(":") == "" or not any(c.isdigit() for c in candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield m.span()


# -- phone numbers -------------------------------------------------------------------------

# Country code, an optional (area), then digit groups; only the first split may lack a
# separator, so a long digit run cannot be partitioned in exponentially many ways.
_INTERNATIONAL = re.compile(
    r"(?<![\w+])(\+\d{1,4}(?:[ .\-]?\(\d{1,5}\))?[ .\-]?\d{1,14}(?:[ .\-]\d{1,10}){0,5})"
    r"(?![\w\-]|[.,]\d)"
)
_US = re.compile(
    _NUM_BEFORE
    + r"((?:1[ .\-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}([ .\-]))\d{3}([ .\-])\d{4})"
    + _NUM_AFTER
)
_NATIONAL = re.compile(_NUM_BEFORE + r"(\(?0[1-9]\d{0,3}\)?(?:[ ./\-]\d{2,9}){1,4})" + _NUM_AFTER)
_FRENCH = re.compile(_NUM_BEFORE + r"(0[1-9]([ .\-]?)\d{2}(?:\2\d{2}){3})" + _NUM_AFTER)
_BARE = re.compile(_NUM_BEFORE + r"(\+?\d{10,12})" + _NUM_AFTER)
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|call|ring|text|whatsapp|fax|contact|reach|"
    r"dial|number is|handy|portable|téléphone)\b"
)
_NOT_PHONE_CONTEXT = re.compile(
    r"(?i)(?:\border|\binvoice|\bref|\breference|\btracking|\bisbn|\bsku|\bticket|\bcase|"
    r"\bserial|\bpart|\bmodel|\bpo|\bid|\baccount|\bversion|\bbuild|#|\$|€|£|=|\*|\+)\W{0,3}"
    r"(?:\w+\W{1,3})?$"
)


def _digits(value: str) -> int:
    return sum(c.isdigit() for c in value)


def _phones(text: str) -> Iterator[Span]:
    for m in _INTERNATIONAL.finditer(text):
        if 8 <= _digits(m.group(1)) <= 15:
            yield m.span(1)
    for pattern in (_US, _NATIONAL, _FRENCH):
        for m in pattern.finditer(text):
            value = m.group(1)
            if _context(text, m.start(1), _NOT_PHONE_CONTEXT, window=24):
                continue
            if pattern is _US:
                spaced = " " in (m.group(3), m.group(2) or "")
                if spaced and "(" not in value and not _context(text, m.start(), _PHONE_CONTEXT):
                    continue
            elif pattern is _NATIONAL:
                seps = set(re.sub(r"[\d()]", "", value))
                if not 9 <= _digits(value) <= 12 or len(seps) > 1 or value.count("/") > 1:
                    continue
                if seps == {"."} and not _context(text, m.start(), _PHONE_CONTEXT):
                    continue
            yield m.span(1)
    for m in _BARE.finditer(text):
        if _context(text, m.start(), _PHONE_CONTEXT) and not _context(
            text, m.start(), _NOT_PHONE_CONTEXT, window=24
        ):
            yield m.span(1)


# -- the API -------------------------------------------------------------------------------

_DETECTORS: tuple[tuple[Kind, Detector], ...] = (
    ("SECRET", _secrets),
    ("EMAIL", _emails),
    ("IBAN", _ibans),
    ("CARD", _cards),
    ("SSN", _ssns),
    ("IP", _ips),
    ("PHONE", _phones),
)


def find_pii(text: str) -> list[Finding]:
    """Every piece of personal data in ``text``, non-overlapping, in text order."""
    taken: list[Finding] = []
    for kind, detect in _DETECTORS:
        for start, end in sorted(set(detect(text)), key=lambda s: (s[0], -s[1])):
            if end > start and all(end <= f.start or start >= f.end for f in taken):
                taken.append(Finding(kind, start, end))
    return sorted(taken, key=lambda f: f.start)


def contains_pii(text: str) -> bool:
    return bool(find_pii(text))


def redact(text: str) -> tuple[str, list[Finding]]:
    """``text`` with each finding replaced by its placeholder, and the findings (spans in
    the original text)."""
    findings = find_pii(text)
    parts: list[str] = []
    last = 0
    for f in findings:
        parts.append(text[last : f.start])
        parts.append(f.placeholder)
        last = f.end
    parts.append(text[last:])
    return "".join(parts), findings

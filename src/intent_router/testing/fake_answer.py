"""What the fake upstream answers, whatever the wire format: deterministic and inspectable.

* No tools offered (or ``tool_choice`` none): the text ``[{model}] {last user text}``, one
  token per word, plus `` [N images]`` when the last user turn carried N images.
* Tools offered and the conversation ends with a user turn: tool calls, no text. The
  forced tool if one is named, else every offered tool (only the first when parallel
  calls are off), each with the arguments ``{"query": last user text}``.
* The conversation ends with tool results: ``[{model}] tool said: {results joined by |}``.
* JSON output asked: the text is ``{"answer": "<the text above>"}``.

``n`` answers are identical; ``max_tokens`` cuts the words (finish ``length``).
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Call:
    id: str
    name: str
    args: dict[str, Any]

    @property
    def arguments(self) -> str:
        return json.dumps(self.args)


@dataclass(frozen=True, slots=True)
class Answer:
    model: str
    words: list[str]  # answer pieces, each one token
    prompt_tokens: int
    finish: str  # "stop", "length" or "tool_calls"
    calls: list[Call] = field(default_factory=list)
    n: int = 1
    logprobs: int | None = None  # None: not asked; else how many top alternatives

    @property
    def text(self) -> str:
        return "".join(self.words)


@dataclass(frozen=True, slots=True)
class Asked:
    """A request as the fake understood it, whatever the wire format."""

    model: str
    texts: list[str]  # every text of the prompt, for the token count
    last_user: str
    images: int  # images in the last user turn
    tool_results: list[str]  # results after the last user turn
    tools: list[str]  # names of the offered tools
    forced: str | None = None
    tools_off: bool = False
    parallel: bool = True
    max_tokens: int | None = None
    json_mode: bool = False
    n: int = 1
    logprobs: int | None = None


def answer(asked: Asked, id_prefix: str = "call") -> Answer:
    prompt_tokens = sum(len(t) // 4 + 1 for t in asked.texts)
    if asked.tools and not asked.tools_off and not asked.tool_results:
        names = [asked.forced] if asked.forced else asked.tools
        names = names if asked.parallel else names[:1]
        calls = [
            Call(f"{id_prefix}_{i}_{zlib.crc32(f'{asked.last_user}|{name}'.encode()):08x}",
                 name, {"query": asked.last_user})
            for i, name in enumerate(names)
        ]  # fmt: skip
        return Answer(asked.model, [], prompt_tokens, "tool_calls", calls, asked.n)
    if asked.tool_results:
        text = f"[{asked.model}] tool said: {' | '.join(asked.tool_results)}"
    else:
        text = f"[{asked.model}] {asked.last_user}".strip()
        if asked.images:
            text += f" [{asked.images} images]"
    if asked.json_mode:
        text = json.dumps({"answer": text})
    words = re.findall(r"\S+\s*", text)
    finish = "stop"
    if asked.max_tokens is not None and len(words) > asked.max_tokens:
        words, finish = words[: asked.max_tokens], "length"
        words[-1] = words[-1].rstrip()
    return Answer(asked.model, words, prompt_tokens, finish, [], asked.n, asked.logprobs)


def token_logprobs(a: Answer) -> list[dict[str, Any]]:
    """OpenAI-shaped logprob entries for the answer's words (fixed, fake values)."""
    return [
        {"token": w, "logprob": -0.5, "bytes": list(w.encode()),
         "top_logprobs": [{"token": w, "logprob": -0.5, "bytes": list(w.encode())}]
         * (a.logprobs or 0)}
        for w in a.words
    ]  # fmt: skip


def pieces(text: str, size: int = 8) -> list[str]:
    """A string cut the way streams cut tool arguments."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]

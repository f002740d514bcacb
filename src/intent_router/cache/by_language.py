"""The cache verifier chosen by the query's language, for the hybrid encoder.

The pair model (:class:`~intent_router.cache.pairmodel.ModelVerifier`) was fitted on
English pairs and reads MiniLM's word vectors, which mean little for other languages.
A single multilingual encoder (``use-m``, ``e5-small``) has no such vectors, so its cache
verifies with the rules (:class:`~intent_router.cache.verify.Verifier`) alone. The hybrid
has them, for English. The rule under the hybrid:

* an **English** lookup is verified as under ``minilm``: the pair model;
* a lookup in **another language** is verified as under ``use-m``: the rules only. Its
  candidates are in its own language: the hybrid embeds it in the multilingual block and
  the language is part of the cache scope;
* a question and its **translation** never meet: they fill different blocks (cosine 0) or,
  for two non-English languages, different scopes. The cached answer is written in the
  language it was asked in.
"""

from __future__ import annotations

from collections.abc import Callable

from intent_router.cache.verify import Verdict, Verifier


class ByLanguage(Verifier):
    """``english`` verifies queries ``is_english`` accepts; ``other`` (the rules) the rest."""

    def __init__(
        self,
        is_english: Callable[[str], bool],
        english: Verifier,
        other: Verifier | None = None,
    ) -> None:
        super().__init__(())
        self.is_english = is_english
        self.english = english
        self.other = other if other is not None else Verifier()

    def verify(self, query: str, cached: str) -> Verdict:
        chosen = self.english if self.is_english(query) else self.other
        return chosen.verify(query, cached)

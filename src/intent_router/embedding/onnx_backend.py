"""The ONNX Runtime backend of :class:`~intent_router.embedding.encoder.Encoder`.

The transformer of a sentence-transformers model is exported to ONNX once per model content
and cached on disk (``$INTENT_ROUTER_CACHE/onnx`` or ``~/.cache/intent-router/onnx``); the
tokenizer and the pooling run here, in numpy. Everything the pipeline needs besides the
network (pooling mode, truncation length, lower-casing, input names) is read from the loaded
sentence-transformers model at export time and stored *inside* the ``.onnx`` file as metadata,
together with a probe vector computed by the torch model. So a cached file is one atomic unit:
it is written to a temporary file and ``os.replace``-d into place, and on load it must parse,
carry the current metadata format and reproduce the probe, or it is exported again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from intent_router.embedding.words import WordVectors, pool_words
from intent_router.errors import EncoderError

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

FORMAT = "intent-router-onnx/1"
"""Bumped whenever the export or the metadata changes, so old cache files are replaced."""
OPSET = 17
PROBE = "Which route should this request take? (intent-router probe)"
SUPPORTED_POOLING = ("mean", "cls")
_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}
_STALE_TMP_SECONDS = 3600


def cache_dir() -> Path:
    """Where exported models live: ``$INTENT_ROUTER_CACHE/onnx``, else the user cache."""
    root = os.environ.get("INTENT_ROUTER_CACHE")
    if root:
        return Path(root).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "intent-router" / "onnx"


@dataclass(frozen=True)
class OnnxSpec:
    """What runs around the ONNX network, as the sentence-transformers model configures it."""

    dimension: int
    max_seq_length: int
    do_lower_case: bool
    pooling: str
    input_names: tuple[str, ...]
    normalize: bool

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> OnnxSpec:
        data = json.loads(text)
        data["input_names"] = tuple(data["input_names"])
        return cls(**data)


def spec_of(st_model: Any, where: str) -> OnnxSpec:
    """Read an :class:`OnnxSpec` off a loaded SentenceTransformer; refuse what we cannot run."""
    modules = [type(module).__name__ for module in st_model]
    if not modules or modules[0] != "Transformer" or not set(modules) <= _SUPPORTED_MODULES:
        raise EncoderError(
            f"encoder {where}: the onnx backend runs Transformer + Pooling (+ Normalize) "
            f"models only, this one has {modules}; use backend='torch'"
        )
    if "Pooling" not in modules:
        raise EncoderError(f"encoder {where}: no Pooling module; use backend='torch'")
    pooling_module = st_model[modules.index("Pooling")]
    mode = pooling_module.pooling_mode
    if mode not in SUPPORTED_POOLING:
        raise EncoderError(
            f"encoder {where}: pooling mode {mode!r} is not supported by the onnx backend "
            f"(only {', '.join(SUPPORTED_POOLING)}); use backend='torch'"
        )
    prompt_name = getattr(st_model, "default_prompt_name", None)
    if prompt_name and (getattr(st_model, "prompts", None) or {}).get(prompt_name):
        raise EncoderError(
            f"encoder {where}: a default prompt ({prompt_name!r}) is configured, which the "
            f"onnx backend does not apply; use backend='torch'"
        )
    transformer = st_model[0]
    tokenizer = st_model.tokenizer
    return OnnxSpec(
        dimension=int(st_model.get_embedding_dimension()),
        max_seq_length=int(st_model.max_seq_length),
        do_lower_case=bool(getattr(transformer, "do_lower_case", False)),
        pooling=str(mode),
        input_names=tuple(
            name
            for name in tokenizer.model_input_names
            if name in ("input_ids", "attention_mask", "token_type_ids")
        ),
        normalize="Normalize" in modules,
    )


class OnnxBackend:
    """One ONNX Runtime session plus the tokenizer and pooling around it."""

    name = "onnx"

    def __init__(self, session: Any, tokenizer: Any, spec: OnnxSpec) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.spec = spec

    def word_vectors(self, texts: list[str]) -> list[WordVectors]:
        """Contextual vectors of each text's words (see :mod:`~intent_router.embedding.words`)."""
        spec = self.spec
        features = self._tokenizer(
            [text.lower() for text in texts] if spec.do_lower_case else texts,
            padding=True,
            truncation="longest_first",
            max_length=spec.max_seq_length,
            return_tensors="np",
            return_offsets_mapping=True,
        )
        feeds = {name: np.asarray(features[name], dtype=np.int64) for name in spec.input_names}
        hidden: npt.NDArray[np.float32] = self._session.run(None, feeds)[0]
        return pool_words(texts, features, hidden)

    def embed(self, texts: list[str]) -> Vectors:
        """L2-normalised float32 vectors of one batch, in the batch's order."""
        spec = self.spec
        if spec.do_lower_case:
            texts = [text.lower() for text in texts]
        features = self._tokenizer(
            texts,
            padding=True,
            truncation="longest_first",
            max_length=spec.max_seq_length,
            return_tensors="np",
        )
        feeds = {name: np.asarray(features[name], dtype=np.int64) for name in spec.input_names}
        hidden: npt.NDArray[np.float32] = self._session.run(None, feeds)[0]
        mask = np.asarray(features["attention_mask"], dtype=np.float32)
        if spec.pooling == "cls":
            first = mask.argmax(axis=1)
            pooled = hidden[np.arange(hidden.shape[0]), first]
        else:
            summed = np.einsum("bsd,bs->bd", hidden, mask)
            pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
        return vectors


def load_or_export(
    model_path: Path,
    target: Path,
    load_st: Callable[[], Any],
    *,
    threads: int,
) -> OnnxBackend:
    """Open the cached export at ``target``, exporting it first if missing or unusable."""
    where = str(model_path)
    if target.is_file():
        try:
            return _open(model_path, target, threads=threads)
        except _Unusable as exc:
            log.warning("cached onnx export %s is unusable (%s); exporting again", target, exc)
    _export(load_st(), model_path, target)
    try:
        return _open(model_path, target, threads=threads)
    except _Unusable as exc:
        raise EncoderError(
            f"encoder {where} (backend onnx): the fresh export {target} is unusable: {exc}; "
            f"use backend='torch'"
        ) from exc


class _Unusable(Exception):
    """A cached export that cannot be used as it is (corrupt, old format, wrong output)."""


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT's warnings go to stderr, not logging
    # No busy-waiting between runs: in a server the spinning threads would take the cores
    # from the event loop and the HTTP work (and from concurrent requests' batches).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _open(model_path: Path, target: Path, *, threads: int) -> OnnxBackend:
    try:
        session = _session(target, threads)
    except Exception as exc:  # ORT raises its own types for truncated or garbled files
        raise _Unusable(f"onnxruntime cannot load it: {exc}") from exc
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("format") != FORMAT:
        raise _Unusable(f"format {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        spec = OnnxSpec.from_json(meta["spec"])
        probe = np.asarray(json.loads(meta["probe"]), dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise _Unusable(f"bad metadata: {exc}") from exc
    backend = OnnxBackend(session, _tokenizer(model_path), spec)
    try:
        got = backend.embed([PROBE])[0]
    except Exception as exc:  # a graph that loads but does not run
        raise _Unusable(f"it does not run: {exc}") from exc
    if got.shape != probe.shape or float(got @ probe) < 0.9999:
        raise _Unusable("its probe vector differs from the torch model's")
    return backend


def _tokenizer(model_path: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    except Exception as exc:
        raise EncoderError(
            f"encoder {model_path} (backend onnx): cannot load its tokenizer: {exc}"
        ) from exc


def _last_hidden_state(auto_model: Any, input_names: tuple[str, ...]) -> Any:
    """The HF model's forward with positional inputs and one output, for the exporter."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = auto_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            out = self.inner(**dict(zip(input_names, inputs, strict=True)))
            return out.last_hidden_state  # type: ignore[no-any-return]

    return LastHiddenState().eval()


def _export(st_model: Any, model_path: Path, target: Path) -> None:
    """Export the transformer to ``target`` atomically, with the spec and probe embedded."""
    where = f"encoder {model_path} (backend onnx)"
    spec = spec_of(st_model, str(model_path))
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _export_to(st_model, spec, tmp)
        os.replace(tmp, target)
    except EncoderError:
        raise
    except Exception as exc:  # torch's exporter and onnx raise many types
        raise EncoderError(f"{where}: export to ONNX failed: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.info("exported %s to %s in %.1fs", model_path, target, time.perf_counter() - started)


def _export_to(st_model: Any, spec: OnnxSpec, path: Path) -> None:
    import onnx
    import torch

    tokenizer = st_model.tokenizer
    # Two texts of different lengths, so the traced graph sees real padding.
    dummy = tokenizer(
        ["hello world", "a longer sentence, so that the batch is padded"],
        padding=True,
        return_tensors="pt",
    )
    args = tuple(dummy[name] for name in spec.input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*spec.input_names, "hidden")}
    module = _last_hidden_state(st_model[0].auto_model, spec.input_names)
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in torch and traces transformers' Python
        # control flow; both warn on every export. The attention mask's advanced indexing
        # uses arange indices, never negative ones. Nothing to fix on our side.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.filterwarnings(
            "ignore", message="Exporting aten::index operator", category=UserWarning
        )
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)  # type: ignore[attr-defined]
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(spec.input_names),
            output_names=["hidden"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    probe = st_model.encode(
        [PROBE], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )[0]
    model = onnx.load(str(path))
    for key, value in (
        ("format", FORMAT),
        ("spec", spec.to_json()),
        ("probe", json.dumps([float(x) for x in probe])),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    path.chmod(0o644)
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _remove_stale_tmp(folder: Path) -> None:
    """Temporary files of exports killed mid-way; old enough that no export still owns them."""
    now = time.time()
    for tmp in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                tmp.unlink()

"""The encoder: onnx and torch backends agree, and the ONNX export cache is safe."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from intent_router.embedding import onnx_backend
from intent_router.embedding.encoder import DEFAULT_MODEL, Encoder, resolve_model_path
from intent_router.errors import EncoderError

LONG = " ".join(f"word{i}" for i in range(1000))  # far beyond 256 word pieces
VARIED = [
    "",
    " ",
    "hi",
    "what is the weather in paris tomorrow",
    "translate this letter to chinese, keep the polite tone and the formatting",
    "Ünïcödé, 日本語 und текст mixed together!",
    LONG,
    "a" * 5000,
    "write a python function that parses a date\nand tests it",
]


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty ONNX cache for this module, so exports and reuse are observable."""
    root = tmp_path_factory.mktemp("ir-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INTENT_ROUTER_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def onnx_encoder(cache_root: Path) -> Encoder:
    return Encoder(backend="onnx")


@pytest.fixture(scope="module")
def torch_encoder() -> Encoder:
    return Encoder(backend="torch")


def cached_file(encoder: Encoder) -> Path:
    return onnx_backend.cache_dir() / encoder.onnx_file_name()


def test_backends_agree_on_varied_texts(onnx_encoder: Encoder, torch_encoder: Encoder) -> None:
    assert onnx_encoder.id == torch_encoder.id
    assert onnx_encoder.dimension == torch_encoder.dimension == 384
    assert onnx_encoder.max_seq_length == torch_encoder.max_seq_length == 256
    fast = onnx_encoder.encode(VARIED, batch_size=4)
    ref = torch_encoder.encode(VARIED, batch_size=4)
    assert fast.dtype == np.float32 and fast.flags["C_CONTIGUOUS"]
    assert fast.shape == (len(VARIED), 384)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert float((fast * ref).sum(axis=1).min()) >= 0.9999


def test_long_texts_are_truncated_to_the_window(onnx_encoder: Encoder) -> None:
    longer = LONG + " and a tail the model never sees"
    a, b = onnx_encoder.encode([LONG, longer])
    assert float(a @ b) > 0.999999


def test_order_is_kept_with_mixed_lengths(onnx_encoder: Encoder) -> None:
    texts = ["short", LONG, "a medium length sentence about cooking", "x", "hello there world"]
    together = onnx_encoder.encode(texts, batch_size=2)
    one_by_one = np.vstack([onnx_encoder.encode([text]) for text in texts])
    assert float((together * one_by_one).sum(axis=1).min()) >= 0.9999


def test_empty_list_gives_an_empty_matrix(onnx_encoder: Encoder, torch_encoder: Encoder) -> None:
    for encoder in (onnx_encoder, torch_encoder):
        out = encoder.encode([])
        assert out.shape == (0, 384) and out.dtype == np.float32


def test_progress_bar_does_not_change_the_result(onnx_encoder: Encoder) -> None:
    texts = [f"question {i} about topic {i % 3}" for i in range(10)]
    with_bar = onnx_encoder.encode(texts, batch_size=3, progress=True)
    np.testing.assert_array_equal(with_bar, onnx_encoder.encode(texts, batch_size=3))


def test_unknown_model_is_named() -> None:
    with pytest.raises(EncoderError, match="no_such_encoder_pkg"):
        Encoder("no_such_encoder_pkg")


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(EncoderError, match="tensorflow"):
        Encoder(backend="tensorflow")


def test_cached_export_is_reused_without_loading_torch(onnx_encoder: Encoder) -> None:
    path = cached_file(onnx_encoder)
    before = path.stat().st_mtime_ns
    again = Encoder(backend="onnx")
    assert path.stat().st_mtime_ns == before
    assert again._st is None  # the torch model was never needed
    assert not list(path.parent.glob(".*.tmp"))
    text = ["does the reused export embed the same?"]
    np.testing.assert_allclose(again.encode(text), onnx_encoder.encode(text), atol=1e-6)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_cache_file_is_exported_again(
    onnx_encoder: Encoder, torch_encoder: Encoder, damage: str
) -> None:
    path = cached_file(onnx_encoder)
    good = path.read_bytes()
    if damage == "truncate":  # a writer killed mid-way, had it not been atomic
        path.write_bytes(good[: len(good) // 2])
    else:
        path.write_bytes(b"not an onnx file at all")
    fixed = Encoder(backend="onnx")
    assert path.stat().st_size > len(good) // 2
    text = ["still works after the cache was damaged"]
    assert float((fixed.encode(text) @ torch_encoder.encode(text).T)[0, 0]) >= 0.9999


def model_copy(tmp_path: Path, pooling: str) -> str:
    """The default model in a new folder (weights linked) with another pooling mode."""
    source = resolve_model_path(DEFAULT_MODEL)
    target = tmp_path / "model"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors"))
    os.symlink(source / "model.safetensors", target / "model.safetensors")
    config_file = target / "1_Pooling" / "config.json"
    config = json.loads(config_file.read_text())
    for key in list(config):
        if key.startswith("pooling_mode"):
            config[key] = False
    config[f"pooling_mode_{pooling}"] = True
    config_file.write_text(json.dumps(config))
    return str(target)


def test_unsupported_pooling_is_refused_with_the_way_out(tmp_path: Path, cache_root: Path) -> None:
    with pytest.raises(EncoderError, match=r"'max'.*backend='torch'"):
        Encoder(model_copy(tmp_path, "max_tokens"), backend="onnx")


def test_cls_pooling_matches_torch(tmp_path: Path, cache_root: Path) -> None:
    folder = model_copy(tmp_path, "cls_token")
    fast, ref = Encoder(folder, backend="onnx"), Encoder(folder, backend="torch")
    texts = ["hi", "what is the weather in paris tomorrow", LONG]
    assert float((fast.encode(texts) * ref.encode(texts)).sum(axis=1).min()) >= 0.9999

"""A real router server for end-to-end tests: the small routes, a models file pointing at
the fake upstream, the index built at start-up, the cache off (tests count upstream calls).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from tests.conftest import SMALL_ROUTES

from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream
from intent_router.testing.server import serve_in_thread


def model(fake: FakeUpstream, provider: str, upstream: str, **extra: Any) -> dict[str, Any]:
    """One models-file entry for ``upstream`` on the fake, in ``provider``'s wire format."""
    return {
        "provider": provider, "base_url": fake.base_url(provider), "model": upstream,
        "timeout_s": 0.5, "max_retries": 1, "context_window": 8000, **extra,
    }  # fmt: skip


@contextmanager
def running_router(
    encoder: Encoder,
    folder: Path,
    models: dict[str, dict[str, Any]],
    *,
    default_chain: list[str],
    chain: list[str] | None = None,
) -> Iterator[str]:
    """Serve the router on loopback; yield its URL. ``chain`` replaces every route's chain."""
    routes = folder / "routes"
    routes.mkdir()
    for name, fields in SMALL_ROUTES.items():
        body = {"name": name, **fields, **({"chain": chain} if chain else {})}
        (routes / f"{name}.yaml").write_text(yaml.safe_dump(body))
    config = {
        "default_chain": default_chain,
        "deadline_s": 5,
        "breaker": {"minimum_calls": 50, "cooldown_s": 30},
        "models": models,
    }
    models_file = folder / "models.yaml"
    models_file.write_text(yaml.safe_dump(config))
    settings = Settings(
        routes_dir=routes,
        index_dir=folder / "index",
        models_file=models_file,
        build_on_start=True,
        cache_backend="off",
    )
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        yield url

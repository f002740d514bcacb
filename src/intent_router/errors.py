"""The one error tree of intent-router.

Every error says what went wrong and where (file, line, field, model, upstream status).
The API layer maps these to HTTP statuses in one place (``api/errors.py``)::

    IntentRouterError
    ├── ConfigError                 a route file, models file or setting is invalid
    │   ├── RouteFileError          one routes/*.yaml file (path, line, field)
    │   ├── ModelsFileError         the models config file (path, line, field)
    │   └── DatasetError            a labelled JSONL data set is malformed (path, line)
    ├── IndexError_                 the built index cannot be used
    │   ├── IndexMissingError       nothing built in the index folder
    │   └── StaleIndexError         route files or encoder changed since the build
    │       └── EncoderMismatchError  the index was built with another encoder
    ├── EncoderError                the embedding model cannot be loaded or run
    ├── QueryError                  a request is invalid as given (``param`` names the field)
    │   ├── UnknownModelError       it names a model the models file does not define
    │   ├── ContextLengthExceededError   no model of its chain can take the prompt
    │   ├── UnsupportedFieldError   a request field the chosen model cannot honour (field, model)
    │   └── PiiNotApprovedError     personal data in it, and no model of its chain is approved
    ├── NotConfiguredError          the feature is off in this server (no models file)
    ├── AccessError                 the caller may not do this (now)
    │   ├── AuthenticationError     no API key, or a wrong or revoked one (401)
    │   ├── PermissionDeniedError   the key may not use this model, route or endpoint (403)
    │   ├── RateLimitedError        the key's (or team's) RPM/TPM is used up (429)
    │   ├── BudgetExceededError     the key's (or team's) budget is spent (429)
    │   └── AccessUnavailableError  the key or limit store (Redis) cannot be reached (503)
    ├── DispatchError               calling models failed
    │   ├── UpstreamError           one attempt against one model failed (model, status)
    │   └── ChainExhaustedError     every model of the chain failed (carries the attempts)
    └── CacheError                  the response cache backend misbehaved
        └── CacheUnavailableError   the backend (e.g. Redis) cannot be reached
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


class IntentRouterError(Exception):
    """Base class of every error raised on purpose by intent-router."""


class ConfigError(IntentRouterError):
    """A configuration file or value is invalid.

    ``path``, ``line`` and ``field`` say where, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        field = f"field '{self.field}': " if self.field else ""
        return f"{where}{field}{self.message}"


class RouteFileError(ConfigError):
    """A route YAML file is malformed or inconsistent with the others."""


class ModelsFileError(ConfigError):
    """The models YAML file is malformed, or a chain names an unknown model."""


class IndexError_(IntentRouterError):
    """The built index cannot be used as it is."""


class IndexMissingError(IndexError_):
    """The index folder holds no complete build."""


class StaleIndexError(IndexError_):
    """The index was built from other route files or another encoder."""


class EncoderMismatchError(StaleIndexError):
    """The index was built with one encoder and the configured one is another.

    The message names both (by name and id) and the command that rebuilds the index.
    """

    def __init__(
        self,
        build: Path,
        built_with: dict[str, Any],
        configured_id: str,
        configured_name: str | None = None,
    ) -> None:
        self.build = build
        self.built_with_id = str(built_with.get("id"))
        self.built_with_name = str(built_with.get("name") or built_with.get("model"))
        self.configured_id = configured_id
        self.configured_name = configured_name or configured_id
        super().__init__(
            f"index {build} was built with encoder '{self.built_with_name}' "
            f"({self.built_with_id}), the configured encoder is '{self.configured_name}' "
            f"({configured_id}); vectors of different encoders cannot be compared: rebuild "
            f"with `intent-router build --encoder {self.configured_name}` (or start the "
            f"server with --build), or configure --encoder {self.built_with_name}"
        )


class EncoderError(IntentRouterError):
    """The sentence-transformers model cannot be found, loaded or run."""


class DatasetError(ConfigError):
    """A labelled JSONL data set (for fit/eval) is malformed."""


class QueryError(IntentRouterError):
    """A request is invalid as given (empty text, no user message, a bad field, …).

    ``param`` is the path of the offending field (``messages[0].content``) when known;
    ``code`` a stable machine-readable reason for the subclasses that have one.
    """

    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


class UnknownModelError(QueryError):
    """The request names a model that is neither ``auto`` nor defined in the models file."""

    code = "model_not_found"

    def __init__(self, model: str, known: Sequence[str]) -> None:
        self.model = model
        super().__init__(f"unknown model '{model}' (known: {', '.join(known)})", param="model")


class ContextLengthExceededError(QueryError):
    """Every model of the chain was skipped because the prompt exceeds its context window.

    Raised by the dispatcher without calling any upstream; ``attempts`` lists the skips.
    """

    code = "context_length_exceeded"

    def __init__(self, message: str, *, attempts: Sequence[Any]) -> None:
        self.attempts = list(attempts)
        super().__init__(message, param="messages")


class NotConfiguredError(IntentRouterError):
    """The endpoint's feature is off in this server (e.g. completions without a models file)."""


class UnsupportedFieldError(QueryError):
    """The request asks for something the model's API cannot do (``n`` > 1 on Anthropic …).

    ``field`` is the request field (``n``, ``logprobs``, ``messages[2].content[1]`` …),
    ``model`` our name of the model that cannot honour it. A client error: 400.
    """

    def __init__(self, field: str, model: str, reason: str = "") -> None:
        self.field = field
        self.model = model
        why = f": {reason}" if reason else ""
        super().__init__(f"field '{field}' is not supported by model '{model}'{why}", param=field)


class PiiNotApprovedError(QueryError):
    """The request carries personal data and no model of its chain is ``pii_approved``.

    Raised before any upstream is called; ``kinds`` are the kinds of data found,
    ``approved`` the models of the models file that may take it. A client error: 400.
    """

    code = "pii_not_approved"

    def __init__(self, message: str, *, kinds: Sequence[str], approved: Sequence[str]) -> None:
        self.kinds = list(kinds)
        self.approved = list(approved)
        super().__init__(message, param="messages")


class AccessError(IntentRouterError):
    """The caller may not do this, or not now (keys, permissions, limits, budgets)."""


class AuthenticationError(AccessError):
    """No API key, or one that is unknown or revoked: 401."""


class PermissionDeniedError(AccessError):
    """The key is valid but may not use this model, route or endpoint: 403.

    ``param`` names the request field that asked for it (``model``), when one did.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


class RateLimitedError(AccessError):
    """A requests- or tokens-per-minute limit is used up: 429 with ``Retry-After``.

    ``headers`` are OpenAI's ``x-ratelimit-*`` headers for the answer.
    """

    def __init__(
        self, message: str, *, retry_after: float, headers: dict[str, str] | None = None
    ) -> None:
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        super().__init__(message)


class BudgetExceededError(AccessError):
    """The key's or team's budget for its period cannot cover this request: 429
    ``insufficient_quota``; ``budget`` names it (``key 'alice'`` / ``team 'research'``)."""

    def __init__(self, message: str, *, budget: str, retry_after: float | None = None) -> None:
        self.budget = budget
        self.retry_after = retry_after
        super().__init__(message)


class AccessUnavailableError(AccessError):
    """The key store or the rate-limit store (Redis) cannot be reached: 503, fail closed
    (a router that cannot check keys or limits refuses rather than serve everyone)."""


class DispatchError(IntentRouterError):
    """Calling the models of a chain failed."""


class UpstreamError(DispatchError):
    """One attempt against one model failed.

    ``retryable`` says whether the same model may be tried again (429, 5xx, timeouts,
    connection errors) or the chain must move on (400, 401, 403, 404, 422, garbage).
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.model = model
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        status_txt = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"model '{model}'{status_txt}: {message}")


class ChainExhaustedError(DispatchError):
    """Every model in the chain failed; ``attempts`` lists what was tried and why.

    ``status`` is 502 when upstreams were called and failed, 503 when none could be tried;
    ``retry_after`` (seconds) is set when waiting is known to help (an upstream's
    ``Retry-After``, an open breaker's cool-down).
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: Sequence[Any],
        status: int = 502,
        retry_after: float | None = None,
    ) -> None:
        self.attempts = list(attempts)
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class CacheError(IntentRouterError):
    """The response cache misbehaved."""


class CacheUnavailableError(CacheError):
    """The cache backend cannot be reached (e.g. Redis is down)."""

"""The models config: which upstream models exist, where they live and what they cost.

One YAML file, parsed once at start-up into :class:`ModelsConfig`::

    default_chain: [cheap-general, local-llama]
    deadline_s: 60            # one overall deadline per request (all attempts, all models)
    breaker: {failure_rate: 0.5, minimum_calls: 20, window_s: 30, cooldown_s: 30}
    models:
      cheap-general:
        provider: openai      # openai | anthropic | gemini (openai = any compatible server)
        base_url: https://api.openai.com/v1
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY   # the NAME of the env var; omit for keyless local servers
        timeout_s: 20
        max_retries: 2
        price_per_mtok_input: 0.15
        price_per_mtok_output: 0.60
        context_window: 128000
        fallbacks: [fast-small]       # optional: who answers a request pinned to this model
                                      # when it fails (default: nobody, the error is returned)
        pii_approved: true            # may receive requests carrying personal data
    pii_gate: auto            # auto (on when a model is pii_approved) | on | off
    budgets:                  # for keys with a budget (intent-router keys create --budget-usd)
      downgrade_at: 0.8       # from this share of a budget, cheaper models answer
      default_output_tokens: 1024   # worst-case output of a request without max_tokens
      reservation_ttl_s: 900  # a dead process's reservations hold budget this long
    team_limits:              # shared by every key of a team (a key's own: keys --rpm …)
      research: {rpm: 600, tpm: 200000, budget_usd: 50, period: 7d}

Every error raises :class:`~intent_router.errors.ModelsFileError` naming the file, the line
(from the YAML node marks) and the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from intent_router.errors import ModelsFileError, UpstreamError
from intent_router.yamlfile import field_error, read_mapping, validation_error

Provider = Literal["openai", "anthropic", "gemini"]
ModelName = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]


class RouteChains(Protocol):
    """What the models file checks of a route (``routing.schema.Route`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def chain(self) -> Sequence[str]: ...
    @property
    def budget_chain(self) -> Sequence[str]: ...


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """One model a chain may name."""

    provider: Provider
    base_url: str
    model: str = Field(min_length=1, description="upstream model id")
    api_key_env: str | None = Field(default=None, description="NAME of the env var with the key")
    timeout_s: float = Field(default=30.0, gt=0, description="per attempt")
    max_retries: int = Field(default=2, ge=0, le=10, description="retries after the first try")
    price_per_mtok_input: float = Field(default=0.0, ge=0)
    price_per_mtok_output: float = Field(default=0.0, ge=0)
    context_window: int = Field(default=8192, gt=0, description="tokens, input + output")
    fallbacks: list[ModelName] = Field(
        default_factory=list,
        description="models tried, in order, when a request pinned to this one fails",
    )
    max_in_flight: int | None = Field(default=None, ge=1, description="calls at once (bulkhead)")
    pii_approved: bool = Field(
        default=False, description="may receive requests in which personal data was found"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def missing_key_env(self) -> str | None:
        """The name of the key variable when ``api_key_env`` is set but the variable is not."""
        if self.api_key_env is None or os.environ.get(self.api_key_env):
            return None
        return self.api_key_env

    def api_key(self, name: str) -> str | None:
        """The key from the environment, read at call time.

        Raises a non-retryable :class:`UpstreamError` when ``api_key_env`` names an unset
        variable, so that one attempt fails clearly and the chain moves on.
        """
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise UpstreamError(f"environment variable {self.api_key_env} is not set", model=name)
        return key

    @property
    def unit_price(self) -> float:
        """Input plus output price per million tokens: how models compare for downgrades."""
        return self.price_per_mtok_input + self.price_per_mtok_output

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        cost = input_tokens * self.price_per_mtok_input + output_tokens * self.price_per_mtok_output
        return round(cost / 1_000_000, 8)


class BreakerSettings(_Strict):
    """The ``breaker:`` block: open on a failure rate over a sliding window."""

    failure_rate: float = Field(default=0.5, gt=0, le=1, description="share of failed calls")
    minimum_calls: int = Field(default=20, ge=1, description="calls in the window to judge")
    window_s: float = Field(default=30.0, gt=0, description="sliding window length")
    cooldown_s: float = Field(default=30.0, gt=0, description="open time before probes")
    max_cooldown_s: float = Field(
        default=300.0, gt=0, description="cap on the open time, which doubles per failed probe"
    )
    half_open_probes: int = Field(default=3, ge=1, description="probes that must succeed")
    slow_call_s: float | None = Field(default=None, gt=0, description="slower counts as slow")
    slow_call_rate: float = Field(default=1.0, gt=0, le=1, description="share of slow calls")

    @model_validator(mode="before")
    @classmethod
    def _replaced_keys(cls, data: object) -> object:
        if isinstance(data, dict) and "failure_threshold" in data:
            raise ValueError(
                "'failure_threshold' (consecutive failures) was replaced: breakers open on a "
                "failure rate; use failure_rate, minimum_calls and window_s"
            )
        return data


class RateLimitSettings(_Strict):
    """The ``rate_limit:`` block: how a 429 cools a model down."""

    cooldown_s: float = Field(default=0.25, gt=0, description="without Retry-After (doubles)")
    max_cooldown_s: float = Field(default=30.0, gt=0, description="cap on any cool-down")
    max_wait_s: float = Field(default=2.0, ge=0, description="wait for the last cooling model")


class RetryBudgetSettings(_Strict):
    """The ``retry_budget:`` block: retries as a share of live traffic."""

    ratio: float = Field(default=0.5, ge=0, description="retries per request in the window")
    min_per_s: float = Field(default=3.0, ge=0, description="retries always allowed")
    window_s: float = Field(default=10.0, gt=0)


class PanicSettings(_Strict):
    """The ``panic:`` block: the trickle let through when a whole chain is unavailable."""

    rate_per_s: float = Field(default=1.0, ge=0, description="per model; 0 turns it off")
    burst: int = Field(default=1, ge=1)


class BudgetSettings(_Strict):
    """The ``budgets:`` block: how requests of keys with a budget are priced and steered."""

    downgrade_at: float = Field(
        default=0.8, gt=0, le=1, description="share of a budget from which cheaper models answer"
    )
    default_output_tokens: int = Field(
        default=1024, ge=1, description="worst-case output when a request sets no max_tokens"
    )
    reservation_ttl_s: float = Field(
        default=900.0, gt=0, description="a dead process's reservations hold budget this long"
    )


class TeamLimitSpec(_Strict):
    """One team's rate limits and budget (``team_limits.NAME``), shared by its keys; a
    key's own are set with ``intent-router keys``."""

    rpm: int | None = Field(default=None, ge=1, description="requests per minute")
    tpm: int | None = Field(default=None, ge=1, description="tokens per minute")
    budget_usd: float | None = Field(default=None, ge=0, description="USD per period")
    period: Literal["1d", "7d", "30d"] = Field(default="30d", description="of the budget")


class ModelsConfig(_Strict):
    models: dict[ModelName, ModelSpec] = Field(min_length=1)
    default_chain: list[str] = Field(min_length=1)
    breaker: BreakerSettings = BreakerSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    retry_budget: RetryBudgetSettings = RetryBudgetSettings()
    panic: PanicSettings = PanicSettings()
    deadline_s: float = Field(default=60.0, gt=0, description="default per-request deadline")
    budgets: BudgetSettings = BudgetSettings()
    team_limits: dict[str, TeamLimitSpec] = Field(
        default_factory=dict, description="team name → RPM/TPM shared by the team's keys"
    )
    pii_gate: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="requests with personal data go only to pii_approved models: always (on), "
        "never (off), or when some model sets pii_approved (auto)",
    )

    @model_validator(mode="after")
    def _default_chain_known(self) -> ModelsConfig:
        for i, name in enumerate(self.default_chain):
            if name not in self.models:
                raise ValueError(f"default_chain[{i}] names unknown model '{name}'")
        return self

    @model_validator(mode="after")
    def _fallbacks_known(self) -> ModelsConfig:
        for owner, spec in self.models.items():
            for i, name in enumerate(spec.fallbacks):
                loc = ("models", owner, "fallbacks", i)
                if name == owner:
                    raise field_error(loc, f"model '{owner}' lists itself as a fallback")
                if name not in self.models:
                    known = ", ".join(sorted(self.models))
                    raise field_error(loc, f"unknown model '{name}' (known: {known})")
                if spec.fallbacks.index(name) != i:
                    raise field_error(loc, f"model '{name}' is listed twice")
        return self

    def missing_keys(self) -> dict[str, str]:
        """Model name → key variable, for models whose key variable is unset."""
        missing = {name: spec.missing_key_env() for name, spec in self.models.items()}
        return {name: env for name, env in sorted(missing.items()) if env is not None}

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ModelsFileError(f"unknown model '{name}'", field="models") from None

    def check_routes(self, routes: Iterable[RouteChains]) -> None:
        """Check every route's ``chain`` and ``budget_chain`` against the models."""
        routes = list(routes)
        self.check_chains({r.name: r.chain for r in routes})
        self.check_chains({r.name: r.budget_chain for r in routes}, field="budget_chain",
                          empty_ok=True)  # fmt: skip

    def check_chains(
        self, chains: Mapping[str, Sequence[str]], *, field: str = "chain", empty_ok: bool = False
    ) -> None:
        """Check that every chain (route name → model names) only names known models;
        ``field`` names the route key checked (``chain``, ``budget_chain``)."""
        for route, chain in chains.items():
            if not chain and not empty_ok:
                raise ModelsFileError(f"route '{route}' has an empty {field}", field=field)
            for name in chain:
                if name not in self.models:
                    known = ", ".join(sorted(self.models))
                    raise ModelsFileError(
                        f"route '{route}' names unknown model '{name}' in {field} (known: {known})",
                        field=field,
                    )


def load_models(path: str | Path) -> ModelsConfig:
    """Read and validate the models file once; raise ModelsFileError on any problem."""
    path = Path(path)
    data, node = read_mapping(path, ModelsFileError, "models file")
    try:
        return ModelsConfig.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, ModelsConfig, node, path, ModelsFileError) from None

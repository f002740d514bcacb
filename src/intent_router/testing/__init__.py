"""The fake LLM upstream, shipped as a dev tool (``intent-router-fake-upstream``) and used by
the tests: a real HTTP server speaking the OpenAI, Anthropic and Gemini wire formats with
scripted faults. ``server`` runs an app on a loopback port (tests and benchmarks). Test-only
plumbing (Redis server, cache fixtures) lives under ``tests/``."""

from intent_router.testing.fake_upstream import FakeUpstream, Fault, Recorded

__all__ = ["FakeUpstream", "Fault", "Recorded"]

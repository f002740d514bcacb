"""Test helpers shipped with the package: the fake LLM upstream."""

from intent_router.testing.fake_upstream import FakeUpstream, Fault, Recorded

__all__ = ["FakeUpstream", "Fault", "Recorded"]

"""What the router tells its operators: PII redaction for logs, live traffic for the console.

Pure code, no FastAPI: the API layer and the gateway call in.
"""

from intent_router.observability.prompt_log import LOG_PROMPTS_MODES, LogPrompts, prompt_for_log
from intent_router.observability.redact import KINDS, Finding, contains_pii, find_pii, redact
from intent_router.observability.traffic import TrafficStats

__all__ = [
    "KINDS",
    "LOG_PROMPTS_MODES",
    "Finding",
    "LogPrompts",
    "TrafficStats",
    "contains_pii",
    "find_pii",
    "prompt_for_log",
    "redact",
]

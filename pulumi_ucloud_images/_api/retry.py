"""How often and how long to retry: the backoff schedule, the time budget of a lookup, the retry budget.

The policy is pure arithmetic on an injectable clock, so tests run the whole schedule without sleeping; the
transport (``calls.py``) applies it to each request.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff with jitter, bounded by attempts per request, by total time per lookup and by a retry budget.

    Transient failures: the pause before retry ``n`` (0-based) is ``min(max_delay, base_delay * 4**n)`` scaled
    by ``0.5 + jitter() / 2``: 50-100 ms, 0.2-0.4 s, 0.8-1.6 s, then 2.5-5 s by default (the official Go SDK
    also grows by 4x; the jitter spreads the retries of concurrent pages), and ``attempts`` bounds the tries of
    one request. Rate limiting (RetCode 153, HTTP 429) does not count against ``attempts``: it is retried for as
    long as ``total_seconds`` lasts, pausing ``min(throttle_max_delay, throttle_base_delay * 2**n)`` (same
    jitter): 0.5-1 s, 1-2 s, 2-4 s, 4-8 s, then 5-10 s. A ``Retry-After`` header makes a pause at least that
    long; one that does not fit in the time left ends the lookup at once.

    ``total_seconds`` bounds a whole :meth:`Client.describe_images`. The retry budget is a token bucket per
    client, shared by all its lookups and pages (as in the AWS SDKs' standard mode): it holds ``retry_tokens``;
    a retry takes ``retry_cost`` (``timeout_retry_cost`` after a timeout); a success gives one back (a
    retried success its cost); it refills by ``refill_per_second``. A transient failure is not retried while
    the bucket is short; a rate-limited request waits for the refill, within the time budget.

    ``sleep``, ``clock`` and ``jitter`` are injectable so tests never really sleep. With the default ``sleep``
    a pause ends early when the client is closed.
    """

    attempts: int = 5
    total_seconds: float = 60.0
    base_delay: float = 0.1
    max_delay: float = 5.0
    throttle_base_delay: float = 1.0
    throttle_max_delay: float = 10.0
    retry_tokens: float = 500.0
    retry_cost: float = 5.0
    timeout_retry_cost: float = 10.0
    refill_per_second: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if not 0 < self.total_seconds < math.inf:
            raise ValueError("RetryPolicy.total_seconds must be positive and finite")
        delays = (self.base_delay, self.max_delay, self.throttle_base_delay, self.throttle_max_delay)
        if not all(0 <= delay < math.inf for delay in delays):
            raise ValueError("RetryPolicy delays must not be negative")
        costs = (self.retry_tokens, self.retry_cost, self.timeout_retry_cost, self.refill_per_second)
        if not all(0 <= value < math.inf for value in costs):
            raise ValueError("RetryPolicy retry budget values must not be negative")

    def delay(self, retry: int) -> float:
        """The pause before retry ``retry`` (0-based) after a transient failure."""
        return float(min(self.max_delay, self.base_delay * 4 ** min(retry, 32)) * (0.5 + self.jitter() / 2))

    def throttle_delay(self, retry: int) -> float:
        """The pause before retry ``retry`` (0-based) after rate limiting."""
        grown = self.throttle_base_delay * 2 ** min(retry, 32)
        return float(min(self.throttle_max_delay, grown) * (0.5 + self.jitter() / 2))


class _RetryBudget:
    """The token bucket of one client (see :class:`RetryPolicy`). Thread-safe."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._tokens = policy.retry_tokens
        self._updated = policy.clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._policy.clock()
        elapsed, self._updated = max(0.0, now - self._updated), now
        self._tokens = min(self._policy.retry_tokens, self._tokens + elapsed * self._policy.refill_per_second)

    def forked(self) -> None:
        self._lock = threading.Lock()

    def take(self, cost: float) -> float:
        """Take ``cost`` tokens and return 0; or take nothing and return the seconds until the refill has them."""
        with self._lock:
            self._refill()
            if self._tokens >= cost:
                self._tokens -= cost
                return 0.0
            rate = self._policy.refill_per_second
            if cost > self._policy.retry_tokens or rate <= 0:
                return math.inf
            return (cost - self._tokens) / rate

    def give(self, amount: float) -> None:
        with self._lock:
            self._refill()
            self._tokens = min(self._policy.retry_tokens, self._tokens + amount)

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), 86_400.0) if math.isfinite(seconds) else None

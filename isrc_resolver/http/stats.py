"""What a client did, for the run summary and the benchmarks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ClientStats"]


@dataclass
class ClientStats:
    """Requests by endpoint (``token`` among them), answers by status, and failures."""

    requests: Counter[str] = field(default_factory=Counter)  # by endpoint
    statuses: Counter[int] = field(default_factory=Counter)
    throttled: int = 0
    retries: int = 0
    transport_errors: int = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def api_requests(self) -> int:
        """Requests to the API, the ones a daily quota counts (token requests aside)."""
        return self.total_requests - self.requests["token"]

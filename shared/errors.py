"""One error hierarchy for every service.

    LoyaltyError
     ├── RejectedMessage      bad input: never retried; a consumed message goes to <topic>.dlq,
     │                         an HTTP request gets a 4xx problem body
     ├── TransientFailure     the world is briefly unavailable (database, broker): retried with
     │                         backoff, the offset is not committed, nothing is dropped
     └── Bug                  an invariant of our own is broken: crash loudly

Anything else that escapes a handler is treated as a bug as well.
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base of every error raised on purpose by the project."""


class RejectedMessage(LoyaltyError):
    """The input can never be processed as it is: retrying will not help."""

    def __init__(self, reason: str, *, error_class: str = "RejectedMessage") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_class = error_class


class TransientFailure(LoyaltyError):
    """A dependency failed in a way that may pass: retry later, drop nothing."""


class Bug(LoyaltyError):
    """Our own invariant does not hold; the process should stop and be looked at."""

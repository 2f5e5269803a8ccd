"""Why a use case of the shops service refuses a request; the API answers each with a status.

RejectedMessage (shared.errors)
 └── Refusal
      ├── NotFound          no such shop, version or key (or not the caller's): 404
      ├── Conflict          a shop of that id exists, a revoked key rotated: 409
      └── InvalidDocument   a programme document or a field breaks a rule: 422, each
                            problem naming its setting
"""

from __future__ import annotations

from shared.errors import RejectedMessage


class Refusal(RejectedMessage):
    status = 400


class NotFound(Refusal):
    status = 404


class Conflict(Refusal):
    status = 409


class InvalidDocument(Refusal):
    status = 422

    def __init__(self, reason: str, problems: list[tuple[str, str]]) -> None:
        super().__init__(reason, error_class="InvalidDocument")
        self.problems = problems  # (location, message), the location naming the setting

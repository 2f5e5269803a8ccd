"""Requests earn refuses, each answered as an RFC 9457 problem with its HTTP status.

RejectedMessage (shared.errors)
 └── Refused              a request that can never succeed as it is
      ├── InvalidField    422: a field breaks a rule of the programme (an unknown reward)
      ├── NotFound        404: no such customer or redemption
      └── Conflict        409: the state forbids it (balance too low, key reused)
"""

from __future__ import annotations

from shared.errors import RejectedMessage


class Refused(RejectedMessage):
    status = 400

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail, error_class=type(self).__name__)
        self.detail = detail
        self.code = code


class InvalidField(Refused):
    status = 422

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}", code="invalid_field")
        self.location = location
        self.message = message


class NotFound(Refused):
    status = 404


class Conflict(Refused):
    status = 409

"""Domain errors, rendered by the API as OpenAI's envelope {"error": {message, type, param, code}}."""

from __future__ import annotations

from typing import Any


class KeelError(Exception):
    status_code = 400
    type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(KeelError):
    pass


class AuthenticationError(KeelError):
    status_code = 401
    type = "authentication_error"


class PermissionDenied(KeelError):
    status_code = 403
    type = "permission_error"


class NotFound(KeelError):
    status_code = 404
    type = "not_found_error"

    def __init__(self, what: str, ident: str, param: str | None = None) -> None:
        super().__init__(f"No {what} found with id '{ident}'.", param=param, code="not_found")


class Conflict(KeelError):
    status_code = 409
    type = "conflict_error"


class PayloadTooLarge(KeelError):
    status_code = 413

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param, code="file_too_large")


class RateLimited(KeelError):
    status_code = 429
    type = "rate_limit_error"

    def __init__(self, message: str, retry_after_s: int, *, code: str = "rate_limit_exceeded") -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s

"""Domain errors, rendered by the API as OpenAI's envelope {"error": {message, type, param, code}}."""

from __future__ import annotations

import secrets
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


# A failed job's ``error.message`` is one fixed text per code plus a correlation id; what actually happened
# (exception text, traceback, memory numbers) goes to the worker's log under the same id, never to the tenant.
JOB_ERROR_MESSAGES = {
    "internal_error": "The job failed because of an internal error. Retry it; if it fails again, contact "
    "support and quote this reference.",
    "unsafe_model": "The fine-tuned model could not be realigned within the safety targets; the job's safety "
    "report has the scores. Try fewer epochs, a lower learning rate multiplier, or different training data.",
    "worker_lost": "The workers running this job stopped responding repeatedly, the retry already with half the "
    "tokens per micro-batch. Retry the job; if it fails again, use shorter rows, a smaller batch_size, or a "
    "worker with more memory.",
    "timeout": "The job ran longer than this service allows for one job (its operator's KEEL_MAX_JOB_WALL_S). "
    "Use fewer epochs or less training data.",
    "out_of_memory": "The job ran out of memory twice: the worker running it was most likely stopped by the "
    "system's out-of-memory killer, the retry already with half the tokens per micro-batch. Use shorter rows "
    "(split long conversations), a smaller batch_size, or run it on a worker with more memory.",
}


def error_ref() -> str:
    """A correlation id that ties a tenant-visible job error to the worker log's full account."""
    return f"err_{secrets.token_hex(4)}"


def job_error(code: str, ref: str) -> dict[str, Any]:
    """The tenant-visible ``error`` of a failed job: the code's fixed message and the correlation id."""
    text = JOB_ERROR_MESSAGES.get(code, JOB_ERROR_MESSAGES["internal_error"])
    return {"code": code, "message": f"{text} (ref: {ref})", "param": None}

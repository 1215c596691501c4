"""Domain errors: what went wrong, in the domain's words, with a stable code.

The core raises these and knows nothing of HTTP or WebSockets: `app/http/errors.py` maps each
class to a status and headers, `app/live/node.py` to a close code. ``code`` is the stable
machine-readable name clients see; ``details`` are extra fields of the error body.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str]

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthorized(DomainError):
    """No valid credentials: a missing, malformed or invalid token, or a wrong password."""

    code = "UNAUTHORIZED"

    def __init__(self, message: str = "A valid access token is required.") -> None:
        super().__init__(message)


class AccountGone(Unauthorized):
    """The token is valid but its account no longer exists."""

    def __init__(self) -> None:
        super().__init__("This account no longer exists.")


class TokenExpired(DomainError):
    code = "TOKEN_EXPIRED"

    def __init__(self) -> None:
        super().__init__("The access token has expired; refresh it and retry.")


class InvalidInput(DomainError):
    code = "VALIDATION_ERROR"


class UsernameTaken(DomainError):
    code = "USERNAME_TAKEN"

    def __init__(self, username: str) -> None:
        super().__init__(f"The username {username!r} is taken.", field="username")


class RateLimited(DomainError):
    code = "RATE_LIMIT_EXCEEDED"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"Too many requests; retry in {retry_after_seconds} s.",
            retryAfter=retry_after_seconds,
        )
        self.retry_after_seconds = retry_after_seconds


class UnknownAction(DomainError):
    code = "INVALID_ACTION"

    def __init__(self, action_id: str) -> None:
        super().__init__(f"There is no action {action_id!r}.", actionId=action_id)


class AlreadyCompleted(DomainError):
    """A repeat: carries when the action was completed and what it earned (the receipt)."""

    code = "ALREADY_COMPLETED"

    def __init__(self, action_id: str, completed_at: str, points_earned: int) -> None:
        super().__init__(
            "You have already completed this action.",
            actionId=action_id,
            completedAt=completed_at,
            pointsEarned=points_earned,
        )


class DatabaseUnavailable(DomainError):
    """The database could not be reached or did not answer in time, and nothing was committed:
    no connection was had, or the server itself cancelled the statement."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(
        self,
        message: str = "The service cannot reach its database; nothing was changed. "
        "Retry with backoff.",
    ) -> None:
        super().__init__(message)


class CommitOutcomeUnknown(DomainError):
    """The commit was sent but its answer never came (a timeout, a broken connection): it may
    have been applied or not. Retrying is safe: a recorded completion answers as a repeat."""

    code = "COMMIT_OUTCOME_UNKNOWN"

    def __init__(self, action_id: str) -> None:
        super().__init__(
            "The database did not confirm this completion in time, so it may or may not have "
            "been recorded. Retrying is safe: if it was recorded, the retry answers "
            "ALREADY_COMPLETED with the original receipt.",
            actionId=action_id,
        )


class VerificationFailed(DomainError):
    """The completion's proof did not hold (app/core/verification.py): nothing was recorded.
    ``reason`` is a stable machine code (docs/api.md lists them); the message never repeats
    the proof itself (an answer, a receipt)."""

    code = "VERIFICATION_FAILED"

    def __init__(self, reason: str, message: str) -> None:
        # Both beside the code, as every error's extra fields are, and in "details", where the
        # issue that defined this error tells clients to look.
        super().__init__(message, reason=reason, details={"reason": reason})
        self.reason = reason


class ServerOnlyAction(DomainError):
    """Only a game server can award this action (verification ``server``)."""

    code = "SERVER_ONLY_ACTION"

    def __init__(self, action_id: str) -> None:
        super().__init__(
            f"The action {action_id!r} is awarded by the game server; it cannot be completed "
            "from a client.",
            actionId=action_id,
        )


class SessionEnded(Unauthorized):
    """The token was issued before its user's sessions were ended (logout everywhere)."""

    def __init__(self) -> None:
        super().__init__("This session has ended; log in again.")


class AccountBanned(DomainError):
    """The account is banned: no login, no refresh, no scoring, no live updates."""

    code = "ACCOUNT_BANNED"

    def __init__(self) -> None:
        super().__init__("This account is banned.")


class MissingScope(DomainError):
    """Valid credentials that are not allowed to do this (an API key without the scope)."""

    code = "FORBIDDEN"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This API key lacks the {scope!r} scope.", scope=scope)


class IdempotencyKeyReused(DomainError):
    """An idempotency key already used with a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self) -> None:
        super().__init__(
            "This idempotencyKey was already used with a different request; use a new key."
        )

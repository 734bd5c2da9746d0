"""Discord-shaped API errors raised by the sandbox and turned into JSON responses."""

from __future__ import annotations

from typing import Any

#: Discord's JSON error codes for unknown objects.
UNKNOWN: dict[str, tuple[int, str]] = {
    "channel": (10003, "Unknown Channel"),
    "guild": (10004, "Unknown Guild"),
    "member": (10007, "Unknown Member"),
    "message": (10008, "Unknown Message"),
    "role": (10011, "Unknown Role"),
    "user": (10013, "Unknown User"),
    "webhook": (10015, "Unknown Webhook"),
    "ban": (10026, "Unknown Ban"),
    "interaction": (10062, "Unknown interaction"),
    "command": (10063, "Unknown application command"),
    "application": (10002, "Unknown Application"),
}


class SandboxError(Exception):
    """An error Discord would answer with ``status`` and JSON ``{"message", "code"}``."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {message} (code {code})")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body Discord sends for this error."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def forbidden() -> SandboxError:
    """403 Missing Permissions (50013): permission or role hierarchy failure."""
    return SandboxError(403, 50013, "Missing Permissions")


def not_found(kind: str) -> SandboxError:
    """404 for an unknown object of ``kind`` (see :data:`UNKNOWN`)."""
    code, message = UNKNOWN[kind]
    return SandboxError(404, code, message)


def invalid_form(field: str, code: str, message: str) -> SandboxError:
    """400 Invalid Form Body (50035) with one field error, as Discord nests it."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(field.split(".")):
        errors = {part: errors}
    return SandboxError(400, 50035, "Invalid Form Body", errors)

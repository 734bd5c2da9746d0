"""Typed domain errors. Each carries a short message fit to show a member as it is."""

from __future__ import annotations

from datetime import datetime


class DomainError(Exception):
    """Base class: a refusal that wrote nothing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """A value is of the wrong type, out of range, empty or too long."""


class InvalidAmount(InvalidInput):
    """An amount is not a positive whole number within the allowed maximum."""


class InvalidId(InvalidInput):
    """A guild, user, channel or case id is not a valid snowflake or number."""


class InvalidReason(InvalidInput):
    """A reason is missing where required, or longer than allowed."""


class InvalidDuration(InvalidInput):
    """A duration is missing, not positive, or above the cap for the action."""


class SelfTarget(DomainError):
    """An action aimed at its own author."""


class InsufficientFunds(DomainError):
    """The account holds fewer coins than the movement needs."""

    def __init__(self, balance: int, needed: int) -> None:
        super().__init__(f"Not enough coins: the balance is {balance}, {needed} needed.")
        self.balance = balance
        self.needed = needed


class BalanceLimit(DomainError):
    """The movement would take a balance above the maximum an account may hold."""


class DailyNotReady(DomainError):
    """The daily reward was already claimed in the last 24 hours."""

    def __init__(self, available_at: datetime) -> None:
        super().__init__("The daily reward was already claimed; it is available again later.")
        self.available_at = available_at


class ProfileNotFound(DomainError):
    """The member has no profile in this guild yet."""


class CaseNotFound(DomainError):
    """No case with that number exists in this guild."""


class CaseStateError(DomainError):
    """The case is not in a state that allows this change (e.g. already pardoned)."""


class IdempotencyConflict(DomainError):
    """An idempotency key was reused for a different operation."""


class NotPermitted(DomainError):
    """The person asking may not do this to that case (app/domain/authority.py)."""

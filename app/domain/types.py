"""The domain's own vocabulary: the kinds of things that happen, and frozen views of what is stored.

Callers (the bot, the web console, benchmarks) get these, never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class LedgerKind(StrEnum):
    """Why coins moved. The sign of a movement follows from its kind."""

    GRANT = "grant"
    DAILY = "daily"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    FINE = "fine"


CREDIT_KINDS = frozenset({LedgerKind.GRANT, LedgerKind.DAILY, LedgerKind.TRANSFER_IN})


class CaseAction(StrEnum):
    """What a moderator did."""

    WARN = "warn"
    NOTE = "note"
    TIMEOUT = "timeout"
    UNTIMEOUT = "untimeout"
    KICK = "kick"
    BAN = "ban"
    TEMPBAN = "tempban"
    UNBAN = "unban"
    FINE = "fine"


class CaseState(StrEnum):
    """Life of a case: active until it ends or a moderator pardons it.

    It ends when its time is up, a newer case replaces or lifts it, or Discord refuses it.
    """

    ACTIVE = "active"
    EXPIRED = "expired"
    PARDONED = "pardoned"


class EffectKind(StrEnum):
    """A lasting change to a member in Discord that a case owns (at most one live per kind)."""

    BAN = "ban"
    TIMEOUT = "timeout"


class ActionState(StrEnum):
    """Where a case's Discord action (or the lifting of its effect) stands in the outbox."""

    NONE = "none"  # nothing to do in Discord
    PENDING = "pending"  # recorded, not yet confirmed by Discord
    APPLIED = "applied"  # Discord confirmed it (or it was done in Discord by hand)
    FAILED = "failed"  # Discord refused it; the reason is in the case
    SKIPPED = "skipped"  # a newer case decided otherwise before it was applied


class DmState(StrEnum):
    """The member's DM about a case: sent at most once, its delivery recorded."""

    NONE = "none"  # no DM for this case
    PENDING = "pending"  # to be sent
    SENDING = "sending"  # handed to Discord; a crash now leaves it unknown, never resent
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"  # DMs closed, or Discord refused
    UNKNOWN = "unknown"  # the process stopped while sending


@dataclass(frozen=True, slots=True)
class GuildConfig:
    """A guild's settings as the features read them."""

    guild_id: int
    currency_name: str = "coins"
    daily_amount: int = 100
    xp_min: int = 15
    xp_max: int = 25
    xp_cooldown_s: int = 60
    modlog_channel_id: int | None = None
    levelup_channel_id: int | None = None
    levelup_dm: bool = False
    no_xp_channel_ids: tuple[int, ...] = ()

    @property
    def xp_enabled(self) -> bool:
        """Whether chat earns XP at all (`config xp 0 0` turns it off)."""
        return self.xp_max > 0


@dataclass(frozen=True, slots=True)
class Profile:
    """A member's account in one guild."""

    guild_id: int
    user_id: int
    display_name: str
    coins: int
    xp: int
    level: int
    first_seen: datetime | None
    last_daily_at: datetime | None


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One coin movement of one account, as the ledger recorded it."""

    kind: LedgerKind
    amount: int
    balance_after: int
    actor_id: int | None
    counterparty_id: int | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CaseView:
    """A moderation case. `replayed` is True when a repeated request returned it."""

    guild_id: int
    number: int
    action: CaseAction
    target_id: int
    moderator_id: int
    reason: str
    created_at: datetime
    expires_at: datetime | None
    state: CaseState
    dm_state: DmState
    action_state: ActionState
    action_note: str
    lift_state: ActionState
    delete_message_s: int = 0
    attempts: int = 0
    replayed: bool = False

    @property
    def dm_delivered(self) -> bool | None:
        """True when the DM arrived, False when it did not (or may not have), None if unsent."""
        if self.dm_state == DmState.DELIVERED:
            return True
        if self.dm_state in (DmState.UNDELIVERED, DmState.UNKNOWN):
            return False
        return None

    @property
    def pending(self) -> bool:
        """Whether Discord work (the action, a DM, lifting the effect) is still to be done."""
        return self.dm_state == DmState.PENDING or ActionState.PENDING in (
            self.action_state,
            self.lift_state,
        )

    @property
    def duration_s(self) -> int | None:
        """The length a timeout or tempban was given for, in whole seconds."""
        if self.expires_at is None:
            return None
        return round((self.expires_at - self.created_at).total_seconds())


@dataclass(frozen=True, slots=True)
class CaseEditView:
    """One recorded change of a case's reason or state."""

    editor_id: int | None
    field: str
    old_value: str
    new_value: str
    note: str
    created_at: datetime


def view_of(cls: type[T], row: object, **overrides: Any) -> T:
    """A frozen view built from the same-named attributes of a stored row."""
    names = [f.name for f in fields(cls) if f.name not in overrides]
    return cls(**{name: getattr(row, name) for name in names}, **overrides)

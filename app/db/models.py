"""Tortoise models: guild settings, members, the coin ledger and moderation cases.

Discord snowflakes are BIGINT, coins are BIGINT (never floats). Constraints and indexes that
Tortoise cannot express (CHECKs, a descending index, a partial index) live as raw SQL in the
PostgreSQL migrations and in `app.db.connect` for SQLite. The enums are the domain's
(app/domain/types.py); these rows never leave the domain.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from app.domain.types import (
    ActionState,
    CaseAction,
    CaseState,
    DmState,
    EffectKind,
    LedgerKind,
)


class GuildSettings(Model):
    """Per-guild configuration and the case-number counter."""

    guild_id = fields.BigIntField(primary_key=True, generated=False)
    currency_name = fields.CharField(max_length=32, default="coins")
    daily_amount = fields.BigIntField(default=100)
    xp_min = fields.IntField(default=15)
    xp_max = fields.IntField(default=25)
    xp_cooldown_s = fields.IntField(default=60)
    modlog_channel_id = fields.BigIntField(null=True)
    levelup_channel_id = fields.BigIntField(null=True)
    levelup_dm = fields.BooleanField(default=False)
    no_xp_channel_ids: list[int] = fields.JSONField(default=list)
    last_case_number = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "guild_settings"


class Member(Model):
    """A member's profile in one guild: coins, XP, level and cooldowns."""

    id = fields.BigIntField(primary_key=True)
    guild_id = fields.BigIntField()
    user_id = fields.BigIntField()
    display_name = fields.CharField(max_length=100, default="")
    coins = fields.BigIntField(default=0)
    xp = fields.BigIntField(default=0)
    level = fields.IntField(default=0)
    version = fields.BigIntField(default=0)
    first_seen = fields.DatetimeField(auto_now_add=True)
    last_daily_at = fields.DatetimeField(null=True)
    last_xp_at = fields.DatetimeField(null=True)

    class Meta:
        table = "members"
        unique_together = (("guild_id", "user_id"),)


class LedgerEntry(Model):
    """One coin movement on one account; a transfer writes two rows."""

    id = fields.BigIntField(primary_key=True)
    guild_id = fields.BigIntField()
    user_id = fields.BigIntField()
    kind = fields.CharEnumField(LedgerKind, max_length=16)
    amount = fields.BigIntField()
    balance_after = fields.BigIntField()
    actor_id = fields.BigIntField(null=True)
    counterparty_id = fields.BigIntField(null=True)
    reason = fields.CharField(max_length=1024, null=True)
    idempotency_key = fields.CharField(max_length=120, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger"
        indexes = (Index(fields=("guild_id", "user_id", "id"), name="ledger_account_idx"),)


class TransferRefusal(Model):
    """A transfer refused for want of coins, kept under its request key.

    A replay of the same request (after a RESUME, or from a duplicated session) must give the
    same answer even if the balance has grown since: it finds this row and refuses again.
    """

    idempotency_key = fields.CharField(max_length=120, primary_key=True)
    guild_id = fields.BigIntField()
    balance = fields.BigIntField()
    needed = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "refusals"


class Case(Model):
    """A numbered moderation case; numbers run 1, 2, 3 ... per guild without gaps.

    The case is also the outbox row of the Discord work it needs: its action, the DM to the
    member and the lifting of its effect (a pardon, a tempban's end) each have a state;
    `pending` is set while any of them is pending, and `next_attempt_at` is the claim's lease
    (or the earliest retry) so that one process at a time does the work.
    """

    id = fields.BigIntField(primary_key=True)
    guild_id = fields.BigIntField()
    number = fields.IntField()
    action = fields.CharEnumField(CaseAction, max_length=16)
    target_id = fields.BigIntField()
    moderator_id = fields.BigIntField()
    reason = fields.CharField(max_length=1024, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(null=True)
    state = fields.CharEnumField(CaseState, max_length=16, default=CaseState.ACTIVE)
    idempotency_key = fields.CharField(max_length=120, null=True, unique=True)
    dm_state = fields.CharEnumField(DmState, max_length=16, default=DmState.NONE)
    action_state = fields.CharEnumField(ActionState, max_length=16, default=ActionState.NONE)
    action_note = fields.CharField(max_length=1024, default="")
    lift_state = fields.CharEnumField(ActionState, max_length=16, default=ActionState.NONE)
    delete_message_s = fields.IntField(default=0)
    pending = fields.BooleanField(default=False)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)

    class Meta:
        table = "cases"
        unique_together = (("guild_id", "number"),)
        indexes = (
            Index(fields=("guild_id", "target_id", "number"), name="cases_target_idx"),
            Index(fields=("guild_id", "moderator_id", "number"), name="cases_moderator_idx"),
        )


class CaseEdit(Model):
    """Append-only record of a change to a case's reason or state."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="edits", on_delete=fields.RESTRICT
    )
    case_id: int
    editor_id = fields.BigIntField(null=True)
    field = fields.CharField(max_length=16)
    old_value = fields.CharField(max_length=1024)
    new_value = fields.CharField(max_length=1024)
    note = fields.CharField(max_length=1024, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    idempotency_key = fields.CharField(max_length=120, null=True, unique=True)

    class Meta:
        table = "case_edits"


class Effect(Model):
    """The live effect of one kind (a ban, a timeout) on one member, and the case holding it.

    One row per guild, member and kind, so at most one effect of a kind is live per member;
    `case` is None when none is. Discord is made to match these rows (the outbox).
    """

    id = fields.BigIntField(primary_key=True)
    guild_id = fields.BigIntField()
    target_id = fields.BigIntField()
    kind = fields.CharEnumField(EffectKind, max_length=16)
    case: fields.ForeignKeyNullableRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    case_id: int | None
    until = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "effects"
        unique_together = (("guild_id", "target_id", "kind"),)


class WebSession(Model):
    """A web console record (a sign-in's state, a session) when there is no Redis.

    The key is random; the record is gone for good once `expires_at` has passed.
    """

    key = fields.CharField(max_length=96, primary_key=True)
    data: dict[str, object] = fields.JSONField()
    expires_at = fields.DatetimeField()

    class Meta:
        table = "web_sessions"
        indexes = (Index(fields=("expires_at",), name="web_sessions_expiry_idx"),)

"""The bank: profiles, grants, the daily reward, transfers and fines.

Every coin movement is one database transaction that writes a ledger row per account touched,
keyed by an idempotency key: the same key applied twice, even from two processes at once,
moves coins once and returns the first result. PostgreSQL holds every invariant (row locks,
conditional updates, CHECK constraints); the Redis locks around a transfer only keep
contention out of the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.expressions import F

from app.coord import Coordination
from app.coord.leaderboard_cache import Standing
from app.db.models import LedgerEntry, Member, TransferRefusal
from app.db.retry import retrying, transaction
from app.domain import validation
from app.domain.errors import (
    BalanceLimit,
    DailyNotReady,
    InsufficientFunds,
    SelfTarget,
)
from app.domain.guilds import GuildConfigs
from app.domain.idempotency import check_same, fresh_key
from app.domain.types import CREDIT_KINDS, LedgerKind, LedgerLine, Profile, view_of
from app.domain.validation import MAX_BALANCE

T = TypeVar("T")
DAILY_COOLDOWN = timedelta(hours=24)
#: Ids looked up per query by `display_names`.
NAMES_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Receipt:
    """The result of a movement on one account."""

    user_id: int
    kind: LedgerKind
    amount: int
    balance: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class TransferReceipt:
    """The result of a transfer: both balances after it."""

    sender_id: int
    recipient_id: int
    amount: int
    sender_balance: int
    recipient_balance: int
    replayed: bool = False


async def locked_member(guild_id: int, user_id: int) -> Member:
    """The member's row, created on first sight, locked until the transaction ends."""
    query = Member.filter(guild_id=guild_id, user_id=user_id).select_for_update()
    member = await query.first()
    if member is None:
        await Member.bulk_create(
            [Member(guild_id=guild_id, user_id=user_id)], ignore_conflicts=True
        )
        member = await query.first()
    assert member is not None
    return member


def profile_of(member: Member) -> Profile:
    """The frozen view of a member row."""
    return view_of(Profile, member)


class Bank:
    """Coin movements for every guild. Limits come from the settings."""

    def __init__(
        self, coord: Coordination, configs: GuildConfigs, transfer_max: int, grant_max: int
    ) -> None:
        self.coord = coord
        self.configs = configs
        self.transfer_max = transfer_max
        self.grant_max = grant_max

    async def profile(
        self, guild_id: int, user_id: int, display_name: str | None = None
    ) -> Profile:
        """The member's profile, created on first sight; the display name is kept current."""
        validation.snowflake(guild_id, "guild")
        validation.snowflake(user_id, "member")
        name = (display_name or "")[:100]
        member = await Member.get_or_none(guild_id=guild_id, user_id=user_id)
        if member is None:
            await Member.bulk_create(
                [Member(guild_id=guild_id, user_id=user_id, display_name=name)],
                ignore_conflicts=True,
            )
            member = await Member.get(guild_id=guild_id, user_id=user_id)
        elif display_name is not None and member.display_name != name:
            await Member.filter(id=member.id).update(display_name=name)
            member.display_name = name
        return profile_of(member)

    async def display_names(self, guild_id: int, user_ids: Iterable[int]) -> dict[int, str]:
        """The last display name recorded for each of `user_ids` that has one (no row: absent)."""
        validation.snowflake(guild_id, "guild")
        wanted = {validation.snowflake(u, "member") for u in user_ids}
        found: dict[int, str] = {}
        ordered = sorted(wanted)
        for start in range(0, len(ordered), NAMES_CHUNK):
            rows = await Member.filter(
                guild_id=guild_id, user_id__in=ordered[start : start + NAMES_CHUNK]
            ).values_list("user_id", "display_name")
            found.update({user: name for user, name in rows if name})
        return found

    async def ledger(self, guild_id: int, user_id: int, limit: int = 50) -> list[LedgerLine]:
        """The member's latest coin movements, newest first (no profile is created)."""
        validation.snowflake(guild_id, "guild")
        validation.snowflake(user_id, "member")
        rows = await LedgerEntry.filter(guild_id=guild_id, user_id=user_id).order_by("-id").limit(
            limit
        )
        return [view_of(LedgerLine, row) for row in rows]

    async def balance(self, guild_id: int, user_id: int) -> int:
        """Coins the member holds (a profile is created on first sight)."""
        return (await self.profile(guild_id, user_id)).coins

    async def grant(
        self,
        guild_id: int,
        admin_id: int,
        user_id: int,
        amount: int,
        key: str | None = None,
        reason: str | None = None,
    ) -> Receipt:
        """An administrator creates coins on a member's account."""
        validation.snowflake(admin_id, "administrator")
        validation.amount(amount, self.grant_max)
        return await self._move(
            guild_id,
            user_id,
            LedgerKind.GRANT,
            amount,
            key or fresh_key("give"),
            actor_id=admin_id,
            reason=validation.reason(reason, required=False) or None,
        )

    async def fine(
        self,
        guild_id: int,
        moderator_id: int,
        user_id: int,
        amount: int,
        reason: str,
        key: str | None = None,
    ) -> Receipt:
        """A moderator takes coins from a member; refused when the member holds too few."""
        validation.snowflake(moderator_id, "moderator")
        validation.amount(amount, self.grant_max)
        text = validation.reason(reason, required=True)
        if moderator_id == user_id:
            raise SelfTarget("You cannot fine yourself.")
        return await self._move(
            guild_id,
            user_id,
            LedgerKind.FINE,
            amount,
            key or fresh_key("fine"),
            actor_id=moderator_id,
            reason=text,
        )

    async def daily(
        self, guild_id: int, user_id: int, key: str | None = None, now: datetime | None = None
    ) -> Receipt:
        """The daily reward: once per 24 hours per member, the guild's configured amount."""
        now = now or datetime.now(UTC)
        amount = (await self.configs.get(guild_id)).daily_amount

        def ready(member: Member) -> dict[str, Any]:
            if member.last_daily_at is not None and member.last_daily_at + DAILY_COOLDOWN > now:
                raise DailyNotReady(member.last_daily_at + DAILY_COOLDOWN)
            return {"last_daily_at": now}

        return await self._move(
            guild_id, user_id, LedgerKind.DAILY, amount, key or fresh_key("daily"), check=ready
        )

    async def transfer(
        self, guild_id: int, sender_id: int, recipient_id: int, amount: int, key: str
    ) -> TransferReceipt:
        """Move coins between two members of one guild, once per idempotency key."""
        validation.snowflake(guild_id, "guild")
        validation.snowflake(sender_id, "member")
        validation.snowflake(recipient_id, "member")
        validation.amount(amount, self.transfer_max)
        if sender_id == recipient_id:
            raise SelfTarget("You cannot send coins to yourself.")
        keys = [f"{guild_id}:{sender_id}", f"{guild_id}:{recipient_id}"]
        async with self.coord.locks.hold(keys):
            receipt, standings = await retrying(
                lambda: self._replay_on_conflict(
                    lambda: self._transfer_tx(guild_id, sender_id, recipient_id, amount, key),
                    lambda: self._transfer_replay(guild_id, sender_id, recipient_id, amount, key),
                )
            )
        if standings:
            await self.coord.leaderboard.record(guild_id, standings)
        return receipt

    async def _transfer_tx(
        self, guild_id: int, sender_id: int, recipient_id: int, amount: int, key: str
    ) -> tuple[TransferReceipt, list[Standing] | None]:
        refused: InsufficientFunds | None = None
        async with transaction():
            rows = await (
                Member.filter(guild_id=guild_id, user_id__in=[sender_id, recipient_id])
                .order_by("user_id")
                .select_for_update()
            )
            by_user = {m.user_id: m for m in rows}
            if await LedgerEntry.exists(idempotency_key=f"{key}:out"):
                return await self._transfer_replay(guild_id, sender_id, recipient_id, amount, key)
            earlier = await TransferRefusal.get_or_none(idempotency_key=key)
            if earlier is not None:
                raise InsufficientFunds(earlier.balance, earlier.needed)
            sender = by_user.get(sender_id)
            if sender is None or sender.coins < amount:
                # Remembered under the rows' locks (and committed), so that a replay of this
                # request refuses again instead of succeeding once the balance has grown.
                refused = InsufficientFunds(sender.coins if sender else 0, amount)
                await TransferRefusal.create(
                    idempotency_key=key, guild_id=guild_id, balance=refused.balance, needed=amount
                )
            else:
                recipient = by_user.get(recipient_id) or await locked_member(guild_id, recipient_id)
                done = await self._move_between(guild_id, sender, recipient, amount, key)
        if refused is not None:
            raise refused
        return done

    @staticmethod
    async def _move_between(
        guild_id: int, sender: Member, recipient: Member, amount: int, key: str
    ) -> tuple[TransferReceipt, list[Standing]]:
        """Debit, credit and two ledger rows, on rows the caller has locked."""
        debited = await Member.filter(id=sender.id, coins__gte=amount).update(
            coins=F("coins") - amount, version=F("version") + 1
        )
        if debited != 1:
            raise InsufficientFunds(sender.coins, amount)
        credited = await Member.filter(id=recipient.id, coins__lte=MAX_BALANCE - amount).update(
            coins=F("coins") + amount, version=F("version") + 1
        )
        if credited != 1:
            raise BalanceLimit("The recipient cannot hold that many coins.")
        sender_balance, recipient_balance = sender.coins - amount, recipient.coins + amount
        await LedgerEntry.bulk_create(
            [
                LedgerEntry(
                    guild_id=guild_id,
                    user_id=user,
                    kind=kind,
                    amount=amount,
                    balance_after=balance,
                    actor_id=sender.user_id,
                    counterparty_id=other,
                    idempotency_key=f"{key}:{suffix}",
                )
                for user, kind, balance, other, suffix in (
                    (
                        sender.user_id,
                        LedgerKind.TRANSFER_OUT,
                        sender_balance,
                        recipient.user_id,
                        "out",
                    ),
                    (
                        recipient.user_id,
                        LedgerKind.TRANSFER_IN,
                        recipient_balance,
                        sender.user_id,
                        "in",
                    ),
                )
            ]
        )
        receipt = TransferReceipt(
            sender.user_id, recipient.user_id, amount, sender_balance, recipient_balance
        )
        return receipt, [
            Standing(sender.user_id, sender_balance, sender.version + 1),
            Standing(recipient.user_id, recipient_balance, recipient.version + 1),
        ]

    async def _transfer_replay(
        self, guild_id: int, sender_id: int, recipient_id: int, amount: int, key: str
    ) -> tuple[TransferReceipt, None]:
        out = await LedgerEntry.get(idempotency_key=f"{key}:out")
        incoming = await LedgerEntry.get(idempotency_key=f"{key}:in")
        check_same(
            (out.guild_id, out.user_id, out.counterparty_id, out.amount),
            (guild_id, sender_id, recipient_id, amount),
            "transfer",
        )
        receipt = TransferReceipt(
            sender_id,
            recipient_id,
            amount,
            out.balance_after,
            incoming.balance_after,
            replayed=True,
        )
        return receipt, None

    @staticmethod
    async def _replay_on_conflict(
        work: Callable[[], Awaitable[T]], replay: Callable[[], Awaitable[T]]
    ) -> T:
        """Run `work`; if a concurrent twin committed the same key first, return its result."""
        try:
            return await work()
        except IntegrityError:
            try:
                return await replay()
            except DoesNotExist:
                raise IntegrityError("constraint violated") from None

    async def _move(
        self,
        guild_id: int,
        user_id: int,
        kind: LedgerKind,
        amount: int,
        key: str,
        actor_id: int | None = None,
        reason: str | None = None,
        check: Callable[[Member], dict[str, Any]] | None = None,
    ) -> Receipt:
        """One movement on one account, in one transaction, once per key."""
        validation.snowflake(guild_id, "guild")
        validation.snowflake(user_id, "member")
        receipt, standing = await retrying(
            lambda: self._replay_on_conflict(
                lambda: self._move_tx(
                    guild_id, user_id, kind, amount, key, actor_id, reason, check
                ),
                lambda: self._move_replay(guild_id, user_id, kind, amount, key),
            )
        )
        if standing is not None:
            await self.coord.leaderboard.record(guild_id, [standing])
        return receipt

    async def _move_tx(
        self,
        guild_id: int,
        user_id: int,
        kind: LedgerKind,
        amount: int,
        key: str,
        actor_id: int | None,
        reason: str | None,
        check: Callable[[Member], dict[str, Any]] | None,
    ) -> tuple[Receipt, Standing | None]:
        async with transaction():
            member = await locked_member(guild_id, user_id)
            if await LedgerEntry.exists(idempotency_key=key):
                return await self._move_replay(guild_id, user_id, kind, amount, key)
            extra = check(member) if check else {}
            credit = kind in CREDIT_KINDS
            query = Member.filter(id=member.id)
            if credit:
                if member.coins + amount > MAX_BALANCE:
                    raise BalanceLimit("That would take the balance above the maximum.")
                query = query.filter(coins__lte=MAX_BALANCE - amount)
            else:
                if member.coins < amount:
                    raise InsufficientFunds(member.coins, amount)
                query = query.filter(coins__gte=amount)
            delta = amount if credit else -amount
            if await query.update(coins=F("coins") + delta, version=F("version") + 1, **extra) != 1:
                raise InsufficientFunds(member.coins, amount)
            balance = member.coins + delta
            await LedgerEntry.create(
                guild_id=guild_id,
                user_id=user_id,
                kind=kind,
                amount=amount,
                balance_after=balance,
                actor_id=actor_id,
                reason=reason,
                idempotency_key=key,
            )
        receipt = Receipt(user_id, kind, amount, balance)
        return receipt, Standing(user_id, balance, member.version + 1)

    async def _move_replay(
        self, guild_id: int, user_id: int, kind: LedgerKind, amount: int, key: str
    ) -> tuple[Receipt, None]:
        entry = await LedgerEntry.get(idempotency_key=key)
        check_same(
            (entry.guild_id, entry.user_id, entry.kind, entry.amount),
            (guild_id, user_id, kind, amount),
            "operation",
        )
        return Receipt(user_id, kind, amount, entry.balance_after, replayed=True), None

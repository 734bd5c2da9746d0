"""The bank: profiles, grants, the daily reward, transfers and fines.

Every coin movement is one database transaction that writes a ledger row per account touched,
keyed by an idempotency key: the same key applied twice, even from two processes at once,
moves coins once and returns the first result. PostgreSQL holds every invariant (row locks,
conditional updates, CHECK constraints); the Redis locks around a transfer only keep
contention out of the database.

On PostgreSQL a movement is one call of a server-side function (`app.db.bank_functions`,
one round trip); the model code below does the same on SQLite (and on PostgreSQL when asked,
for comparison). The same tests check both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.expressions import F

from app.coord import Coordination
from app.coord.leaderboard_cache import Standing
from app.db import bank_functions, reads
from app.db.bank_functions import Movement
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
TOO_RICH = "That would take the balance above the maximum."
RECIPIENT_TOO_RICH = "The recipient cannot hold that many coins."


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
    """Coin movements for every guild. Limits come from the settings.

    `functions`: move coins with the database's functions where it has them (PostgreSQL);
    False runs the model code everywhere.
    """

    def __init__(
        self,
        coord: Coordination,
        configs: GuildConfigs,
        transfer_max: int,
        grant_max: int,
        functions: bool = True,
    ) -> None:
        self.coord = coord
        self.configs = configs
        self.transfer_max = transfer_max
        self.grant_max = grant_max
        self.functions = functions

    def _in_database(self) -> bool:
        return self.functions and bank_functions.available()

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
            await self.coord.leaderboard.name(guild_id, user_id, member.display_name)
        elif display_name is not None and member.display_name != name:
            await Member.filter(id=member.id).update(display_name=name)
            member.display_name = name
            await self.coord.leaderboard.name(guild_id, user_id, name)
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
        rows = (
            await LedgerEntry.filter(guild_id=guild_id, user_id=user_id)
            .order_by("-id")
            .limit(limit)
        )
        return [view_of(LedgerLine, row) for row in rows]

    async def balance(self, guild_id: int, user_id: int) -> int:
        """Coins the member holds (a profile is created on first sight)."""
        validation.snowflake(guild_id, "guild")
        validation.snowflake(user_id, "member")
        coins = await reads.member_coins(guild_id, user_id)
        return coins if coins is not None else (await self.profile(guild_id, user_id)).coins

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
        amount = (await self.configs.get(guild_id)).daily_amount
        return await self._move(
            guild_id,
            user_id,
            LedgerKind.DAILY,
            amount,
            key or fresh_key("daily"),
            daily_at=now or datetime.now(UTC),
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
        async with self.coord.locks.hold(guild_id, [sender_id, recipient_id]) as hold:
            if self._in_database():
                call = partial(self._transfer_call, guild_id, sender_id, recipient_id, amount, key)
                receipt, standings = await retrying(lambda: self._replay_on_conflict(call, call))
            else:
                receipt, standings = await retrying(
                    lambda: self._replay_on_conflict(
                        lambda: self._transfer_tx(guild_id, sender_id, recipient_id, amount, key),
                        lambda: self._transfer_replay(
                            guild_id, sender_id, recipient_id, amount, key
                        ),
                    )
                )
            hold.standings += standings or []
        return receipt

    async def _transfer_call(
        self, guild_id: int, sender_id: int, recipient_id: int, amount: int, key: str
    ) -> tuple[TransferReceipt, list[Standing] | None]:
        """The transfer as one call of `bank_transfer_v1`, read as the model code's."""
        out = await bank_functions.transfer(
            guild_id, sender_id, recipient_id, amount, key, MAX_BALANCE
        )
        if out.outcome == "refused":
            raise InsufficientFunds(_known(out.sender_balance), _known(out.needed))
        if out.outcome == "limit":
            raise BalanceLimit(RECIPIENT_TOO_RICH)
        sender_balance, recipient_balance = (
            _known(out.sender_balance),
            _known(out.recipient_balance),
        )
        if out.outcome == "replayed":
            check_same(
                (out.seen_guild, out.seen_sender, out.seen_recipient, out.seen_amount),
                (guild_id, sender_id, recipient_id, amount),
                "transfer",
            )
            receipt = TransferReceipt(
                sender_id, recipient_id, amount, sender_balance, recipient_balance, replayed=True
            )
            return receipt, None
        receipt = TransferReceipt(
            sender_id, recipient_id, amount, sender_balance, recipient_balance
        )
        return receipt, [
            Standing(sender_id, sender_balance, _known(out.sender_version)),
            Standing(recipient_id, recipient_balance, _known(out.recipient_version)),
        ]

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
            raise BalanceLimit(RECIPIENT_TOO_RICH)
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
        daily_at: datetime | None = None,
    ) -> Receipt:
        """One movement on one account, in one transaction, once per key.

        `daily_at`: the daily reward claimed at that time (refused within DAILY_COOLDOWN of
        the last one).
        """
        validation.snowflake(guild_id, "guild")
        validation.snowflake(user_id, "member")
        credit = kind in CREDIT_KINDS
        m = Movement(guild_id, user_id, kind, amount, key, credit, actor_id, reason, daily_at)
        if self._in_database():
            call = partial(self._move_call, m)
            receipt, standing = await retrying(lambda: self._replay_on_conflict(call, call))
        else:
            receipt, standing = await retrying(
                lambda: self._replay_on_conflict(
                    partial(self._move_tx, m), partial(self._move_replay, m)
                )
            )
        if standing is not None:
            await self.coord.leaderboard.record(guild_id, [standing])
        return receipt

    @staticmethod
    async def _move_call(m: Movement) -> tuple[Receipt, Standing | None]:
        """The movement as one call of `bank_move_v1`, its outcome read as the model code's."""
        out = await bank_functions.move(m, DAILY_COOLDOWN, MAX_BALANCE)
        if out.outcome == "not_ready":
            assert out.available_at is not None
            raise DailyNotReady(out.available_at)
        if out.outcome == "limit":
            raise BalanceLimit(TOO_RICH)
        if out.outcome == "insufficient":
            raise InsufficientFunds(_known(out.balance), m.amount)
        balance = _known(out.balance)
        if out.outcome == "replayed":
            check_same(
                (out.seen_guild, out.seen_user, out.seen_kind, out.seen_amount),
                (m.guild_id, m.user_id, m.kind, m.amount),
                "operation",
            )
            return Receipt(m.user_id, m.kind, m.amount, balance, replayed=True), None
        receipt = Receipt(m.user_id, m.kind, m.amount, balance)
        return receipt, Standing(m.user_id, balance, _known(out.version))

    async def _move_tx(self, m: Movement) -> tuple[Receipt, Standing | None]:
        async with transaction():
            member = await locked_member(m.guild_id, m.user_id)
            if await LedgerEntry.exists(idempotency_key=m.key):
                return await self._move_replay(m)
            extra: dict[str, Any] = {}
            if m.daily_at is not None:
                last = member.last_daily_at
                if last is not None and last + DAILY_COOLDOWN > m.daily_at:
                    raise DailyNotReady(last + DAILY_COOLDOWN)
                extra["last_daily_at"] = m.daily_at
            query = Member.filter(id=member.id)
            if m.credit:
                if member.coins + m.amount > MAX_BALANCE:
                    raise BalanceLimit(TOO_RICH)
                query = query.filter(coins__lte=MAX_BALANCE - m.amount)
            else:
                if member.coins < m.amount:
                    raise InsufficientFunds(member.coins, m.amount)
                query = query.filter(coins__gte=m.amount)
            delta = m.amount if m.credit else -m.amount
            if await query.update(coins=F("coins") + delta, version=F("version") + 1, **extra) != 1:
                raise InsufficientFunds(member.coins, m.amount)
            balance = member.coins + delta
            await LedgerEntry.create(
                guild_id=m.guild_id,
                user_id=m.user_id,
                kind=m.kind,
                amount=m.amount,
                balance_after=balance,
                actor_id=m.actor_id,
                reason=m.reason,
                idempotency_key=m.key,
            )
        receipt = Receipt(m.user_id, m.kind, m.amount, balance)
        return receipt, Standing(m.user_id, balance, member.version + 1)

    @staticmethod
    async def _move_replay(m: Movement) -> tuple[Receipt, None]:
        entry = await LedgerEntry.get(idempotency_key=m.key)
        check_same(
            (entry.guild_id, entry.user_id, entry.kind, entry.amount),
            (m.guild_id, m.user_id, m.kind, m.amount),
            "operation",
        )
        return Receipt(m.user_id, m.kind, m.amount, entry.balance_after, replayed=True), None


def _known(value: int | None) -> int:
    """A column the function's outcome always fills."""
    assert value is not None
    return value

"""A generated guild's members, kept as shared role patterns until a member is looked up."""

from __future__ import annotations

from collections.abc import Mapping

from sandbox.lazy_mapping import LazyMapping
from sandbox.world import Member, User

#: A member's roles as indexes into its guild's role list; one tuple serves many members.
RolePattern = tuple[int, ...]


class MemberTable(LazyMapping[int, Member]):
    """``Guild.members`` of a generated guild: user id -> member.

    A member not looked up yet is only a :data:`RolePattern` (a tuple shared with other members
    of any guild) and becomes a :class:`Member` on first lookup, keeping its place in the order.
    ``in``, ``len`` and iterating the ids build nothing; ``values()`` and ``items()`` build
    every member.
    """

    __slots__ = ("_joined_at", "_role_ids", "_users")
    built = Member

    def __init__(self, users: Mapping[int, User], joined_at: str, role_ids: list[int]) -> None:
        super().__init__()
        self._users = users
        self._joined_at = joined_at
        self._role_ids = role_ids

    def add(self, user_id: int, pattern: RolePattern) -> None:
        """Add the user ``user_id`` with the roles at ``pattern`` of ``role_ids``."""
        self._slots[user_id] = pattern

    def build(self, key: int, placeholder: RolePattern) -> Member:
        """The member ``key`` with the role ids its pattern points at."""
        roles = [self._role_ids[i] for i in placeholder]
        return Member(self._users[key], roles, joined_at=self._joined_at)

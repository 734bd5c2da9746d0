"""Plain, JSON-friendly records the driver returns (in-process and over the control API)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

from sandbox.world import Message, World


class Record:
    """Mixin: ``to_dict`` / ``from_dict`` for flat dataclasses."""

    if TYPE_CHECKING:  # what makes a class a dataclass to the type checker
        __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class AttachmentView(Record):
    id: int
    filename: str
    size: int
    content_type: str
    url: str


@dataclass
class MessageView(Record):
    """A snapshot of a message: a user's message, a bot reply, an interaction response.

    ``kind`` is ``message`` (channel or DM message), ``response`` (initial interaction reply),
    ``update`` (component interaction edited its message), ``edit`` (original response edited,
    e.g. after a defer), ``followup``, ``followup_edit`` or ``modal`` (``raw`` holds the modal).
    """

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[AttachmentView] = field(default_factory=list)
    ephemeral: bool = False
    kind: str = "message"
    reference_id: int | None = None
    interaction_id: int | None = None
    edited: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_followup(self) -> bool:
        return self.kind in ("followup", "followup_edit")

    @property
    def is_edit(self) -> bool:
        return self.kind in ("edit", "update", "followup_edit")

    def text(self) -> str:
        """Content plus every embed's visible text, for substring assertions."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title", ""), embed.get("description", "")]
            parts += [f"{f.get('name', '')} {f.get('value', '')}" for f in embed.get("fields", [])]
            parts += [(embed.get("footer") or {}).get("text", "")]
            parts += [(embed.get("author") or {}).get("name", "")]
        return "\n".join(p for p in parts if p)

    def custom_ids(self) -> list[str]:
        """custom_id of every component (buttons, selects), depth-first."""
        found: list[str] = []

        def walk(items: list[dict[str, Any]]) -> None:
            for item in items:
                if item.get("custom_id"):
                    found.append(item["custom_id"])
                walk(item.get("components") or [])

        walk(self.components)
        return found

    @classmethod
    def of(cls, world: World, msg: Message, base_url: str = "", kind: str = "message") -> Self:
        """Snapshot a world message."""
        from sandbox.payloads import attachment

        return cls(
            id=msg.id,
            channel_id=msg.channel_id,
            guild_id=msg.guild_id,
            author_id=msg.author_id,
            content=msg.content,
            embeds=[dict(e) for e in msg.embeds],
            components=list(msg.components),
            attachments=[
                AttachmentView.from_dict({**attachment(a, base_url, msg.channel_id), "id": a.id})
                for a in msg.attachments
            ],
            ephemeral=msg.ephemeral_to is not None,
            kind=kind,
            reference_id=msg.reference_id,
            interaction_id=msg.interaction_id,
            edited=msg.edited_at is not None,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        view = super().from_dict(data)
        view.attachments = [
            a if isinstance(a, AttachmentView) else AttachmentView.from_dict(a)
            for a in view.attachments
        ]
        return view


@dataclass
class RestCall(Record):
    time: float
    method: str
    path: str
    #: Route template such as ``/channels/{channel_id}/messages``; None for unknown routes.
    route: str | None
    status: int
    json: Any = None
    query: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    error_code: int | None = None
    #: A 429's scope: ``global``, ``user``, ``shared``, ``proxy`` or ``cloudflare`` (a ban).
    scope: str | None = None
    #: The client's address (what the invalid-request counter and bans go by).
    client: str = ""


@dataclass
class IdentifyRecord(Record):
    time: float
    shard_id: int
    shard_count: int
    session_id: str | None
    accepted: bool
    reason: str = ""


@dataclass
class DuplicateRecord(Record):
    """Two or more live sessions held the same shard at ``time``."""

    time: float
    shard_id: int
    shard_count: int
    session_ids: list[str]


@dataclass
class SessionInfo(Record):
    id: str
    shard_id: int
    shard_count: int
    connected: bool
    seq: int
    intents: int
    resumes: int
    replayed: int
    compressed: bool
    created: float


#: What the bot answered: a :class:`MessageView`.
Reply = MessageView

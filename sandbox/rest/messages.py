"""Channel messages sent, edited and deleted by the bot."""

from __future__ import annotations

import mimetypes
from typing import Any

from sandbox import actions, payloads
from sandbox.core import Core
from sandbox.errors import SandboxError, forbidden
from sandbox.permissions import P, require
from sandbox.rest.router import RestRequest, Result, RouteTable, Upload
from sandbox.validation import check_message
from sandbox.world import DM, Attachment, Channel, Message

routes = RouteTable()


def attachments_from(core: Core, body: dict[str, Any], uploads: list[Upload]) -> list[Attachment]:
    """Stored attachments for the ``files[n]`` parts, named as the payload's attachment list."""
    described = {str(a.get("id")): a for a in body.get("attachments") or []}
    made = []
    for upload in uploads:
        meta = described.get(str(upload.index), {})
        filename = meta.get("filename") or upload.filename
        kind = upload.content_type
        if kind == "application/octet-stream":
            kind = mimetypes.guess_type(filename)[0] or kind
        item = Attachment(
            id=core.world.ids.next(),
            filename=filename,
            data=upload.data,
            content_type=kind,
            description=meta.get("description"),
        )
        core.uploads[item.id] = item
        made.append(item)
    return made


def check_can_send(req: RestRequest, channel: Channel, with_files: bool) -> None:
    """The bot's permission to post in ``channel`` (403 50013), or to DM its user (403 50007)."""
    if channel.type == DM:
        recipient = req.world.users[channel.recipient_ids[0]]
        if recipient.dms_closed:
            raise SandboxError(403, 50007, "Cannot send messages to this user")
        return
    guild = req.world.guilds[channel.guild_id or 0]
    needed = P.VIEW_CHANNEL | P.SEND_MESSAGES | (P.ATTACH_FILES if with_files else 0)
    require(guild, req.bot_member(guild), needed, channel)


def view(req: RestRequest, msg: Message) -> dict[str, Any]:
    return payloads.message(req.world, msg, req.core.base_url)


@routes.route("POST", "/channels/{channel_id}/messages")
async def create(req: RestRequest) -> Any:
    channel = req.channel()
    check_can_send(req, channel, bool(req.files))
    check_message(req.body, has_files=bool(req.files))
    earlier = actions.repeated_nonce(req.core, req.world.bot, req.body)
    if earlier is not None:
        return view(req, earlier)
    new = actions.NewMessage.from_body(req.body, attachments_from(req.core, req.body, req.files))
    msg = actions.post_message(req.core, channel, req.world.bot, new)
    actions.remember_nonce(req.core, req.body, msg)
    return view(req, msg)


@routes.route("GET", "/channels/{channel_id}/messages")
async def history(req: RestRequest) -> Any:
    channel = req.channel()
    found = req.world.channel_messages(channel)
    limit = min(int(req.query.get("limit", 50)), 100)
    if "before" in req.query:
        found = [m for m in found if m.id < int(req.query["before"])]
    if "after" in req.query:
        found = [m for m in found if m.id > int(req.query["after"])][:limit]
    return [view(req, m) for m in reversed(found[-limit:])]


@routes.route("GET", "/channels/{channel_id}/messages/{message_id}")
async def get(req: RestRequest) -> Any:
    channel = req.channel()
    return view(req, req.message(channel))


@routes.route("PATCH", "/channels/{channel_id}/messages/{message_id}")
async def edit(req: RestRequest) -> Any:
    channel = req.channel()
    msg = req.message(channel)
    if msg.author_id != req.world.bot.id:
        raise SandboxError(403, 50005, "Cannot edit a message authored by another user")
    check_message(req.body, has_files=bool(req.files), edit=True)
    added = attachments_from(req.core, req.body, req.files)
    return view(req, actions.edit_message(req.core, msg, req.body, added))


@routes.route("DELETE", "/channels/{channel_id}/messages/{message_id}")
async def delete(req: RestRequest) -> Any:
    channel = req.channel()
    msg = req.message(channel)
    if not actions.can_delete(req.core, req.world.bot.id, msg):
        raise forbidden()
    actions.delete_message(req.core, msg)
    return Result(None, 204)


@routes.route("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me")
@routes.route("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me")
async def react(req: RestRequest) -> Any:
    req.message(req.channel())
    return Result(None, 204)


@routes.route("GET", "/channels/{channel_id}")
async def get_channel(req: RestRequest) -> Any:
    return payloads.channel(req.channel(), req.world)

"""Interaction callbacks and the interaction webhook (followups, original response edits)."""

from __future__ import annotations

import time
from typing import Any

from sandbox import actions, payloads
from sandbox.errors import invalid_form, not_found
from sandbox.interactions import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    InteractionRecord,
    already_acknowledged,
)
from sandbox.records import MessageView
from sandbox.rest.messages import attachments_from
from sandbox.rest.router import RestRequest, Result, RouteTable
from sandbox.validation import check_message
from sandbox.world import Message

routes = RouteTable()
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"
WEBHOOK = "/webhooks/{webhook_id}/{webhook_token}"
WEBHOOK_MESSAGE = WEBHOOK + "/messages/{message_id}"
PONG, CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 1, 4, 5, 6, 7
AUTOCOMPLETE, MODAL = 8, 9
EPHEMERAL, LOADING = 1 << 6, 1 << 7
_KEPT_FLAGS = EPHEMERAL | LOADING | (1 << 2) | (1 << 12) | (1 << 15)


def _metadata(req: RestRequest, record: InteractionRecord) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(record.id),
        "type": record.type,
        "user": payloads.user(req.world.users[record.user_id]),
        "authorizing_integration_owners": record.payload.get("authorizing_integration_owners"),
    }
    if record.type == APPLICATION_COMMAND:
        data["name"] = record.name
    if record.source_message_id:
        data["interacted_message_id"] = str(record.source_message_id)
    if record.original_id:
        data["original_response_message_id"] = str(record.original_id)
    return data


def _post(req: RestRequest, record: InteractionRecord, body: dict[str, Any]) -> Message:
    flags = int(body.get("flags") or 0) & _KEPT_FLAGS
    if not flags & LOADING:
        check_message(body, has_files=bool(req.files))
    new = actions.NewMessage.from_body(body, attachments_from(req.core, body, req.files))
    new.flags = flags
    new.type = 20 if record.type == APPLICATION_COMMAND else 0
    new.interaction_id = record.id
    new.interaction_metadata = _metadata(req, record)
    new.webhook_id = req.world.application_id
    channel = req.world.channels[record.channel_id]
    ephemeral_to = record.user_id if flags & EPHEMERAL else None
    return actions.post_message(req.core, channel, req.world.bot, new, ephemeral_to=ephemeral_to)


def _view(req: RestRequest, msg: Message, kind: str) -> MessageView:
    return MessageView.of(req.world, msg, req.core.base_url, kind=kind)


def _message_payload(req: RestRequest, msg: Message) -> dict[str, Any]:
    return payloads.message(req.world, msg, req.core.base_url)


@routes.route("POST", CALLBACK)
async def callback(req: RestRequest) -> Any:
    store = req.core.interactions
    record = store.get(req.params["interaction_id"], req.params["interaction_token"], callback=True)
    if record.response_type is not None:
        raise already_acknowledged()
    kind, data = int(req.body.get("type", 0)), req.body.get("data") or {}
    message: Message | None = None
    if kind == CHANNEL_MESSAGE:
        message = _post(req, record, data)
        store.add_reply(record, _view(req, message, "response"), response=True)
    elif kind == DEFERRED_MESSAGE:
        message = _post(req, record, {"flags": (int(data.get("flags") or 0) & EPHEMERAL) | LOADING})
    elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and record.type == MESSAGE_COMPONENT:
        message = req.world.messages[record.source_message_id or 0]
        if kind == UPDATE_MESSAGE:
            check_message(data, has_files=bool(req.files), edit=True)
            added = attachments_from(req.core, data, req.files)
            actions.edit_message(req.core, message, data, added)
            store.add_reply(record, _view(req, message, "update"), response=True)
    elif kind == MODAL:
        modal = MessageView(
            id=0,
            channel_id=record.channel_id,
            guild_id=record.guild_id,
            author_id=req.world.bot.id,
            content=str(data.get("title", "")),
            components=list(data.get("components") or []),
            kind="modal",
            interaction_id=record.id,
            raw=data,
        )
        store.add_reply(record, modal, response=True)
    elif kind != AUTOCOMPLETE:
        raise invalid_form(
            "type",
            "INTERACTION_CALLBACK_TYPE_INVALID",
            f"Callback type {kind} is not valid for this interaction",
        )
    record.response_type = kind
    record.acknowledged = time.monotonic()
    record.original_id = message.id if message else None
    req.core.changed()
    if req.query.get("with_response", "").lower() not in ("1", "true"):
        return Result(None, 204)
    return _callback_response(req, record, kind, message)


def _callback_response(
    req: RestRequest, record: InteractionRecord, kind: int, message: Message | None
) -> dict[str, Any]:
    interaction = {
        "id": str(record.id),
        "type": record.type,
        "activity_instance_id": None,
        "response_message_id": str(message.id) if message else None,
        "response_message_loading": bool(message and message.flags & LOADING),
        "response_message_ephemeral": bool(message and message.flags & EPHEMERAL),
    }
    resource: dict[str, Any] = {"type": kind}
    if message is not None and kind != DEFERRED_UPDATE:
        resource["message"] = _message_payload(req, message)
    return {"interaction": interaction, "resource": resource}


def _record(req: RestRequest) -> InteractionRecord:
    if req.params["webhook_id"] != str(req.world.application_id):
        raise not_found("webhook")
    record = req.core.interactions.by_token(req.params["webhook_token"])
    if record.response_type is None:
        raise not_found("webhook")
    return record


def _owned_message(req: RestRequest, record: InteractionRecord) -> Message:
    raw = req.params["message_id"]
    message_id = record.original_id if raw == "@original" else int(raw) if raw.isdigit() else 0
    owned = {record.original_id, *(f.id for f in record.followups)}
    found = req.world.messages.get(message_id or 0)
    if found is None or found.deleted or message_id not in owned:
        raise not_found("message")
    return found


def _fill_deferred(
    req: RestRequest, record: InteractionRecord, msg: Message, body: dict[str, Any], kind: str
) -> MessageView:
    """Replace a "thinking..." message with real content; it becomes the response."""
    check_message(body, has_files=bool(req.files))
    added = attachments_from(req.core, body, req.files)
    changes = {**{k: v for k, v in body.items() if k != "flags"}, "flags": msg.flags & ~LOADING}
    actions.edit_message(req.core, msg, changes, added)
    msg.edited_at = None
    view = _view(req, msg, kind)
    req.core.interactions.add_reply(record, view, response=True, followup=kind == "followup")
    return view


@routes.route("POST", WEBHOOK)
async def followup(req: RestRequest) -> Any:
    record = _record(req)
    original = req.world.messages.get(record.original_id or 0)
    if original is not None and original.flags & LOADING:
        _fill_deferred(req, record, original, req.body, "followup")
        msg = original
    else:
        msg = _post(req, record, req.body)
        req.core.interactions.add_reply(record, _view(req, msg, "followup"), followup=True)
    # Unlike a plain webhook's execution, a follow-up always returns its message: Discord
    # documents `wait` as always true here.
    return _message_payload(req, msg)


@routes.route("GET", WEBHOOK_MESSAGE)
async def get_message(req: RestRequest) -> Any:
    return _message_payload(req, _owned_message(req, _record(req)))


@routes.route("PATCH", WEBHOOK_MESSAGE)
async def edit_message(req: RestRequest) -> Any:
    record = _record(req)
    msg = _owned_message(req, record)
    if msg.flags & LOADING:
        _fill_deferred(req, record, msg, req.body, "edit")
        return _message_payload(req, msg)
    check_message(req.body, has_files=bool(req.files), edit=True)
    added = attachments_from(req.core, req.body, req.files)
    actions.edit_message(req.core, msg, {k: v for k, v in req.body.items() if k != "flags"}, added)
    original = msg.id == record.original_id
    view = _view(req, msg, "edit" if original else "followup_edit")
    req.core.interactions.add_reply(record, view, response=original and record.response is None)
    return _message_payload(req, msg)


@routes.route("DELETE", WEBHOOK_MESSAGE)
async def delete_message(req: RestRequest) -> Any:
    record = _record(req)
    actions.delete_message(req.core, _owned_message(req, record))
    return Result(None, 204)

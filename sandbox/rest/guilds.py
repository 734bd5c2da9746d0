"""Guilds, members, roles, bans and the audit log as the bot sees and changes them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox import actions, payloads
from sandbox.errors import invalid_form, not_found
from sandbox.permissions import P, require
from sandbox.rest.router import RestRequest, Result, RouteTable

routes = RouteTable()


@routes.route("GET", "/guilds/{guild_id}")
async def get_guild(req: RestRequest) -> Any:
    guild = req.guild()
    data = payloads.guild(req.world, guild)
    if req.query.get("with_counts") in ("true", "1"):
        data["approximate_member_count"] = len(guild.members)
        data["approximate_presence_count"] = 0
    return data


@routes.route("GET", "/guilds/{guild_id}/channels")
async def channels(req: RestRequest) -> Any:
    guild = req.guild()
    return [payloads.channel(req.world.channels[c]) for c in guild.channel_ids]


@routes.route("GET", "/guilds/{guild_id}/roles")
async def roles(req: RestRequest) -> Any:
    return [payloads.role(r) for r in req.guild().roles.values()]


@routes.route("GET", "/guilds/{guild_id}/members")
async def members(req: RestRequest) -> Any:
    guild = req.guild()
    after = int(req.query.get("after", 0))
    limit = min(int(req.query.get("limit", 1)), 1000)
    found = sorted((m for m in guild.members.values() if m.id > after), key=lambda m: m.id)
    return [payloads.member(m) for m in found[:limit]]


@routes.route("GET", "/guilds/{guild_id}/members/{user_id}")
async def get_member(req: RestRequest) -> Any:
    guild = req.guild()
    return payloads.member(req.member(guild))


def _timeout(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise invalid_form(
            "communication_disabled_until", "DATE_TIME_TYPE_PARSE", "Could not parse the timestamp"
        ) from None


@routes.route("PATCH", "/guilds/{guild_id}/members/{user_id}")
async def edit_member(req: RestRequest) -> Any:
    guild = req.guild()
    target = req.member(guild)
    changes: dict[str, Any] = {}
    if "nick" in req.body:
        changes["nick"] = req.body["nick"]
    if "roles" in req.body:
        changes["roles"] = [int(r) for r in req.body["roles"] or []]
    if "communication_disabled_until" in req.body:
        changes["timeout_until"] = _timeout(req.body["communication_disabled_until"])
    actions.update_member(
        req.core, guild, req.bot_member(guild), target, reason=req.reason, **changes
    )
    return payloads.member(target)


@routes.route("DELETE", "/guilds/{guild_id}/members/{user_id}")
async def kick(req: RestRequest) -> Any:
    guild = req.guild()
    actions.kick(req.core, guild, req.bot_member(guild), req.member(guild), req.reason)
    return Result(None, 204)


@routes.route("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}")
@routes.route("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}")
async def member_role(req: RestRequest) -> Any:
    guild = req.guild()
    target = req.member(guild)
    role_id = int(req.params["role_id"]) if req.params["role_id"].isdigit() else 0
    if role_id not in guild.roles:
        raise not_found("role")
    wanted = [r for r in target.roles if r != role_id]
    if req.method == "PUT":
        wanted.append(role_id)
    if wanted != target.roles:
        actions.update_member(
            req.core, guild, req.bot_member(guild), target, roles=wanted, reason=req.reason
        )
    return Result(None, 204)


@routes.route("PUT", "/guilds/{guild_id}/bans/{user_id}")
async def ban(req: RestRequest) -> Any:
    guild = req.guild()
    # discord.py 2.7 sends delete_message_seconds as a query parameter; older clients in the body.
    given = req.query.get("delete_message_seconds") or req.body.get("delete_message_seconds")
    seconds = int(given or int(req.body.get("delete_message_days", 0)) * 86400)
    actions.ban(req.core, guild, req.bot_member(guild), req.user(), req.reason, seconds)
    return Result(None, 204)


@routes.route("DELETE", "/guilds/{guild_id}/bans/{user_id}")
async def unban(req: RestRequest) -> Any:
    guild = req.guild()
    actions.unban(req.core, guild, req.bot_member(guild), req.user().id, req.reason)
    return Result(None, 204)


def _ban(entry: Any) -> dict[str, Any]:
    return {"user": payloads.user(entry.user), "reason": entry.reason}


@routes.route("GET", "/guilds/{guild_id}/bans")
async def bans(req: RestRequest) -> Any:
    guild = req.guild()
    require(guild, req.bot_member(guild), P.BAN_MEMBERS)
    found = sorted(guild.bans.items())
    if "after" in req.query:
        found = [(k, v) for k, v in found if k > int(req.query["after"])]
    if "before" in req.query:
        found = [(k, v) for k, v in found if k < int(req.query["before"])]
    limit = min(int(req.query.get("limit", 1000)), 1000)
    return [_ban(v) for _, v in found[:limit]]


@routes.route("GET", "/guilds/{guild_id}/bans/{user_id}")
async def get_ban(req: RestRequest) -> Any:
    guild = req.guild()
    require(guild, req.bot_member(guild), P.BAN_MEMBERS)
    entry = guild.bans.get(int(req.params["user_id"]) if req.params["user_id"].isdigit() else 0)
    if entry is None:
        raise not_found("ban")
    return _ban(entry)


@routes.route("GET", "/guilds/{guild_id}/audit-logs")
async def audit_log(req: RestRequest) -> Any:
    guild = req.guild()
    require(guild, req.bot_member(guild), P.VIEW_AUDIT_LOG)
    entries = list(reversed(guild.audit_log))
    if "user_id" in req.query:
        entries = [e for e in entries if e["user_id"] == req.query["user_id"]]
    if "action_type" in req.query:
        entries = [e for e in entries if e["action_type"] == int(req.query["action_type"])]
    if "before" in req.query:
        entries = [e for e in entries if int(e["id"]) < int(req.query["before"])]
    entries = entries[: min(int(req.query.get("limit", 50)), 100)]
    user_ids = {int(e["user_id"]) for e in entries} | {int(e["target_id"]) for e in entries}
    users = [payloads.user(req.world.users[u]) for u in user_ids if u in req.world.users]
    return {
        "audit_log_entries": entries,
        "users": users,
        "integrations": [],
        "webhooks": [],
        "threads": [],
        "application_commands": [],
        "auto_moderation_rules": [],
        "guild_scheduled_events": [],
    }

"""Application command registration (global and per guild), as ``tree.sync()`` uses it."""

from __future__ import annotations

import re
from typing import Any

from sandbox.errors import invalid_form, not_found
from sandbox.rest.router import RestRequest, Result, RouteTable
from sandbox.world import World

routes = RouteTable()
_NAME = re.compile(r"^[-_\w]{1,32}$")
MAX_COMMANDS = 100
GLOBAL = "/applications/{application_id}/commands"
GUILD = "/applications/{application_id}/guilds/{guild_id}/commands"


def _validate(index: int, command: dict[str, Any]) -> None:
    name, kind = str(command.get("name", "")), int(command.get("type", 1))
    if kind == 1 and (not _NAME.match(name) or name != name.lower()):
        raise invalid_form(
            f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
        )
    if kind == 1 and not 1 <= len(command.get("description") or "") <= 100:
        raise invalid_form(
            f"{index}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    if len(command.get("options") or []) > 25:
        raise invalid_form(
            f"{index}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
        )


def _store(req: RestRequest) -> tuple[dict[tuple[str, int], dict[str, Any]], str | None]:
    if req.params["application_id"] != str(req.world.application_id):
        raise not_found("application")
    if "guild_id" in req.params:
        guild = req.guild()
        return guild.commands, str(guild.id)
    return req.world.commands, None


def _make(
    world: World, command: dict[str, Any], guild_id: str | None, existing: dict[str, Any] | None
) -> dict[str, Any]:
    made = {
        "type": 1,
        "description": "",
        "options": [],
        "default_member_permissions": None,
        "dm_permission": True,
        "nsfw": False,
        "contexts": None,
        "integration_types": [0],
        **command,
        "id": existing["id"] if existing else str(world.ids.next()),
        "application_id": str(world.application_id),
        "version": str(world.ids.next()),
    }
    if guild_id:
        made["guild_id"] = guild_id
    return made


@routes.route("GET", GLOBAL)
@routes.route("GET", GUILD)
async def list_commands(req: RestRequest) -> Any:
    store, _ = _store(req)
    return list(store.values())


@routes.route("PUT", GLOBAL)
@routes.route("PUT", GUILD)
async def bulk_overwrite(req: RestRequest) -> Any:
    store, guild_id = _store(req)
    wanted = req.json if isinstance(req.json, list) else []
    if len(wanted) > MAX_COMMANDS:
        raise invalid_form("_root", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    for index, command in enumerate(wanted):
        _validate(index, command)
    fresh = {}
    for command in wanted:
        key = (command["name"], int(command.get("type", 1)))
        fresh[key] = _make(req.world, command, guild_id, store.get(key))
    store.clear()
    store.update(fresh)
    req.core.changed()
    return list(store.values())


@routes.route("POST", GLOBAL)
@routes.route("POST", GUILD)
async def upsert(req: RestRequest) -> Any:
    store, guild_id = _store(req)
    _validate(0, req.body)
    key = (req.body["name"], int(req.body.get("type", 1)))
    existed = key in store
    store[key] = _make(req.world, req.body, guild_id, store.get(key))
    req.core.changed()
    return Result(store[key], 200 if existed else 201)


@routes.route("DELETE", GLOBAL + "/{command_id}")
@routes.route("DELETE", GUILD + "/{command_id}")
async def delete(req: RestRequest) -> Any:
    store, _ = _store(req)
    for key, command in list(store.items()):
        if command["id"] == req.params["command_id"]:
            del store[key]
            req.core.changed()
            return Result(None, 204)
    raise not_found("command")

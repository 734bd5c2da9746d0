"""Discord's limits on message bodies, answered with the same 400 errors Discord gives."""

from __future__ import annotations

from typing import Any

from sandbox.errors import SandboxError, invalid_form

MAX_CONTENT = 2000
#: A message nonce: an integer or a string of at most this many characters.
MAX_NONCE = 25
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
#: (key path, limit) for embed text fields.
_EMBED_LIMITS = (
    ("title", 256),
    ("description", 4096),
    ("footer.text", 2048),
    ("author.name", 256),
)
_FIELD_LIMITS = (("name", 256), ("value", 1024))


def _dig(data: dict[str, Any], path: str) -> str:
    value: Any = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


def _too_long(field: str, limit: int) -> SandboxError:
    return invalid_form(field, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def check_embeds(embeds: list[dict[str, Any]], prefix: str = "embeds") -> None:
    """Raise 400/50035 when an embed breaks a Discord limit."""
    if len(embeds) > MAX_EMBEDS:
        raise invalid_form(prefix, "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        for path, limit in _EMBED_LIMITS:
            text = _dig(embed, path)
            total += len(text)
            if len(text) > limit:
                raise _too_long(f"{prefix}.{i}.{path}", limit)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise invalid_form(
                f"{prefix}.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for j, fld in enumerate(fields):
            for key, limit in _FIELD_LIMITS:
                text = str(fld.get(key) or "")
                total += len(text)
                if not text:
                    raise invalid_form(
                        f"{prefix}.{i}.fields.{j}.{key}",
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    )
                if len(text) > limit:
                    raise _too_long(f"{prefix}.{i}.fields.{j}.{key}", limit)
    if total > MAX_EMBED_TOTAL:
        raise invalid_form(
            prefix, "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )


def check_message(body: dict[str, Any], *, has_files: bool, edit: bool = False) -> None:
    """Validate a create/edit message body: content length, embeds, not empty."""
    content = body.get("content") or ""
    if len(content) > MAX_CONTENT:
        raise _too_long("content", MAX_CONTENT)
    if len(str(body.get("nonce") or "")) > MAX_NONCE:
        raise _too_long("nonce", MAX_NONCE)
    embeds = body.get("embeds") or []
    check_embeds(embeds)
    empty = not (
        content
        or embeds
        or body.get("components")
        or has_files
        or body.get("sticker_ids")
        or body.get("poll")
    )
    if empty and not edit:
        raise SandboxError(400, 50006, "Cannot send an empty message")

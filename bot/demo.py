"""A small demo ward for the terminal chat and for trying the bot out."""

from __future__ import annotations

import tomllib

from bot.context import AppContext
from bot.texts import MESSAGES_DIR


async def seed_demo(ctx: AppContext) -> str:
    """Create the demo ward and its groups (from messages/vi/demo.toml) once."""
    data = tomllib.loads((MESSAGES_DIR / "vi" / "demo.toml").read_text(encoding="utf-8"))
    places = ctx.services.places
    code, name = data["ward"]["code"], data["ward"]["name"]
    ward = await places.ward_by_code(code)
    if ward is None:
        ward = await places.add_ward(code, name)
    existing = {g.code for g in await places.groups(ward.id)}
    for group in data["groups"]:
        if group["code"] not in existing:
            await places.add_group(code, group["code"], group["name"])
    return ward.code

"""A small demo ward for the terminal chat and for trying the bot out: groups, made-up
households with some progress already logged, and a running campaign (all from
messages/vi/demo.toml, the same every time)."""

from __future__ import annotations

import csv
import io
import random
import tomllib
from datetime import timedelta
from typing import Any

from bot.context import AppContext
from bot.core import Chat, Role, Sender
from bot.services.tables import read_table
from bot.texts import MESSAGES_DIR

DEMO_STAFF = "demo-staff"


async def seed_demo(ctx: AppContext) -> str:
    """Create the demo ward, its groups, households and campaign once."""
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
    if not await ctx.services.households.count_in_ward(ward.id):
        table = read_table(_households_csv(ctx, data).encode("utf-8"))
        await ctx.services.registry.import_table(ward.id, table)
    if not await ctx.services.campaigns.in_ward(ward.id):
        await _campaign(ctx, ward.code, ward.id, data["campaign"])
    await _people_and_chats(ctx, ward.code, data)
    return ward.code


def group_chat_id(code: str) -> str:
    """The demo's stand-in for a group's chat, shown in the terminal."""
    return f"nhom-{code}"


async def _people_and_chats(ctx: AppContext, ward_code: str, data: dict[str, Any]) -> None:
    """Leaders and helpers to send to, and one chat per group bound to it, so notices,
    polls and reminders have somewhere to go (grants and binds are idempotent)."""
    access = ctx.services.access
    for person in data.get("people", []):
        await access.grant(platform="console", user_id=person["user"], role=Role(person["role"]),
                           ward_code=ward_code, group_code=person.get("group"),
                           name=person["name"])
    staff = await access.identify("console", Sender(DEMO_STAFF, data["campaign"]["staff_name"]))
    for group in data["groups"]:
        title = data["chats"]["title"].replace("{{ code }}", group["code"])
        chat = Chat(group_chat_id(group["code"]), "group", title)
        binding = await ctx.services.chats.binding("console", chat.chat_id)
        if binding is None or binding.group_code != group["code"]:
            await ctx.services.chats.bind(staff, "console", chat, group["code"])


def _households_csv(ctx: AppContext, data: dict[str, Any]) -> str:
    people = data["households"]
    steps = ctx.services.households.steps
    pick = random.Random(2026)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["code", "group", "head_name", "address", "members", "adults",
                     *(s.key for s in steps)])
    for g_index, group in enumerate(data["groups"]):
        share = 0.8 - 0.15 * g_index  # groups at different stages, for the rankings
        for n in range(1, int(people["per_group"]) + 1):
            members = pick.randint(1, 6)
            adults = max(1, members - pick.randint(0, 2))
            head = " ".join((pick.choice(people["surnames"]), pick.choice(people["middle"]),
                             pick.choice(people["given"])))
            address = f"{pick.randint(1, 120)} {pick.choice(people['streets'])}"
            marks = []
            for step in steps:
                if pick.random() >= share:
                    marks.append("")
                elif step.per == "adult":
                    marks.append(str(pick.randint(1, adults)))
                else:
                    marks.append("x")
            writer.writerow([f"{group['code']}-{n:03d}", group["code"], head, address,
                             members, adults, *marks])
    return buffer.getvalue()


async def _campaign(ctx: AppContext, ward_code: str, ward_id: int, spec: dict[str, Any]) -> None:
    access = ctx.services.access
    await access.grant(platform="console", user_id=DEMO_STAFF, role=Role.COORDINATOR,
                       ward_code=ward_code, name=spec["staff_name"])
    staff = await access.identify("console", Sender(DEMO_STAFF, spec["staff_name"]))
    today = ctx.services.campaigns.today()
    await ctx.services.campaigns.create(
        staff, ward_id, title=spec["title"], step_key=spec["step"], target=int(spec["target"]),
        starts_on=today, ends_on=today + timedelta(days=int(spec["days"])), group_ids=[],
        days=list(spec["days_of_week"]), at_time=spec["at"],
    )

"""Greeting, joining with an invite, help, who-am-I and cancel: the first conversation."""

from __future__ import annotations

from bot.core import Button, Role
from bot.router import Ctx, Router
from bot.services.invites import InviteError
from handlers import guides

# The commands each role sees first as buttons under the greeting, most useful first.
# Commands that are not registered (features not installed) are skipped.
MENU_BY_ROLE: dict[Role, tuple[str, ...]] = {
    Role.GUEST: ("hoidap", "gopy", "trogiup"),
    Role.RESIDENT: ("hoidap", "gopy", "cuaho", "trogiup"),
    Role.HELPER: ("ghi", "tiendo", "hoidap", "trogiup"),
    Role.LEADER: ("thongbao", "tiendo", "moi", "trogiup"),
    Role.COORDINATOR: ("tiendo", "chiendich", "phananh", "moi", "trogiup"),
    Role.ADMIN: ("moi", "quyen", "trogiup"),
}


def menu_buttons(ctx: Ctx) -> list[list[Button]]:
    allowed = {c.name for c in ctx.router.commands_for(ctx.identity, private=True)}
    names = [n for n in MENU_BY_ROLE[ctx.identity.role] if n in allowed]
    buttons = [ctx.button(f"commands.{n}.button", f"menu:{n}") for n in names]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


async def start(ctx: Ctx) -> None:
    """`/start` greets by role; `/start CODE` (an invite link) joins first; `/start g_...`
    (a guide's link in a group post) shows its steps."""
    if ctx.args and await guides.open_link(ctx, ctx.args[0]):
        return
    if ctx.args:
        try:
            joined = await ctx.app.services.invites.redeem(ctx.identity, ctx.args[0])
        except InviteError as exc:
            await ctx.say(f"invites/join_{exc.reason}")
            return
        ctx.identity = await ctx.app.services.access.identify(
            ctx.platform.name, ctx.incoming.sender
        )
        await ctx.say(
            "invites/joined",
            role=joined.grant.role.value,
            group_name=joined.group_name,
            ward_name=joined.ward_name,
            already=joined.already_had,
        )
    grant = ctx.identity.main_grant
    await ctx.say(
        "basics/greeting",
        buttons=menu_buttons(ctx),
        name=ctx.incoming.sender.name,
        role=ctx.identity.role.value,
        group_code=grant.group_code if grant else "",
        ward_code=grant.ward_code if grant else "",
        private=ctx.incoming.is_private,
    )


async def help_(ctx: Ctx) -> None:
    """List exactly the commands this person may use here, one plain line each."""
    commands = ctx.router.commands_for(ctx.identity, private=ctx.incoming.is_private)
    lines = [(c.name, ctx.label(f"commands.{c.name}.help")) for c in commands]
    await ctx.say("basics/help", lines=lines, role=ctx.identity.role.value)


async def whoami(ctx: Ctx) -> None:
    identity = ctx.identity
    commands = ctx.router.commands_for(identity, private=True)
    await ctx.say(
        "basics/whoami",
        name=ctx.incoming.sender.name,
        platform=ctx.platform.name,
        user_id=identity.user_id,
        role=identity.role.value,
        is_admin=identity.is_admin,
        grants=identity.grants,
        commands=[c.name for c in commands],
    )


async def cancel(ctx: Ctx) -> None:
    had_form = await ctx.end_form()
    await ctx.say("basics/cancelled" if had_form else "basics/nothing_to_cancel")


async def menu_button(ctx: Ctx) -> None:
    """A greeting-menu button runs its command exactly as if it had been typed."""
    await ctx.answer_button()
    name = (ctx.incoming.payload or "").split(":", 1)[1]
    await ctx.router.run_command(ctx, name)


def register(router: Router) -> None:
    router.command("start", start, menu=False)
    router.command("trogiup", help_, aliases=("help",))
    router.command("quyen", whoami, aliases=("whoami",))
    router.command("huy", cancel, aliases=("cancel",))
    router.button("menu", menu_button)

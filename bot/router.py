"""From an `Incoming` to the one handler that answers it, with the role guard in between.

Order of decisions: ignore group chatter not meant for the bot → identify the person →
button press, command, or text (an open form first, then the free-text handler). Any
exception in a handler is logged with its context and answered with a polite apology; the
bot keeps running.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from bot.context import AppContext
from bot.core import Button, ChatEvent, Incoming, Outgoing, Platform, Sent, is_number
from bot.payloads import Payload, PayloadError, prefix_of
from bot.roles import Role
from bot.services.access import Identity
from bot.services.conversations import FormState, Who, numbered_menu
from bot.texts import split_text

log = logging.getLogger(__name__)

Handler = Callable[["Ctx"], Awaitable[None]]
ChatEventHandler = Callable[[AppContext, Platform, ChatEvent], Awaitable[None]]
Where = Literal["any", "private", "group"]
Buttons = Sequence[Sequence[Button]]
P = TypeVar("P", bound=Payload)
# Where the thing a press or command acts on lives: (ward id, group id or None for the ward);
# None when it does not exist (any more).
PlaceOf = Callable[["Ctx"], Awaitable[tuple[int, int | None] | None]]


@dataclass(frozen=True)
class Scope:
    """Where a route's role must be held, checked by the router before the handler runs.

    `OWN_WARD`: the role in the person's own ward (a coordinator of ward A is nobody in B).
    `own_group(place)`: the role over the group (or ward) that `place` finds for this press
    (a household's group, a poll's ward); ward-wide roles count in every group of the ward."""

    kind: Literal["ward", "group"]
    place: PlaceOf | None = None


OWN_WARD = Scope("ward")


def own_group(place: PlaceOf) -> Scope:
    return Scope("group", place)


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    aliases: tuple[str, ...] = ()
    role: Role = Role.GUEST
    where: Where = "any"
    menu: bool = True
    scope: Scope | None = None


@dataclass(frozen=True)
class ButtonRoute:
    prefix: str
    handler: Handler
    role: Role = Role.GUEST
    payload: type[Payload] | None = None
    scope: Scope | None = None


@dataclass
class Ctx:
    """What a handler gets: the message, the person, the dependencies, and ways to answer."""

    app: AppContext
    platform: Platform
    incoming: Incoming
    identity: Identity
    router: Router
    form: FormState | None = None
    answered_button: bool = field(default=False, init=False)
    pressed: Payload | None = field(default=None, init=False)
    # Values a handler works out several times while answering this one update (a guide's
    # topic values for each title and button): kept for the update, never longer.
    memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def who(self) -> Who:
        return Who(self.platform.name, self.incoming.chat.chat_id, self.incoming.sender.user_id)

    @property
    def locale(self) -> str:
        return self.identity.locale or self.app.config.bot.locale

    @property
    def args(self) -> tuple[str, ...]:
        return self.incoming.args

    def press(self, kind: type[P]) -> P:
        """The pressed button's payload, unpacked and validated by the router."""
        if not isinstance(self.pressed, kind):
            raise TypeError(f"this route does not carry {kind.__name__}")
        return self.pressed

    def button(self, key: str, payload: str | Payload, /, **context: Any) -> Button:
        return Button(label=self.label(key, **context), payload=str(payload))

    def t(self, name: str, /, **context: Any) -> str:
        return self.app.texts.render(name, self.locale, **context)

    def label(self, key: str, /, **context: Any) -> str:
        return self.app.texts.label(key, self.locale, **context)

    async def reply(self, text: str, buttons: Buttons = (), **kw: Any) -> Sent:
        """Answer this chat, first in line, cut at the platform's length limit; a 429 is
        waited out, never a lost answer (bot/delivery/courier.py)."""
        if buttons and not self.platform.capabilities.buttons:
            text = await self.router.numbered_menu(self.platform, self.who, text, buttons)
            buttons = ()
        pieces = split_text(text, self.platform.capabilities.max_text) or [""]
        rows = tuple(tuple(r) for r in buttons)
        messages = [
            Outgoing(text=piece, buttons=rows if i == len(pieces) - 1 else (), **kw)
            for i, piece in enumerate(pieces)
        ]
        return await self.app.services.courier.reply(
            self.platform, self.incoming.chat.chat_id, messages,
            is_group=not self.incoming.is_private,
        )

    async def say(self, name: str, /, buttons: Buttons = (), **context: Any) -> Sent:
        """Render `messages/<locale>/<name>.j2` and reply with it."""
        return await self.reply(self.t(name, **context), buttons)

    async def update(self, name: str, /, buttons: Buttons = (), **context: Any) -> Sent:
        """After a button press: replace the pressed message where possible, else reply."""
        text = self.t(name, **context)
        rows = tuple(tuple(r) for r in buttons)
        if (
            self.incoming.payload is not None
            and self.incoming.message_id
            and self.platform.capabilities.edit
            and len(text) <= self.platform.capabilities.max_text
        ):
            return await self.app.services.courier.reply(
                self.platform, self.incoming.chat.chat_id,
                [Outgoing(text=text, buttons=rows)], is_group=not self.incoming.is_private,
                edit_of=self.incoming.message_id,
            )
        return await self.reply(text, rows)

    async def answer_button(self, name: str | None = None, /, **context: Any) -> None:
        if self.answered_button:
            return
        self.answered_button = True
        text = self.label(name, **context) if name else ""
        if self.incoming.callback_id:
            await self.app.services.courier.answer_button(
                self.platform, self.incoming.callback_id, text)
        elif text and self.incoming.payload is not None and not self.platform.capabilities.buttons:
            await self.reply(text)  # a numbered choice: the acknowledgement is a message

    async def notify(
        self, platform: str, user_id: str, text: str, buttons: Buttons = ()
    ) -> None:
        """Tell another person in their private chat (on whichever platform they use): a
        durable outbox row, sent after replies and before bulk, by whichever instance sends
        for that platform."""
        target = self.router.platforms.get(platform)
        if buttons and target is not None and not target.capabilities.buttons:
            who = Who(platform, user_id, user_id)
            text = await self.router.numbered_menu(target, who, text, buttons)
            buttons = ()
        await self.app.services.courier.tell(platform, user_id, text, buttons)

    async def start_form(self, flow: str, step: str, data: dict[str, Any] | None = None) -> None:
        self.form = await self.app.services.conversations.save(self.who, flow, step, data or {})

    async def end_form(self) -> bool:
        self.form = None
        return await self.app.services.conversations.clear(self.who)


class Router:
    def __init__(self, app: AppContext) -> None:
        self.app = app
        self._commands: dict[str, Command] = {}
        self._ordered: list[Command] = []
        self._buttons: dict[str, ButtonRoute] = {}
        self._forms: dict[str, Handler] = {}
        self._text: Handler | None = None
        self._document: Handler | None = None
        self._chat_events: list[ChatEventHandler] = []
        self.platforms: dict[str, Platform] = app.platforms

    def attach(self, platform: Platform) -> None:
        """Make a running platform reachable for notifications to other people."""
        self.platforms[platform.name] = platform

    # --- registration -------------------------------------------------------------------
    def command(
        self,
        name: str,
        handler: Handler,
        *,
        aliases: Sequence[str] = (),
        role: Role = Role.GUEST,
        where: Where = "any",
        menu: bool = True,
        scope: Scope | None = None,
    ) -> None:
        if menu and not self.app.texts.has_label(f"commands.{name}.help"):
            raise ValueError(f"command /{name} has no commands.{name}.help in labels.toml")
        cmd = Command(name, handler, tuple(aliases), role, where, menu, scope)
        for key in (name, *aliases):
            if key in self._commands:
                raise ValueError(f"command /{key} registered twice")
            self._commands[key] = cmd
        self._ordered.append(cmd)

    def button(
        self, prefix: str | type[Payload], handler: Handler, *, role: Role = Role.GUEST,
        scope: Scope | None = None,
    ) -> None:
        """Route presses of a payload class (or, for old code, a bare prefix) to `handler`.
        The router unpacks the payload and checks role and scope before the handler runs."""
        payload = None if isinstance(prefix, str) else prefix
        key = prefix if isinstance(prefix, str) else prefix.prefix
        if key in self._buttons or ":" in key:
            raise ValueError(f"bad or duplicate button prefix {key!r}")
        if scope is not None and scope.kind == "group" and payload is None:
            raise ValueError(f"a group scope needs a typed payload ({key!r})")
        self._buttons[key] = ButtonRoute(key, handler, role, payload, scope)

    @property
    def button_routes(self) -> list[ButtonRoute]:
        return list(self._buttons.values())

    def form(self, flow: str, handler: Handler) -> None:
        if flow in self._forms:
            raise ValueError(f"form {flow!r} registered twice")
        self._forms[flow] = handler

    def text(self, handler: Handler) -> None:
        self._text = handler

    def document(self, handler: Handler) -> None:
        """A file sent in a private chat with no form open (a list to import)."""
        self._document = handler

    def chat_event(self, handler: ChatEventHandler) -> None:
        self._chat_events.append(handler)

    # --- questions handlers ask -----------------------------------------------------------
    @property
    def commands(self) -> list[Command]:
        return list(self._ordered)

    def commands_for(self, identity: Identity, *, private: bool) -> list[Command]:
        """Exactly the commands this person may use here, in registration order."""
        return [
            c for c in self._ordered
            if c.menu and identity.role >= c.role
            and (c.where == "any" or (c.where == "private") == private)
        ]

    async def numbered_menu(
        self, platform: Platform, who: Who, text: str, buttons: Buttons
    ) -> str:
        """Buttons as "1. ..., 2. ..." for platforms without them; the choice is remembered."""
        return await numbered_menu(self.app.services.conversations, self.app.texts,
                                   self.app.config.bot.locale, who, text, buttons)

    async def _numbered_choice(self, platform: Platform, incoming: Incoming) -> Incoming:
        """On platforms without buttons, "2" after a numbered menu is a press of button 2."""
        text = incoming.text.strip()
        if platform.capabilities.buttons or incoming.command or len(text) > 3 or \
                not is_number(text) or not incoming.is_private:
            return incoming  # in a group, "2" is chatter, not a press of an old menu
        who = Who(platform.name, incoming.chat.chat_id, incoming.sender.user_id)
        payload = await self.app.services.conversations.menu_choice(who, int(text))
        if payload is None:
            return incoming
        return replace(incoming, payload=payload, text="", addressed=True)

    # --- dispatch ---------------------------------------------------------------------------
    async def dispatch(self, platform: Platform, incoming: Incoming) -> None:
        """Handle one update with one database session (docs/performance.md)."""
        if incoming.foreign_command:
            return
        incoming = _without_nul(incoming)
        async with self.app.db.unit_of_work():
            await self._dispatch(platform, incoming)

    async def _dispatch(self, platform: Platform, incoming: Incoming) -> None:
        metrics = self.app.metrics
        metrics.mark_ok(platform.name)
        try:
            incoming = await self._numbered_choice(platform, incoming)
        except Exception:
            log.exception("numbered choice failed: platform=%s chat=%s", platform.name,
                          incoming.chat.chat_id)
            await self._apologize(platform, incoming, None)
            return
        in_group = not incoming.is_private
        if in_group and not (incoming.command or incoming.payload or incoming.addressed):
            return  # ordinary chatter in a group: never the bot's business
        kind = "button" if incoming.payload is not None else (
            "command" if incoming.command else "text"
        )
        metrics.updates.labels(platform.name, kind).inc()
        started = time.perf_counter()
        identity: Identity | None = None
        ctx: Ctx | None = None
        try:
            identity = await self.app.services.access.identify(platform.name, incoming.sender)
            if identity.is_admin and identity.ward_id is None:
                # An admin from [admins] holds no grant: they work in the ward they chose.
                identity = await self.app.services.staff.with_admin_ward(identity)
            ctx = Ctx(self.app, platform, incoming, identity, self)
            await self._route(ctx)
            if "database" in metrics.down:
                metrics.mark_up("database")  # writing works again
        except Exception as exc:
            if _is_database_failure(exc):
                # Disk full, read-only, server gone: /healthz says so until a write works.
                metrics.mark_down("database", type(exc).__name__)
            log.exception(
                "handler failed: platform=%s chat=%s user=%s command=%s payload=%s",
                platform.name, incoming.chat.chat_id, incoming.sender.user_id,
                incoming.command, incoming.payload,
            )
            metrics.handler_errors.labels(platform.name).inc()
            await self._apologize(platform, incoming, ctx)
        finally:
            metrics.handler_seconds.labels(kind).observe(time.perf_counter() - started)
            if ctx is not None and incoming.callback_id and not ctx.answered_button:
                try:
                    await ctx.answer_button()
                except Exception:
                    log.warning("could not answer button press", exc_info=True)

    async def _route(self, ctx: Ctx) -> None:
        incoming = ctx.incoming
        if incoming.payload is not None:
            await self._route_button(ctx, incoming.payload)
        elif incoming.command is not None:
            await self._route_command(ctx, incoming.command)
        else:
            await self._route_text(ctx)

    async def _route_button(self, ctx: Ctx, payload: str) -> None:
        route = self._buttons.get(prefix_of(payload))
        if route is None:
            await ctx.answer_button("core.stale_button")
            return
        if route.payload is not None:
            try:
                ctx.pressed = route.payload.unpack(payload)
            except PayloadError as exc:
                log.info("bad payload for %s: %s", route.prefix, exc)
                await ctx.answer_button("core.stale_button")
                return
        if not await self._allowed(ctx, route.role, route.scope):
            return
        ctx.form = await self._open_form(ctx)
        await route.handler(ctx)

    async def run_command(self, ctx: Ctx, name: str) -> None:
        """Run a command on behalf of a menu button, with the same guard as if typed."""
        await self._route_command(ctx, name)

    async def _route_command(self, ctx: Ctx, name: str) -> None:
        cmd = self._commands.get(name)
        if cmd is None:
            if ctx.incoming.is_private or ctx.incoming.addressed:
                await ctx.say("core/unknown_command", command=name)
            return
        if cmd.where == "private" and not ctx.incoming.is_private:
            await ctx.say("core/private_only", command=cmd.name, bot=ctx.platform.bot_username)
            return
        if cmd.where == "group" and ctx.incoming.is_private:
            await ctx.say("core/group_only", command=cmd.name)
            return
        if not await self._allowed(ctx, cmd.role, cmd.scope):
            return
        ctx.form = await self._open_form(ctx)
        await cmd.handler(ctx)

    async def _route_text(self, ctx: Ctx) -> None:
        state = await self.app.services.conversations.get(ctx.who)
        if state is not None and state.expired:
            await ctx.say("core/form_expired")
            return
        if state is not None and state.flow in self._forms:
            ctx.form = state
            await self._forms[state.flow](ctx)
            return
        documents = [a for a in ctx.incoming.attachments if a.kind == "document"]
        if documents and ctx.incoming.is_private and self._document is not None:
            await self._document(ctx)
            return
        if self._text is not None:
            await self._text(ctx)

    async def _open_form(self, ctx: Ctx) -> FormState | None:
        state = await self.app.services.conversations.get(ctx.who)
        return None if state is None or state.expired else state

    async def _allowed(self, ctx: Ctx, role: Role, scope: Scope | None = None) -> bool:
        if scope is None and ctx.identity.role >= role:
            return True
        if scope is not None and ctx.identity.role >= role:
            found = await self._role_in_scope(ctx, scope)
            if found is None:  # the thing pressed on is gone
                await ctx.answer_button("core.stale_button")
                return False
            held, where = found
            if held >= role:
                return True
            log.info("denied by scope: user=%s scope=%s command=%s payload=%s",
                     ctx.incoming.sender.user_id, where, ctx.incoming.command,
                     ctx.incoming.payload)
            await ctx.answer_button()
            await ctx.say("core/not_your_scope", scope=where)
            return False
        log.info(
            "denied: user=%s role=%s needs=%s command=%s payload=%s",
            ctx.incoming.sender.user_id, ctx.identity.role, role,
            ctx.incoming.command, ctx.incoming.payload,
        )
        await ctx.answer_button()
        await ctx.say("core/denied", needed=role.value, role=ctx.identity.role.value)
        return False

    async def _role_in_scope(
        self, ctx: Ctx, scope: Scope
    ) -> tuple[Role, Literal["ward", "group"]] | None:
        """The person's role where the route acts, and whether that is a ward or a group
        (what a refusal names); None when that place is unknown."""
        if scope.kind == "ward" or scope.place is None:
            ward_id = ctx.identity.ward_id
            if ward_id is None:  # only an admin without a ward gets here: the handler says so
                return ctx.identity.role, "ward"
            return ctx.identity.role_in_ward(ward_id), "ward"
        place = await scope.place(ctx)
        if place is None:
            return None
        ward_id, group_id = place
        if group_id is None:  # a thing of the whole ward (a notice, a file to import)
            return ctx.identity.role_in_ward(ward_id), "ward"
        return ctx.identity.role_in_group(ward_id, group_id), "group"

    async def _apologize(self, platform: Platform, incoming: Incoming, ctx: Ctx | None) -> None:
        try:
            locale = ctx.locale if ctx else self.app.config.bot.locale
            text = self.app.texts.render("core/error", locale)
            await self.app.services.courier.reply(  # waits out a 429 like any reply
                platform, incoming.chat.chat_id, [Outgoing(text=text)],
                is_group=not incoming.is_private,
            )
        except Exception:
            log.exception("could not even apologize to chat %s", incoming.chat.chat_id)

    async def dispatch_chat_event(self, platform: Platform, event: ChatEvent) -> None:
        async with self.app.db.unit_of_work():
            await self._dispatch_chat_event(platform, event)

    async def _dispatch_chat_event(self, platform: Platform, event: ChatEvent) -> None:
        for handler in self._chat_events:
            try:
                await handler(self.app, platform, event)
            except Exception:
                log.exception(
                    "chat event handler failed: platform=%s chat=%s kind=%s",
                    platform.name, event.chat.chat_id, event.kind,
                )


def _is_database_failure(exc: BaseException) -> bool:
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError)


def _without_nul(incoming: Incoming) -> Incoming:
    """NUL characters mean nothing to a person and PostgreSQL refuses them in text: drop
    them on the way in instead of apologising for a failed write."""
    if "\x00" not in incoming.text and "\x00" not in incoming.sender.name and not any(
        "\x00" in a for a in incoming.args
    ):
        return incoming
    return replace(
        incoming, text=incoming.text.replace("\x00", ""),
        args=tuple(a.replace("\x00", "") for a in incoming.args),
        sender=replace(incoming.sender, name=incoming.sender.name.replace("\x00", ""),
                       username=incoming.sender.username.replace("\x00", "")),
    )

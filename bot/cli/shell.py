"""`cds-bot shell`: talk to the bot in a terminal as any role, through the real router."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from bot.app import build_router
from bot.cli.demo import group_chat_id, seed_demo
from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.context import AppContext, Content, build_context
from bot.core import Chat, Incoming, Sender, is_number, parse_command_text
from bot.db import Database
from bot.platforms.console import ConsolePlatform
from bot.roles import Role
from bot.texts import to_terminal

EXIT_WORDS = {"/thoat", "/exit", "/quit"}


class Shell:
    def __init__(
        self,
        config: Config,
        *,
        role: Role,
        demo: bool,
        read_line: Callable[[], str] = input,
        write: Callable[[str], None] = print,
        files_dir: Path = Path("data/shell-files"),
        clock: Clock | None = None,
        content: Content | None = None,
    ) -> None:
        self.role = role
        self.demo = demo
        self._read_line = read_line
        self._write = write
        self.user_id = f"shell-{role.value}"
        admins = [self.user_id] if role == Role.ADMIN else []
        if demo:
            # The demo shows group posts at once, whatever the hour.
            config = config.model_copy(
                update={"bot": config.bot.model_copy(update={"quiet_hours": ""})})
        self.db = Database(config.database.url)
        self.context: AppContext = build_context(
            config, self.db, clock or SystemClock(), console_admins=admins, content=content
        )
        self.router = build_router(self.context)
        color = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        self.platform = ConsolePlatform(write, files_dir=files_dir, color=color)
        self.router.attach(self.platform)
        self.chat = Chat(chat_id=self.user_id, kind="private")
        self.platform.own_chat = self.user_id
        self.platform.unknown_recipient = self.context.texts.label("shell.to_someone")
        self._ward_code = ""

    @property
    def sender(self) -> Sender:
        return Sender(user_id=self.user_id, name=self.context.texts.label("shell.user_name"))

    async def prepare(self) -> str:
        """Migrate, seed the demo ward if asked, and give the chosen role; returns the ward."""
        await self.db.upgrade()
        ward_code = await seed_demo(self.context) if self.demo else ""
        if not ward_code:
            wards = await self.context.services.places.wards()
            ward_code = wards[0].code if wards else ""
        if self.role not in (Role.GUEST, Role.ADMIN):
            if not ward_code:
                raise SystemExit("no ward yet: run `cds-bot shell --demo` or `cds-bot ward add`")
            group = ""
            if self.role in (Role.RESIDENT, Role.HELPER, Role.LEADER):
                ward = await self.context.services.places.ward_by_code(ward_code)
                assert ward is not None
                groups = await self.context.services.places.groups(ward.id)
                if not groups:
                    raise SystemExit(f"ward {ward_code} has no group: `cds-bot group add`")
                group = groups[0].code
            if not self.demo:
                await self._end_role(ward_code)  # left over by a shell that was killed
            await self.context.services.access.grant(
                platform=self.platform.name, user_id=self.user_id, role=self.role,
                ward_code=ward_code, group_code=group or None, name=self.sender.name,
            )
            self._ward_code = ward_code
        return ward_code

    async def _end_role(self, ward_code: str) -> None:
        """On a real database the shell's role lasts only while the shell runs."""
        if self.role in (Role.GUEST, Role.ADMIN) or not ward_code:
            return
        await self.context.services.staff.revoke_by_user(
            platform=self.platform.name, user_id=self.user_id, role=self.role,
            ward_code=ward_code,
        )

    def incoming_for(self, line: str) -> Incoming | None:
        text = line.strip()
        if not text:
            return None
        if is_number(text):
            button = self.platform.press(int(text))
            if button is not None:
                return Incoming(
                    platform=self.platform.name, chat=self.chat, sender=self.sender,
                    payload=button.payload, callback_id=f"cb-{text}", addressed=True,
                )
        command, args, _ = parse_command_text(text)
        return Incoming(
            platform=self.platform.name, chat=self.chat, sender=self.sender, text=text,
            command=command, args=args, addressed=True,
        )

    async def say(self, line: str) -> None:
        incoming = self.incoming_for(line)
        if incoming is not None:
            await self.router.dispatch(self.platform, incoming)
            # Messages to other people are outbox rows: deliver them now, as `run` would.
            while await self.context.services.outbox.run_once(urgent=True):
                pass

    async def run(self) -> int:
        outbox = self.context.services.outbox
        started = False
        try:
            ward_code = await self.prepare()
            await self._learn_recipients(ward_code)
            intro = self.context.texts.render("shell/intro", role=self.role.value, ward=ward_code)
            self._write(to_terminal(intro, color=False))
            await outbox.start()  # messages to group chats and other people go through it
            started = True
            await self.say("/start")
            while True:
                line = await self._next_line()
                if line is None or line.strip().lower() in EXIT_WORDS:
                    break
                await self.say(line)
            await self._drain()
            self._write(to_terminal(self.context.texts.render("shell/bye"), color=False))
            return 0
        finally:
            try:
                if started:
                    await outbox.stop(grace=1.0)
                if not self.demo and self._ward_code:
                    await self._end_role(self._ward_code)
            finally:
                await self.db.dispose()

    async def _next_line(self) -> str | None:
        """The next line typed (None: end of input), read by a daemon thread so Ctrl-C ends
        the shell at once instead of waiting for a blocked input(). One read at a time: after
        /thoat nothing is left waiting on the keyboard."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[str | None] = loop.create_future()

        def put(item: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                loop.call_soon_threadsafe(
                    lambda: None if result.done() else result.set_result(item))

        def read() -> None:
            try:
                put(self._read_line())
            except (EOFError, KeyboardInterrupt, OSError, ValueError):
                put(None)

        threading.Thread(target=read, name="shell-input", daemon=True).start()
        return await result

    async def _drain(self, seconds: float = 5.0) -> None:
        """Before leaving, let the outbox deliver what is already due (piped input ends
        before a notice reaches the group chats)."""
        from sqlmodel import col, func, select

        from bot.models import Delivery

        due = select(func.count()).select_from(Delivery).where(
            col(Delivery.state).in_(("pending", "sending")),
            col(Delivery.not_before) <= self.context.clock.now(),
        )
        for _ in range(int(seconds / 0.05)):
            async with self.db.session() as session:
                if not (await session.exec(due)).one():
                    return
            await asyncio.sleep(0.05)

    async def _learn_recipients(self, ward_code: str) -> None:
        """Headers for what the bot sends to others: group chats and people by name."""
        labels = self.context.texts.label
        ward = await self.context.services.places.ward_by_code(ward_code) if ward_code else None
        if ward is None:
            return
        for group in await self.context.services.places.groups(ward.id):
            self.platform.recipients[group_chat_id(group.code)] = labels(
                "shell.to_group", code=group.code, name=group.name)
        for person in await self.context.services.staff.members(ward.id):
            if person.platform != self.platform.name or person.user_id == self.user_id:
                continue
            grant = max(person.grants, key=lambda g: g.role.rank)
            self.platform.recipients[person.user_id] = labels(
                "shell.to_person", name=person.name, role=grant.role.value,
                group=grant.group_code)

"""`cds-bot shell`: talk to the bot in a terminal as any role, through the real router."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from bot.cli.demo import seed_demo
from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.context import AppContext, build_context
from bot.core import Chat, Incoming, Role, Sender, is_number, parse_command_text
from bot.db import Database
from bot.platforms.console import ConsolePlatform
from bot.router import Router
from bot.texts import to_terminal
from handlers import register_all

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
    ) -> None:
        self.role = role
        self.demo = demo
        self._read_line = read_line
        self._write = write
        self.user_id = f"shell-{role.value}"
        admins = [self.user_id] if role == Role.ADMIN else []
        self.db = Database(config.database.url)
        self.context: AppContext = build_context(
            config, self.db, clock or SystemClock(), console_admins=admins
        )
        self.router = Router(self.context)
        register_all(self.router)
        color = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        self.platform = ConsolePlatform(write, files_dir=files_dir, color=color)
        self.router.attach(self.platform)
        self.chat = Chat(chat_id=self.user_id, kind="private")

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
            await self.context.services.access.grant(
                platform=self.platform.name, user_id=self.user_id, role=self.role,
                ward_code=ward_code, group_code=group or None, name=self.sender.name,
            )
        return ward_code

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
        try:
            ward_code = await self.prepare()
            intro = self.context.texts.render("shell/intro", role=self.role.value, ward=ward_code)
            self._write(to_terminal(intro, color=False))
            await self.say("/start")
            while True:
                try:
                    line = await asyncio.to_thread(self._read_line)
                except (EOFError, KeyboardInterrupt):
                    break
                if line.strip().lower() in EXIT_WORDS:
                    break
                await self.say(line)
            self._write(to_terminal(self.context.texts.render("shell/bye"), color=False))
            return 0
        finally:
            await self.db.dispose()

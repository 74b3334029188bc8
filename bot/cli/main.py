"""`cds-bot`: run the bot, chat with it in a terminal, and manage wards, groups and roles.

Every operator mistake (bad config, unknown ward, bad role) ends with one line on stderr and
a non-zero exit code, never a traceback.

Imports are lazy: this module loads only argparse and the config; each subcommand imports
what it uses inside its own function, so `cds-bot --help` or `ward list` do not pay for the
whole bot (python-telegram-bot, aiohttp, Jinja2, alembic). Keep new subcommands that way.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core import Role

if TYPE_CHECKING:
    from bot.config import Config, LoadedConfig
    from bot.db import Database

DEMO_DATABASE_URL = "sqlite+aiosqlite:///./data/demo.db"
EXIT_CONFIG = 2
EXIT_USAGE = 1
EXIT_REJECTED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cds-bot", description="Ward digital-transformation outreach bot (Telegram, Zalo)."
    )
    parser.add_argument("--config", help="config file (default: $CDS_CONFIG or ./config.toml)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="start the bot: platforms, workers, scheduler and web server")

    shell = sub.add_parser("shell", help="chat with the bot in this terminal, no token needed")
    shell.add_argument("--demo", action="store_true", help="use a demo ward in data/demo.db")
    shell.add_argument(
        "--as", dest="role", default="resident", choices=[r.value for r in Role],
        help="the role to chat as (default: resident)",
    )

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations")

    ward = sub.add_parser("ward", help="wards")
    ward_sub = ward.add_subparsers(dest="ward_command", required=True)
    ward_add = ward_sub.add_parser("add", help="add a ward")
    ward_add.add_argument("code")
    ward_add.add_argument("name")
    ward_sub.add_parser("list", help="list wards and their groups")

    group = sub.add_parser("group", help="residential groups")
    group_sub = group.add_subparsers(dest="group_command", required=True)
    group_add = group_sub.add_parser("add", help="add a residential group to a ward")
    group_add.add_argument("ward")
    group_add.add_argument("code")
    group_add.add_argument("name")

    imports = sub.add_parser("import", help="import the ward's lists")
    import_sub = imports.add_subparsers(dest="import_command", required=True)
    households = import_sub.add_parser(
        "households", help="import or update households from a CSV or XLSX file"
    )
    households.add_argument("file", type=Path)
    households.add_argument("--ward", required=True, help="ward code")
    households.add_argument("--dry-run", action="store_true", help="check only, write nothing")
    households.add_argument("--strict", action="store_true",
                            help="write nothing if any row is rejected")

    exports = sub.add_parser("export", help="export reports")
    export_sub = exports.add_subparsers(dest="export_command", required=True)
    progress = export_sub.add_parser("progress", help="progress per group and household")
    progress.add_argument("--ward", required=True, help="ward code")
    progress.add_argument("--format", choices=["csv", "xlsx"], default="xlsx")
    progress.add_argument("-o", "--output", type=Path, required=True, help="file to write")

    grant = sub.add_parser("grant", help="give a role to a chat user")
    grant.add_argument("role", choices=[r.value for r in Role if r not in (Role.GUEST, Role.ADMIN)])
    grant.add_argument("--platform", default="telegram", choices=["telegram", "zalo", "zalo_oa"])
    grant.add_argument("--user", required=True, help="the user's numeric id on that platform")
    grant.add_argument("--ward", required=True)
    grant.add_argument("--group", help="residential group code (residents, helpers, leaders)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.config import ConfigError, load_config, resolve_path

    try:
        loaded = load_config(resolve_path(args.config))
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    _setup_logging(loaded.config)
    handlers: dict[str, Callable[[argparse.Namespace, LoadedConfig], int]] = {
        "run": _run, "shell": _shell, "db": _db, "ward": _ward, "group": _group, "grant": _grant,
        "import": _import, "export": _export,
    }
    try:
        return handlers[args.command](args, loaded)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except Exception as exc:
        from bot.services.places import PlaceError

        if isinstance(exc, PlaceError):
            return _fail(_place_error(exc), EXIT_USAGE)
        raise
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from bot.config import ConfigError, MissingTokenError
    from bot.texts import Texts, to_plain

    try:
        loaded.config.check_runnable()
    except MissingTokenError as exc:
        texts = Texts(locale=loaded.config.bot.locale)
        print(f"cds-bot: {loaded.path}: {exc}", file=sys.stderr)
        print(to_plain(texts.render("shell/no_token")), file=sys.stderr)
        if sys.stdin.isatty() and _confirm(to_plain(texts.render("shell/offer"))):
            return _shell(argparse.Namespace(demo=True, role="resident"), loaded)
        return EXIT_CONFIG
    except ConfigError as exc:
        return _fail(f"{loaded.path}: {exc}", EXIT_CONFIG)
    from bot.app import BotApp

    asyncio.run(BotApp(loaded.config).run_forever())
    return 0


def _shell(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from bot.cli.shell import Shell
    from bot.config import Config

    config = loaded.config
    if args.demo and config.database.url == Config().database.url:
        # The demo never writes into the real database unless the operator points it there.
        config = config.model_copy(
            update={"database": config.database.model_copy(update={"url": DEMO_DATABASE_URL})}
        )
    return asyncio.run(Shell(config, role=Role(args.role), demo=args.demo).run())


def _db(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def upgrade(db: Database) -> None:
        await db.upgrade()
        print(f"database is up to date: {_safe_url(db.url)}")

    return _with_db(loaded, upgrade)


def _ward(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def act(db: Database) -> None:
        from bot.clock import SystemClock
        from bot.services.places import Places

        await db.upgrade()
        places = Places(db, SystemClock())
        if args.ward_command == "add":
            ward = await places.add_ward(args.code, args.name)
            print(f"ward {ward.code} added: {ward.name}")
            return
        for ward in await places.wards():
            groups = await places.groups(ward.id)
            print(f"{ward.code}\t{ward.name}\t{len(groups)} groups: "
                  + ", ".join(g.code for g in groups))

    return _with_db(loaded, act)


def _group(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def act(db: Database) -> None:
        from bot.clock import SystemClock
        from bot.services.places import Places

        await db.upgrade()
        places = Places(db, SystemClock())
        group = await places.add_group(args.ward, args.code, args.name)
        print(f"group {group.code} added to ward {args.ward.upper()}: {group.name}")

    return _with_db(loaded, act)


def _grant(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    user = str(args.user).strip()
    if not user or user.startswith("@") or (args.platform == "telegram" and not user.isdigit()):
        # A name or @username would make a member nobody can ever be.
        return _fail(f"--user must be the person's {args.platform} user id "
                     "(a number on Telegram; /quyen shows it), not a name", EXIT_USAGE)

    async def act(db: Database) -> None:
        from bot.clock import SystemClock
        from bot.services.access import Access

        await db.upgrade()
        access = Access(db, SystemClock(), {})
        grant = await access.grant(
            platform=args.platform, user_id=str(args.user), role=Role(args.role),
            ward_code=args.ward, group_code=args.group,
        )
        scope = f"group {grant.group_code}" if grant.group_code else "the whole ward"
        print(f"{args.platform} user {args.user} is now {grant.role.value} "
              f"of {scope} in ward {grant.ward_code}")

    return _with_db(loaded, act)


def _import(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    """Prints the same report a coordinator gets in chat; exits 3 when rows were rejected
    (so a script notices), 1 when the file itself cannot be read."""
    from bot.clock import SystemClock
    from bot.context import build_context
    from bot.services.places import PlaceError
    from bot.services.tables import TableError, read_table
    from bot.texts import Texts, to_plain

    try:
        table = read_table(args.file.read_bytes(), args.file.name)
    except OSError as exc:
        return _fail(f"{args.file}: {exc.strerror or exc}", EXIT_USAGE)
    except TableError as exc:
        texts = Texts(locale=loaded.config.bot.locale)
        reason = texts.label(f"households.table_error.{exc.reason}", detail=exc.detail)
        return _fail(f"{args.file}: {reason}", EXIT_USAGE)
    outcome: list[int] = []

    async def act(db: Database) -> None:
        await db.upgrade()
        context = build_context(loaded.config, db, SystemClock())
        ward = await context.services.places.ward_by_code(args.ward)
        if ward is None:
            raise PlaceError("unknown_ward", code=args.ward.upper())
        try:
            report = await context.services.registry.import_table(
                ward.id, table, dry_run=args.dry_run, strict=args.strict
            )
        except TableError as exc:
            reason = context.texts.label(f"households.table_error.{exc.reason}",
                                         detail=exc.detail)
            print(f"cds-bot: {args.file}: {reason}", file=sys.stderr)
            outcome.append(EXIT_USAGE)
            return
        text = context.texts.render("households/import_report", report=report,
                                    filename=args.file.name)
        print(to_plain(text))
        outcome.append(EXIT_REJECTED if report.rejected else 0)

    code = _with_db(loaded, act)
    return code or (outcome[0] if outcome else 0)


def _export(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from bot.clock import SystemClock
    from bot.context import build_context
    from bot.services.places import PlaceError
    from bot.services.registry import rows_to_csv
    from bot.services.reports import progress_xlsx

    async def act(db: Database) -> None:
        await db.upgrade()
        context = build_context(loaded.config, db, SystemClock())
        ward = await context.services.places.ward_by_code(args.ward)
        if ward is None:
            raise PlaceError("unknown_ward", code=args.ward.upper())
        rows = await context.services.registry.household_rows(ward.id)
        if args.format == "csv":
            data = rows_to_csv(rows)
        else:
            progress = await context.services.progress.ward(ward.id)
            data = progress_xlsx(progress, rows, context.texts.label, loaded.config.bot.tz)
        args.output.write_bytes(data)
        print(f"{len(rows)} households written to {args.output}")

    return _with_db(loaded, act)


def _with_db(loaded: LoadedConfig, action: Callable[[Database], Awaitable[None]]) -> int:
    from bot.db import Database

    async def go() -> None:
        db = Database(loaded.config.database.url)
        try:
            await action(db)
        finally:
            await db.dispose()

    try:
        asyncio.run(go())
    except OSError as exc:
        return _fail(f"database {_safe_url(loaded.config.database.url)}: {exc}", EXIT_USAGE)
    return 0


_PLACE_ERRORS = {
    "bad_code": "code {code!r} must be letters, digits, - or _ (up to 32)",
    "empty_name": "the name of {code} is empty",
    "ward_exists": "ward {code} already exists",
    "group_exists": "group {code} already exists in this ward",
    "unknown_ward": "no ward {code} (see `cds-bot ward list`)",
    "unknown_group": "no group {code} in this ward",
    "group_required": "role {role} needs --group (it is given per residential group)",
}


def _place_error(exc: Exception) -> str:
    from bot.services.places import PlaceError

    assert isinstance(exc, PlaceError)
    return _PLACE_ERRORS.get(exc.reason, exc.reason).format(**exc.details)


def _safe_url(url: str) -> str:
    """The database URL without its password, for messages and logs."""
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


def _fail(message: str, code: int) -> int:
    print(f"cds-bot: {message}", file=sys.stderr)
    return code


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} ")
    except EOFError:
        return False
    return answer.strip().lower()[:1] in ("", "c", "y")


def _setup_logging(config: Config) -> None:
    logging.basicConfig(
        level=config.bot.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())

"""`cds-bot`: run the bot, chat with it in a terminal, and manage wards, groups and roles.

Every operator mistake (bad config, unknown ward, bad role) ends with one line on stderr and
a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import (
    Config,
    ConfigError,
    LoadedConfig,
    MissingTokenError,
    load_config,
    resolve_path,
)
from bot.roles import Role
from bot.services.errors import ServiceError

if TYPE_CHECKING:
    # The heavy modules (the app, SQLAlchemy and alembic, Jinja2, openpyxl) are imported
    # inside the subcommand that needs them: `cds-bot --help` loads argparse and the config.
    from bot.db import Database
    from bot.texts import Texts

DEMO_DATABASE_URL = "sqlite+aiosqlite:///./data/demo.db"
EXIT_CONFIG = 2
EXIT_USAGE = 1
EXIT_REJECTED = 3


def build_parser() -> argparse.ArgumentParser:
    h = _help_texts()
    parser = argparse.ArgumentParser(
        prog="cds-bot", description=h["description"]
    )
    parser.add_argument("--config", help=h["config"])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help=h["run"])

    shell = sub.add_parser("shell", help=h["shell"])
    shell.add_argument("--demo", action="store_true", help=h["shell_demo"])
    shell.add_argument("--reset", action="store_true",
                       help=h["shell_reset"])
    shell.add_argument(
        "--as", dest="role", default="resident", choices=[r.value for r in Role],
        help=h["shell_as"],
    )

    db = sub.add_parser("db", help=h["db"])
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help=h["db_upgrade"])
    db_backup = db_sub.add_parser(
        "backup", help=h["db_backup"])
    db_backup.add_argument("file", nargs="?", type=Path,
                           help=h["db_backup_file"])
    db_backup.add_argument("--keep", type=int, default=0,
                           help=h["db_backup_keep"])
    db_restore = db_sub.add_parser("restore", help=h["db_restore"])
    db_restore.add_argument("file", type=Path)

    ward = sub.add_parser("ward", help=h["ward"])
    ward_sub = ward.add_subparsers(dest="ward_command", required=True)
    ward_add = ward_sub.add_parser("add", help=h["ward_add"])
    ward_add.add_argument("code")
    ward_add.add_argument("name")
    ward_sub.add_parser("list", help=h["ward_list"])

    group = sub.add_parser("group", help=h["group"])
    group_sub = group.add_subparsers(dest="group_command", required=True)
    group_add = group_sub.add_parser("add", help=h["group_add"])
    group_add.add_argument("ward")
    group_add.add_argument("code")
    group_add.add_argument("name")

    imports = sub.add_parser("import", help=h["import"])
    import_sub = imports.add_subparsers(dest="import_command", required=True)
    households = import_sub.add_parser(
        "households", help=h["import_households"]
    )
    households.add_argument("file", type=Path)
    households.add_argument("--ward", required=True, help=h["ward_code"])
    households.add_argument("--dry-run", action="store_true", help=h["dry_run"])
    households.add_argument("--strict", action="store_true",
                            help=h["strict"])
    households.add_argument("--create-groups", action="store_true",
                            help=h["create_groups"])

    exports = sub.add_parser("export", help=h["export"])
    export_sub = exports.add_subparsers(dest="export_command", required=True)
    progress = export_sub.add_parser("progress", help=h["export_progress"])
    progress.add_argument("--ward", required=True, help=h["ward_code"])
    progress.add_argument("--format", choices=["csv", "xlsx"], default="xlsx")
    progress.add_argument("-o", "--output", type=Path, required=True, help=h["output"])

    grant = sub.add_parser("grant", help=h["grant"])
    grant.add_argument("role", choices=[r.value for r in Role if r not in (Role.GUEST, Role.ADMIN)])
    grant.add_argument("--platform", default="telegram", choices=["telegram", "zalo", "zalo_oa"])
    grant.add_argument("--user", required=True, help=h["grant_user"])
    grant.add_argument("--ward", required=True)
    grant.add_argument("--group", help=h["grant_group"])

    revoke = sub.add_parser("revoke", help=h["revoke"])
    revoke.add_argument("role",
                        choices=[r.value for r in Role if r not in (Role.GUEST, Role.ADMIN)])
    revoke.add_argument("--platform", default="telegram", choices=["telegram", "zalo", "zalo_oa"])
    revoke.add_argument("--user", required=True, help=h["revoke_user"])
    revoke.add_argument("--ward", required=True)
    revoke.add_argument("--group", help=h["revoke_group"])

    invite = sub.add_parser("invite", help=h["invite"])
    invite.add_argument("role", choices=["coordinator", "leader"])
    invite.add_argument("--ward", required=True)
    invite.add_argument("--group", help=h["invite_group"])
    invite.add_argument("--platform", default="telegram", choices=["telegram", "zalo", "zalo_oa"])
    invite.add_argument("--bot-username", help=h["invite_bot"])
    return parser


def _help_texts() -> dict[str, str]:
    """The command line's help, in Vietnamese like everything else (messages/vi/labels/
    cli.toml, read directly: `--help` stays instant)."""
    import tomllib

    # bot.texts.MESSAGES_DIR, without importing Jinja2.
    messages = Path(__file__).resolve().parent.parent.parent / "messages"
    data = tomllib.loads((messages / "vi" / "labels" / "cli.toml").read_text("utf-8"))
    return {k: str(v) for k, v in data["cli"]["help"].items()}


def _config_anywhere(argv: Sequence[str]) -> list[str]:
    """`--config FILE` may come before or after the subcommand (`cds-bot run --config x`)."""
    rest: list[str] = []
    found: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item == "--config" and i + 1 < len(items):
            found = ["--config", items[i + 1]]
            i += 2
            continue
        if item.startswith("--config="):
            found = ["--config", item.split("=", 1)[1]]
        else:
            rest.append(item)
        i += 1
    return [*found, *rest]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_config_anywhere(sys.argv[1:] if argv is None else argv))
    try:
        loaded = load_config(resolve_path(args.config))
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    _setup_logging(loaded.config)
    handlers: dict[str, Callable[[argparse.Namespace, LoadedConfig], int]] = {
        "run": _run, "shell": _shell, "db": _db, "ward": _ward, "group": _group, "grant": _grant,
        "import": _import, "export": _export, "revoke": _revoke, "invite": _invite,
    }
    try:
        return handlers[args.command](args, loaded)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except ServiceError as exc:
        return _fail(_place_error(exc, loaded), EXIT_USAGE)
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    try:
        loaded.config.check_runnable()
    except MissingTokenError as exc:
        texts = _texts(loaded)
        print(f"cds-bot: {loaded.path}: {exc}", file=sys.stderr)
        print(_plain(texts.render("shell/no_token")), file=sys.stderr)
        if sys.stdin.isatty() and _confirm(_plain(texts.render("shell/offer"))):
            return _shell(argparse.Namespace(demo=True, role="resident", reset=False), loaded)
        return EXIT_CONFIG
    except ConfigError as exc:
        return _fail(f"{loaded.path}: {exc}", EXIT_CONFIG)
    import asyncio
    import gc

    # No garbage collection while the app is imported and built: its full passes over the
    # ~half a million objects being created cost ~15% of the start (bench/). BotApp
    # collects once, freezes what it built and turns collection back on once it runs.
    gc.disable()
    from bot.app import BotApp
    from bot.core import PlatformStartError

    try:
        asyncio.run(BotApp(loaded.config).run_forever())
    except PlatformStartError as exc:
        # Exit 2 like any config mistake: systemd's RestartPreventExitStatus=2 stops the loop.
        return _fail(_texts(loaded).label(
            "cli.bad_token", platform=exc.platform), EXIT_CONFIG)
    except Exception as exc:
        problem = _database_problem(exc, loaded)
        if problem is None:
            raise
        return _fail(problem, EXIT_USAGE)
    return 0


def _shell(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    config = loaded.config
    texts = _texts(None, config.bot.locale)
    if args.demo and config.database.url == Config().database.url:
        # The demo never writes into the real database unless the operator points it there.
        config = config.model_copy(
            update={"database": config.database.model_copy(update={"url": DEMO_DATABASE_URL})}
        )
    if getattr(args, "reset", False):
        if not args.demo or config.database.url != DEMO_DATABASE_URL:
            return _fail(texts.label("cli.reset_demo_only"), EXIT_USAGE)
        from bot.backup import sqlite_path

        demo_file = sqlite_path(DEMO_DATABASE_URL)
        for path in (demo_file, *(demo_file.with_name(demo_file.name + s)
                                  for s in ("-wal", "-shm"))):
            path.unlink(missing_ok=True)
    _log_to_file(Path("data") / "shell.log")  # log lines never land inside the chat
    import asyncio

    from bot.cli.shell import Shell

    try:
        return asyncio.run(Shell(config, role=Role(args.role), demo=args.demo).run())
    except KeyboardInterrupt:
        # Ctrl-C: the shell has closed the database; the thread still blocked reading the
        # keyboard would make a normal exit wait (or abort), so leave at once.
        import os

        sys.stdout.write("\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


def _log_to_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    import logging

    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for old in list(root.handlers):
        for guard in old.filters:
            handler.addFilter(guard)
        root.removeHandler(old)
    root.addHandler(handler)


def _db(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    if args.db_command in ("backup", "restore"):
        return _backup_or_restore(args, loaded)

    async def upgrade(db: Database) -> None:
        await db.upgrade()
        print(_texts(loaded).label("cli.db_up_to_date", url=_safe_url(db.url)))

    return _with_db(loaded, upgrade)


def _backup_or_restore(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from bot.backup import BackupError, backup, restore
    from bot.clock import SystemClock

    texts = _texts(loaded)
    url = loaded.config.database.url
    try:
        if args.db_command == "backup":
            info = backup(url, args.file, SystemClock().now().astimezone(loaded.config.bot.tz),
                          keep=max(args.keep, 0))
            print(texts.label("cli.backup_done", file=info.path,
                              size=f"{info.size / 1_048_576:.1f}".replace(".", ","),
                              removed=len(info.removed)))
            return 0
        path = restore(args.file, url)
    except BackupError as exc:
        return _fail(texts.label(f"cli.backup_{exc.reason}", url=_safe_url(url), **exc.details),
                     EXIT_USAGE)

    async def upgrade(db: Database) -> None:
        await db.upgrade()  # a backup from an older version gets today's tables

    code = _with_db(loaded, upgrade)
    if code == 0:
        print(texts.label("cli.restore_done", file=args.file, database=path))
    return code


def _ward(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def act(db: Database) -> None:
        from bot.clock import SystemClock
        from bot.services.places import Places

        await db.upgrade()
        places = Places(db, SystemClock())  # only what the command needs: starts faster
        if args.ward_command == "add":
            ward = await places.add_ward(args.code, args.name)
            print(_texts(loaded).label("cli.ward_added", ward=ward.code, name=ward.name))
            return
        for ward in await places.wards():
            groups = await places.groups(ward.id)
            print(_texts(loaded).label("cli.ward_line", ward=ward.code, name=ward.name,
                                       count=len(groups), groups=", ".join(g.code for g in groups)))

    return _with_db(loaded, act)


def _group(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def act(db: Database) -> None:
        from bot.clock import SystemClock
        from bot.services.places import Places

        await db.upgrade()
        places = Places(db, SystemClock())
        group = await places.add_group(args.ward, args.code, args.name)
        print(_texts(loaded).label("cli.group_added", group=group.code, ward=args.ward.upper(),
                                   name=group.name))

    return _with_db(loaded, act)


def _grant(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    user = str(args.user).strip()
    if not user or user.startswith("@") or (args.platform == "telegram" and not user.isdigit()):
        # A name or @username would make a member nobody can ever be.
        return _fail(_texts(loaded).label("cli.bad_user", platform=args.platform), EXIT_USAGE)

    async def act(db: Database) -> None:
        from bot.clock import SystemClock
        from bot.context import admins_of
        from bot.services.access import Access

        await db.upgrade()
        access = Access(db, SystemClock(), admins_of(loaded.config))
        grant = await access.grant(
            platform=args.platform, user_id=str(args.user), role=Role(args.role),
            ward_code=args.ward, group_code=args.group,
        )
        print(_texts(loaded).label("cli.granted", platform=args.platform, user=args.user,
                                   role=grant.role.value, group=grant.group_code,
                                   ward=grant.ward_code))

    return _with_db(loaded, act)


def _revoke(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    """Takes the role away at once (the person's next message already runs without it)."""
    texts = _texts(loaded)
    outcome: list[int] = []

    async def act(db: Database) -> None:
        from bot.clock import SystemClock
        from bot.services.staff import Staff

        await db.upgrade()
        revoked = await Staff(db, SystemClock()).revoke_by_user(
            platform=args.platform, user_id=str(args.user).strip(), role=Role(args.role),
            ward_code=args.ward, group_code=args.group,
        )
        where = dict(platform=args.platform, user=args.user, role=args.role,
                     ward=args.ward.upper(), group=(args.group or "").upper())
        if not revoked:
            print("cds-bot: " + texts.label("cli.revoke_nothing", **where), file=sys.stderr)
            outcome.append(EXIT_USAGE)
            return
        for done in revoked:
            print(texts.label("cli.revoked", **{**where, "group": done.group_code,
                                                "name": done.name}))

    code = _with_db(loaded, act)
    return code or (outcome[0] if outcome else 0)


def _invite(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    """A one-person link (and a QR code drawn in the terminal) for the first coordinator: no
    need to know their chat id first."""
    texts = _texts(loaded)
    if args.role == "leader" and not args.group:
        return _fail(texts.label("cli.invite_needs_group"), EXIT_USAGE)

    async def act(db: Database) -> None:
        import segno

        from bot.clock import SystemClock
        from bot.context import build_context

        await db.upgrade()
        context = build_context(loaded.config, db, SystemClock())
        places = context.services.places
        ward = await places.ward_by_code(args.ward)
        if ward is None:
            raise ServiceError("unknown_ward", code=args.ward.upper())
        group_id = None
        if args.group:
            group = await places.group_by_code(ward.id, args.group)
            if group is None:
                raise ServiceError("unknown_group", code=args.group.upper())
            group_id = group.id
        info = await context.services.invites.create(
            None, role=Role(args.role), ward_id=ward.id, group_id=group_id, max_uses=1,
        )
        username = (args.bot_username or "").lstrip("@")
        if args.platform == "telegram" and username:
            link = f"https://t.me/{username}?start={info.code}"
        else:
            link = f"/start {info.code}"
        print(texts.label("cli.invite_made", role=args.role, ward=ward.code,
                          ward_name=ward.name, group=(args.group or "").upper(),
                          link=link, code=info.code,
                          expires=info.expires_at.astimezone(loaded.config.bot.tz)
                          .strftime("%d/%m/%Y %H:%M")))
        if link.startswith("http"):
            segno.make(link, error="m").terminal(out=sys.stdout, compact=True)
        else:
            print(texts.label("cli.invite_no_link", code=info.code))

    return _with_db(loaded, act)


def _import(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    """Prints the same report a coordinator gets in chat; exits 3 when rows were rejected
    (so a script notices), 1 when the file itself cannot be read."""
    from bot.services.tables import read_table

    try:
        table = read_table(args.file.read_bytes(), args.file.name)
    except OSError as exc:
        return _fail(f"{args.file}: {exc.strerror or exc}", EXIT_USAGE)
    except ServiceError as exc:
        texts = _texts(loaded)
        reason = texts.label(f"households.table_error.{exc.reason}", detail=exc.detail)
        return _fail(f"{args.file}: {reason}", EXIT_USAGE)
    outcome: list[int] = []

    async def act(db: Database) -> None:
        from bot.clock import SystemClock
        from bot.context import build_context

        await db.upgrade()
        context = build_context(loaded.config, db, SystemClock())
        ward = await context.services.places.ward_by_code(args.ward)
        if ward is None:
            raise ServiceError("unknown_ward", code=args.ward.upper())
        try:
            report = await context.services.registry.import_table(
                ward.id, table, dry_run=args.dry_run, strict=args.strict,
                create_groups=args.create_groups,
            )
        except ServiceError as exc:
            reason = context.texts.label(f"households.table_error.{exc.reason}",
                                         detail=exc.detail)
            print(f"cds-bot: {args.file}: {reason}", file=sys.stderr)
            outcome.append(EXIT_USAGE)
            return
        text = context.texts.render("households/import_report", report=report,
                                    filename=args.file.name, cli=True)
        print(_plain(text))
        blocked = report.new_groups and not report.groups_confirmed
        outcome.append(EXIT_REJECTED if report.rejected or blocked else 0)

    code = _with_db(loaded, act)
    return code or (outcome[0] if outcome else 0)


def _export(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def act(db: Database) -> None:
        from bot.clock import SystemClock
        from bot.context import build_context

        await db.upgrade()
        context = build_context(loaded.config, db, SystemClock())
        ward = await context.services.places.ward_by_code(args.ward)
        if ward is None:
            raise ServiceError("unknown_ward", code=args.ward.upper())
        if args.format == "csv":
            from bot.services.reports import progress_csv

            rows = await context.services.registry.household_rows(ward.id)
            progress = await context.services.progress.ward(ward.id)
            data = progress_csv(progress, rows, context.texts.label, loaded.config.bot.tz)
            households = len(rows)
        else:
            book = await context.services.reports.progress_workbook(ward.id, context.texts.label)
            data, households = book.data, book.households
        try:
            args.output.write_bytes(data)
        except OSError as exc:
            failed.append(texts.label("cli.export_cannot_write", file=args.output,
                                      reason=exc.strerror or type(exc).__name__,
                                      ward=ward.code))
            return
        print(texts.label("cli.exported", count=households, ward=ward.code, file=args.output))

    texts = _texts(loaded)
    folder = args.output.parent
    if not folder.is_dir():
        return _fail(texts.label("cli.export_no_folder", folder=folder,
                                 ward=args.ward.upper()), EXIT_USAGE)
    failed: list[str] = []
    code = _with_db(loaded, act)
    if failed:
        return _fail(failed[0], EXIT_USAGE)
    return code


def _with_db(loaded: LoadedConfig, action: Callable[[Database], Awaitable[None]]) -> int:
    import asyncio

    from bot.db import Database

    async def go() -> None:
        db = Database(loaded.config.database.url)
        try:
            await action(db)
        finally:
            await db.dispose()

    try:
        asyncio.run(go())
    except Exception as exc:
        problem = _database_problem(exc, loaded)
        if problem is None:
            raise
        return _fail(problem, EXIT_USAGE)
    return 0


def _database_problem(exc: BaseException, loaded: LoadedConfig) -> str | None:
    """One line saying what is wrong with the database and what to do, or None when the
    error is not the database's. Never the SQL or its values (names, phones)."""
    import re

    from sqlalchemy import make_url
    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(exc, OSError | SQLAlchemyError) and \
            type(exc).__module__.split(".")[0] not in ("asyncpg", "sqlite3"):
        return None
    texts = _texts(loaded)
    url = make_url(loaded.config.database.url)
    role, database = url.username or "", url.database or ""
    message = str(getattr(exc, "orig", None) or exc)
    found = re.search(r'role "([^"]+)" does not exist', message)
    if found:
        return texts.label("cli.db_no_role", role=found.group(1), database=database)
    found = re.search(r'database "([^"]+)" does not exist', message)
    if found:
        return texts.label("cli.db_no_database", database=found.group(1), role=role)
    safe = _safe_url(loaded.config.database.url)
    for needle, key in (
        ("password authentication failed", "cli.db_bad_password"),
        ("database or disk is full", "cli.db_full"),
        ("No space left", "cli.db_full"),
        ("unable to open database file", "cli.db_cannot_open"),
        ("readonly database", "cli.db_read_only"),
        ("Connect call failed", "cli.db_unreachable"),
        ("Connection refused", "cli.db_unreachable"),
    ):
        if needle in message:
            return texts.label(key, role=role, url=safe)
    if isinstance(exc, OSError):
        return texts.label("cli.db_unreachable", url=safe)
    return texts.label("cli.db_error", url=safe, kind=type(exc).__name__)


def _place_error(exc: ServiceError, loaded: LoadedConfig | None = None) -> str:
    texts = _texts(loaded)
    key = f"cli.place.{exc.reason}"
    if not texts.has_label(key):
        return exc.reason
    return texts.label(key, **exc.details)


def _texts(loaded: LoadedConfig | None, locale: str | None = None) -> Texts:
    from bot.texts import Texts

    return Texts(locale=locale or (loaded.config.bot.locale if loaded else "vi"))


def _plain(html: str) -> str:
    from bot.texts import to_plain

    return to_plain(html)


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
    from bot.logs import setup

    setup(config.bot.log_level, _secrets(config))


def _secrets(config: Config) -> list[str]:
    """Every secret of the config, for masking in logs and output."""
    from sqlalchemy import make_url

    values = [
        config.telegram.token, config.telegram.webhook_secret, config.zalo.token,
        config.zalo.webhook_secret, config.zalo_oa.secret_key, config.zalo_oa.access_token,
        config.zalo_oa.refresh_token, config.zalo_oa.oa_secret_key, config.web.secret,
    ]
    found = [v.get_secret_value() for v in values]
    with suppress(Exception):  # a URL the config already refused cannot matter
        found.append(make_url(config.database.url).password or "")
    return [f for f in found if f]


if __name__ == "__main__":
    raise SystemExit(main())

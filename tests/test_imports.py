"""The layering, read from the imports (every `import`, at the top, inside functions and
under TYPE_CHECKING): no cycle among the bot's modules; nothing in bot/ reaches into
handlers/ except the composition root's route registration; delivery uses no service;
every scheduled job body lives in bot/jobs/."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from bot.app import BotApp
from tests.conftest import make_config, shared_content

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    found = {}
    for package in ("bot", "handlers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


MODULES = sources()


def imported(name: str) -> Iterator[str]:
    """The project modules one module imports (a `from pkg import mod` names the module)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from pkg import mod` depends on the module; `from mod import name` on mod
            targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES
                       else node.module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


GRAPH = {name: sorted(set(imported(name))) for name in MODULES}


def test_the_project_is_what_the_rules_read() -> None:
    """Guard against a rule passing because it reads nothing."""
    assert {"bot.app", "bot.router", "bot.delivery.outbox", "bot.jobs.campaigns",
            "bot.web.dashboard.routes", "handlers.campaigns"} <= set(GRAPH)
    assert "bot.services.access" in GRAPH["bot.router"]


def test_no_import_cycle() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in GRAPH[node]:
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in GRAPH:
        if name not in state:
            visit(name)
    assert cycles == []


def test_bot_reaches_handlers_only_to_register_routes() -> None:
    reaching = {(name, target) for name, targets in GRAPH.items() if name.startswith("bot")
                for target in targets if target.split(".")[0] == "handlers"}
    assert reaching == {("bot.app", "handlers")}
    tree = ast.parse(MODULES["bot.app"].read_text(encoding="utf-8"))
    names = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and node.module == "handlers" for a in node.names}
    assert names == {"register_all"}


def test_delivery_uses_no_service() -> None:
    used = {(name, target) for name, targets in GRAPH.items()
            if name.startswith("bot.delivery") for target in targets
            if target.startswith("bot.services")}
    assert used == set()


def test_services_and_platforms_stay_in_their_lanes() -> None:
    """Services never import a platform, the web, the jobs or the router; platforms never
    import a service."""
    for name, targets in GRAPH.items():
        if name.startswith("bot.services"):
            assert not [t for t in targets if t.startswith(
                ("bot.platforms", "bot.web", "bot.jobs", "bot.router", "bot.app"))], name
        if name.startswith("bot.platforms"):
            assert not [t for t in targets if t.startswith("bot.services")], name


def test_every_scheduled_job_body_is_in_bot_jobs(tmp_path: Path) -> None:
    app = BotApp(make_config(f"sqlite+aiosqlite:///{tmp_path}/bot.db"), content=shared_content())
    modules = {}
    for job in app.scheduler.jobs:
        func = job.func.func if isinstance(job.func, partial) else job.func
        modules[job.name] = getattr(func, "__module__", "")
    assert {"campaigns", "close-polls", "feedback-overdue-nudges"} <= set(modules)
    assert {name: m for name, m in modules.items() if not m.startswith("bot.jobs.")} == {}
    # The outbox's finished-callbacks point into bot/jobs too.
    tree = ast.parse(MODULES["bot.app"].read_text(encoding="utf-8"))
    callbacks = [ast.unparse(node.args[1]) for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                 and node.func.attr == "on_finished"]
    assert callbacks and all(".jobs." in c for c in callbacks), callbacks
    # …and no handler module holds a job body any more.
    for name in MODULES:
        if name.startswith("handlers"):
            assert "bot.jobs.scheduler" not in GRAPH[name], name

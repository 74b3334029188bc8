"""Typed button payloads: packed within 64 bytes, unpacked with validation; the router
answers a forged or garbled press with one polite line and checks the route's scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from bot.core import Role
from bot.keyboards import MAX_BUTTONS, MAX_ROW, check_rows, page_rows
from bot.payloads import Payload, PayloadError
from bot.services.places import GroupInfo
from bot.services.selection import choose, looks_like_choice, natural_key
from handlers.households import HouseholdPress
from handlers.notices import NoticePress
from handlers.progress import Missing
from tests.conftest import Harness
from tests.recording import press


@dataclass(frozen=True)
class Sample(Payload, prefix="smp"):
    action: Literal["go", "stop"]
    count: int = 0
    name: str = ""
    flag: bool = False
    role: Role | None = None


def test_pack_and_unpack_round_trip_with_escaping() -> None:
    value = Sample("go", 12, "a:b%c", True, Role.LEADER)
    packed = value.pack()
    assert packed == "smp:go:12:a%3Ab%25c:1:leader"
    assert Sample.unpack(packed) == value
    assert Sample("stop").pack() == "smp:stop"  # empty defaults at the end are implied
    assert Sample.unpack("smp:stop") == Sample("stop")
    assert str(NoticePress("g", 7)) == "nt:g:7"


@pytest.mark.parametrize("garbled", [
    "smp", "smp:jump", "smp:go:x", "smp:go:-1", "smp:go:1:n:2", "smp:go:1:n:1:boss",
    "smp:go:1:n:1:leader:extra", "nt:go", "smp:go:" + "9" * 40, "smp:go:1:" + "é" * 40,
    "smp:go:2147483648", "smp:go:" + "9" * 18,  # beyond a PostgreSQL integer id
])
def test_a_garbled_or_forged_payload_is_refused_by_unpack(garbled: str) -> None:
    with pytest.raises(PayloadError):
        Sample.unpack(garbled)


def test_a_payload_that_would_not_fit_cannot_be_packed() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        Sample("go", name="Nguyễn " * 10).pack()
    with pytest.raises(ValueError):
        Sample("fly").pack()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="between 0 and"):
        Sample("go", -1).pack()
    assert Sample.unpack(Sample("go", 2**31 - 1).pack()).count == 2**31 - 1
    with pytest.raises(ValueError):

        @dataclass(frozen=True)
        class Bad(Payload, prefix="Bad:"):
            x: int


def test_the_pager_keeps_every_page_within_telegram_limits() -> None:
    from bot.core import Button

    items = [Button(f"Tổ {i}", f"nt:g:{i}") for i in range(300)]
    seen: list[str] = []
    for page in range(1, 9):
        paged = page_rows(items, page, nav=lambda n: NoticePress("pg", n),
                          label=lambda key, **kw: f"{key}{kw}", buttons=True, columns=4,
                          head=[[Button("all", "nt:all")]], tail=[[Button("now", "nt:now")]] * 4)
        assert check_rows(paged.rows) == [] and paged.pages == 8 and paged.page == page
        assert sum(len(r) for r in paged.rows) <= MAX_BUTTONS
        assert max(len(r) for r in paged.rows) <= MAX_ROW
        seen += [b.payload for r in paged.rows for b in r if b.payload.startswith("nt:g:")]
    assert seen == [f"nt:g:{i}" for i in range(300)]  # every item on exactly one page
    last = page_rows(items, 99, nav=lambda n: f"x:{n}", label=lambda key, **kw: key,
                     buttons=False)
    assert last.page == last.pages == 30 and last.shown == 10  # Zalo: short pages, clamped


def test_typed_groups_ranges_codes_and_all() -> None:
    groups = [GroupInfo(i, 1, f"TDP{i:02d}", "") for i in range(1, 301)]
    assert choose("TDP01-TDP40", groups).ids == list(range(1, 41))
    assert choose("tdp38-40, TDP299", groups).ids == [38, 39, 40, 299]
    assert choose("TDP3 TDP07", groups).ids == [3, 7]  # "TDP3" is TDP03
    assert choose("Cả phường", groups).everything
    wrong = choose("TDP03 TDP999 XYZ01-XYZ02", groups)
    assert wrong.unknown == ["TDP999", "XYZ01-XYZ02"]
    assert looks_like_choice("TDP01-TDP40") and not looks_like_choice("Họp tổ tối nay")
    assert sorted(["TDP10", "TDP2", "TDP100"], key=natural_key) == ["TDP2", "TDP10", "TDP100"]


async def test_a_forged_press_gets_one_polite_line_and_no_apology(harness: Harness) -> None:
    await harness.grant("100", Role.COORDINATOR)
    for forged in ("nt:launch:1", "hh:o:abc", "pv:1", "nt:g:" + "1" * 30, "zz:1"):
        platform = await harness.send(press(forged))
        assert platform.answered[-1] == (f"cb-{forged}", "Nút này đã cũ. Bạn gõ lại lệnh nhé.")
    assert not any("trục trặc" in s.text for s in harness.platform.said)


async def test_the_router_checks_the_group_scope_declared_on_the_route(harness: Harness) -> None:
    services = harness.ctx.services
    ward = await services.places.ward_by_code("P1")
    assert ward is not None
    from bot.services.tables import read_table

    await services.registry.import_table(ward.id, read_table(
        b"code,group,head_name,members\nTDP01-001,TDP01,An,2\nTDP02-001,TDP02,Binh,3\n"))
    await harness.grant("100", Role.HELPER, "TDP01")
    mine = await services.households.by_code(ward.id, "TDP01-001")
    theirs = await services.households.by_code(ward.id, "TDP02-001")
    assert mine is not None and theirs is not None
    await harness.send(press(HouseholdPress("o", theirs.id).pack()))
    assert "thuộc tổ khác" in harness.platform.last.text
    await harness.send(press(HouseholdPress("t", theirs.id, "vneid").pack()))
    assert "thuộc tổ khác" in harness.platform.last.text
    checklist = await services.households.checklist(theirs.id)
    assert not any(s.units for s in checklist.steps)  # nothing written in another group
    await harness.send(press(HouseholdPress("o", mine.id).pack()))
    assert "TDP01-001" in harness.platform.last.text
    await harness.send(press(HouseholdPress("o", 999_999).pack()))  # gone: a stale button
    assert harness.platform.answered[-1][1] == "Nút này đã cũ. Bạn gõ lại lệnh nhé."


async def test_households_left_of_another_group_are_refused_by_scope(harness: Harness) -> None:
    """`Missing` (names of households) is scoped to the helper's own group."""
    services = harness.ctx.services
    ward = await services.places.ward_by_code("P1")
    assert ward is not None
    tdp01 = await services.places.group_by_code(ward.id, "TDP01")
    tdp02 = await services.places.group_by_code(ward.id, "TDP02")
    assert tdp01 is not None and tdp02 is not None
    await harness.grant("100", Role.HELPER, "TDP01")
    await harness.send(press(Missing(tdp02.id).pack()))
    assert "thuộc tổ khác" in harness.platform.last.text
    await harness.send(press(Missing(tdp01.id).pack()))
    assert "Tổ TDP01 — hộ chưa xong" in harness.platform.last.text
    await harness.send(press(Missing(tdp01.id).pack(), user="300"))  # a guest: the role first
    assert "dành cho người đã tham gia tổ" in harness.platform.last.text


STALE = "Nút này đã cũ. Bạn gõ lại lệnh nhé."


@pytest.mark.parametrize("user, forged", [
    # /thuhoi and /canbo: an unknown step, a missing or extra number, not a number, too big
    ("100", "st:x:1"), ("100", "st:m"), ("100", "st:n:5"), ("100", "st:y:abc"),
    ("100", "st:y:2147483648"), ("100", "st:y:1:2"),
    # an admin's ward picker: the old shape, an unknown step, a command that is no command
    ("999", "aw:5:tiendo"), ("999", "aw:p1:tiendo"), ("999", "aw:x:1"),
    ("999", "aw:w:1:tiến độ"), ("999", "aw:w:999999:tiendo"),  # the last: no such ward
    # relay: a missing or negative id, an unknown step, no such task or notice
    ("100", "rl:s:notice:x"), ("100", "rl:ok"), ("100", "rl:ok:-1"), ("100", "rl:go:1"),
    ("100", "rl:ok:999999"), ("100", "rl:s:999999"),
    # the import confirm: without its ward (the old shape), an unknown answer, no such ward
    ("100", "hi:ok"), ("100", "hi:yes:1"), ("100", "hi:ok:1:2"), ("100", "hi:ok:999999"),
])
async def test_forged_staff_ward_relay_and_import_presses_get_the_polite_line(
    harness: Harness, user: str, forged: str,
) -> None:
    await harness.grant("100", Role.COORDINATOR)
    platform = await harness.send(press(forged, user=user))
    assert platform.answered == [(f"cb-{forged}", STALE)]
    assert platform.said == []  # one line, as a toast: no apology, no other message


async def test_an_import_button_for_another_ward_is_refused_by_scope(
    harness: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace as replaced

    from bot.core import Attachment
    from handlers.households import ImportPress
    from tests.recording import message

    services = harness.ctx.services
    p1, p2 = await services.places.ward_by_code("P1"), await services.places.ward_by_code("P2")
    assert p1 is not None and p2 is not None
    await harness.grant("100", Role.COORDINATOR)  # of P1
    csv = "code,group,head_name,members\nTDP09-001,TDP09,Lê Văn Mới,3\n".encode()

    async def download(attachment: Attachment) -> bytes:  # by file id, as Telegram serves it
        return csv if attachment.file_id == "f1" else b""

    monkeypatch.setattr(harness.platform, "download", download)
    await harness.send(replaced(message("", user="100"), attachments=(
        Attachment(kind="document", filename="ho.csv", data=csv, file_id="f1", size=len(csv)),)))
    assert "TDP09" in harness.platform.last.text
    assert harness.platform.last.payloads == [ImportPress("ok", p1.id).pack(),
                                              ImportPress("no", p1.id).pack()]
    forged = ImportPress("ok", p2.id).pack()
    await harness.send(press(forged))
    assert harness.platform.last.text.startswith(
        "⛔ Việc này thuộc phường khác, không phải phường của bạn")
    assert await services.places.group_by_code(p2.id, "TDP09") is None
    assert await services.places.group_by_code(p1.id, "TDP09") is None
    await harness.send(press(ImportPress("ok", p1.id).pack()))  # the form waited
    assert "Đã nhập danh sách hộ «ho.csv»" in harness.platform.last.text
    assert await services.places.group_by_code(p1.id, "TDP09") is not None
    assert await services.places.group_by_code(p2.id, "TDP09") is None


async def test_a_relay_confirm_for_another_group_is_refused_by_scope(harness: Harness) -> None:
    from bot.services.relay_delivery import RelayPress, confirm_payload

    services = harness.ctx.services
    ward = await services.places.ward_by_code("P1")
    assert ward is not None
    tdp01 = await services.places.group_by_code(ward.id, "TDP01")
    assert tdp01 is not None
    await harness.grant("200", Role.LEADER, "TDP01")  # TDP01's relay person by default
    await harness.grant("300", Role.LEADER, "TDP02")
    reach = (await services.relays.reach(ward.id, [tdp01.id]))[tdp01.id]
    [task] = await services.relays.create_tasks(kind="notice", ref_id=1, ward_id=ward.id,
                                                author_member_id=None, reaches=[reach],
                                                text="Họp tổ tối nay")
    # Buttons already sent (or queued for the morning) keep working: the shapes are the old ones.
    assert confirm_payload(task.id) == RelayPress("ok", task.id).pack() == f"rl:ok:{task.id}"
    assert RelayPress.unpack("rl:s:notice:7") == RelayPress("s", 7) == RelayPress.unpack("rl:s:7")
    await harness.send(press(confirm_payload(task.id), user="300"))
    assert harness.platform.last.text.startswith(
        "⛔ Việc này thuộc tổ khác, không phải tổ của bạn")
    assert (await services.relays.task(task.id)).state == "queued"  # type: ignore[union-attr]
    await harness.send(press(confirm_payload(task.id), user="200"))
    assert "Đã ghi nhận tin đã tới nhóm TDP01" in harness.platform.last.text

"""One person on Telegram and Zalo: linking the accounts carries the roles across."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.core import Capabilities
from bot.roles import Role
from tests.conftest import Harness
from tests.recording import RecordingPlatform, message, press


async def test_link_telegram_and_zalo_accounts(harness: Harness) -> None:
    zalo = RecordingPlatform(name="zalo", capabilities=Capabilities(buttons=False, edit=False))
    harness.router.attach(zalo)
    await harness.grant("100", Role.LEADER, "TDP01")
    offer = await harness.say("/lienketzalo")
    code = re.search(r"/lienketzalo ([A-Z0-9]{8})", offer)
    assert code, offer
    assert "mở ứng dụng còn lại (zalo)" in offer.lower()

    await harness.router.dispatch(zalo, message(f"/lienketzalo {code.group(1)}", user="z-9", platform="zalo"))
    assert "Đã liên kết với tài khoản Telegram" in zalo.last.text
    await harness.router.dispatch(zalo, message("/quyen", user="z-9", platform="zalo"))
    assert "Tổ trưởng — tổ TDP01" in zalo.last.text
    # The code works once.
    await harness.router.dispatch(zalo, message(f"/lienketzalo {code.group(1)}", user="z-9", platform="zalo"))
    assert "không đúng hoặc đã dùng" in zalo.last.text


async def test_link_refusals(harness: Harness) -> None:
    offer = await harness.say("/lienketzalo")
    code = re.search(r"/lienketzalo ([A-Z0-9]{8})", offer)
    assert code
    assert "chính tài khoản" in await harness.say(f"/lienketzalo {code.group(1)}")
    assert "một tài khoản Telegram và một tài khoản Zalo" in await harness.say(f"/lienketzalo {code.group(1)}", user="101")
    offer = await harness.say("/lienketzalo")
    code = re.search(r"/lienketzalo ([A-Z0-9]{8})", offer)
    assert code
    harness.clock.advance(timedelta(minutes=11))
    zalo = RecordingPlatform(name="zalo")
    await harness.router.dispatch(zalo, message(f"/lienketzalo {code.group(1)}", user="z-1", platform="zalo"))
    assert "quá 10 phút" in zalo.last.text


async def test_a_person_gets_one_account_per_app(harness: Harness) -> None:
    """A coordinator typing codes from two Zalo accounts must not make both coordinators."""
    zalo = RecordingPlatform(name="zalo", capabilities=Capabilities(buttons=False, edit=False))
    harness.router.attach(zalo)
    await harness.grant("100", Role.COORDINATOR)
    codes = []
    for user in ("z-1", "z-2"):
        await harness.router.dispatch(zalo, message("/lienketzalo", user=user, platform="zalo"))
        found = re.search(r"/lienketzalo ([A-Z0-9]{8})", zalo.last.text)
        assert found and "Đừng gửi mã cho người khác" in zalo.last.text
        codes.append(found.group(1))
    assert "Đã liên kết" in await harness.say(f"/lienketzalo {codes[0]}")
    assert "một tài khoản Telegram và một tài khoản Zalo" in await harness.say(
        f"/lienketzalo {codes[1]}")
    await harness.router.dispatch(zalo, message("/quyen", user="z-2", platform="zalo"))
    assert "Cán bộ phường" not in zalo.last.text


async def resident_on_both_apps(harness: Harness, zalo_user: str) -> RecordingPlatform:
    """Resident "100" on Telegram, linked to `zalo_user` on a Zalo stand-in."""
    zalo = RecordingPlatform(name="zalo", capabilities=Capabilities(buttons=False, edit=False))
    harness.router.attach(zalo)
    await harness.grant("100", Role.RESIDENT, "TDP01")
    offer = await harness.say("/lienketzalo", user="100")
    code = re.search(r"/lienketzalo ([A-Z0-9]{8})", offer)
    assert code
    await harness.router.dispatch(zalo, message(f"/lienketzalo {code.group(1)}",
                                                user=zalo_user, platform="zalo"))
    assert "Đã liên kết" in zalo.last.text
    return zalo


async def test_forgetting_me_covers_my_linked_account(harness: Harness) -> None:
    zalo = await resident_on_both_apps(harness, "z-5")
    await harness.router.dispatch(zalo, message("/gopy Đèn hỏng ở ngõ 2", user="z-5",
                                                platform="zalo"))
    await harness.say("/xoadulieu", user="100")
    await harness.send(press("fbd:yes", user="100"))
    assert "1 phiếu đã gửi được giữ lại" in harness.platform.last.text
    await harness.router.dispatch(zalo, message("/quyen", user="z-5", platform="zalo"))
    assert "Cư dân" not in zalo.last.text  # the Zalo account's role went too


async def test_the_hourly_ticket_limit_is_one_for_both_apps(harness: Harness) -> None:
    zalo = await resident_on_both_apps(harness, "z-6")
    for n in range(3):
        await harness.say(f"/gopy Chuyện số {n} ở ngõ {n}", user="100")
    await harness.router.dispatch(zalo, message("/gopy Chuyện thứ tư trên Zalo", user="z-6",
                                                platform="zalo"))
    assert "PA-4" not in zalo.last.text

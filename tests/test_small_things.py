"""Small things a ward notices: times, dates, numbers and words as people read them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.when import parse_when
from tests.conftest import Harness

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_bare_time_in_the_evening_means_tomorrow_morning() -> None:
    evening = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 21:00 in Hanoi
    assert parse_when("7:00", evening, HANOI) == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert parse_when("22h", evening, HANOI) == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    # A date said outright is kept as said (the caller refuses a time in the past).
    assert parse_when("7:00 24/11", evening, HANOI) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


def test_numbers_and_percents_read_the_vietnamese_way() -> None:
    from bot.texts import format_number, format_percent

    assert format_number(4250) == "4.250" and format_number(2.5) == "2,5"
    assert format_number(12345.5) == "12.345,5" and format_number(3.0) == "3"
    assert format_percent(40 / 10_000) == "0,4%"
    assert format_percent(0) == "0%" and format_percent(1) == "100%"
    assert format_percent(0.53) == "53%"
    assert format_percent(9_996 / 10_000) == "99,9%"  # never "100%" before it is done


async def test_a_campaign_starting_next_week_is_coming_not_running(harness: Harness) -> None:
    from datetime import date

    from bot.core import Role, Sender

    await harness.grant("100", Role.COORDINATOR)
    boss = await harness.ctx.services.access.identify("telegram", Sender("100", "Cán bộ"))
    ward = await harness.ctx.services.places.ward_by_code("P1")
    assert ward is not None
    await harness.ctx.services.campaigns.create(
        boss, ward.id, title="Tháng VNeID", step_key="vneid", target=80,
        starts_on=date(2026, 12, 1), ends_on=date(2026, 12, 31), group_ids=[], days=["mon"],
        at_time="08:00",
    )
    said = await harness.say("/chiendich")
    assert "#1 Tháng VNeID — sắp bắt đầu (từ 1/12)" in said
    assert "đang chạy" not in said

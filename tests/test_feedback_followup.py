"""Closing the loop on feedback: the reporter is asked "is it fixed?" a few days after a
ticket is resolved; "Chưa xong" reopens it and tells staff; "Đã xong" takes an optional
satisfaction tap; the monthly summary counts confirmations, reopenings and satisfaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core import Capabilities, Role
from bot.jobs.feedback_followup import ask_if_fixed
from tests.conftest import Harness
from tests.recording import RecordingPlatform, message, press

RESIDENT, NEIGHBOUR, LEADER = "201", "202", "301"


def to(h: Harness, user: str) -> list[str]:
    return [s.text for s in h.platform.said if s.chat_id == user]


async def resolved_ticket(h: Harness, text: str = "Đèn đường ngõ 5 tắt", user: str = RESIDENT,
                          ) -> None:
    await h.grant(RESIDENT, Role.RESIDENT, "TDP01")
    await h.grant(NEIGHBOUR, Role.RESIDENT, "TDP01")
    await h.grant(LEADER, Role.LEADER, "TDP01")
    await h.say(f"/gopy {text}", user=user)
    answer = await h.say("/xuly PA-1 daxong Đã thay bóng đèn mới", user=LEADER)
    assert "PA-1" in answer


async def ask(h: Harness) -> int:
    queued = await ask_if_fixed(h.ctx)
    await h.ctx.services.outbox.run_once()
    return queued


async def test_asked_once_after_three_days_then_not_fixed_reopens_and_tells_staff(
    harness: Harness,
) -> None:
    h = harness
    await resolved_ticket(h)
    h.clock.advance(timedelta(days=2))
    assert await ask(h) == 0  # too early
    h.clock.advance(timedelta(days=1, minutes=1))
    assert await ask(h) == 1
    question = h.platform.said[-1]
    assert question.chat_id == RESIDENT
    assert "Việc này đã được khắc phục chưa?" in question.text
    assert question.labels == ["✅ Đã xong", "❌ Chưa xong"]
    assert await ask(h) == 0  # never asked twice

    await h.send(press("fbq:1:n", user=RESIDENT))
    assert "đã mở lại phiếu PA-1" in to(h, RESIDENT)[-1]  # staff are told after the reply
    staff = to(h, LEADER)[-1]
    assert "bị người phản ánh mở lại" in staff and "Đèn đường ngõ 5 tắt" in staff
    await h.say("Đèn sáng được một hôm lại tắt", user=RESIDENT)
    assert "Đèn sáng được một hôm lại tắt" in to(h, LEADER)[-1]
    assert "Đã ghi lại ý kiến" in to(h, RESIDENT)[-1]

    view = await h.say("/theodoi PA-1", user=RESIDENT)
    assert "Mở lại — chưa khắc phục xong" in view and "Đèn sáng được một hôm lại tắt" in view
    listed = await h.say("/phananh", user=LEADER)
    assert "PA-1" in listed
    # Staff handle the reopened ticket as a new one, and can resolve it again.
    shown = await h.say("/xuly PA-1 tiepnhan", user=LEADER)
    assert "PA-1" in shown
    again = await h.say("/xuly PA-1 daxong Đã thay cả bộ đèn", user=LEADER)
    assert "PA-1" in again
    assert "Đã thay cả bộ đèn" in to(h, RESIDENT)[-1]


async def test_fixed_then_rated_and_counted_in_the_monthly_summary(harness: Harness) -> None:
    h = harness
    await resolved_ticket(h)
    h.clock.advance(timedelta(days=3, minutes=1))
    await ask(h)
    await h.send(press("fbq:1:y", user=RESIDENT))
    thanks = h.platform.said[-1]
    assert "đã xong" in thanks.text and thanks.labels == [f"{n} ⭐" for n in range(1, 6)]
    await h.send(press("fbr:1:5", user=RESIDENT))
    assert "Cảm ơn bà con đã chấm 5 ⭐" in h.platform.said[-1].text

    await h.grant("401", Role.COORDINATOR)
    summary = await h.say("/phananh thang 11/2026", user="401")
    assert "Xác nhận đã khắc phục: 1" in summary
    assert "Mở lại vì chưa xong: 0" in summary and "Mức hài lòng: 5" in summary


async def test_reopen_from_tracking_within_the_window_only(harness: Harness) -> None:
    h = harness
    await resolved_ticket(h)
    await h.say("/theodoi PA-1", user=RESIDENT)
    assert h.platform.said[-1].labels == ["✅ Đã xong", "❌ Chưa xong"]
    h.clock.advance(timedelta(days=15))
    await h.say("/theodoi PA-1", user=RESIDENT)
    assert h.platform.said[-1].labels == []
    assert await ask(h) == 0  # too old to reopen: not asked at all
    await h.send(press("fbq:1:n", user=RESIDENT))
    assert "không mở lại được" in h.platform.said[-1].text


async def test_only_the_reporter_can_answer(harness: Harness) -> None:
    h = harness
    await resolved_ticket(h)
    await h.send(press("fbq:1:n", user=NEIGHBOUR))
    assert "Không tìm thấy phiếu 1" in h.platform.said[-1].text
    view = await h.say("/theodoi PA-1", user=RESIDENT)
    assert "Đã xong" in view and "Mở lại" not in view
    await h.send(press("fbq:1:zz", user=RESIDENT))
    assert h.platform.answered[-1][1] == "Nút này đã cũ. Bạn gõ lại lệnh nhé."


async def test_question_waits_for_the_morning(harness: Harness) -> None:
    h = harness
    await resolved_ticket(h)
    # 22:30 in Hà Nội, three days later: queued, not sent before 07:00.
    h.clock.set(datetime(2026, 11, 27, 15, 30, tzinfo=UTC))
    assert await ask_if_fixed(h.ctx) == 1
    await h.ctx.services.outbox.run_once()
    assert not any("khắc phục chưa" in t for t in to(h, RESIDENT))
    h.clock.set(datetime(2026, 11, 28, 0, 5, tzinfo=UTC))  # 07:05
    await h.ctx.services.outbox.run_once()
    assert any("khắc phục chưa" in t for t in to(h, RESIDENT))


async def test_zalo_reporter_answers_with_a_number(harness: Harness) -> None:
    h = harness
    zalo = RecordingPlatform(name="zalo", capabilities=Capabilities(buttons=False, edit=False, markup="plain"))
    h.router.attach(zalo)
    await h.ctx.services.access.grant(platform="zalo", user_id="z9", role=Role.RESIDENT,
                                      ward_code="P1", group_code="TDP01")
    await h.grant(LEADER, Role.LEADER, "TDP01")
    await h.router.dispatch(zalo, message("/gopy Cống ngõ 3 bị tắc", user="z9", platform="zalo"))
    await h.say("/xuly PA-1 daxong Đã thông cống", user=LEADER)
    h.clock.advance(timedelta(days=3, minutes=1))
    await ask(h)
    asked = zalo.said[-1].text
    assert "khắc phục chưa" in asked and "1. ✅ Đã xong" in asked and "2. ❌ Chưa xong" in asked
    await h.router.dispatch(zalo, message("2", user="z9", platform="zalo"))
    assert "đã mở lại phiếu PA-1" in zalo.said[-1].text

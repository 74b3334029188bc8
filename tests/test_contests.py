"""The ward's knowledge contest: a coordinator creates it in chat, ten residents of three
groups play in private chat on Telegram (A-D buttons) and Zalo (numbered choices), and the
group chats get the announcement, the half-time standing and the final result; results
export to Excel and /tiendo shows participation."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook

from bot.core import Attachment, Capabilities, Role, Sender
from bot.jobs.contests import post_contest_news
from bot.services.contests import ContestError, read_bank_file
from bot.services.tables import read_table
from tests.conftest import Harness
from tests.recording import RecordingPlatform, message, press

BOSS = "401"
LIST = (
    "mã hộ,tổ,chủ hộ,địa chỉ,số nhân khẩu,số người lớn\n"
    + "".join(f"TDP0{g}-00{n},TDP0{g},Chủ Hộ {g}{n},{n} Lê Lợi,3,2\n"
              for g in (1, 2, 3) for n in range(1, 5))
)
# Ten players: (platform, user id, name, group, household code or "" if not linked).
PLAYERS = [
    ("telegram", "t1", "Nguyễn Thị Lan", "TDP01", "TDP01-001"),
    ("telegram", "t2", "Trần Văn Hùng", "TDP01", "TDP01-002"),
    ("telegram", "t3", "Lê Thị Mai", "TDP01", "TDP01-003"),
    ("telegram", "t4", "Phạm Văn Nam", "TDP01", "TDP01-003"),  # same household as Mai
    ("telegram", "t5", "Hoàng Thị Hoa", "TDP02", "TDP02-001"),
    ("telegram", "t6", "Vũ Văn Long", "TDP02", ""),
    ("telegram", "t7", "Đặng Thị Thu", "TDP02", "TDP02-002"),
    ("zalo", "z1", "Bùi Văn Tâm", "TDP03", "TDP03-001"),
    ("zalo", "z2", "Đỗ Thị Hạnh", "TDP03", "TDP03-002"),
    ("zalo", "z3", "Ngô Văn Phúc", "TDP03", ""),
]


async def setup(h: Harness) -> RecordingPlatform:
    services = h.ctx.services
    await services.places.add_group("P1", "TDP03", "Tổ dân phố 3")
    ward = await services.places.ward_by_code("P1")
    assert ward is not None
    await services.registry.import_table(ward.id, read_table(LIST.encode()), create_groups=True)
    zalo = RecordingPlatform(name="zalo",
                             capabilities=Capabilities(buttons=False, edit=False, markup="plain"))
    h.router.attach(zalo)
    await h.grant(BOSS, Role.COORDINATOR)
    for platform, user, name, group, household in PLAYERS:
        await services.access.grant(platform=platform, user_id=user, role=Role.RESIDENT,
                                    ward_code="P1", group_code=group)
        if household:
            me = await services.access.identify(platform, Sender(user, name))
            await services.households.link(me, ward.id, household, f"Chủ Hộ {household[4]}"
                                           f"{household[-1]}")
    # Each group's chat: TDP01 and TDP02 on Telegram, TDP03 on Zalo.
    await h.say("/lienket TDP01", user=BOSS, group=True, chat="-1001")
    await h.say("/lienket TDP02", user=BOSS, group=True, chat="-1002")
    await services.access.grant(platform="zalo", user_id="zl3", role=Role.LEADER,
                                ward_code="P1", group_code="TDP03")
    await h.router.dispatch(zalo, message("/lienket TDP03", user="zl3", group=True, chat="zg3",
                                          platform="zalo"))
    assert "TDP03" in zalo.said[-1].text
    return zalo


async def create(h: Harness) -> str:
    menu = await h.say("/cuocthi", user=BOSS)
    assert "Hiện chưa có cuộc thi nào đang mở" in menu
    assert "➕ Tạo cuộc thi mới" in h.platform.last.labels
    await h.send(press("ct:new", user=BOSS))
    assert "Tên cuộc thi là gì?" in h.platform.last.text
    await h.say("Tìm hiểu chuyển đổi số tháng 11", user=BOSS)
    assert "📚 Hiểu biết về chuyển đổi số (18 câu)" in h.platform.last.labels
    await h.send(press("ct:b:chuyen_doi_so", user=BOSS))
    assert "Thi từ ngày nào" in h.platform.last.text
    assert "chưa hiểu" in await h.say("hôm nay", user=BOSS)
    await h.say("24/11 - 30/11", user=BOSS)
    assert "Không có tổ: TDP09" in await h.say("TDP09", user=BOSS)
    confirm = await h.say("TDP01-TDP03", user=BOSS)
    assert "Các tổ: TDP01, TDP02, TDP03" in confirm and "mỗi người 10 câu" in confirm
    await h.send(press("ct:ok", user=BOSS))
    return h.platform.last.text


def group_posts(h: Harness, zalo: RecordingPlatform, kind: str) -> dict[str, str]:
    said = {s.chat_id: s.text for s in h.platform.said if s.chat_id in ("-1001", "-1002")
            and kind in s.text}
    said.update({s.chat_id: s.text for s in zalo.said if s.chat_id == "zg3" and kind in s.text})
    return said


async def deliver(h: Harness) -> None:
    """Run the outbox as if time passed: a group chat's pacing (20 a minute) is waited out."""
    outbox = h.ctx.services.outbox
    for _ in range(5):
        await outbox.sleeper.sleep(60)  # per-chat pacing runs on the harness's virtual time
        await outbox.run_once()
        h.clock.advance(timedelta(seconds=5))


async def tick(h: Harness) -> None:
    await post_contest_news(h.ctx)
    await deliver(h)


async def play_telegram(h: Harness, user: str, choice: str) -> str:
    await h.say("/cuocthi", user=user)
    await h.send(press("ct:p:1", user=user))
    for _ in range(10):
        question = h.platform.last
        assert question.text.startswith("❓ Câu") and question.labels == ["A", "B", "C", "D"]
        payload = question.payloads[question.labels.index(choice)]
        await h.send(press(payload, user=user))
    return h.platform.last.text


async def play_zalo(h: Harness, zalo: RecordingPlatform, user: str, number: str) -> str:
    await h.router.dispatch(zalo, message("/cuocthi", user=user, platform="zalo"))
    assert "1. ▶️ Tham gia: Tìm hiểu chuyển đổi số tháng 11" in zalo.said[-1].text
    await h.router.dispatch(zalo, message("1", user=user, platform="zalo"))
    for _ in range(10):
        assert "❓ Câu" in zalo.said[-1].text and "4. " in zalo.said[-1].text
        await h.router.dispatch(zalo, message(number, user=user, platform="zalo"))
    return zalo.said[-1].text


async def test_a_contest_with_three_groups_and_ten_players(harness: Harness) -> None:
    h = harness
    zalo = await setup(h)
    created = await create(h)
    assert "Đã tạo cuộc thi #1" in created

    await tick(h)
    announced = group_posts(h, zalo, "bắt đầu!")
    assert set(announced) == {"-1001", "-1002", "zg3"}
    assert "/cuocthi" in announced["zg3"] and "Mở đến hết ngày 30/11/2026" in announced["zg3"]
    await tick(h)
    assert len(group_posts(h, zalo, "bắt đầu!")) == 3  # once

    scores = []
    for platform, user, _name, _group, _hh in PLAYERS:
        if platform == "telegram":
            scores.append(await play_telegram(h, user, "ABCDABCDAB"[len(scores)]))
        else:
            scores.append(await play_zalo(h, zalo, user, "1234"[len(scores) % 4]))
    assert all("Bà con trả lời đúng" in s and "/10 câu" in s for s in scores)
    again = await h.say("/cuocthi", user="t1")
    await h.send(press("ct:p:1", user="t1"))
    assert "Bà con đã chơi rồi" in h.platform.last.text and "Tham gia" in again

    progress = await h.say("/tiendo", user=BOSS)
    assert "10 người chơi, 58% hộ tham gia (7/12)" in progress

    h.clock.set(datetime(2026, 11, 28, 3, 0, tzinfo=UTC))  # past half time, 10:00
    await tick(h)
    standing = group_posts(h, zalo, "nửa chặng")
    assert set(standing) == {"-1001", "-1002", "zg3"}
    assert "TDP01 75% (3/4 hộ)" in standing["-1001"]
    assert "TDP02 50% (2/4 hộ)" in standing["-1001"] and "TDP03 50% (2/4 hộ)" in standing["-1001"]

    h.clock.set(datetime(2026, 11, 30, 17, 1, tzinfo=UTC))  # 00:01 on 1/12: over, but night
    await tick(h)
    assert group_posts(h, zalo, "đã kết thúc") == {}  # group posts wait for the morning
    boss = [s.text for s in h.platform.said if s.chat_id == BOSS and "đã kết thúc" in s.text]
    assert boss and "Trả lời giỏi nhất" in boss[-1]
    h.clock.set(datetime(2026, 12, 1, 0, 30, tzinfo=UTC))  # 07:30
    await deliver(h)
    final = group_posts(h, zalo, "đã kết thúc")
    assert set(final) == {"-1001", "-1002", "zg3"}
    # Top scorers by first name and group only: never a full name.
    top = final["-1001"].split("Trả lời giỏi nhất")[1]
    assert any(f"({g})" in top for g in ("TDP01", "TDP02", "TDP03"))
    assert "Nguyễn" not in top and "Trần" not in top and "Bùi" not in top


async def test_results_export_and_double_presses(harness: Harness) -> None:
    h = harness
    await setup(h)
    await create(h)
    await h.say("/cuocthi", user="t1")
    await h.send(press("ct:p:1", user="t1"))
    first = h.platform.last.payloads[0]
    await h.send(press(first, user="t1"))
    assert "Đáp án đúng" in h.platform.said[-2].text or "Đúng rồi" in h.platform.said[-2].text
    await h.send(press(first, user="t1"))  # the same question again
    assert "Câu này đã trả lời rồi" in h.platform.last.text
    await h.send(press("ct:a:1:1:7", user="t2"))  # someone else's attempt
    assert "Không tìm thấy" in h.platform.last.text
    await h.send(press("ct:s:1", user="t1"))
    assert "Không tìm thấy cuộc thi số 1" in h.platform.last.text  # results: staff only

    await h.say("/cuocthi", user=BOSS)
    await h.send(press("ct:x:1", user=BOSS))
    document = h.platform.last.message.attachment
    assert document is not None and document.filename == "cuoc-thi-1.xlsx"
    book = load_workbook(io.BytesIO(document.data or b""))
    assert book.sheetnames == ["Theo tổ", "Người chơi"]
    groups = [list(r) for r in book["Theo tổ"].iter_rows(values_only=True)]
    assert groups[0] == ["Tổ", "Số hộ", "Số hộ tham gia", "Tỷ lệ hộ tham gia (%)",
                         "Số người chơi"]
    assert ["TDP01", 4, 1, 25, 1] in groups
    ended = await h.send(press("ct:e:1", user=BOSS))
    assert "Đã kết thúc cuộc thi #1" in ended.last.text


async def test_a_question_bank_from_a_spreadsheet(harness: Harness) -> None:
    rows = ("DANH SÁCH CÂU HỎI CUỘC THI\n"
            "Câu hỏi,A,B,C,D,Đáp án đúng,Giải thích,Hướng dẫn\n"
            "VNeID của cơ quan nào?,Ngân hàng,Bộ Công an,Nhà mạng,Cửa hàng,B,Của Bộ Công an,vneid_what\n"
            "OTP có được đọc cho người lạ không?,Có,Không,Tùy,Chỉ buổi sáng,2,,\n")
    questions = read_bank_file(rows.encode())
    assert [q.answer for q in questions] == [1, 1]
    assert questions[0].options[1] == "Bộ Công an" and questions[0].guide == "vneid_what"
    bad = rows.replace("Chỉ buổi sáng,2", "Chỉ buổi sáng,E")
    try:
        read_bank_file(bad.encode())
    except ContestError as exc:
        assert exc.reason == "bad_row" and exc.details == {"line": 4}
    else:
        raise AssertionError("a row without a right answer was accepted")
    # In chat: sending the file at the bank step.
    h = harness
    await setup(h)
    await h.say("/cuocthi", user=BOSS)
    await h.send(press("ct:new", user=BOSS))
    await h.say("Thi nhanh", user=BOSS)
    doc = replace(message("", user=BOSS), attachments=(Attachment(
        kind="document", file_id="bank-1", filename="cau-hoi.csv", data=rows.encode()),))
    await h.send(doc)
    assert "Đã đọc 2 câu hỏi từ tệp" in h.platform.said[-2].text
    assert "Thi từ ngày nào" in h.platform.last.text

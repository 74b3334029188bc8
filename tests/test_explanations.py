"""The explanation library: every topic valid, the matcher's accuracy, and the conversation."""

from __future__ import annotations

import asyncio
import re
import tomllib
from pathlib import Path
from typing import Any

import jinja2
import pytest

from bot.clock import FrozenClock
from bot.context import Content
from bot.db import Database
from bot.roles import Role
from bot.services.conversations import Who
from bot.services.explanations import (
    EXPLANATIONS_DIR,
    Explanations,
    Matcher,
    fold,
    load_library,
)
from bot.services.vietnamese import load_glossary
from tests.conftest import Harness
from tests.recording import message, press

LIBRARY = load_library("vi")
DATA = Path(__file__).parent / "data"
EVAL = [c for c in tomllib.loads((DATA / "understanding_tuning.toml").read_text("utf-8"))["case"]
        if "topic" in c]
SAMPLE = {
    "app": {"name": "iHanoi", "android_url": "https://play.example/ihanoi",
            "ios_url": "https://apps.example/ihanoi", "hotline": "1900 0000"},
    "office": {"name": "UBND phường Hòa Bình", "address": "12 Lê Lợi", "hours": "7:30-17:00",
               "phone": "024 0000 0000"},
    "bot": {"name": "Trợ lý số"},
    "unit": "phường",
    "term": load_glossary(),
}
EMPTY = {**SAMPLE, "app": {**SAMPLE["app"], "android_url": "", "ios_url": "", "hotline": ""},
         "office": {"name": "UBND phường Hòa Bình", "address": "", "hours": "", "phone": ""}}


def words(text: str) -> int:
    return len(re.sub(r"{[{%].*?[%}]}", " ", text).split())


def test_the_library_is_complete() -> None:
    assert len(LIBRARY.topics) >= 30
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)
    for topic in LIBRARY.topics.values():
        assert topic.title and topic.keywords and topic.related, topic.key
        assert words(topic.answer) <= 120, f"{topic.key}: answer has {words(topic.answer)} words"
        for source in (topic.title, topic.answer, *topic.steps):
            for values in (SAMPLE, EMPTY):
                rendered = env.from_string(source).render(**values)
                assert "{{" not in rendered and "None" not in rendered, topic.key
        assert len(f"faq:v:{topic.key}:1".encode()) <= 64
    folded = {fold(k) for t in LIBRARY.topics.values() for k in t.keywords}
    assert any(fold(k) != k for t in LIBRARY.topics.values() for k in t.keywords)  # accented
    assert len(folded) > 300


def test_required_subjects_are_covered() -> None:
    text = fold(" ".join(f"{t.title} {t.answer}" for t in LIBRARY.topics.values()))
    for subject in ("vneid", "muc 2", "khai sinh", "tam tru", "luu tru", "toan trinh", "otp",
                    "qr", "dien", "hoc phi", "luong huu", "lua dao", "mat khau", "cap nhat",
                    "bo nho", "co chu", "nhom", "kham benh tu xa", "so suc khoe"):
        assert subject in text, subject


def test_local_facts_come_from_config_not_from_content() -> None:
    for path in (EXPLANATIONS_DIR / "vi").glob("*.toml"):
        raw = path.read_text("utf-8")
        for phone in re.findall(r"\b\d[\d .]{7,}\d\b", raw):
            assert phone.replace(" ", "").replace(".", "") in {"113", "114", "115"}, (path, phone)


def test_eval_set_is_big_and_labelled_with_real_topics() -> None:
    assert len(EVAL) >= 80
    assert {c["topic"] for c in EVAL} <= set(LIBRARY.topics)


def test_matcher_finds_the_right_topic_for_at_least_90_percent() -> None:
    matcher = Matcher(LIBRARY)
    misses = [(c["q"], c["topic"], getattr(matcher.best(c["q"]), "key", None))
              for c in EVAL if getattr(matcher.best(c["q"]), "key", None) != c["topic"]]
    accuracy = 1 - len(misses) / len(EVAL)
    assert accuracy >= 0.90, f"{accuracy:.0%}; misses: {misses}"


@pytest.mark.parametrize("text", ["vneid la gi", "VNeID là gì?", "vnied la gi", "VNEID LA GI"])
def test_diacritics_case_and_typos_do_not_matter(text: str) -> None:
    matcher = Matcher(LIBRARY)
    assert matcher.best(text) == matcher.best("VNeID là gì")


def test_nonsense_matches_nothing() -> None:
    assert Matcher(LIBRARY).match("giá vàng hôm nay bao nhiêu").confident is None
    result = Matcher(LIBRARY).match("con mèo nhà tôi bị lạc")
    assert result.confident is None and result.candidates == ()


async def test_menu_category_topic_steps_and_vote(harness: Harness) -> None:
    await harness.send(message("/hoidap"))
    assert "Hỏi đáp" in harness.platform.last.text
    category = harness.platform.last.payloads[0]
    await harness.send(press(category))
    topic_payload = harness.platform.last.payloads[0]
    key = topic_payload.split(":")[2]
    await harness.send(press(topic_payload))
    answer = harness.platform.last
    assert LIBRARY.topics[key].title in answer.text
    assert "Có hữu ích không?" in answer.text
    assert f"faq:v:{key}:1" in answer.payloads and f"fb:ask:{key}" in answer.payloads
    if LIBRARY.topics[key].steps:
        await harness.send(press(f"faq:steps:{key}"))
        assert "1. " in harness.platform.last.text
    await harness.send(press(f"faq:v:{key}:0"))
    assert harness.platform.answered[-1][1].startswith("Cảm ơn bạn đã cho biết")
    await harness.send(press(f"faq:v:{key}:0"))  # pressing twice is still one vote
    stats = {s.key: s for s in await harness.ctx.services.explanations.stats()}
    assert stats[key].reads == 1 and stats[key].unhelpful == 1


async def test_free_text_without_diacritics_gets_the_answer(harness: Harness) -> None:
    said = await harness.say("vneid la gi vay con")
    expected = Matcher(LIBRARY).best("vneid la gi")
    assert expected is not None and expected.title in said
    assert "VNeID là gì?" in said


async def test_a_close_runner_up_is_offered_under_the_answer(harness: Harness) -> None:
    """"Đổi số điện thoại" is most likely VNeID's phone number, but may be the bank's: the
    answer comes at once, with the other guide one press away."""
    said = await harness.say("đổi số điện thoại")
    assert "Đổi số điện thoại VNeID" in said
    last = harness.platform.last
    assert "🔎 Hay ý là: Đổi số điện thoại nhận OTP của ngân hàng" in last.labels
    assert "faq:t:bank_otp_phone" in last.payloads
    assert last.labels.count("🔎 Hay ý là: Đổi số điện thoại nhận OTP của ngân hàng") == 1
    await harness.send(message("học phí"))  # clearly one guide: no second guess
    assert not any(label.startswith("🔎") for label in harness.platform.last.labels)


async def test_unknown_question_offers_to_ask_the_ward(harness: Harness) -> None:
    await harness.send(message("con mèo nhà tôi bị lạc"))
    assert "chưa có hướng dẫn nào đúng" in harness.platform.last.text
    assert "fb:ask" in harness.platform.last.payloads
    form = await harness.ctx.services.conversations.get(Who("telegram", "100", "100"))
    assert form is not None and form.data["question"] == "con mèo nhà tôi bị lạc"


async def test_group_chat_answers_only_when_called(harness: Harness) -> None:
    assert await harness.say("vneid la gi", group=True) == ""
    said = await harness.say("@cds_test_bot vneid la gi", group=True, addressed=True)
    assert "VNeID" in said


async def test_office_details_come_from_config(harness: Harness) -> None:
    office = [t for t in LIBRARY.topics.values() if t.category == "ward" and "office" in t.key]
    assert office, "a topic about the ward office"
    config = harness.ctx.config.model_copy(
        update={"office": harness.ctx.config.office.model_copy(
            update={"address": "số 5 Nguyễn Trãi", "phone": "0243 999 888"})}
    )
    object.__setattr__(harness.ctx, "config", config)
    await harness.send(press(f"faq:t:{office[0].key}"))
    assert "số 5 Nguyễn Trãi" in harness.platform.last.text


async def test_stats_are_for_coordinators(harness: Harness) -> None:
    await harness.say("vneid la gi")
    await harness.grant("100", Role.RESIDENT, "TDP01")
    assert "chỉ dành cho Cán bộ phường" in await harness.say("/hoidap thongke")
    await harness.grant("100", Role.COORDINATOR)
    said = await harness.say("/hoidap thongke")
    assert "1 lượt đọc" in said


async def test_titles_name_the_province_app(harness: Harness) -> None:
    config = harness.ctx.config
    app_section = config.citizen_app.model_copy(update={"name": "iHanoi"})
    object.__setattr__(harness.ctx, "config", config.model_copy(update={"citizen_app": app_section}))
    await harness.send(press("faq:cat:citizen_app"))
    assert "Ứng dụng iHanoi để làm gì?" in harness.platform.last.labels
    await harness.send(press("faq:t:citizen_app_what"))
    assert "iHanoi là ứng dụng công dân" in harness.platform.last.text
    assert "{{" not in harness.platform.last.text



def test_guides_render_from_compiled_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each guide's title, answer and steps are compiled once per process (perf): rendering
    the whole library again, with other values, compiles nothing."""
    from bot.texts import Texts

    texts = Texts(locale="vi")
    compiled: list[str] = []
    original = jinja2.Environment.from_string

    def counting(self: jinja2.Environment, source: str, *args: Any, **kw: Any) -> Any:
        compiled.append(source)
        return original(self, source, *args, **kw)

    def render_all(values: dict[str, Any]) -> None:
        for topic in LIBRARY.topics.values():
            assert texts.plain_string(topic.title, "vi", **values)
            assert "{{" not in texts.render_string(topic.answer, "vi", **values)
            for step in topic.steps:
                texts.render_string(step, "vi", **values)

    monkeypatch.setattr(jinja2.Environment, "from_string", counting)
    render_all(SAMPLE)
    assert len(compiled) >= len(LIBRARY.topics)
    first = len(compiled)
    render_all(EMPTY)
    render_all(SAMPLE)
    assert len(compiled) == first


async def test_first_reads_of_a_guide_at_the_same_time_are_all_counted(
    db_url: str, clock: FrozenClock, content: Content,
) -> None:
    """Residents asking about one guide at once, the first time that day: each read counts
    and nobody gets an apology (on PostgreSQL "update, else insert" let two insert)."""
    db = Database(db_url)
    try:
        explanations = Explanations(db, clock, content.library)
        key = sorted(content.library.topics)[0]
        await asyncio.gather(*(explanations.record_read(key) for _ in range(8)))
        reads = {s.key: s.reads for s in await explanations.stats()}
        assert reads[key] == 8
    finally:
        await db.dispose()

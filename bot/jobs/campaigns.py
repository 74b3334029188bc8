"""What the scheduler does for campaigns: reminders in the group chats with each group's live
figures, a congratulation (once) when a group reaches the target, the final ranking when a
campaign ends, and the coordinators' daily digest. Everything goes out as outbox rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, tzinfo

from bot.clock import Clock
from bot.core import Button
from bot.delivery.outbox import NewDelivery, Outbox
from bot.faq import FaqPress
from bot.services.access import Access
from bot.services.campaigns import CampaignInfo, Campaigns, campaign_total
from bot.services.chats import Chats
from bot.services.explanations import Explanations
from bot.services.feedback import Feedbacks
from bot.services.places import Places
from bot.services.progress import Progress
from bot.services.relay import Reach, Relays
from bot.services.relay_delivery import RelayDelivery
from bot.services.reminders import PersonalReminders
from bot.texts import Texts
from bot.when import parse_time_of_day

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignJobs:
    campaigns: Campaigns
    progress: Progress
    chats: Chats
    access: Access
    feedback: Feedbacks
    places: Places
    explanations: Explanations
    reminders: PersonalReminders
    outbox: Outbox
    relays: Relays  # groups the bot cannot post to are reached through a person
    relay_delivery: RelayDelivery
    texts: Texts
    clock: Clock
    locale: str
    tz: tzinfo
    digest_time: str  # "HH:MM", validated by the config

    async def remind(self, c: CampaignInfo, *, run_key: str) -> int:
        """Queue one reminder per chat of each group in the campaign, with its live figures,
        and congratulate (once) the groups that reached the target. Returns chats queued."""
        progress = await self.progress.ward(c.ward_id)
        step = self.progress.step(c.step_key)
        if step is None:
            log.warning("campaign %s: step %s is no longer configured", c.id, c.step_key)
            return 0
        ranked = [(g, s) for g, s in progress.ranked(c.step_key) if not c.group_ids
                  or g.group_id in c.group_ids]
        chats = await self.chats.active_by_group(c.ward_id)
        guide = [[Button(self.texts.label("campaigns.guide", self.locale),
                         FaqPress("t", step.guide).pack())]] if step.guide in \
            self.explanations.library.topics else []
        reached = [g.group_id for g, s in ranked if s.ratio >= c.target]
        new_winners = set(await self.campaigns.congratulate(c.id, reached))
        reach = await self.relays.reach(c.ward_id)  # groups the bot cannot post to: relay
        relayed: list[tuple[Reach, str, str]] = []
        items = []
        for rank, (group, count) in enumerate(ranked, start=1):
            text = self.texts.render(
                "campaigns/reminder", self.locale, c=c, step=step, group=group,
                count=count, rank=rank, groups=len(ranked), left=max(count.total - count.done, 0),
                days_left=(c.ends_on - self.campaigns.today()).days,
            )
            way = reach.get(group.group_id)
            if way is not None and way.relay and way.person is not None:
                relayed.append((way, "reminder", text))
                if group.group_id in new_winners:
                    relayed.append((way, "congrats", self.texts.render(
                        "campaigns/congrats", self.locale, c=c, step=step, group=group,
                        count=count)))
            for chat in chats.get(group.group_id, []) if way is None or way.direct else []:
                items.append(NewDelivery(
                    kind="reminder", ref_id=c.id, platform=chat.platform, chat_id=chat.chat_id,
                    dedupe=f"rem:{c.id}:{run_key}:{chat.platform}:{chat.chat_id}", text=text,
                    ward_id=c.ward_id, group_id=group.group_id, buttons=guide,
                ))
                if group.group_id in new_winners:
                    items.append(NewDelivery(
                        kind="congrats", ref_id=c.id, platform=chat.platform,
                        chat_id=chat.chat_id,
                        dedupe=f"congr:{c.id}:{group.group_id}:{chat.platform}:{chat.chat_id}",
                        text=self.texts.render("campaigns/congrats", self.locale, c=c,
                                               step=step, group=group, count=count),
                        ward_id=c.ward_id, group_id=group.group_id,
                    ))
        await self.outbox.enqueue(items)
        if relayed:
            ward = await self.places.ward(c.ward_id)
            for way, kind, body in relayed:
                await self.relay_delivery.send(
                    kind=kind, ref_id=c.id, run=run_key if kind == "reminder" else "",
                    ward_id=c.ward_id, ward_name=ward.name if ward else "",
                    author_member_id=None, reaches=[way], body=body, when=self.clock.now())
        return sum(1 for i in items if i.kind == "reminder") + \
            sum(1 for _, kind, _ in relayed if kind == "reminder")

    async def finish(self, c: CampaignInfo) -> None:
        """Post the final ranking to the groups and the coordinators, once."""
        if not await self.campaigns.end(c.id):
            return
        progress = await self.progress.ward(c.ward_id)
        step = self.progress.step(c.step_key)
        ranked = [(g, s) for g, s in progress.ranked(c.step_key) if not c.group_ids
                  or g.group_id in c.group_ids]
        text = self.texts.render("campaigns/final", self.locale, c=c, step=step,
                                 ranked=ranked, total=campaign_total(progress.groups, c))
        chats = await self.chats.active_by_group(c.ward_id)
        reach = await self.relays.reach(c.ward_id)  # groups reached through a person
        items = [
            NewDelivery(kind="final", ref_id=c.id, platform=chat.platform, chat_id=chat.chat_id,
                        dedupe=f"final:{c.id}:{chat.platform}:{chat.chat_id}", text=text,
                        ward_id=c.ward_id, group_id=group.group_id)
            for group, _ in ranked for chat in chats.get(group.group_id, [])
            if group.group_id not in reach or reach[group.group_id].direct
        ]
        relayed = [reach[g.group_id] for g, _ in ranked if g.group_id in reach
                   and reach[g.group_id].relay and reach[g.group_id].person is not None]
        if relayed:
            ward = await self.places.ward(c.ward_id)
            await self.relay_delivery.send(
                kind="final", ref_id=c.id, ward_id=c.ward_id, ward_name=ward.name if ward else "",
                author_member_id=None, reaches=relayed, body=text, when=self.clock.now())
        effect = await self.reminders.effect(c.id)
        if effect:  # the coordinators' copy also says what the personal reminders achieved
            text += "\n\n" + self.texts.render("campaigns/reminder_effect", self.locale,
                                               effect=effect)
        items += [
            NewDelivery(kind="final", ref_id=c.id, platform=platform, chat_id=user_id,
                        dedupe=f"final:{c.id}:{platform}:{user_id}", text=text, is_group=False,
                        ward_id=c.ward_id, priority=3)
            for platform, user_id in await self.access.coordinators(c.ward_id)
        ]
        await self.outbox.enqueue(items)

    async def digest(self, ward_id: int, now: datetime) -> int:
        """The coordinators' daily digest: today's progress per group and feedback to
        handle. Returns how many coordinators it goes to."""
        tz = self.tz
        midnight = datetime.combine(now.astimezone(tz).date(), datetime.min.time(), tzinfo=tz)
        progress = await self.progress.ward(ward_id)
        today = await self.progress.change_by_group(ward_id, midnight)
        counts = await self.feedback.counts(ward_id)
        text = self.texts.render("campaigns/digest", self.locale, progress=progress,
                                 today=today, feedback=counts, day=now)
        people = await self.access.coordinators(ward_id)
        stamp = now.astimezone(tz).date().isoformat()
        await self.outbox.enqueue([
            NewDelivery(kind="digest", ref_id=ward_id, platform=platform, chat_id=user_id,
                        dedupe=f"digest:{ward_id}:{stamp}:{platform}:{user_id}", text=text,
                        is_group=False, ward_id=ward_id, priority=3)
            for platform, user_id in people
        ])
        return len(people)

    async def tick(self) -> int:
        """Every minute on the scheduler leader: due reminders (one per missed run),
        campaigns past their end, the daily digests. Returns how many things it did."""
        done = 0
        today = self.campaigns.today()
        for c in await self.campaigns.due_runs():
            await self.campaigns.mark_run(c.id)
            if c.starts_on <= today <= c.ends_on:
                slot = self.clock.now().astimezone(self.tz).strftime("%Y%m%d%H")
                await self.remind(c, run_key=slot)
                done += 1
        for c in await self.campaigns.past_end() + await self.campaigns.ended_by_hand():
            await self.finish(c)
            done += 1
        at = parse_time_of_day(self.digest_time)
        assert at is not None  # the config validates the format
        for ward in await self.places.wards():
            if await self.campaigns.daily_due(f"digest:{ward.id}", at):
                await self.digest(ward.id, self.clock.now())
                done += 1
        return done

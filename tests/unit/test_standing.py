"""Where a waiting user stands: queue figures shared by every waiter, business hours and
nobody available before opening, and the choice once nobody accepted in time."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from bridge.config import SANDBOX_WORKSPACE_SID
from bridge.conversations import QueueHistory, TwilioUnavailable
from bridge.core.errors import InvalidChoice, NothingToChoose
from bridge.core.outcomes import HandoffStatus
from bridge.core.queue_watch import HISTORY_EVERY_REFRESHES, QueueStanding, expected_wait
from bridge.core.standing import Standing, WaitPolicy
from bridge.hours import parse_hours
from bridge.notes import Vocabulary, note
from bridge.store import ConversationRow
from tests.fakes import QUEUE_SID
from tests.unit.conftest import CoreFactory

WORDS = Vocabulary(send="sendMessage", replies="getReplies", choose="chooseNextStep")
FAST = {"ROUTING": "interactions", "QUEUE_REFRESH_SECONDS": "0.05"}
ALWAYS_OPEN = "UTC; Mon-Sun 00:00-24:00"


def closed_today() -> str:
    """A schedule closed today and tomorrow (UTC), open every other day."""
    today = datetime.now(UTC).date()
    return f"{ALWAYS_OPEN}; closed {today}, {today + timedelta(days=1)}"


def history(
    accepted: int, below: dict[int, int], shortest: int = 0, longest: int = 0
) -> QueueHistory:
    return QueueHistory(QUEUE_SID, accepted, shortest, longest, below)


# --- the expected wait ---------------------------------------------------------------------


def test_no_expected_wait_without_enough_history() -> None:
    assert expected_wait(history(0, {})) is None
    assert expected_wait(history(4, {60: 4}, 10, 50)) is None


def test_the_expected_wait_is_the_middle_half_of_past_waits() -> None:
    # 20 accepted: 2 under 30 s, 5 under a minute, 12 under two, 16 under three, all under 5.
    below = {30: 2, 60: 5, 120: 12, 180: 16, 300: 20, 600: 20}
    assert expected_wait(history(20, below, shortest=12, longest=290)) == (60, 180)
    # Within what was seen: nobody waited under 40 s, nobody over 100 s.
    assert expected_wait(history(8, {30: 0, 60: 4, 120: 8}, 40, 100)) == (40, 100)
    # Most waited longer than the top threshold: the high end is the longest seen.
    assert expected_wait(history(10, {60: 1, 3600: 2}, 50, 7200)) == (3600, 7200)


# --- queue figures in answers ---------------------------------------------------------------


async def test_answers_carry_position_agents_and_wait_from_one_shared_reader(
    make_core: CoreFactory,
) -> None:
    async with make_core(**FAST) as core:
        twilio = core.twilio
        twilio.agents_available = 2
        twilio.history = history(20, {30: 2, 60: 5, 120: 12, 180: 16, 300: 20}, 12, 290)
        users = [core.identity(name) for name in ("ann", "bob", "cy")]
        for who in users:
            await core.wired.handoff.send(who, "hello", wait_seconds=0)
        results = [await core.wired.handoff.replies(who, 0.3) for who in users]
        assert [r.handoff.queue.position for r in results if r.handoff.queue] == [1, 2, 3]
        third = results[2].handoff
        assert third.state == "queued"
        assert third.queue is not None
        assert third.queue.agents_available == 2
        assert third.queue.expected_wait == (60, 180)
        said = note(results[2].outcome, WORDS, third)
        assert "third in line" in said
        assert "Lately an agent usually picked up within 1 to 3 minutes" in said
        # One reader for everyone: per refresh, one list and one statistics read.
        lists = twilio.calls.count("list_waiting_tasks")
        stats = twilio.calls.count("queue_real_time_statistics")
        assert stats <= lists + 1
        # The history, far less often than the line.
        history_reads = twilio.calls.count("queue_cumulative_statistics")
        assert 1 <= history_reads <= lists // HISTORY_EVERY_REFRESHES + 1

        # The first in line is accepted: the others move up.
        twilio.set_task(twilio.tasks[0].conversation_sid, "assigned")
        later = await core.wired.handoff.replies(users[2], 0.3)
        assert later.handoff.queue is not None and later.handoff.queue.position == 2


async def test_no_history_means_no_expected_wait_and_no_agents_says_so(
    make_core: CoreFactory,
) -> None:
    async with make_core(**FAST) as core:
        core.twilio.agents_available = 0
        who = core.identity("ann")
        first = await core.wired.handoff.send(who, "hello", wait_seconds=0.3)
        assert first.status == "waiting"
        assert first.handoff.state == "no_agents"
        assert first.handoff.queue is not None
        assert first.handoff.queue.expected_wait is None
        said = note(first.outcome, WORDS, first.handoff)
        assert "No agent of the support team is available right now" in said
        assert "within" not in said


async def test_without_a_workspace_queue_figures_stay_unknown(make_core: CoreFactory) -> None:
    async with make_core(
        SANDBOX="0",
        TWILIO_FLOW_SID="FW" + "1" * 32,
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TWILIO_AUTH_TOKEN="1" * 32,
        BRIDGE_SECRET="kT9vQ2mX7pL4wZ8rN3bY6cF1hJ5dG0sA",
        TWILIO_API_BASE_URL="http://127.0.0.1:9",
        ALLOW_INSECURE_NO_AUTH="1",
    ) as core:
        who = core.identity("ann")
        result = await core.wired.handoff.send(who, "hello", wait_seconds=0.2)
        assert result.handoff.state == "queued"
        assert result.handoff.queue is None
        assert "list_waiting_tasks" not in core.twilio.calls


# --- business hours and nobody available ---------------------------------------------------


async def test_after_hours_the_message_is_taken_and_the_opening_time_given(
    make_core: CoreFactory,
) -> None:
    async with make_core(**FAST, BUSINESS_HOURS=closed_today()) as core:
        who = core.identity("ann")
        result = await core.wired.handoff.send(who, "hello", wait_seconds=0)
        assert result.status == "waiting"
        assert result.handoff.state == "after_hours"
        opens = datetime.now(UTC).date() + timedelta(days=2)
        assert result.handoff.opens_at == f"{opens}T00:00:00Z"
        assert core.twilio.bodies(core.twilio.only().sid) == ["hello"]  # passed on
        said = note(result.outcome, WORDS, result.handoff)
        assert "closed now and opens on" in said and "once they open" in said


async def test_after_hours_with_decline_nothing_is_sent(make_core: CoreFactory) -> None:
    async with make_core(
        **FAST, BUSINESS_HOURS=closed_today(), UNAVAILABLE_POLICY="decline"
    ) as core:
        who = core.identity("ann")
        result = await core.wired.handoff.send(who, "hello", wait_seconds=5)
        assert result.status == "unavailable"
        assert result.handoff.state == "after_hours"
        assert result.handoff.opens_at is not None
        assert core.twilio.conversations == {}
        assert await core.wired.store.pending_messages(who) == []
        said = note(result.outcome, WORDS, result.handoff)
        assert "Nothing was sent" in said and "Keep helping the user yourself" in said


async def test_nobody_available_with_decline_sends_nothing_but_open_hours_do(
    make_core: CoreFactory,
) -> None:
    async with make_core(**FAST, BUSINESS_HOURS=ALWAYS_OPEN, UNAVAILABLE_POLICY="decline") as core:
        core.twilio.agents_available = 0
        who = core.identity("ann")
        result = await core.wired.handoff.send(who, "hello", wait_seconds=0)
        assert (result.status, result.handoff.state) == ("unavailable", "no_agents")
        assert core.twilio.conversations == {}
        core.twilio.agents_available = 1
        await asyncio.sleep(0.06)  # past the cached answer
        later = await core.wired.handoff.send(who, "hello again", wait_seconds=0)
        assert later.status == "waiting"
        assert core.twilio.bodies(core.twilio.only().sid) == ["hello again"]


async def test_an_open_conversation_is_not_asked_about_agents_again(make_core: CoreFactory) -> None:
    async with make_core(**FAST, UNAVAILABLE_POLICY="decline") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        core.twilio.agents_available = 0
        await asyncio.sleep(0.06)
        follow_up = await core.wired.handoff.send(who, "still there?", wait_seconds=0)
        assert follow_up.status == "waiting"  # the conversation exists: the message goes on
        assert core.twilio.bodies(core.twilio.only().sid) == ["hello", "still there?"]


# --- nobody accepts in time ----------------------------------------------------------------


async def test_a_wait_ends_early_with_the_choice_when_nobody_accepts_in_time(
    make_core: CoreFactory,
) -> None:
    async with make_core(**FAST, ASSIGNMENT_TIMEOUT_SECONDS="1", REPLY_WAIT_SECONDS="5") as core:
        who = core.identity("ann")
        first = await core.wired.handoff.send(who, "hello", wait_seconds=0)
        assert first.handoff.choices == ()
        started = datetime.now(UTC)
        later = await core.wired.handoff.replies(who, 5)
        assert (datetime.now(UTC) - started).total_seconds() < 4  # not the whole wait
        assert later.outcome == "no_one_accepted"
        assert later.handoff.choices == ("keep_waiting", "leave_message", "continue_with_assistant")
        said = note(later.outcome, WORDS, later.handoff)
        assert "chooseNextStep" in said and "leave_message" in said


async def test_keep_waiting_asks_again_after_another_timeout(make_core: CoreFactory) -> None:
    async with make_core(**FAST, ASSIGNMENT_TIMEOUT_SECONDS="1", REPLY_WAIT_SECONDS="5") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        assert (await core.wired.handoff.replies(who, 5)).outcome == "no_one_accepted"
        kept = await core.wired.handoff.choose(who, "keep_waiting")
        assert kept.status == "waiting"
        assert kept.handoff.choice == "keep_waiting"
        assert kept.handoff.choices == ()
        again = await core.wired.handoff.replies(who, 5)
        assert again.outcome == "no_one_accepted"


async def test_leave_message_keeps_the_task_and_stops_asking(make_core: CoreFactory) -> None:
    async with make_core(**FAST, ASSIGNMENT_TIMEOUT_SECONDS="1") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        left = await core.wired.handoff.choose(who, "leave_message")
        assert left.handoff.choice == "leave_message"
        assert "left their message" in note(left.outcome, WORDS, left.handoff)
        later = await core.wired.handoff.replies(who, 1.5)
        assert later.outcome == "waiting" and later.handoff.choices == ()
        assert [t.assignment_status for t in core.twilio.tasks] == ["pending"]
        # The agent answers later: the reply is there when the user comes back.
        sid = core.twilio.only().sid
        core.twilio.set_task(sid, "assigned")
        core.twilio.agent_says(sid, "Sorry for the wait!")
        await core.webhook_for(sid, 1)
        back = await core.wired.handoff.replies(who, 2)
        assert [r.body for r in back.replies] == ["Sorry for the wait!"]


async def test_continue_with_assistant_cancels_the_task_and_closes(make_core: CoreFactory) -> None:
    async with make_core(**FAST) as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        done = await core.wired.handoff.choose(who, "continue_with_assistant")
        assert done.outcome == "closed_by_user"
        (task,) = core.twilio.tasks
        assert task.assignment_status == "canceled"
        assert task.reason == "The user chose to continue with the assistant"
        assert core.twilio.only().state == "closed"


async def test_choices_are_refused_when_there_is_nothing_to_choose(
    make_core: CoreFactory,
) -> None:
    async with make_core(**FAST) as core:
        who = core.identity("ann")
        with pytest.raises(NothingToChoose):
            await core.wired.handoff.choose(who, "keep_waiting")  # no conversation
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        for bad in ("wait", "", None, 3, ["keep_waiting"], "KEEP_WAITING"):
            with pytest.raises(InvalidChoice):
                await core.wired.handoff.choose(who, bad)
        core.twilio.set_task(core.twilio.only().sid, "assigned")
        row = await core.wired.store.latest_conversation(who)
        assert row is not None
        await core.wired.store.set_progress(row.id, "with_agent")
        with pytest.raises(NothingToChoose):
            await core.wired.handoff.choose(who, "continue_with_assistant")
        assert core.twilio.only().state == "active"  # an agent has it: nothing withdrawn


async def test_a_waiting_call_hears_its_position_change(make_core: CoreFactory) -> None:
    async with make_core(**FAST, REPLY_WAIT_SECONDS="5") as core:
        ahead, who = core.identity("ann"), core.identity("bob")
        await core.wired.handoff.send(ahead, "first", wait_seconds=0)
        await core.wired.handoff.send(who, "second", wait_seconds=0)
        heard: list[int | None] = []

        async def progress(status: HandoffStatus) -> None:
            heard.append(status.queue.position if status.queue else None)
            if status.queue and status.queue.position == 2:
                core.twilio.set_task(core.twilio.tasks[0].conversation_sid, "assigned")
            if status.queue and status.queue.position == 1:
                core.twilio.set_task(core.twilio.tasks[1].conversation_sid, "assigned")

        await core.wired.handoff.replies(who, 3, progress=progress)
        known = [p for p in heard if p is not None]
        assert known[:2] == [2, 1]  # second, then first in line


async def test_after_hours_nobody_is_asked_to_choose(make_core: CoreFactory) -> None:
    async with make_core(
        **FAST, BUSINESS_HOURS=closed_today(), ASSIGNMENT_TIMEOUT_SECONDS="0.5"
    ) as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        later = await core.wired.handoff.replies(who, 1.2)
        assert later.outcome == "waiting"  # the whole wait: no early return to choose
        assert later.handoff.state == "after_hours" and later.handoff.choices == ()


async def test_a_conversations_task_is_looked_up_once_and_remembered(
    make_core: CoreFactory,
) -> None:
    # Twilio's task lists carry no attributes: the task is found by the conversation.
    async with make_core(**FAST) as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        first = await core.wired.handoff.replies(who, 0.3)
        assert first.handoff.queue is not None and first.handoff.queue.position == 1
        assert core.twilio.calls.count("list_tasks") == 1
        row = await core.wired.store.latest_conversation(who)
        assert row is not None and row.task_sid == core.twilio.tasks[0].sid
        again = await core.wired.handoff.replies(who, 0.3)
        assert again.handoff.queue is not None and again.handoff.queue.position == 1
        assert core.twilio.calls.count("list_tasks") == 1  # remembered, not asked again


async def test_a_task_named_by_the_workspace_events_needs_no_lookup(
    make_core: CoreFactory,
) -> None:
    async with make_core(**FAST) as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        sid, task = core.twilio.only().sid, core.twilio.tasks[0]
        heard = await core.wired.handoff.inbox.on_task_event(
            {
                "EventType": "task.created",
                "WorkspaceSid": SANDBOX_WORKSPACE_SID,
                "TaskSid": task.sid,
                "TaskAttributes": json.dumps({"conversationSid": sid}),
            }
        )
        assert heard
        result = await core.wired.handoff.replies(who, 0.3)
        assert result.handoff.queue is not None and result.handoff.queue.position == 1
        assert "list_tasks" not in core.twilio.calls


def test_the_wait_is_not_clamped_to_figures_twilio_did_not_give() -> None:
    below = {30: 2, 60: 5, 120: 12, 180: 16, 300: 20}
    assert expected_wait(QueueHistory(QUEUE_SID, 20, None, None, below)) == (60, 180)
    # Most waited past the top threshold, and no longest given: the top threshold.
    assert expected_wait(QueueHistory(QUEUE_SID, 10, None, None, {60: 1, 120: 2})) == (120, 120)


async def test_continuing_is_refused_when_an_agent_took_it_meanwhile(
    make_core: CoreFactory,
) -> None:
    async with make_core(**FAST) as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        # Accepted in Flex; the bridge has not heard of it yet.
        core.twilio.set_task(core.twilio.only().sid, "assigned")
        with pytest.raises(NothingToChoose):
            await core.wired.handoff.choose(who, "continue_with_assistant")
        assert core.twilio.only().state == "active"
        assert [t.assignment_status for t in core.twilio.tasks] == ["assigned"]
        row = await core.wired.store.latest_conversation(who)
        assert row is not None and row.closed_by is None and row.choice is None


async def test_a_failed_cancel_changes_nothing_and_can_be_tried_again(
    make_core: CoreFactory,
) -> None:
    async with make_core(**FAST, ASSIGNMENT_TIMEOUT_SECONDS="0.2") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        core.twilio.fail("cancel_task")
        with pytest.raises(TwilioUnavailable):
            await core.wired.handoff.choose(who, "continue_with_assistant")
        row = await core.wired.store.latest_conversation(who)
        assert row is not None and (row.state, row.closed_by, row.choice) == ("open", None, None)
        await asyncio.sleep(0.3)
        still = await core.wired.handoff.replies(who, 0)
        assert still.handoff.choices  # still asked
        done = await core.wired.handoff.choose(who, "continue_with_assistant")
        assert done.outcome == "closed_by_user"
        assert [t.assignment_status for t in core.twilio.tasks] == ["canceled"]


def test_the_usual_wait_is_not_quoted_to_someone_who_waited_longer() -> None:
    queue = QueueStanding(position=2, agents_available=1, expected_wait=(60, 180))
    fresh = HandoffStatus("queued", queue=queue, waited_seconds=30)
    assert "within 1 to 3 minutes" in note("waiting", WORDS, fresh)
    outwaited = HandoffStatus("queued", queue=queue, waited_seconds=200)
    said = note("waiting", WORDS, outwaited)
    assert "second in line" in said and "within" not in said


def test_time_closed_does_not_count_towards_the_assignment_timeout() -> None:
    hours = parse_hours("UTC; Mon-Sun 09:00-17:00")
    row = ConversationRow(
        id=1,
        identity="x" * 64,
        generation=1,
        sid="CH" + "1" * 32,
        state="open",
        synced_index=0,
        created_at="2026-12-01T22:00:00Z",  # written after hours
        closed_at=None,
        closed_by=None,
        progress="queued",
    )
    moment = [datetime(2026, 12, 2, 8, 0, tzinfo=UTC)]
    standing = Standing(None, WaitPolicy(hours, 300.0), clock=lambda: moment[0])
    before = standing.of(row)
    assert (before.state, before.choices) == ("after_hours", ())
    assert before.opens_at == "2026-12-02T09:00:00Z"
    moment[0] = datetime(2026, 12, 2, 9, 2, tzinfo=UTC)  # open two minutes
    assert standing.of(row).choices == ()
    moment[0] = datetime(2026, 12, 2, 9, 6, tzinfo=UTC)  # open six: past the five
    assert standing.of(row).choices == ("keep_waiting", "leave_message", "continue_with_assistant")

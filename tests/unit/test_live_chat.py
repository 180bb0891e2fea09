"""The live chat pane's view: the whole conversation, kept live by one waiting call at a
time; the pane's own messages go through the same checks as the model's; replies the
pane showed are told to the model as shown, not handed out as news."""

from __future__ import annotations

import asyncio
import time

import pytest

from bridge.conversations import TwilioRejected
from bridge.core.errors import (
    InvalidMessage,
    InvalidReplyId,
    InvalidWait,
    RateLimited,
    TooManyWaiting,
)
from bridge.core.live_chat import MAX_LINES, MAX_PANES_WAITING, ChatView
from tests.unit.conftest import Core, CoreFactory


async def _opened(core: Core, who: str) -> str:
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    sid = core.twilio.only().sid
    await core.webhook_for(sid, 0)
    return sid


async def _waiting_view(core: Core, who: str, seen: str) -> asyncio.Future[ChatView]:
    """A pane's call waiting for the view it shows (``seen``) to change, waiting now."""
    waiting = asyncio.ensure_future(core.wired.handoff.live_chat.view(who, seen=seen, wait=20))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    return waiting


async def test_nothing_to_show_before_the_first_message(core: Core) -> None:
    view = await core.wired.handoff.live_chat.view(core.identity("ann"))
    assert (view.conversation, view.lines) == (0, [])
    assert view.handoff.state is None


async def test_the_view_shows_both_sides_in_order(core: Core) -> None:
    who = core.identity("ann")
    sid = await _opened(core, who)
    core.twilio.agent_says(sid, "Alex here, <b>hi</b>")
    await core.webhook_for(sid, 1)
    view = await core.wired.handoff.live_chat.view(who)
    assert view.conversation == 1
    assert [(line.author, line.body, line.state) for line in view.lines] == [
        ("user", "hello", "sent"),
        ("agent", "Alex here, <b>hi</b>", "sent"),
    ]
    assert view.lines[1].id.startswith("IM")
    # The view did not hand the reply out: the model still gets it, once.
    replies = await core.wired.handoff.replies(who, 0)
    assert [r.body for r in replies.replies] == ["Alex here, <b>hi</b>"]
    assert not replies.replies[0].shown_in_pane


async def test_a_waiting_view_returns_when_the_agent_replies(make_core: CoreFactory) -> None:
    async with make_core(REPLY_WAIT_SECONDS="30") as core:
        who = core.identity("ann")
        sid = await _opened(core, who)
        first = await core.wired.handoff.live_chat.view(who)
        waiting = await _waiting_view(core, who, first.version)
        started = time.monotonic()
        core.twilio.agent_says(sid, "on it")
        await core.webhook_for(sid, 1)
        changed = await asyncio.wait_for(waiting, 5)
        assert time.monotonic() - started < 1.0
        assert changed.version != first.version
        assert changed.lines[-1].body == "on it"


async def test_both_sides_interleave_as_in_the_conversation(make_core: CoreFactory) -> None:
    async with make_core(RATE_LIMIT_PER_MINUTE="100") as core:
        who = core.identity("ann")
        sid = await _opened(core, who)
        core.twilio.agent_says(sid, "agent 1")
        await core.webhook_for(sid, 1)
        await core.wired.handoff.send(who, "user 2", wait_seconds=0)
        await core.webhook_for(sid, 2)
        core.twilio.agent_says(sid, "agent 3")
        await core.webhook_for(sid, 3)
        # Twilio refuses one (it is never in the conversation), then one waits for Twilio.
        core.twilio.fail("post_message", error=TwilioRejected("post_message", "bad", 400, 21610))
        with pytest.raises(TwilioRejected):
            await core.wired.handoff.send(who, "refused", wait_seconds=0)
        await asyncio.sleep(1.1)  # a later second than the refused one, on both clocks
        core.twilio.agent_says(sid, "agent 4")
        await core.webhook_for(sid, 4)
        core.twilio.fail("post_message", times=10)
        await core.wired.handoff.send(who, "on its way", wait_seconds=0)
        view = await core.wired.handoff.live_chat.view(who)
        assert [(line.body, line.state) for line in view.lines] == [
            ("hello", "sent"),
            ("agent 1", "sent"),
            ("user 2", "sent"),
            ("agent 3", "sent"),
            ("refused", "not_delivered"),
            ("agent 4", "sent"),
            ("on its way", "sending"),
        ]


async def test_an_unchanged_view_waits_out_its_wait(core: Core) -> None:
    who = core.identity("ann")
    await _opened(core, who)
    first = await core.wired.handoff.live_chat.view(who)
    started = time.monotonic()
    again = await core.wired.handoff.live_chat.view(who, seen=first.version, wait=0.3)
    assert time.monotonic() - started >= 0.3
    assert again.version == first.version
    # A version it does not know (another pane, an old one) is answered at once.
    other = await core.wired.handoff.live_chat.view(who, seen="something else", wait=10)
    assert other.version == first.version


async def test_the_panes_message_goes_through_the_core_and_shows(make_core: CoreFactory) -> None:
    async with make_core(RATE_LIMIT_PER_MINUTE="4") as core:
        who = core.identity("ann")
        sid = await _opened(core, who)
        first = await core.wired.handoff.live_chat.view(who)
        waiting = await _waiting_view(core, who, first.version)
        assert await core.wired.handoff.post(who, "typed in the pane") is None
        rung = await asyncio.wait_for(waiting, 5)  # its own message rings the pane
        assert rung.lines[-1].body == "typed in the pane"
        shown = await core.wired.handoff.live_chat.view(who)
        assert [(line.body, line.state) for line in shown.lines] == [
            ("hello", "sent"),
            ("typed in the pane", "sent"),
        ]
        assert core.twilio.bodies(sid)[-1] == "typed in the pane"
        # The same checks and limits as the model's messages (4 a minute here, the
        # refused one counted too).
        with pytest.raises(InvalidMessage):
            await core.wired.handoff.post(who, "   ")
        await core.wired.handoff.send(who, "from the model", wait_seconds=0)
        with pytest.raises(RateLimited):
            await core.wired.handoff.post(who, "one too many")
        assert core.twilio.bodies(sid)[-1] == "from the model"


async def test_replies_the_pane_showed_reach_the_model_marked_as_shown(core: Core) -> None:
    who = core.identity("ann")
    sid = await _opened(core, who)
    for n, text in enumerate(("one", "two"), start=1):
        core.twilio.agent_says(sid, text)
        await core.webhook_for(sid, n)
    view = await core.wired.handoff.live_chat.view(who)
    first_reply = view.lines[1]
    await core.wired.handoff.live_chat.view(who, shown_through=first_reply.id)
    core.twilio.agent_says(sid, "three")
    await core.webhook_for(sid, 3)
    handed = await core.wired.handoff.replies(who, 0)
    assert [(r.body, r.shown_in_pane) for r in handed.replies] == [
        ("one", True),
        ("two", False),
        ("three", False),
    ]
    listed = handed.to_json("n")["replies"]
    assert isinstance(listed, list)
    assert listed[0]["shown_in_pane"] is True
    assert "shown_in_pane" not in listed[1]


async def test_hostile_values_are_refused_or_change_nothing(core: Core) -> None:
    who, eve = core.identity("ann"), core.identity("eve")
    sid = await _opened(core, who)
    core.twilio.agent_says(sid, "for ann only")
    await core.webhook_for(sid, 1)
    for bad in ("", "IM123", "x" * 5000, "IM" + "g" * 32, "<script>"):
        with pytest.raises(InvalidReplyId):
            await core.wired.handoff.live_chat.view(who, shown_through=bad)
    with pytest.raises(InvalidWait):
        await core.wired.handoff.live_chat.view(who, wait=-1)
    # Another user naming ann's reply marks nothing and sees nothing of ann's.
    reply_id = (await core.wired.handoff.live_chat.view(who)).lines[1].id
    await core.wired.handoff.send(eve, "hi", wait_seconds=0)
    eves = await core.wired.handoff.live_chat.view(eve, shown_through=reply_id)
    assert [line.body for line in eves.lines] == ["hi"]
    handed = await core.wired.handoff.replies(who, 0)
    assert [(r.body, r.shown_in_pane) for r in handed.replies] == [("for ann only", False)]


async def test_panes_have_their_own_allowance_and_never_starve_the_model(
    make_core: CoreFactory,
) -> None:
    async with make_core(MAX_WAITING_PER_USER="2", REPLY_WAIT_SECONDS="20") as core:
        who = core.identity("ann")
        sid = await _opened(core, who)
        seen = (await core.wired.handoff.live_chat.view(who)).version
        held = [
            asyncio.ensure_future(core.wired.handoff.live_chat.view(who, seen=seen, wait=20))
            for _ in range(MAX_PANES_WAITING)
        ]
        await asyncio.sleep(0.1)
        with pytest.raises(TooManyWaiting):
            await core.wired.handoff.live_chat.view(who, seen=seen, wait=20)
        # A new pane's first look waits for nothing, so it is never refused.
        assert (await core.wired.handoff.live_chat.view(who, wait=20)).version == seen
        # The model's waits are counted apart: both of its calls wait, and get the reply.
        model = [asyncio.ensure_future(core.wired.handoff.replies(who, 20)) for _ in range(2)]
        await asyncio.sleep(0.1)
        assert not any(call.done() for call in model)
        core.twilio.agent_says(sid, "here")
        await core.webhook_for(sid, 1)
        views = await asyncio.wait_for(asyncio.gather(*held), 5)
        assert all(view.lines[-1].body == "here" for view in views)
        done, _ = await asyncio.wait(model, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        assert [len(call.result().replies) for call in done] == [1]  # each reply once
        core.wired.handoff.begin_shutdown()
        await asyncio.gather(*model)


async def test_a_long_conversation_shows_its_newest_lines(make_core: CoreFactory) -> None:
    async with make_core(RATE_LIMIT_PER_MINUTE="1000") as core:
        who = core.identity("ann")
        sid = await _opened(core, who)
        for n in range(1, MAX_LINES + 10):
            core.twilio.agent_says(sid, f"reply {n}")
            await core.webhook_for(sid, n)
        view = await core.wired.handoff.live_chat.view(who)
        assert len(view.lines) == MAX_LINES
        assert view.earlier == 10
        assert view.lines[-1].body == f"reply {MAX_LINES + 9}"
        assert view.to_json()["earlier"] == 10


async def test_a_close_shows_in_the_view(make_core: CoreFactory) -> None:
    async with make_core(REPLY_WAIT_SECONDS="30") as core:
        who = core.identity("ann")
        sid = await _opened(core, who)
        first = await core.wired.handoff.live_chat.view(who)
        waiting = await _waiting_view(core, who, first.version)
        core.twilio.close_by_agent(sid)
        await core.closed_webhook(sid)
        closed = await asyncio.wait_for(waiting, 5)
        assert (closed.handoff.state, closed.handoff.closed_by) == ("closed", "agent")

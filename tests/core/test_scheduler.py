"""Scheduled tasks: every run goes through the one SessionManager into the task's one session.

Real SQLite files, the real OpenAI test server, APScheduler on the test's own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatdesk.chat import ChatEngine
from chatdesk.domain import Task, utcnow
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.scheduler import (
    RUN_FINISHED,
    RUN_STARTED,
    TASK_UPDATED,
    TaskEvent,
    TaskNotFoundError,
    TaskScheduler,
    describe_schedule,
    parse_schedule,
)
from chatdesk.sessions import SessionManager
from tests.core.conftest import LONG_REPLY, query, stored_messages
from tests.openai_test_server import OpenAITestServer

# Far enough away that no scheduled run happens during a test (run_now does the runs).
NOT_DURING_THE_TEST = "0 3 1 1 *"


@pytest.fixture
async def scheduler(manager: SessionManager, engine: ChatEngine) -> AsyncIterator[TaskScheduler]:
    """A started TaskScheduler over the test's manager and engine, stopped after the test."""
    built = TaskScheduler(manager, engine)
    await built.start()
    yield built
    await built.stop()


def wait_for(
    scheduler: TaskScheduler, condition: Callable[[TaskEvent], bool]
) -> asyncio.Future[None]:
    """A future that is done at the first event of ``scheduler`` that meets ``condition``."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def listener(event: TaskEvent) -> None:
        if not done.done() and condition(event):
            done.set_result(None)
            scheduler.remove_listener(listener)

    scheduler.add_listener(listener)
    return done


async def runs_finished(scheduler: TaskScheduler, task_id: str, count: int) -> None:
    """Wait (at most 30 s) until ``count`` more runs of ``task_id`` have finished."""
    finished = 0
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def listener(event: TaskEvent) -> None:
        nonlocal finished
        if event.kind == RUN_FINISHED and event.task_id == task_id:
            finished += 1
            if finished >= count and not done.done():
                done.set_result(None)

    scheduler.add_listener(listener)
    try:
        await asyncio.wait_for(done, 30)
    finally:
        scheduler.remove_listener(listener)


def task_sessions(db_path: Path) -> list[tuple[str, str, str | None]]:
    return query(db_path, "SELECT id, kind, task_id FROM sessions ORDER BY created_at")


# -- schedules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("0 8 * * 1-5", "Weekdays at 08:00"),
        ("0 8 * * *", "Every day at 08:00"),
        ("30 9 * * 0,6", "Weekends at 09:30"),
        ("15 7 * * 1", "Mondays at 07:15"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("every 2m", "Every 2 minutes"),
        ("every 1 h", "Every hour"),
        ("every 30 seconds", "Every 30 seconds"),
        ("2031-06-05 08:30", "Once on Thu 5 Jun 2031 at 08:30"),
    ],
)
def test_a_schedule_is_described_in_plain_words(schedule: str, words: str) -> None:
    assert describe_schedule(schedule, timezone=UTC) == words


@pytest.mark.parametrize(
    ("schedule", "explains"),
    [
        ("", "Enter a schedule"),
        ("tomorrow morning", "not a schedule ChatDesk understands"),
        ("61 * * * *", "not a valid cron expression"),
        ("0 8 * * 9", "not a day of the week"),
        ("every 2 weeks", "unknown unit 'weeks'"),
        ("every 0 m", "at least 1"),
    ],
)
def test_an_invalid_schedule_is_a_value_error_that_says_why(schedule: str, explains: str) -> None:
    with pytest.raises(ValueError, match=explains):
        parse_schedule(schedule, timezone=UTC)


def test_crontab_weekdays_count_from_sunday() -> None:
    # APScheduler 3 counts from Monday; 1-5 must still mean Monday to Friday.
    trigger = parse_schedule("0 8 * * 1-5", timezone=UTC)
    friday_evening = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, friday_evening) == datetime(
        2026, 12, 7, 8, 0, tzinfo=UTC
    )
    sunday = parse_schedule("0 8 * * 0", timezone=UTC)
    assert sunday.get_next_fire_time(None, friday_evening).weekday() == 6


def test_a_day_of_the_month_and_a_weekday_mean_either_as_in_crontab() -> None:
    # "At 09:00 on the 13th and on Fridays": crontab runs on either day, not only on
    # Friday the 13th (what APScheduler 3 alone would do).
    trigger = parse_schedule("0 9 13 * 5", timezone=UTC)
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
    runs = []
    for _ in range(4):
        now = trigger.get_next_fire_time(None, now)
        runs.append(now)
        now += timedelta(minutes=1)
    assert runs == [
        datetime(2026, 12, 4, 9, 0, tzinfo=UTC),  # Friday
        datetime(2026, 12, 11, 9, 0, tzinfo=UTC),  # Friday
        datetime(2026, 12, 13, 9, 0, tzinfo=UTC),  # the 13th, a Sunday
        datetime(2026, 12, 18, 9, 0, tzinfo=UTC),  # Friday
    ]
    # A day field starting with "*" leaves the days to the other field, and then both
    # must match, as in cronie: every other day that is a weekday.
    stepped = parse_schedule("0 9 */2 * 1-5", timezone=UTC)
    moment, days = datetime(2026, 12, 2, 12, 0, tzinfo=UTC), []
    for _ in range(4):
        moment = stepped.get_next_fire_time(None, moment)
        days.append(moment.day)
        moment += timedelta(minutes=1)
    assert days == [3, 7, 9, 11]  # Thu 3, Mon 7, Wed 9, Fri 11 (odd days, weekdays)
    # Either one alone keeps its plain meaning.
    only_day = parse_schedule("0 9 13 * *", timezone=UTC)
    assert only_day.get_next_fire_time(None, runs[0]) == runs[2]


async def test_adding_a_task_refuses_bad_input_and_stores_nothing(
    scheduler: TaskScheduler, db_path: Path
) -> None:
    with pytest.raises(ValueError, match="name"):
        await scheduler.add_task(name=" ", prompt="hi", schedule="every 1 h")
    with pytest.raises(ValueError, match="prompt"):
        await scheduler.add_task(name="x", prompt="  ", schedule="every 1 h")
    with pytest.raises(ValueError, match="already passed"):
        await scheduler.add_task(name="x", prompt="hi", schedule="2001-01-01 08:00")
    assert scheduler.list_tasks() == []
    assert query(db_path, "SELECT count(*) FROM tasks") == [(0,)]


# -- runs -----------------------------------------------------------------------------------


async def test_run_now_twice_then_reopen_and_again_gives_one_session_with_three_turns(
    db_url: str, db_path: Path, provider: OpenAICompatibleProvider
) -> None:
    async def open_all() -> tuple[SessionManager, ChatEngine, TaskScheduler]:
        manager = await SessionManager.open(db_url)
        engine = ChatEngine(manager, provider, auto_title=False)
        scheduler = TaskScheduler(manager, engine)
        await scheduler.start()
        return manager, engine, scheduler

    async def close_all(parts: tuple[SessionManager, ChatEngine, TaskScheduler]) -> None:
        manager, engine, scheduler = parts
        await scheduler.stop()
        await engine.close()
        await manager.close()

    parts = await open_all()
    task = await parts[2].add_task(name="Morning news", prompt="ping", schedule="0 8 * * 1-5")
    first = await parts[2].run_now(task.id)
    second = await parts[2].run_now(task.id)
    assert (first.status, second.status) == ("complete", "complete")
    await close_all(parts)

    parts = await open_all()
    assert [t.id for t in parts[2].list_tasks()] == [task.id]
    third = await parts[2].run_now(task.id)
    assert third.status == "complete"
    await close_all(parts)

    sessions = task_sessions(db_path)
    assert len(sessions) == 1
    session_id, kind, task_id = sessions[0]
    assert (kind, task_id) == ("task", task.id)
    assert query(db_path, "SELECT title FROM sessions") == [("Morning news",)]
    reply = "Hello from the test server."
    assert (
        stored_messages(db_path, session_id)
        == [
            ("user", "ping", "complete", None),
            ("assistant", reply, "complete", None),
        ]
        * 3
    )


async def test_two_concurrent_run_now_of_one_task_never_interleave(
    scheduler: TaskScheduler, openai_server: OpenAITestServer, db_path: Path
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.005
    task = await scheduler.add_task(name="t", prompt="go", schedule=NOT_DURING_THE_TEST)
    replies = await asyncio.gather(scheduler.run_now(task.id), scheduler.run_now(task.id))
    assert [r.status for r in replies] == ["complete", "complete"]
    session_id = task_sessions(db_path)[0][0]
    assert (
        stored_messages(db_path, session_id)
        == [
            ("user", "go", "complete", None),
            ("assistant", LONG_REPLY, "complete", None),
        ]
        * 2
    )
    # The second request was sent only after the first reply had ended: it carries it.
    assert [m["role"] for m in openai_server.requests[1]["messages"]] == [
        "user",
        "assistant",
        "user",
    ]


async def test_an_every_2s_task_left_for_five_seconds_runs_at_least_twice(
    scheduler: TaskScheduler, db_path: Path
) -> None:
    task = await scheduler.add_task(name="tick", prompt="tick", schedule="every 2s")
    await asyncio.sleep(5)
    await scheduler.pause(task.id)
    while scheduler.is_running(task.id):  # let a run that just began store its reply
        await asyncio.sleep(0.05)
    session_id = task_sessions(db_path)[0][0]
    stored = stored_messages(db_path, session_id)
    assert len(stored) >= 4
    assert [(role, status) for role, _, status, _ in stored] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ] * (len(stored) // 2)
    paused = scheduler.get_task(task.id)
    assert (paused.enabled, paused.next_run_at, paused.last_status) == (False, None, "complete")


async def test_a_task_due_while_closed_runs_once_after_reopening(
    db_url: str, db_path: Path, provider: OpenAICompatibleProvider
) -> None:
    manager = await SessionManager.open(db_url)
    engine = ChatEngine(manager, provider, auto_title=False)
    scheduler = TaskScheduler(manager, engine)
    await scheduler.start()
    task = await scheduler.add_task(name="hourly", prompt="check", schedule="every 1 h")
    await scheduler.stop()
    # Closed for three and a half hours: three runs came due meanwhile.
    three_hours_ago = (utcnow() - timedelta(hours=3, minutes=30)).timestamp()
    query(db_path, "UPDATE tasks SET next_run_at = ?", (three_hours_ago,))

    scheduler = TaskScheduler(manager, engine)
    finished = wait_for(scheduler, lambda e: e.kind == RUN_FINISHED)
    await scheduler.start()
    await asyncio.wait_for(finished, 30)
    await asyncio.sleep(0.5)  # room for a second run, which must not come
    after = scheduler.get_task(task.id)
    await scheduler.stop()
    await engine.close()
    await manager.close()

    session_id = task_sessions(db_path)[0][0]
    assert [m[0] for m in stored_messages(db_path, session_id)] == ["user", "assistant"]
    assert after.last_status == "complete"
    # The next run keeps the hourly rhythm: half an hour from now, not three runs later.
    assert after.next_run_at is not None
    assert timedelta(0) < after.next_run_at - utcnow() <= timedelta(minutes=31)
    stored_next = query(db_path, "SELECT next_run_at FROM tasks")[0][0]
    assert stored_next == pytest.approx(after.next_run_at.timestamp())


async def test_a_run_more_than_a_day_late_is_noted_as_missed_not_run(
    db_url: str, db_path: Path, provider: OpenAICompatibleProvider
) -> None:
    manager = await SessionManager.open(db_url)
    engine = ChatEngine(manager, provider, auto_title=False)
    scheduler = TaskScheduler(manager, engine)
    await scheduler.start()
    task = await scheduler.add_task(name="daily", prompt="news", schedule="every 2 d")
    await scheduler.stop()
    query(
        db_path, "UPDATE tasks SET next_run_at = ?", ((utcnow() - timedelta(hours=30)).timestamp(),)
    )

    scheduler = TaskScheduler(manager, engine)
    noted = wait_for(
        scheduler,
        lambda e: e.kind == TASK_UPDATED and scheduler.get_task(e.task_id).last_status == "missed",
    )
    await scheduler.start()
    await asyncio.wait_for(noted, 30)
    missed = scheduler.get_task(task.id)
    await scheduler.stop()
    await engine.close()
    await manager.close()

    assert missed.last_note is not None and "Missed the run" in missed.last_note
    assert missed.next_run_at is not None and missed.next_run_at > utcnow()
    assert query(db_path, "SELECT count(*) FROM messages") == [(0,)]


async def test_a_single_run_due_while_closed_runs_once_and_is_then_done(
    db_url: str, db_path: Path, provider: OpenAICompatibleProvider
) -> None:
    manager = await SessionManager.open(db_url)
    engine = ChatEngine(manager, provider, auto_title=False)
    scheduler = TaskScheduler(manager, engine)
    await scheduler.start()
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
    task = await scheduler.add_task(name="once", prompt="remind me", schedule=soon)
    await scheduler.stop()
    query(
        db_path, "UPDATE tasks SET next_run_at = ?", ((utcnow() - timedelta(hours=1)).timestamp(),)
    )

    scheduler = TaskScheduler(manager, engine)
    finished = wait_for(scheduler, lambda e: e.kind == RUN_FINISHED)
    await scheduler.start()
    await asyncio.wait_for(finished, 30)
    done = scheduler.get_task(task.id)
    await scheduler.stop()
    await engine.close()
    await manager.close()
    assert (done.last_status, done.next_run_at) == ("complete", None)
    assert query(db_path, "SELECT next_run_at FROM tasks") == [(None,)]


async def test_a_failing_server_stores_the_error_and_the_schedule_goes_on(
    scheduler: TaskScheduler, openai_server: OpenAITestServer, db_path: Path
) -> None:
    openai_server.status = 500
    task = await scheduler.add_task(name="flaky", prompt="status?", schedule="every 1s")
    await runs_finished(scheduler, task.id, 1)
    failed = scheduler.get_task(task.id)
    assert failed.last_status == "error"
    assert failed.last_note is not None and "server had an error" in failed.last_note

    openai_server.status = 200
    recovered = wait_for(
        scheduler,
        lambda e: e.kind == RUN_FINISHED and scheduler.get_task(task.id).last_status == "complete",
    )
    await asyncio.wait_for(recovered, 30)
    await scheduler.pause(task.id)
    while scheduler.is_running(task.id):
        await asyncio.sleep(0.05)

    session_id = task_sessions(db_path)[0][0]
    stored = stored_messages(db_path, session_id)
    assert stored[0] == ("user", "status?", "complete", None)
    role, content, status, error = stored[1]
    assert (role, content, status) == ("assistant", "", "error")
    assert error is not None and "server had an error" in error
    assert stored[-1] == ("assistant", "Hello from the test server.", "complete", None)


async def test_a_scheduled_run_due_while_the_task_still_runs_is_skipped_and_noted(
    scheduler: TaskScheduler, openai_server: OpenAITestServer, db_path: Path
) -> None:
    openai_server.first_byte_delay = 2.5
    task = await scheduler.add_task(name="slow", prompt="slow", schedule="every 1s")
    skipped = wait_for(
        scheduler,
        lambda e: e.kind == TASK_UPDATED and scheduler.get_task(task.id).last_status == "skipped",
    )
    await asyncio.wait_for(skipped, 30)
    await scheduler.pause(task.id)
    note = scheduler.get_task(task.id).last_note
    assert note is not None and "previous run was still going" in note
    while scheduler.is_running(task.id):
        await asyncio.sleep(0.05)
    roles = [m[0] for m in stored_messages(db_path, task_sessions(db_path)[0][0])]
    assert roles == ["user", "assistant"] * (len(roles) // 2)


async def test_many_tasks_due_together_take_turns(
    manager: SessionManager, engine: ChatEngine, openai_server: OpenAITestServer
) -> None:
    openai_server.first_byte_delay = 0.3
    scheduler = TaskScheduler(manager, engine, max_parallel_runs=2)
    await scheduler.start()
    going, most = 0, 0

    def count(event: TaskEvent) -> None:
        nonlocal going, most
        if event.kind == RUN_STARTED:
            going += 1
            most = max(most, going)
        elif event.kind == RUN_FINISHED:
            going -= 1

    scheduler.add_listener(count)
    tasks = [
        await scheduler.add_task(name=f"t{i}", prompt="p", schedule=NOT_DURING_THE_TEST)
        for i in range(5)
    ]
    replies = await asyncio.gather(*(scheduler.run_now(t.id) for t in tasks))
    await scheduler.stop()
    assert [r.status for r in replies] == ["complete"] * 5
    assert most == 2


async def test_a_task_with_an_unreadable_stored_schedule_does_not_stop_the_others(
    db_url: str, db_path: Path, provider: OpenAICompatibleProvider
) -> None:
    manager = await SessionManager.open(db_url)
    engine = ChatEngine(manager, provider, auto_title=False)
    scheduler = TaskScheduler(manager, engine)
    await scheduler.start()
    broken = await scheduler.add_task(name="broken", prompt="p", schedule="every 1 h")
    fine = await scheduler.add_task(name="fine", prompt="p", schedule="every 1 h")
    await scheduler.stop()
    query(db_path, "UPDATE tasks SET schedule = 'every fortnight' WHERE id = ?", (broken.id,))

    scheduler = TaskScheduler(manager, engine)
    await scheduler.start()
    noted = scheduler.get_task(broken.id)
    reply = await scheduler.run_now(fine.id)
    await scheduler.stop()
    await engine.close()
    await manager.close()
    assert noted.last_status == "error"
    assert noted.last_note is not None and "unknown unit" in noted.last_note
    assert reply.status == "complete"


# -- editing --------------------------------------------------------------------------------


async def test_pause_and_resume_stop_and_restart_the_schedule(
    scheduler: TaskScheduler, db_path: Path
) -> None:
    task = await scheduler.add_task(name="t", prompt="p", schedule="every 1 h")
    paused = await scheduler.pause(task.id)
    assert (paused.enabled, paused.next_run_at) == (False, None)
    assert query(db_path, "SELECT enabled, next_run_at FROM tasks") == [(0, None)]
    resumed = await scheduler.resume(task.id)
    assert resumed.enabled
    assert resumed.next_run_at is not None
    assert timedelta(minutes=59) < resumed.next_run_at - utcnow() <= timedelta(hours=1)


async def test_update_renames_the_session_and_reschedules(
    scheduler: TaskScheduler, db_path: Path
) -> None:
    task = await scheduler.add_task(name="old", prompt="p", schedule=NOT_DURING_THE_TEST)
    await scheduler.run_now(task.id)
    updated = await scheduler.update_task(task.id, name="new", schedule="every 3 h", model="m2")
    assert (updated.name, updated.schedule, updated.model) == ("new", "every 3 h", "m2")
    assert updated.next_run_at is not None
    assert timedelta(hours=2, minutes=59) < updated.next_run_at - utcnow()
    assert query(db_path, "SELECT title, model FROM sessions") == [("new", "m2")]
    with pytest.raises(ValueError, match="not a valid cron"):
        await scheduler.update_task(task.id, schedule="99 * * * *")
    assert scheduler.get_task(task.id).schedule == "every 3 h"


async def test_delete_removes_the_task_and_its_session(
    scheduler: TaskScheduler, db_path: Path
) -> None:
    task = await scheduler.add_task(name="t", prompt="p", schedule=NOT_DURING_THE_TEST)
    await scheduler.run_now(task.id)
    await scheduler.delete_task(task.id)
    assert scheduler.list_tasks() == []
    assert query(db_path, "SELECT count(*) FROM tasks") == [(0,)]
    assert query(db_path, "SELECT count(*) FROM sessions") == [(0,)]
    with pytest.raises(TaskNotFoundError):
        await scheduler.run_now(task.id)


async def test_delete_keeping_the_results_leaves_a_normal_chat(
    scheduler: TaskScheduler, manager: SessionManager, db_path: Path
) -> None:
    task = await scheduler.add_task(name="keep me", prompt="p", schedule=NOT_DURING_THE_TEST)
    reply = await scheduler.run_now(task.id)
    await scheduler.delete_task(task.id, keep_results=True)
    assert query(db_path, "SELECT title, kind, task_id, message_count FROM sessions") == [
        ("keep me", "chat", None, 2)
    ]
    (session_id,) = query(db_path, "SELECT id FROM sessions")[0]
    session = await manager.require_session(session_id)
    assert (session.kind, session.task_id, session.history[-1].id) == ("chat", None, reply.id)


async def test_deleting_a_task_stops_its_running_reply(
    scheduler: TaskScheduler, openai_server: OpenAITestServer, db_path: Path
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.2
    task = await scheduler.add_task(name="t", prompt="p", schedule=NOT_DURING_THE_TEST)
    run = asyncio.ensure_future(scheduler.run_now(task.id))
    while not query(db_path, "SELECT 1 FROM messages WHERE role = 'assistant'"):
        await asyncio.sleep(0.05)
    await scheduler.delete_task(task.id, keep_results=True)
    reply = await run
    assert reply.status == "cancelled"
    assert query(db_path, "SELECT kind FROM sessions") == [("chat",)]


async def test_unread_is_set_by_a_run_and_cleared_by_mark_read(scheduler: TaskScheduler) -> None:
    task = await scheduler.add_task(name="t", prompt="p", schedule=NOT_DURING_THE_TEST)
    assert not scheduler.get_task(task.id).unread
    await scheduler.run_now(task.id)
    assert scheduler.get_task(task.id).unread
    await scheduler.mark_read(task.id)
    assert not scheduler.get_task(task.id).unread


# -- housekeeping ---------------------------------------------------------------------------


async def test_hourly_cleanup_leaves_task_sessions_fresh_chats_and_the_open_chat_alone(
    db_url: str, db_path: Path, provider: OpenAICompatibleProvider
) -> None:
    manager = await SessionManager.open(db_url)
    old_empty = await manager.create_session("old and empty")
    old_open = await manager.create_session("old, empty, open in the window")
    old_used = await manager.create_session("old with a message")
    await manager.add_message(old_used.id, "user", "keep")
    task_session = await manager.ensure_task_session("task-1", title="a task")
    fresh = await manager.create_session("fresh")
    await manager.close()
    two_hours_ago = (utcnow() - timedelta(hours=2)).timestamp()
    query(db_path, "UPDATE sessions SET created_at = ? WHERE id != ?", (two_hours_ago, fresh.id))

    manager = await SessionManager.open(db_url)
    engine = ChatEngine(manager, provider, auto_title=False)
    scheduler = TaskScheduler(
        manager,
        engine,
        open_session=lambda: old_open.id,
        housekeeping_interval=timedelta(seconds=0.5),
    )
    await scheduler.start()  # housekeeping runs once at start
    remaining = {row[0] for row in query(db_path, "SELECT id FROM sessions")}
    assert old_empty.id not in remaining
    assert remaining == {old_open.id, old_used.id, task_session.id, fresh.id}

    # Then again on its interval: an empty chat that has aged meanwhile goes too.
    query(db_path, "UPDATE sessions SET created_at = ? WHERE id = ?", (two_hours_ago, fresh.id))
    for _ in range(100):
        if not query(db_path, "SELECT 1 FROM sessions WHERE id = ?", (fresh.id,)):
            break
        await asyncio.sleep(0.05)
    remaining = {row[0] for row in query(db_path, "SELECT id FROM sessions")}
    await scheduler.stop()
    await engine.close()
    await manager.close()
    assert remaining == {old_open.id, old_used.id, task_session.id}


async def test_the_scheduler_needs_start_before_changes(
    manager: SessionManager, engine: ChatEngine
) -> None:
    scheduler = TaskScheduler(manager, engine)
    with pytest.raises(RuntimeError, match="start"):
        await scheduler.add_task(name="t", prompt="p", schedule="every 1 h")


def test_a_task_is_a_plain_value() -> None:
    task = Task(id="x", name="n", prompt="p", schedule="every 1 h")
    assert (task.enabled, task.unread, task.next_run_at) == (True, False, None)

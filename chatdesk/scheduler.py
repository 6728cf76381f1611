"""Scheduled tasks: a prompt sent on a schedule, every answer kept in the task's one session.

Design notes:

* A run is exactly a chat turn: ``manager.ensure_task_session`` finds (or, the first time,
  creates) the task's one session, and ``engine.send`` adds the prompt and streams the
  reply through the SessionManager. Nothing here touches sessions or messages directly;
  the ``tasks`` table (``storage/task_rows.py``) holds only what to send and when.
* Timing is APScheduler 3's ``AsyncIOScheduler`` on the running loop (qasync's in the
  window), so runs are coroutines on the app's loop and never block it.
* At most ``max_parallel_runs`` runs go at once (many tasks due at the same minute take
  turns: a server's rate limit would refuse them, the one local model queue them).
* Runs of one task never overlap: a per-task lock. ``run_now`` waits its turn; a
  scheduled run that comes due while another run of the task is going is skipped, and
  the task notes it.
* ``next_run_at`` is stored when a run starts, so a run that was due while ChatDesk was
  closed is found at the next start: APScheduler coalesces the missed runs into one and
  drops them once they are more than ``grace`` (24 hours) late.
* A failed run stores the error in the task's session, as a failed chat reply does;
  the schedule goes on.
* Housekeeping (empty chats older than an hour) runs at start and hourly on the same
  scheduler, sparing task sessions and the chat open in the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from chatdesk.chat import ChatEngine, SessionBusyError
from chatdesk.domain import Message, Session, Task, new_id, utcnow
from chatdesk.lazy_import import lazy_module
from chatdesk.providers.base import ProviderError
from chatdesk.sessions import SessionManager
from chatdesk.storage.errors import StorageError

if TYPE_CHECKING:
    from apscheduler.events import JobExecutionEvent, JobSubmissionEvent
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.base import BaseTrigger
    from apscheduler.triggers.cron import CronTrigger

    from chatdesk.storage.task_rows import TaskStore

# APScheduler and cron-descriptor load on first use, after the window's first paint.
_events = lazy_module("apscheduler.events")
_asyncio_scheduler = lazy_module("apscheduler.schedulers.asyncio")
_combining = lazy_module("apscheduler.triggers.combining")
_cron = lazy_module("apscheduler.triggers.cron")
_date = lazy_module("apscheduler.triggers.date")
_interval = lazy_module("apscheduler.triggers.interval")
_cron_words = lazy_module("cron_descriptor")
_tzlocal = lazy_module("tzlocal")

log = logging.getLogger(__name__)

# A run due while ChatDesk was closed (or the machine slept) is made up if it is at most
# this late; older ones are dropped and the task notes that it missed them.
MISSED_RUN_GRACE = timedelta(hours=24)
HOUSEKEEPING_INTERVAL = timedelta(hours=1)
# How long stop() lets running tasks end their replies before cancelling them outright.
STOP_TIMEOUT = 5.0

MAX_PARALLEL_RUNS = 8

_HOUSEKEEPING_JOB = "chatdesk-housekeeping"

SCHEDULE_HELP = (
    "Use a cron expression such as '0 8 * * 1-5' (weekdays at 08:00), an interval such as "
    "'every 30 m' (s, m, h or d), or one date and time such as '2026-12-24 08:00'."
)


class TaskNotFoundError(LookupError):
    """No scheduled task has the id that was asked for."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no scheduled task with id {task_id!r}")
        self.task_id = task_id


class RunStoppedError(RuntimeError):
    """A run was stopped before the model answered (the task was deleted, or ChatDesk quit)."""


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """Something changed about a task: ``kind`` is one of the ``TASK_*``/``RUN_*`` names."""

    kind: str
    task_id: str


TASK_ADDED = "task_added"
TASK_UPDATED = "task_updated"
TASK_DELETED = "task_deleted"
RUN_STARTED = "run_started"
RUN_FINISHED = "run_finished"

TaskListener = Callable[[TaskEvent], None]


# -- schedules ----------------------------------------------------------------------------

_EVERY = re.compile(r"^every\s*(\d+)?\s*([a-z]+)$", re.IGNORECASE)
_UNITS = {
    "seconds": ("s", "sec", "secs", "second", "seconds"),
    "minutes": ("m", "min", "mins", "minute", "minutes"),
    "hours": ("h", "hr", "hrs", "hour", "hours"),
    "days": ("d", "day", "days"),
}
_UNIT_OF = {alias: unit for unit, aliases in _UNITS.items() for alias in aliases}
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@dataclass(frozen=True, slots=True)
class _Interval:
    amount: int
    unit: str  # a key of _UNITS


def _parse_every(text: str) -> _Interval | None:
    match = _EVERY.match(text.strip())
    if match is None:
        return None
    unit = _UNIT_OF.get(match.group(2).lower())
    if unit is None:
        raise ValueError(
            f"'{text}' has an unknown unit '{match.group(2)}': use s, m, h or d "
            "(seconds, minutes, hours or days)."
        )
    amount = int(match.group(1) or 1)
    if amount < 1:
        raise ValueError(f"'{text}' is not a schedule: the interval must be at least 1.")
    return _Interval(amount, unit)


def _cron_day(name: str, *, range_end: bool = False) -> int:
    """A crontab weekday (0 or 7 = Sunday) as a number 0-6, or 7 for Sunday ending a range."""
    lowered = name.lower()
    if lowered in _CRON_DAYS:
        return _CRON_DAYS.index(lowered)
    if not lowered.isdigit() or int(lowered) > 7:
        raise ValueError(f"'{name}' is not a day of the week (0-7 or sun-sat)")
    day = int(lowered)
    return day if range_end else day % 7


def _crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field in APScheduler 3's terms.

    APScheduler 3 counts weekdays from Monday = 0 (its issue 286), crontab from Sunday = 0;
    naming the days makes the meaning unambiguous.
    """
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        base, has_step, step_text = item.partition("/")
        if has_step and not step_text.isdigit():
            raise ValueError(f"'{item}' has a step that is not a number")
        step = int(step_text) if has_step else 1
        if step < 1:
            raise ValueError(f"'{item}' has a step of zero")
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            first, last = base.split("-", 1)
            low, high = _cron_day(first), _cron_day(last, range_end=True)
            if low > high:
                raise ValueError(f"'{item}' is a range that ends before it starts")
        else:
            low = _cron_day(base)
            high = 6 if has_step else low
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def _cron_trigger(fields: list[str], timezone: tzinfo) -> BaseTrigger:
    """The trigger of a crontab line.

    Where both the day of the month and the day of the week are restricted, crontab runs
    on either ("0 9 13 * 5": every 13th and every Friday); APScheduler 3 would need both,
    so the two become one trigger each, and the earlier of their times wins.
    """
    minute, hour, day, month, weekday = fields
    weekdays = _crontab_weekdays(weekday)

    def cron(on_day: str, on_weekdays: str) -> CronTrigger:
        return _cron.CronTrigger(
            minute=minute,
            hour=hour,
            day=on_day,
            month=month,
            day_of_week=on_weekdays,
            timezone=timezone,
        )

    # As in crontab (cronie, Vixie cron): a day field starting with "*" (or "?") leaves
    # the days to the other field, and then both must match ("*/2" with "1-5").
    if day.startswith(("*", "?")) or weekday.startswith(("*", "?")):
        return cron(day, weekdays)
    return _combining.OrTrigger([cron(day, "*"), cron("*", weekdays)])


def _parse_moment(text: str, timezone: tzinfo) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone) if moment.tzinfo is None else moment


def parse_schedule(text: str, *, timezone: tzinfo | None = None) -> BaseTrigger:
    """The APScheduler trigger of a schedule; ValueError with a user-facing message if invalid.

    A schedule is a 5-field cron expression (``"0 8 * * 1-5"``), ``"every N s|m|h|d"``,
    or one ISO-8601 date-time for a single run (local time unless it names an offset).
    """
    zone = timezone or _tzlocal.get_localzone()
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ValueError("Enter a schedule. " + SCHEDULE_HELP)
    every = _parse_every(cleaned)
    if every is not None:
        return _interval.IntervalTrigger(**{every.unit: every.amount}, timezone=zone)
    fields = cleaned.split(" ")
    if len(fields) == 5:
        try:
            return _cron_trigger(fields, zone)
        except ValueError as exc:
            raise ValueError(f"'{cleaned}' is not a valid cron expression: {exc}.") from exc
    moment = _parse_moment(cleaned, zone)
    if moment is not None:
        return _date.DateTrigger(run_date=moment, timezone=zone)
    raise ValueError(f"'{cleaned}' is not a schedule ChatDesk understands. {SCHEDULE_HELP}")


def describe_schedule(text: str, *, timezone: tzinfo | None = None) -> str:
    """A schedule in plain words ("Weekdays at 08:00", "Every 2 minutes", "Once on …").

    Raises ValueError (with a user-facing message) when the schedule is invalid.
    """
    zone = timezone or _tzlocal.get_localzone()
    trigger = parse_schedule(text, timezone=zone)
    cleaned = " ".join(text.split())
    every = _parse_every(cleaned)
    if every is not None:
        unit = every.unit[:-1] if every.amount == 1 else every.unit
        return f"Every {unit}" if every.amount == 1 else f"Every {every.amount} {unit}"
    if isinstance(trigger, _date.DateTrigger):
        moment = trigger.run_date.astimezone(zone)
        return f"Once on {moment:%a} {moment.day} {moment:%b %Y} at {moment:%H:%M}"
    return _describe_cron(cleaned)


def _describe_cron(expression: str) -> str:
    try:
        # English like the rest of the window, whatever the system locale says.
        options = _cron_words.Options(locale_code="en_US", use_24hour_time_format=True)
        words: str = _cron_words.get_description(expression, options)
    except Exception:  # the trigger is valid; only the wording failed
        return f"Cron schedule {expression}"
    at = r"At (\d\d:\d\d)"
    rewrites = (
        (rf"^{at}$", r"Every day at \1"),
        (rf"^{at}, Monday through Friday$", r"Weekdays at \1"),
        (rf"^{at}, only on Saturday and Sunday$", r"Weekends at \1"),
        (rf"^{at}, only on Sunday and Saturday$", r"Weekends at \1"),
    )
    for pattern, replacement in rewrites:
        changed, count = re.subn(pattern, replacement, words)
        if count:
            return changed
    single_day = re.match(rf"^{at}, only on ({'|'.join(_WEEKDAY_NAMES)})$", words)
    if single_day:
        return f"{single_day.group(2)}s at {single_day.group(1)}"
    return words


def _first_run(trigger: BaseTrigger, now: datetime) -> datetime | None:
    first: datetime | None = trigger.get_next_fire_time(None, now)
    return first


# -- the scheduler ------------------------------------------------------------------------


class TaskScheduler:
    """Runs scheduled tasks into their sessions, and the hourly housekeeping."""

    def __init__(
        self,
        manager: SessionManager,
        engine: ChatEngine,
        *,
        open_session: Callable[[], str | None] | None = None,
        grace: timedelta = MISSED_RUN_GRACE,
        housekeeping_interval: timedelta = HOUSEKEEPING_INTERVAL,
        timezone: tzinfo | None = None,
        max_parallel_runs: int = MAX_PARALLEL_RUNS,
    ) -> None:
        """``open_session`` says which chat the window shows (housekeeping spares it)."""
        self._manager = manager
        self._engine = engine
        self._open_session = open_session or (lambda: None)
        self._grace = grace
        self._housekeeping_interval = housekeeping_interval
        self._timezone = timezone or _tzlocal.get_localzone()
        # Made on first use: the database opens after the window's first paint.
        self._task_store: TaskStore | None = None
        self._tasks: dict[str, Task] = {}
        # Many tasks due at once take turns: a server's rate limit (or the one local
        # model) would refuse or queue them anyway, and fewer at once keep the loop fluid.
        self._parallel = asyncio.Semaphore(max_parallel_runs)
        self._run_locks: dict[str, asyncio.Lock] = {}
        # The asyncio task of each run going now, and its session once it has one.
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._running_sessions: dict[str, str] = {}
        # Bookkeeping writes started from APScheduler's (synchronous) event callbacks.
        self._background: set[asyncio.Task[None]] = set()
        self._listeners: list[TaskListener] = []
        self._scheduler: AsyncIOScheduler | None = None
        self._stopping = False
        # Tasks being deleted: a run waiting for its turn must not start any more.
        self._deleting: set[str] = set()

    # -- life cycle -------------------------------------------------------------------

    def _store_of(self) -> TaskStore:
        """The tasks table's store (made once the database is open)."""
        if self._task_store is None:
            from chatdesk.storage.task_rows import TaskStore

            self._task_store = TaskStore(self._manager.engine, self._manager.database_path)
        return self._task_store

    async def start(self) -> None:
        """Load the tasks, run housekeeping once, and start scheduling (missed runs too)."""
        if self._scheduler is not None:
            raise RuntimeError("the scheduler is already started")
        self._stopping = False
        tasks = await self._store_of().all()
        self._tasks = {task.id: task for task in tasks}
        scheduler = _asyncio_scheduler.AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone=self._timezone,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(self._grace.total_seconds()),
            },
        )
        scheduler.add_listener(self._on_job_missed, _events.EVENT_JOB_MISSED)
        scheduler.add_listener(self._on_job_overlapped, _events.EVENT_JOB_MAX_INSTANCES)
        scheduler.start()
        self._scheduler = scheduler
        try:
            await self.run_housekeeping()
            scheduler.add_job(
                self.run_housekeeping,
                _interval.IntervalTrigger(
                    seconds=self._housekeeping_interval.total_seconds(), timezone=self._timezone
                ),
                id=_HOUSEKEEPING_JOB,
            )
            for task in tasks:
                if task.enabled and task.next_run_at is not None:
                    await self._schedule_stored(task)
        except BaseException:
            scheduler.shutdown(wait=False)
            self._scheduler = None
            raise

    async def _schedule_stored(self, task: Task) -> None:
        try:
            self._schedule(task, task.next_run_at)
        except ValueError as exc:
            # A schedule this version cannot read (written by another, or by hand): the
            # other tasks still run, and this one says why it does not.
            log.warning("task %s has an unreadable schedule: %s", task.id, exc)
            await self._save(task.id, last_status="error", last_note=str(exc))

    async def stop(self) -> None:
        """Stop scheduling; running tasks end their replies as cancelled (call before
        closing the manager)."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        self._stopping = True
        scheduler.pause()
        runs = set(self._running.values())
        for session_id in list(self._running_sessions.values()):
            self._engine.cancel(session_id)
        if runs:
            _done, late = await asyncio.wait(runs, timeout=STOP_TIMEOUT)
            for run in late:
                run.cancel()
            if late:
                await asyncio.wait(late)
        scheduler.shutdown(wait=False)
        self._scheduler = None
        while self._background:
            await asyncio.wait(set(self._background))

    @property
    def running(self) -> bool:
        """Whether the scheduler is started."""
        return self._scheduler is not None

    # -- events -----------------------------------------------------------------------

    def add_listener(self, listener: TaskListener) -> None:
        """Call ``listener`` after every change of a task and when a run starts or ends."""
        self._listeners.append(listener)

    def remove_listener(self, listener: TaskListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, kind: str, task_id: str) -> None:
        event = TaskEvent(kind, task_id)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the schedule
                log.exception("task listener failed on %s", event)

    # -- tasks ------------------------------------------------------------------------

    def list_tasks(self) -> list[Task]:
        """Every task, oldest first."""
        return sorted(self._tasks.values(), key=lambda task: (task.created_at, task.id))

    def get_task(self, task_id: str) -> Task:
        """The task ``task_id``; TaskNotFoundError if there is none."""
        task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        return task

    def is_running(self, task_id: str) -> bool:
        """Whether a run of ``task_id`` is going now."""
        return task_id in self._running

    def describe(self, schedule: str) -> str:
        """``schedule`` in plain words, in this scheduler's time zone (ValueError if invalid)."""
        return describe_schedule(schedule, timezone=self._timezone)

    async def add_task(
        self,
        *,
        name: str,
        prompt: str,
        schedule: str,
        model: str | None = None,
        provider: str | None = None,
    ) -> Task:
        """Store a new task and schedule it; ValueError (user-facing) for invalid input."""
        self._require_started()
        name, prompt, schedule = _checked_fields(name, prompt, schedule)
        trigger = parse_schedule(schedule, timezone=self._timezone)
        next_run = self._first_run_or_refuse(trigger, schedule)
        task = Task(
            id=new_id(),
            name=name,
            prompt=prompt,
            schedule=schedule,
            provider=provider,
            model=model,
            next_run_at=next_run.astimezone(UTC),
        )
        await self._store_of().insert(task)
        self._tasks[task.id] = task
        self._schedule(task, next_run, trigger)
        self._emit(TASK_ADDED, task.id)
        return task

    async def update_task(self, task_id: str, **changes: Any) -> Task:
        """Change a task's name, prompt, schedule, provider or model (ValueError if invalid).

        A new schedule starts counting from now; a new name renames the task's session.
        """
        self._require_started()
        allowed = {"name", "prompt", "schedule", "provider", "model"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a task")
        task = self.get_task(task_id)
        name, prompt, schedule = _checked_fields(
            changes.get("name", task.name),
            changes.get("prompt", task.prompt),
            changes.get("schedule", task.schedule),
        )
        values: dict[str, Any] = {"name": name, "prompt": prompt, "schedule": schedule}
        for key in ("provider", "model"):
            values[key] = changes.get(key, getattr(task, key))
        trigger = None
        if schedule != task.schedule:
            trigger = parse_schedule(schedule, timezone=self._timezone)
            next_run = self._first_run_or_refuse(trigger, schedule)
            values["next_run_at"] = next_run if task.enabled else None
        await self._save(task_id, **values)
        updated = self.get_task(task_id)
        if trigger is not None and updated.enabled:
            self._schedule(updated, updated.next_run_at, trigger)
        await self._sync_session(updated)
        return updated

    async def delete_task(self, task_id: str, *, keep_results: bool = False) -> None:
        """Delete a task; its session goes too, or stays as a normal chat with ``keep_results``.

        A run still going is stopped first (its reply ends as cancelled).
        """
        self._require_started()
        self.get_task(task_id)
        self._unschedule(task_id)
        self._deleting.add(task_id)
        try:
            session_id = self._running_sessions.get(task_id)
            if session_id is not None:
                self._engine.cancel(session_id)
            async with self._lock_of(task_id):
                # The session first: should the row's delete fail, the task still exists
                # and makes itself a new session at its next run, never the reverse.
                if keep_results:
                    await self._manager.release_task_session(task_id)
                else:
                    found = await self._manager.find_task_session(task_id)
                    if found is not None:
                        await self._manager.delete_session(found)
                await self._store_of().delete(task_id)
                self._tasks.pop(task_id, None)
        except BaseException:
            task = self._tasks.get(task_id)
            if task is not None and task.enabled:  # not deleted after all: keep it scheduled
                self._schedule(task, task.next_run_at)
            raise
        finally:
            self._deleting.discard(task_id)
        self._run_locks.pop(task_id, None)
        self._emit(TASK_DELETED, task_id)

    async def pause(self, task_id: str) -> Task:
        """Stop scheduling a task until :meth:`resume` (a run going now finishes)."""
        self._require_started()
        self.get_task(task_id)
        self._unschedule(task_id)
        await self._save(task_id, enabled=False, next_run_at=None)
        return self.get_task(task_id)

    async def resume(self, task_id: str) -> Task:
        """Schedule a paused task again, counting from now; a single run that has passed
        stays done."""
        self._require_started()
        task = self.get_task(task_id)
        trigger = parse_schedule(task.schedule, timezone=self._timezone)
        next_run = _first_run(trigger, datetime.now(self._timezone))
        await self._save(task_id, enabled=True, next_run_at=next_run)
        if next_run is not None:
            self._schedule(self.get_task(task_id), next_run, trigger)
        return self.get_task(task_id)

    async def mark_read(self, task_id: str) -> None:
        """Note that the user has seen the task's latest results (clears the unread mark)."""
        task = self._tasks.get(task_id)
        if task is not None and task.unread:
            await self._save(task_id, unread=False)

    async def session_of(self, task_id: str) -> Session:
        """The task's one session (made now if the task has not run yet)."""
        task = self.get_task(task_id)
        return await self._manager.ensure_task_session(task.id, title=task.name)

    # -- runs -------------------------------------------------------------------------

    async def run_now(self, task_id: str) -> Message:
        """Run a task at once and return its reply once stored (status "error" if it failed).

        Waits for a run of the same task that is going to end first. Raises
        SessionBusyError when the user is chatting in the task's session right then,
        and RunStoppedError when the run is stopped before the model answered.
        """
        self._require_started()
        self.get_task(task_id)
        async with self._lock_of(task_id):
            return await self._run(task_id, scheduled=False)

    async def run_housekeeping(self) -> int:
        """Delete empty chats older than an hour, except the one open in the window."""
        open_now = self._open_session()
        try:
            return await self._manager.cleanup_empty_sessions(
                keep={open_now} if open_now else set()
            )
        except StorageError as exc:
            log.warning("housekeeping could not delete empty chats: %s", exc)
            return 0

    async def _scheduled_run(self, task_id: str) -> None:
        """What APScheduler calls when a task is due: one run, unless one is going."""
        if task_id not in self._tasks or self._stopping:
            return
        lock = self._lock_of(task_id)
        if lock.locked():
            await self._note_skip(task_id, datetime.now(self._timezone))
            return
        async with lock:
            try:
                await self._run(task_id, scheduled=True)
            except SessionBusyError:
                await self._save(
                    task_id,
                    last_status="skipped",
                    last_note="Skipped a run: a reply was still being written in its chat.",
                )
            except (TaskNotFoundError, RunStoppedError):
                pass
            except Exception as exc:  # the schedule goes on whatever one run did
                log.exception("scheduled task %s failed", task_id)
                with contextlib.suppress(Exception):
                    await self._save(task_id, last_status="error", last_note=str(exc))

    async def _run(self, task_id: str, *, scheduled: bool) -> Message:
        """One run of a task; the caller holds the task's lock."""
        task = self._tasks.get(task_id)
        if task is None or task_id in self._deleting:
            raise TaskNotFoundError(task_id)
        current = asyncio.current_task()
        assert current is not None
        self._running[task_id] = current
        try:
            async with self._parallel:
                return await self._run_in_turn(task_id, scheduled=scheduled)
        finally:
            self._running.pop(task_id, None)
            self._running_sessions.pop(task_id, None)

    async def _run_in_turn(self, task_id: str, *, scheduled: bool) -> Message:
        """The run itself, once it may go (at most ``max_parallel_runs`` run at once)."""
        task = self._tasks.get(task_id)  # as it is now, after waiting for a turn
        if task is None or task_id in self._deleting:
            raise TaskNotFoundError(task_id)
        session = await self._sync_session(task, create=True)
        assert session is not None
        self._running_sessions[task_id] = session.id
        started: dict[str, Any] = {"last_run_at": utcnow()}
        if scheduled:
            # Stored before the reply, so a crash mid-run does not repeat the run at
            # the next start (None once a single run is done).
            started["next_run_at"] = self._job_next_run(task_id)
        await self._save(task_id, **started)
        self._emit(RUN_STARTED, task_id)
        reply = await self._send(session, task.prompt, task_id)
        await self._save(task_id, last_status=reply.status, last_note=reply.error, unread=True)
        self._emit(RUN_FINISHED, task_id)
        return reply

    async def _send(self, session: Session, prompt: str, task_id: str) -> Message:
        """The engine's normal turn; a failure before any reply is stored as an error reply."""
        # Checked right before the turn claims the session (no await in between), so
        # delete_task() and stop() either see the turn and cancel it, or stop it here.
        if self._stopping or task_id in self._deleting:
            raise RunStoppedError("The run was stopped before it began.")
        asked_at = utcnow()
        failure: ProviderError | None = None
        try:
            async for _delta in self._engine.send(session.id, prompt):
                pass
        except SessionBusyError:
            raise
        except ProviderError as exc:
            failure = exc
        # The newest reply made since the prompt was sent, found by time rather than by
        # position: compaction or tool steps may change the history around it.
        reply = next(
            (
                m
                for m in reversed(session.history)
                if m.role == "assistant" and m.created_at >= asked_at
            ),
            None,
        )
        if reply is not None:
            return reply
        if failure is None:
            raise RunStoppedError("The run was stopped before the model answered.")
        # As the window shows a failed chat reply: an empty reply whose error says why.
        return await self._manager.add_message(
            session.id, "assistant", "", status="error", error=str(failure)
        )

    async def _note_skip(self, task_id: str, when: datetime) -> None:
        log.info("task %s: skipped the run due at %s, its previous run still goes", task_id, when)
        await self._save(
            task_id,
            next_run_at=self._job_next_run(task_id),
            last_status="skipped",
            last_note=f"Skipped the run due at {when:%H:%M}: the previous run was still going.",
        )

    # -- internals --------------------------------------------------------------------

    def _require_started(self) -> None:
        if self._scheduler is None:
            raise RuntimeError("start() the scheduler first")

    def _lock_of(self, task_id: str) -> asyncio.Lock:
        return self._run_locks.setdefault(task_id, asyncio.Lock())

    def _first_run_or_refuse(self, trigger: BaseTrigger, schedule: str) -> datetime:
        next_run = _first_run(trigger, datetime.now(self._timezone))
        if next_run is None or (
            isinstance(trigger, _date.DateTrigger) and next_run <= datetime.now(self._timezone)
        ):
            raise ValueError(f"'{schedule}' has already passed: choose a time in the future.")
        return next_run

    def _schedule(
        self, task: Task, next_run: datetime | None, trigger: BaseTrigger | None = None
    ) -> None:
        """(Re)place the task's APScheduler job, first due at ``next_run``."""
        assert self._scheduler is not None
        if next_run is None:
            return
        self._scheduler.add_job(
            self._scheduled_run,
            trigger or parse_schedule(task.schedule, timezone=self._timezone),
            args=(task.id,),
            id=task.id,
            name=task.name,
            next_run_time=next_run,
            replace_existing=True,
        )

    def _unschedule(self, task_id: str) -> None:
        if self._scheduler is not None and self._scheduler.get_job(task_id) is not None:
            self._scheduler.remove_job(task_id)

    def _job_next_run(self, task_id: str) -> datetime | None:
        job = self._scheduler.get_job(task_id) if self._scheduler is not None else None
        return None if job is None else job.next_run_time

    async def _save(self, task_id: str, **values: Any) -> None:
        """Store changed fields, then update the in-memory task and tell the listeners."""
        if task_id not in self._tasks:
            raise TaskNotFoundError(task_id)
        values = {
            key: value.astimezone(UTC) if isinstance(value, datetime) else value
            for key, value in values.items()
        }
        await self._store_of().update(task_id, **values)
        task = self._tasks.get(task_id)
        if task is not None:  # deleted while the write ran
            self._tasks[task_id] = replace(task, **values)
            self._emit(TASK_UPDATED, task_id)

    async def _sync_session(self, task: Task, *, create: bool = False) -> Session | None:
        """Give the task's session the task's name and model (made first when ``create``)."""
        session: Session | None
        if create:
            session = await self._manager.ensure_task_session(task.id, title=task.name)
        else:
            found = await self._manager.find_task_session(task.id)
            session = None if found is None else await self._manager.get_session(found)
        if session is None:
            return None
        changes: dict[str, Any] = {}
        if session.title != task.name:
            changes["title"] = task.name
        if (session.provider, session.model) != (task.provider, task.model):
            changes.update(provider=task.provider, model=task.model)
        if changes:
            await self._manager.update_session(session.id, **changes)
        return session

    def _later(self, work: Any) -> None:
        """Run bookkeeping started from a synchronous APScheduler callback, kept referenced."""
        job = asyncio.ensure_future(work)
        self._background.add(job)
        job.add_done_callback(self._background.discard)
        job.add_done_callback(_log_failure)

    def _on_job_missed(self, event: JobExecutionEvent) -> None:
        if event.job_id not in self._tasks:
            return
        due = event.scheduled_run_time.astimezone(self._timezone)
        self._later(
            self._save(
                event.job_id,
                next_run_at=self._job_next_run(event.job_id),
                last_status="missed",
                last_note=f"Missed the run due at {due:%Y-%m-%d %H:%M}: ChatDesk was closed "
                f"for more than {self._grace.total_seconds() / 3600:g} hours.",
            )
        )

    def _on_job_overlapped(self, event: JobSubmissionEvent) -> None:
        if event.job_id not in self._tasks:
            return
        when = datetime.now(self._timezone)
        self._later(self._note_skip(event.job_id, when))


def _checked_fields(name: str, prompt: str, schedule: str) -> tuple[str, str, str]:
    name, schedule = name.strip(), " ".join(schedule.split())
    if not name:
        raise ValueError("Give the task a name.")
    if not prompt.strip():
        raise ValueError("Write the prompt the task sends to the model.")
    return name, prompt, schedule


def _log_failure(job: asyncio.Future[None]) -> None:
    if not job.cancelled() and job.exception() is not None:
        log.warning("could not store a scheduled task's state", exc_info=job.exception())

"""The escalation policy (escalation matrix) and the contact directory, as pure pydantic models.

Nothing here reads files: ``activities/policy_store.py`` does the I/O and turns validation
errors into messages that name the file and the field. The workflow only ever sees a
``PolicySnapshot``, which is recorded in its history so that replay and review see the policy
that was in force.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from workflows.calendar import Calendar
from workflows.durations import Duration, format_duration
from workflows.schedule import Schedule, on_call

PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
PRIORITY_ALIASES = {
    "critical": "P1",
    "high": "P2",
    "medium": "P3",
    "moderate": "P3",
    "low": "P4",
    "info": "P5",
    "informational": "P5",
}
PRIORITY_HINT = "write one of P1, P2, P3, P4, P5 (or critical, high, medium, low, info)"


def normalise_priority(value: Any) -> str:
    text = str(value).strip()
    if text.upper() in PRIORITIES:
        return text.upper()
    if text.lower() in PRIORITY_ALIASES:
        return PRIORITY_ALIASES[text.lower()]
    raise ValueError(f"unknown priority {text!r}: {PRIORITY_HINT}")


Priority = Annotated[str, BeforeValidator(normalise_priority)]
"""``P1``…``P5``; ``critical``/``high``/``medium``/``low``/``info`` are accepted and normalised."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_name(kind: str) -> Any:
    def check(value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid {kind} name: use letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    return check


PolicyName = Annotated[str, AfterValidator(_check_name("policy"))]
PersonName = Annotated[str, AfterValidator(_check_name("person"))]

TEAM_PREFIX = "team:"
SCHEDULE_PREFIX = "schedule:"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Windows(_Strict):
    """The clocks of one priority: how long a tier has to acknowledge, when to remind, the SLA.

    Each check is a field validator so that an error is located at the field that is wrong
    (``windows.P1.remind_before``), not at the whole priority.
    """

    ack_within: Duration
    remind_before: Duration | None = None
    remind_at: Duration | None = None
    resolve_within: Duration | None = None
    business_time: bool = False
    """Count these windows in the policy's calendar: days as business days, hours as open time."""
    ack_timeout: Duration | None = None
    """An acknowledgement not followed by a resolution within this returns the incident to its
    tier, which is paged again (the acker is reminded first)."""

    @field_validator("ack_within")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("ack_within must be longer than 0s: write e.g. ack_within: 15m")
        return value

    @field_validator("remind_before")
    @classmethod
    def _remind_before_inside_window(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        window = info.data.get("ack_within")
        if value is not None and window is not None and not timedelta(0) < value < window:
            shown = format_duration(window)
            raise ValueError(
                f"remind_before {format_duration(value)} is not inside the ack_within window of "
                f"{shown}: write a duration shorter than {shown}, e.g. remind_before: "
                f"{format_duration(window / 3)}"
            )
        return value

    @field_validator("remind_at")
    @classmethod
    def _remind_at_inside_window(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        if value is None:
            return value
        if info.data.get("remind_before") is not None:
            raise ValueError(
                "give either remind_before (time before the window ends) or remind_at "
                "(time after the tier was paged), not both"
            )
        window = info.data.get("ack_within")
        if window is not None and not timedelta(0) < value < window:
            shown = format_duration(window)
            raise ValueError(
                f"remind_at {format_duration(value)} is not inside the ack_within window of "
                f"{shown}: write a duration shorter than {shown}, e.g. remind_at: "
                f"{format_duration(window * 2 / 3)}"
            )
        return value

    @field_validator("ack_timeout")
    @classmethod
    def _positive_ack_timeout(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("ack_timeout must be longer than 0s: write e.g. ack_timeout: 30m")
        return value

    @field_validator("resolve_within")
    @classmethod
    def _positive_sla(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("resolve_within must be longer than 0s: write e.g. resolve_within: 4h")
        return value

    def reminder_offset(self) -> timedelta | None:
        """How long after a tier is paged its reminder goes out, if any."""
        if self.remind_at is not None:
            return self.remind_at
        if self.remind_before is not None:
            return self.ack_within - self.remind_before
        return None


def _owner_list(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    return value


class Tier(_Strict):
    name: str = Field(min_length=1)
    owners: Annotated[list[str], BeforeValidator(_owner_list)]
    ack_within: Duration | dict[Priority, Duration] | None = None
    """This tier's own window instead of the priority's: one for every priority (``5m``) or per
    priority (``{P1: 5m, P3: 1d}``; the others keep the priority's window)."""

    active: str | Calendar | None = None
    """The tier takes part only while this calendar is open (e.g. an L1 desk in business
    hours); otherwise it is skipped at once. A name from calendars.yaml or a calendar here."""

    def window_override(self, priority: str) -> timedelta | None:
        if isinstance(self.ack_within, dict):
            return self.ack_within.get(priority)
        return self.ack_within

    @field_validator("owners")
    @classmethod
    def _has_owners(cls, owners: list[str], info: ValidationInfo) -> list[str]:
        if not owners:
            name = info.data.get("name")
            tier = f"tier {name!r}" if name else "this tier"
            raise ValueError(
                f"{tier} has no owners: list at least one person or team, "
                "e.g. owners: [alice, team:payments-support]"
            )
        return owners


class Policy(_Strict):
    """The escalation matrix of one service or category."""

    policy: PolicyName
    description: str = ""
    manager: PersonName
    windows: dict[Priority, Windows] = Field(min_length=1)
    tiers: list[Tier] = Field(min_length=1)
    repeat: int | Literal["forever"] = Field(default=0)
    """Extra rounds after the top tier; ``forever`` keeps paging until the resolution SLA passes
    (or for good, without one)."""
    repeat_from: str | None = None
    """The tier (by name) each extra round starts from; tier 1 unless given."""
    on_exhausted: Literal["notify_manager", "resolve", "keep_open"] = "notify_manager"
    """When every round is over: tell the manager (and stay open), close it, or just stay open."""
    calendar: str | Calendar | None = None
    """Business hours for windows with ``business_time: true``: the name of a calendar in
    ``calendars.yaml`` beside the policies, or a calendar written here."""

    @model_validator(mode="after")
    def _calendar_for_business_time(self) -> Policy:
        business = [priority for priority, windows in self.windows.items() if windows.business_time]
        if business and self.calendar is None:
            raise ValueError(
                f"windows.{business[0]}.business_time is true but the policy has no calendar: add "
                "calendar: <a name from calendars.yaml>, or write one here, e.g. calendar: "
                '{timezone: Europe/London, hours: {mon-fri: "09:00-17:00"}}'
            )
        return self

    @field_validator("windows", mode="before")
    @classmethod
    def _one_entry_per_priority(cls, value: Any) -> Any:
        """``critical`` and ``P1`` are the same priority: a mapping with both would silently
        lose one of them."""
        if isinstance(value, dict):
            written: dict[str, Any] = {}
            for key in value:
                try:
                    priority = normalise_priority(key)
                except ValueError:
                    continue  # reported by the key validator, at the key
                if priority in written:
                    raise ValueError(
                        f"{written[priority]!r} and {key!r} are both {priority}: keep one of them"
                    )
                written[priority] = key
        return value

    @field_validator("repeat")
    @classmethod
    def _repeat_range(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 0 <= value <= 10_000:
            raise ValueError("repeat is the number of extra rounds: write 0 to 10000, or forever")
        return value

    @model_validator(mode="after")
    def _repeat_from_is_a_tier(self) -> Policy:
        names = [tier.name for tier in self.tiers]
        if self.repeat_from is not None and self.repeat_from not in names:
            close = difflib.get_close_matches(self.repeat_from, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"repeat_from {self.repeat_from!r} is not a tier: {hint}the tiers are {', '.join(names)}")
        return self

    @property
    def repeat_rounds(self) -> int | None:
        """Extra rounds after the first; None repeats without end."""
        return None if self.repeat == "forever" else self.repeat

    @property
    def repeat_from_tier(self) -> int:
        return [tier.name for tier in self.tiers].index(self.repeat_from) + 1 if self.repeat_from else 1

    def tier_number(self, wanted: str) -> int | None:
        """A tier by its number or name (any case), for ``escalate up --to``."""
        text = wanted.strip()
        if text.isdecimal():  # not isdigit: "²" is a digit that int() refuses
            number = int(text)
            return number if 1 <= number <= len(self.tiers) else None
        for number, tier in enumerate(self.tiers, 1):
            if tier.name.lower() == text.lower():
                return number
        return None

    def windows_for_tier(self, priority: str, tier: int) -> Windows:
        """The priority's windows, with the tier's own ``ack_within`` when it has one (a
        reminder that does not fit inside the tier's shorter window is left out)."""
        windows = self.windows_for(priority)
        override = self.tiers[tier - 1].window_override(normalise_priority(priority))
        if override is None or override == windows.ack_within:
            return windows
        fields = {**windows.model_dump(), "ack_within": override}
        for reminder in ("remind_before", "remind_at"):
            if fields[reminder] is not None and fields[reminder] >= override:
                fields[reminder] = None
        return Windows.model_validate(fields)

    @model_validator(mode="after")
    def _tier_windows_are_for_known_priorities(self) -> Policy:
        for index, tier in enumerate(self.tiers):
            if isinstance(tier.ack_within, dict):
                for priority in tier.ack_within:
                    if priority not in self.windows:
                        raise ValueError(
                            f"tiers[{index}].ack_within gives a window for {priority}, which the policy has no "
                            f"windows for: use one of {', '.join(sorted(self.windows))}"
                        )
            for priority in self.windows:
                override = tier.window_override(priority)
                if override is not None and override <= timedelta(0):
                    raise ValueError(f"tiers[{index}].ack_within must be longer than 0s: write e.g. ack_within: 5m")
        return self

    def windows_for(self, priority: str) -> Windows:
        try:
            return self.windows[normalise_priority(priority)]
        except KeyError:
            raise ValueError(
                f"policy {self.policy!r} has no windows for {priority}: "
                f"it defines {', '.join(sorted(self.windows))}"
            ) from None

    @field_validator("tiers")
    @classmethod
    def _unique_tier_names(cls, tiers: list[Tier]) -> list[Tier]:
        seen: dict[str, int] = {}
        for number, tier in enumerate(tiers, start=1):
            if tier.name in seen:
                raise ValueError(
                    f"two tiers are named {tier.name!r} (tiers {seen[tier.name]} and {number}): "
                    "give every tier its own name"
                )
            seen[tier.name] = number
        return tiers


CHANNELS = ("email", "webhook", "chat", "teams", "push")
"""``teams``: a Microsoft Teams incoming-webhook URL; ``push``: an ntfy topic URL (server/topic)."""


class ContactPoint(_Strict):
    channel: str
    address: str


class ContactRule(_Strict):
    """One step of a person's contact rules: this long after they are paged, reach them here."""

    after: Duration
    via: str


class Person(_Strict):
    """One contact of the directory; ``channels`` keeps the order the file lists them in."""

    channels: list[ContactPoint]
    rules: list[ContactRule] = Field(default_factory=list)
    """Steps while their tier is unacknowledged, e.g. chat at once, email after 5m, push after
    10m; without rules a page goes to the first channel that works."""

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, data: Any) -> Any:
        if isinstance(data, dict) and "channels" not in data:
            data = dict(data)
            rules = data.pop("rules", None)
            unknown = [name for name in data if name not in CHANNELS]
            if unknown:
                name = unknown[0]
                close = difflib.get_close_matches(str(name), CHANNELS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"unknown channel {name!r}: {hint}use any of {', '.join(CHANNELS)}, e.g. {{email: alice@example.com}}"
                )
            points = [
                {"channel": channel, "address": str(address)}
                for channel, address in data.items()
                if address not in (None, "")
            ]
            if not points:
                raise ValueError(
                    f"no way to reach this person: give at least one of {', '.join(CHANNELS)}, "
                    "e.g. {email: alice@example.com}"
                )
            return {"channels": points, "rules": rules or []}
        return data

    @model_validator(mode="after")
    def _rules_use_known_channels(self) -> Person:
        have = [point.channel for point in self.channels]
        for index, rule in enumerate(self.rules):
            if rule.via not in have:
                raise ValueError(
                    f"rules[{index}] goes via {rule.via!r}, but this person has no {rule.via} address: "
                    f"use one of {', '.join(have)}, or add a {rule.via}: address"
                )
        if any(later.after < earlier.after for earlier, later in pairwise(self.rules)):
            raise ValueError("rules must be in the order they happen: each after: no earlier than the one before")
        return self


class Directory(_Strict):
    """``directory.yaml``: the escalation contact list and the teams."""

    people: dict[PersonName, Person] = Field(default_factory=dict)
    teams: dict[str, list[PersonName]] = Field(default_factory=dict)


class Problem(_Strict):
    """One thing wrong with a policy, located by its field path (``tiers[1].owners[0]``)."""

    path: str
    message: str


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def owner_problem(
    path: str, owner: str, directory: Directory, schedules: dict[str, Schedule] | None = None
) -> Problem | None:
    """Why ``owner`` (a person, ``team:NAME`` or ``schedule:NAME``) is not known, or None."""
    if owner.startswith(SCHEDULE_PREFIX):
        name = owner[len(SCHEDULE_PREFIX) :]
        if schedules is not None and name in schedules:
            return None
        known = sorted(schedules or {})
        return Problem(
            path=path,
            message=(
                f"unknown schedule {name!r}: {_suggest(name, known)}add schedules/{name}.yaml beside the "
                f"policies, or use one of {', '.join('schedule:' + n for n in known) or '(no schedules)'}"
            ),
        )
    if owner.startswith(TEAM_PREFIX):
        team = owner[len(TEAM_PREFIX) :]
        if team in directory.teams:
            return None
        teams = sorted(directory.teams)
        return Problem(
            path=path,
            message=(
                f"unknown team {team!r}: {_suggest(team, teams)}add it under teams: in directory.yaml, "
                f"or use one of {', '.join('team:' + name for name in teams) or '(no teams)'}"
            ),
        )
    if owner in directory.people:
        return None
    people = sorted(directory.people)
    return Problem(
        path=path,
        message=(
            f"unknown contact {owner!r}: {_suggest(owner, people)}add {owner} under people: in "
            f"directory.yaml, or use one of {', '.join(people) or '(none)'}"
        ),
    )


def contact_problems(
    policy: Policy | dict[str, Any], directory: Directory, schedules: dict[str, Schedule] | None = None
) -> list[Problem]:
    """Every owner and the manager must be a known person or team of the directory.

    Also takes the raw mapping of a policy file that failed validation, so that ``policy check``
    reports unknown contacts together with the other problems of the file.
    """
    data = policy.model_dump() if isinstance(policy, Policy) else policy
    found: list[Problem | None] = []
    tiers = data.get("tiers")
    for t, tier in enumerate(tiers if isinstance(tiers, list) else []):
        owners = _owner_list(tier.get("owners")) if isinstance(tier, dict) else None
        for o, owner in enumerate(owners if isinstance(owners, list) else []):
            if isinstance(owner, str):
                found.append(owner_problem(f"tiers[{t}].owners[{o}]", owner, directory, schedules))
    manager = data.get("manager")
    if isinstance(manager, str) and not manager.startswith(TEAM_PREFIX):
        found.append(owner_problem("manager", manager, directory))
    return [problem for problem in found if problem is not None]


def directory_problems(directory: Directory) -> list[Problem]:
    """Teams must name people of the directory and must not be empty."""
    problems = []
    people = sorted(directory.people)
    for team, members in directory.teams.items():
        if not members:
            problems.append(
                Problem(
                    path=f"teams.{team}",
                    message=f"team {team!r} has no members: list at least one person, e.g. [{people[0] if people else 'alice'}]",
                )
            )
        for m, member in enumerate(members):
            if member not in directory.people:
                problems.append(
                    Problem(
                        path=f"teams.{team}[{m}]",
                        message=(
                            f"unknown contact {member!r}: {_suggest(member, people)}add {member} "
                            "under people:, or remove it from the team"
                        ),
                    )
                )
    return problems


class PolicySnapshot(_Strict):
    """A policy with its owners expanded to people, frozen when an incident starts."""

    policy: Policy
    people: dict[str, Person]
    tier_people: list[list[str]]
    source: str = ""
    calendar: Calendar | None = None
    """The policy's business-hours calendar, resolved from ``calendars.yaml`` when named."""
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    """The on-call schedules the tiers name (``schedule:NAME`` owners), as they were."""
    tier_calendars: list[Calendar | None] = Field(default_factory=list)
    """Each tier's ``active`` calendar, resolved."""
    channels_off: dict[str, str] = Field(default_factory=dict)
    """Channels the worker that took the snapshot cannot send on (no SMTP configured, say), with
    how to turn them on: the incident passes over them without asking a worker each time, as it
    would pass over them on that worker's answer (the message still reaches the person on their
    next channel, or the worker log). Workers of one deployment share their settings."""

    @property
    def name(self) -> str:
        return self.policy.policy

    def tier_name(self, tier: int) -> str:
        return self.policy.tiers[tier - 1].name

    def people_of(self, tier: int) -> list[str]:
        """The tier's people as written (``schedule:NAME`` entries stand for whoever is on call)."""
        return list(self.tier_people[tier - 1])

    def people_at(self, tier: int, moment: datetime) -> list[str]:
        """Who a page of the tier goes to at ``moment``: its people, with each schedule resolved
        to whoever is on call then (nobody, in a gap), each person once."""
        names: list[str] = []
        for entry in self.tier_people[tier - 1]:
            if entry.startswith(SCHEDULE_PREFIX):
                who = on_call(self.schedules[entry[len(SCHEDULE_PREFIX) :]], moment).who
                if who is not None and who not in names:
                    names.append(who)
            elif entry not in names:
                names.append(entry)
        return names

    def why_skipped(self, tier: int, moment: datetime) -> str | None:
        """Why the tier would page nobody at ``moment`` (then it is skipped), or None."""
        calendar = self.tier_calendars[tier - 1] if tier <= len(self.tier_calendars) else None
        if calendar is not None and not calendar.is_open(moment):
            return "outside its hours (active calendar)"
        if not self.people_at(tier, moment):
            gaps = [entry[len(SCHEDULE_PREFIX) :] for entry in self.tier_people[tier - 1] if entry.startswith(SCHEDULE_PREFIX)]
            return f"nobody on call in {', '.join(gaps)}" if gaps else "nobody to page"
        return None

    @property
    def tier_count(self) -> int:
        return len(self.policy.tiers)


def calendar_problem(policy: Policy, calendars: dict[str, Calendar]) -> Problem | None:
    """A calendar named by the policy must be one of ``calendars.yaml``."""
    if isinstance(policy.calendar, str) and policy.calendar not in calendars:
        known = sorted(calendars)
        return Problem(
            path="calendar",
            message=(
                f"unknown calendar {policy.calendar!r}: {_suggest(policy.calendar, known)}add it to calendars.yaml "
                f"beside the policies, or use one of {', '.join(known) or '(calendars.yaml defines none)'}"
            ),
        )
    return None


def tier_calendar_problems(policy: Policy, calendars: dict[str, Calendar]) -> list[Problem]:
    known = sorted(calendars)
    return [
        Problem(
            path=f"tiers[{index}].active",
            message=(
                f"unknown calendar {tier.active!r}: {_suggest(tier.active, known)}add it to calendars.yaml, "
                f"or use one of {', '.join(known) or '(calendars.yaml defines none)'}"
            ),
        )
        for index, tier in enumerate(policy.tiers)
        if isinstance(tier.active, str) and tier.active not in calendars
    ]


def snapshot(
    policy: Policy,
    directory: Directory,
    source: str = "",
    calendars: dict[str, Calendar] | None = None,
    schedules: dict[str, Schedule] | None = None,
) -> PolicySnapshot:
    """Expand ``team:`` owners to their members (each person once per tier, in written order),
    keep ``schedule:`` owners with their schedules, and resolve named calendars."""
    calendars = calendars or {}
    schedules = schedules or {}
    problems = contact_problems(policy, directory, schedules) + directory_problems(directory)
    if (problem := calendar_problem(policy, calendars)) is not None:
        problems.append(problem)
    problems += tier_calendar_problems(policy, calendars)
    if problems:
        raise ValueError("; ".join(f"{p.path}: {p.message}" for p in problems))
    tier_people: list[list[str]] = []
    for tier in policy.tiers:
        names: list[str] = []
        for owner in tier.owners:
            members = (
                directory.teams[owner[len(TEAM_PREFIX) :]]
                if owner.startswith(TEAM_PREFIX)
                else [owner]
            )
            names.extend(name for name in members if name not in names)
        tier_people.append(names)
    used = {
        entry[len(SCHEDULE_PREFIX) :]: schedules[entry[len(SCHEDULE_PREFIX) :]]
        for names in tier_people
        for entry in names
        if entry.startswith(SCHEDULE_PREFIX)
    }
    involved = {name for names in tier_people for name in names if not name.startswith(SCHEDULE_PREFIX)}
    involved |= {policy.manager} | {person for schedule in used.values() for person in schedule.people()}
    missing = sorted(name for name in involved if name not in directory.people)
    if missing:
        raise ValueError(f"schedules name people the directory does not have: {', '.join(missing)}")
    people = {name: directory.people[name] for name in sorted(involved)}
    calendar = calendars[policy.calendar] if isinstance(policy.calendar, str) else policy.calendar
    tier_calendars = [calendars[t.active] if isinstance(t.active, str) else t.active for t in policy.tiers]
    return PolicySnapshot(
        policy=policy,
        people=people,
        tier_people=tier_people,
        source=source,
        calendar=calendar,
        schedules=used,
        tier_calendars=tier_calendars,
    )

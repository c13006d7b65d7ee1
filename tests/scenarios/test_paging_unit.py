"""``Paging`` on its own, in a small workflow of its own, against a ``notify`` activity whose
behaviour each address chooses: channel attempts and their backoff (or the receiver's
Retry-After), falling over to the next channel on a permanent failure, the end of a paging round
stopping every further attempt, and a tier whose people nobody could reach.

Time-skipping server: the retry waits pass at once."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from workflows.errors import DELIVERY_FAILED, PERMANENT_DELIVERY_FAILURE
from workflows.metrics import IncidentMetrics
from workflows.model import NOTIFY_ACTIVITY, Delivery, Notification
from workflows.paging import Paging, TierReach
from workflows.policy import ContactPoint, Person, Policy, PolicySnapshot
from workflows.timeline import EventKind, TimelineEvent

pytestmark = pytest.mark.asyncio(loop_scope="session")

ATTEMPTS: Counter[str] = Counter()


@activity.defn(name=NOTIFY_ACTIVITY)
async def notify(note: Notification) -> Delivery:
    """Each address says how its receiver behaves: ``down`` always fails, ``gone`` refuses for
    good, ``busy7`` asks for a pause of 7 s, ``flaky2`` fails twice then takes the message."""
    ATTEMPTS[note.idempotency_key] += 1
    attempt = ATTEMPTS[note.idempotency_key]
    behaviour = note.address.split("@")[0]
    if behaviour == "gone":
        raise ApplicationError("404 no such hook", type=PERMANENT_DELIVERY_FAILURE, non_retryable=True)
    if behaviour == "down" or (behaviour == "flaky2" and attempt <= 2):
        raise ApplicationError("connection refused", type=DELIVERY_FAILED)
    if behaviour == "busy7" and attempt == 1:
        raise ApplicationError("429 slow down", 7.0, type=DELIVERY_FAILED)
    return Delivery(channel=note.channel, outcome="delivered", detail=f"attempt {attempt}")


class Plan(BaseModel):
    people: dict[str, list[ContactPoint]]
    stop_after: timedelta | None = None


class Story(BaseModel):
    events: list[TimelineEvent]
    unreachable: list[list[str]]
    in_flight_at_end: int


POLICY = Policy.model_validate(
    {"policy": "harness", "manager": "boss", "windows": {"P1": {"ack_within": "15m"}}, "tiers": [{"name": "T1", "owners": ["a"]}]}
)


@workflow.defn(sandboxed=False)
class PagingHarness:
    """Pages every person of the plan once, as the incident pages a tier, and tells the story."""

    @workflow.run
    async def run(self, plan: Plan) -> Story:
        events: list[TimelineEvent] = []
        unreachable: list[list[str]] = []

        def record(kind: EventKind, **fields: object) -> None:
            events.append(TimelineEvent.model_validate({"at": workflow.now(), "kind": kind, **fields}))

        people = {name: Person(channels=points) for name, points in plan.people.items()}
        snapshot = PolicySnapshot(policy=POLICY, people=people, tier_people=[list(people)])
        paging = Paging(
            policy=lambda: snapshot,
            resolved=lambda: False,
            record=record,
            metrics=IncidentMetrics(workflow.metric_meter()),
            tier_unreachable=lambda reach: unreachable.append(list(reach.unreachable)),
        )
        reach = TierReach(tier=1, people=len(people))
        for number, (name, person) in enumerate(people.items()):
            message = Notification(
                idempotency_key=f"{workflow.info().workflow_id}/{number}/{name}", kind="page", incident_key="k", policy="harness",
                priority="P1", summary="s", person=name, channel="", address="", tier=1, tier_name="T1", tier_count=1,
            )  # fmt: skip
            paging.send(message, person.channels, paging_round=paging.round, reach=reach)
        if plan.stop_after is not None:
            await workflow.sleep(plan.stop_after)
            paging.stop()  # an acknowledgement: this round is over
        await workflow.wait_condition(lambda: paging.in_flight == 0)
        return Story(events=events, unreachable=unreachable, in_flight_at_end=paging.in_flight)


async def tell(env: WorkflowEnvironment, plan: Plan) -> Story:
    queue = f"paging-{uuid.uuid4().hex[:8]}"
    runner = UnsandboxedWorkflowRunner()
    async with Worker(env.client, task_queue=queue, workflows=[PagingHarness], activities=[notify], workflow_runner=runner):
        return await env.client.execute_workflow(PagingHarness.run, plan, id=queue, task_queue=queue)


def point(channel: str, behaviour: str) -> ContactPoint:
    return ContactPoint(channel=channel, address=f"{behaviour}@{channel}")


def seconds_between(events: list[TimelineEvent]) -> list[int]:
    return [round((later.at - earlier.at).total_seconds()) for earlier, later in zip(events, events[1:], strict=False)]


def lines(story: Story) -> list[str]:
    return [f"{event.kind} {event.who}: {event.detail}" for event in story.events]


async def test_a_transient_failure_is_retried_with_backoff_on_the_same_channel(time_env: WorkflowEnvironment) -> None:
    story = await tell(time_env, Plan(people={"erin": [point("webhook", "flaky2")]}))
    assert lines(story) == [
        "notify_failed erin: page via webhook to flaky2@webhook, attempt 1: connection refused; retrying in 1s",
        "notify_failed erin: page via webhook to flaky2@webhook, attempt 2: connection refused; retrying in 2s",
        "notified erin: page via webhook to flaky2@webhook: delivered (attempt 3)",
    ]
    assert seconds_between(story.events) == [1, 2], "1 s, then 2 s (plus the attempts' own few ms)"
    assert story.unreachable == [] and story.in_flight_at_end == 0


async def test_a_permanent_failure_falls_over_to_the_next_channel_and_retry_after_is_honoured(time_env: WorkflowEnvironment) -> None:
    story = await tell(time_env, Plan(people={"frank": [point("email", "gone"), point("webhook", "busy7")]}))
    assert lines(story) == [
        "notify_failed frank: page via email to gone@email, attempt 1: 404 no such hook; giving up on this channel",
        "notify_failed frank: page via webhook to busy7@webhook, attempt 1: 429 slow down; retrying in 7s",
        "notified frank: page via webhook to busy7@webhook: delivered (attempt 2)",
    ]
    assert seconds_between(story.events)[1] == 7


async def test_a_tier_nobody_could_reach_is_reported_once_with_everyone_in_it(time_env: WorkflowEnvironment) -> None:
    story = await tell(time_env, Plan(people={"erin": [point("webhook", "gone")], "frank": [point("email", "gone")]}))
    assert sorted(story.unreachable[0]) == ["erin", "frank"] and len(story.unreachable) == 1
    story = await tell(time_env, Plan(people={"erin": [point("webhook", "gone")], "frank": [point("email", "flaky2")]}))
    assert story.unreachable == [], "one of them was reached"


async def test_the_end_of_the_round_stops_every_further_attempt(time_env: WorkflowEnvironment) -> None:
    story = await tell(time_env, Plan(people={"erin": [point("webhook", "down")]}, stop_after=timedelta(seconds=2)))
    assert lines(story) == [
        "notify_failed erin: page via webhook to down@webhook, attempt 1: connection refused; retrying in 1s",
        "notify_failed erin: page via webhook to down@webhook, attempt 2: connection refused; retrying in 2s",
    ], "acknowledged during the second wait: no third attempt, no fall-over, nothing reported unreachable"
    assert story.unreachable == [] and story.in_flight_at_end == 0

"""The HTTP API (``escalate api``), through an HTTP client against the running app.

The app is the real FastAPI app: served by uvicorn on a loopback port (the auth, link and
concurrency tests) or called in process through ``httpx.ASGITransport`` (the bulk), with a real
worker behind it on a time-skipping Temporal test server of the module's own: the tests compare
its clock with the wall clock (a snooze of two hours ends two hours from now), which the other
scenarios move days ahead on the session's server. The real ``escalate dev`` (its visibility
store, ``/docs``) and Temporal going away are in tests/e2e/test_http_dev_and_outage.py. Policies
are the examples: payments P2 waits an hour before anything fires, so no timer gets in the way
of a test that runs in real time.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from structlog.testing import capture_logs
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities import EscalationActivities
from activities.messages import Templates
from escalate.links import link_url, make_token
from escalate.settings import Settings
from starter.api import InvalidRequest
from starter.web import create_app
from tests.support.histories import save_history
from tests.support.http import (
    LINK_SECRET,
    PROBLEM,
    TOKEN,
    asgi_client,
    assert_problem,
    assert_status_json,
    http_client,
    links_in,
    new_incident,
    served,
    wait_closed,
    worker,
)
from tests.support.net import free_port
from tests.support.temporal import TrackedEscalations, make_settings, module_time_env, unique_key
from tests.support.timeline import json_events, json_kinds
from tests.support.waiting import wait_for
from workflows.model import MAX_DETAILS_BYTES, MAX_NOTE, Notification, maintenance_id, workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

time_env = module_time_env
"""A time-skipping server of this module's own, its clock where the wall clock is."""


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


@dataclass
class Api:
    client: httpx.AsyncClient
    escalations: TrackedEscalations
    settings: Settings


@pytest_asyncio.fixture(loop_scope="session")
async def api(time_env: WorkflowEnvironment) -> AsyncIterator[Api]:
    """The app in process (ASGI), a real worker on the time-skipping server behind it."""
    settings = make_settings()
    async with worker(time_env, settings) as escalations:
        async with asgi_client(create_app(settings, escalations)) as client:
            yield Api(client, escalations, settings)


def last(status: dict[str, Any], kind: str) -> dict[str, Any]:
    """The latest event of a kind (notifications may land after it in the timeline)."""
    found = json_events(status, kind)
    assert found, f"no {kind} event in {json_kinds(status)}"
    return found[-1]


async def still_open(env: WorkflowEnvironment, key: str) -> bool:
    return (await env.client.get_workflow_handle(workflow_id(key)).describe()).status == WorkflowExecutionStatus.RUNNING


async def pages_settle(client: httpx.AsyncClient, key: str, people: list[str]) -> dict[str, Any]:
    """The status once the pages of tier 1 have been delivered (they are sent after the answer),
    and a moment more, so that a second page would show."""

    async def paged() -> dict[str, Any] | None:
        status = assert_status_json(await client.get(f"/v1/incidents/{key}"))
        return status if len(pages_of(status)) >= len(people) else None

    await wait_for(f"{key} to page {people}", paged, timeout=15, interval=0.05)
    await asyncio.sleep(0.3)
    status = assert_status_json(await client.get(f"/v1/incidents/{key}"))
    assert sorted(pages_of(status)) == sorted(people), f"each paged once: {pages_of(status)}"
    return status


def pages_of(status: dict[str, Any]) -> list[str]:
    return [event["who"] for event in status["timeline"] if event["kind"] == "notified" and event["detail"].startswith("page ")]


# ── opening incidents ────────────────────────────────────────────────────────────────────────


async def test_create_then_the_same_key_again_joins_one_incident(time_env: WorkflowEnvironment, api: Api) -> None:
    key = unique_key("api-open")
    first = await api.client.post("/v1/incidents", json=new_incident(key))
    opened = assert_status_json(first, 201)
    assert first.headers["location"] == f"/v1/incidents/{key}"
    assert (opened["key"], opened["policy"], opened["priority"], opened["status"]) == (key, "payments", "P2", "triggered")
    assert (opened["tier"], opened["tier_name"], sorted(opened["owners"])) == (1, "L1 support", ["erin", "frank"])
    assert opened["details"] == {"region": "eu-west-1", "queue_depth": 1200}
    assert opened["reporter"] == "oncall@example.com"
    assert opened["occurrences"] == 1

    again = await api.client.post("/v1/incidents", json=new_incident(key, summary="Refunds still stuck"))
    joined = assert_status_json(again, 200)
    assert again.headers["location"] == f"/v1/incidents/{key}"
    assert joined["occurrences"] == 2
    assert json_kinds(joined).count("triggered") == 1
    [repeat] = [event for event in joined["timeline"] if event["kind"] == "repeated"]
    assert repeat["detail"] == "repeated 1 time (total 2): Refunds still stuck"

    got = await pages_settle(api.client, key, ["erin", "frank"])  # a repeat pages nobody again
    assert got["occurrences"] == 2 and got["status"] == "triggered"
    assert await still_open(time_env, key)


@pytest.mark.parametrize("racers", [2, 10])
async def test_services_racing_to_open_one_key_get_one_incident(time_env: WorkflowEnvironment, racers: int) -> None:
    settings = make_settings()
    key = unique_key(f"api-race{racers}")
    async with worker(time_env, settings) as escalations, served(settings, escalations) as base:
        async with http_client(base) as client:
            answers = await asyncio.gather(
                *(client.post("/v1/incidents", json=new_incident(key, summary=f"seen by service {n}")) for n in range(racers))
            )
            codes = sorted(answer.status_code for answer in answers)
            assert codes == [200] * (racers - 1) + [201], [answer.text for answer in answers if answer.status_code >= 300]
            for answer in answers:
                assert_status_json(answer, answer.status_code)
            status = await pages_settle(client, key, ["erin", "frank"])  # once, whoever won
        assert status["occurrences"] == racers
        assert json_kinds(status).count("triggered") == 1
        repeats = [event for event in status["timeline"] if event["kind"] == "repeated"]
        assert 1 <= len(repeats) <= racers - 1, "a burst of repeats shares timeline entries"
        assert sum(int(event["detail"].split(" ")[1]) for event in repeats) == racers - 1
        assert await still_open(time_env, key)
        if racers == 10:
            await save_history(time_env.client, key, "api_concurrent_creates")


# ── bad input ────────────────────────────────────────────────────────────────────────────────


async def test_unknown_policy_is_422_naming_policy_with_a_suggestion(api: Api) -> None:
    answer = await api.client.post("/v1/incidents", json=new_incident(unique_key("api-badpolicy"), policy="paymnts"))
    body = assert_problem(answer, 422, field="policy", says=("unknown policy 'paymnts'", "did you mean 'payments'"))
    assert body["errors"][0]["field"] == "policy"


async def test_unknown_priority_is_422_naming_priority(api: Api) -> None:
    answer = await api.client.post("/v1/incidents", json=new_incident(unique_key("api-badprio"), priority="P9"))
    assert_problem(answer, 422, field="priority", says=("unknown priority 'P9'", "P1"))
    # A priority the policy has no windows for is refused by the incident, still naming the field.
    answer = await api.client.post("/v1/incidents", json=new_incident(unique_key("api-p5"), priority="P5"))
    assert_problem(answer, 422, field="priority", says=("P5",))


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"key": None}, "key", "Field required"),
        ({"key": "has spaces!"}, "key", "not a valid incident key"),
        ({"details": {"log": "x" * (MAX_DETAILS_BYTES + 1)}}, "details", "64 KiB"),
        ({"summary": None}, "summary", "Field required"),
        ({"reporter": "not-an-address"}, "reporter", "not an email address"),
        ({"policy": None}, "policy", "Field required"),
        ({"severity": "high"}, "severity", "Extra inputs are not permitted"),
    ],
    ids=["missing-key", "bad-key", "details-over-64KiB", "missing-summary", "bad-reporter", "missing-policy", "unknown-field"],
)
async def test_invalid_create_is_422_naming_the_field(api: Api, change: dict[str, Any], field: str, says: str) -> None:
    body = new_incident(unique_key("api-invalid"))
    for name, value in change.items():
        if value is None:
            body.pop(name)
        else:
            body[name] = value
    answer = await api.client.post("/v1/incidents", json=body)
    assert_problem(answer, 422, field=field, says=(says,))
    if field != "key":
        assert_problem(await api.client.get(f"/v1/incidents/{body['key']}"), 404)  # nothing was opened


async def test_details_of_exactly_64_kib_are_taken(api: Api) -> None:
    key = unique_key("api-64k")
    padding = MAX_DETAILS_BYTES - len(json.dumps({"log": ""}).encode())
    answer = await api.client.post("/v1/incidents", json=new_incident(key, details={"log": "x" * padding}))
    assert assert_status_json(answer, 201)["key"] == key


FORGED_STATE = {
    "priority": "P2", "state": "acknowledged", "tier": 1, "round": 0, "timeline": [], "paged_people": [],
    "acknowledged_by": "mallory", "snapshot": {"policy": {"policy": "payments"}, "people": {"mallory": {"webhook": "http://evil.example"}}},
}
"""A hand-made incident state, as an attacker would send one: no owners, no page, its own addresses."""


@pytest.mark.parametrize(
    ("internal", "value"),
    [("carried", FORGED_STATE), ("history_limit", 10), ("baseline", "baseline-1"), ("request_id", "forged-request")],
)
async def test_the_workflows_own_fields_are_no_part_of_the_public_body(api: Api, internal: str, value: Any) -> None:
    key = unique_key("api-internal")
    answer = await api.client.post("/v1/incidents", json=new_incident(key) | {internal: value})
    body = assert_problem(answer, 422, field=internal, says=("Extra inputs are not permitted",))
    assert [error["field"] for error in body["errors"]] == [internal]
    assert_problem(await api.client.get(f"/v1/incidents/{key}"), 404)  # nothing was opened

    every = new_incident(key) | {"carried": FORGED_STATE, "history_limit": 10, "baseline": "baseline-1", "request_id": "x"}
    body = assert_problem(await api.client.post("/v1/incidents", json=every), 422)
    assert sorted(error["field"] for error in body["errors"]) == ["baseline", "carried", "history_limit", "request_id"]


async def test_the_published_schema_shows_the_public_model_as_strict_as_its_validation(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]

    def body_of(path: str) -> dict[str, Any]:
        ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]

    incident = body_of("/v1/incidents")
    assert set(incident["properties"]) == {"policy", "key", "priority", "summary", "details", "reporter"}
    assert incident["additionalProperties"] is False
    assert set(incident["required"]) == {"policy", "key", "priority", "summary"}
    assert {"P1", "P2", "P3", "P4", "P5", "critical"} <= set(incident["properties"]["priority"]["enum"])
    assert incident["properties"]["key"]["maxLength"] == 200 and incident["properties"]["key"]["pattern"].startswith("^")
    assert incident["properties"]["summary"]["maxLength"] == 500
    assert not {"CarriedState", "IncidentRequest", "HTTPValidationError"} & set(schemas), "internal models are not published"

    note = body_of("/v1/incidents/{key}/notes")
    assert set(note["properties"]) == {"by", "note"} and note["properties"]["note"]["maxLength"] == MAX_NOTE
    assert body_of("/v1/incidents/{key}/ack")["properties"]["note"]["anyOf"][0]["maxLength"] == MAX_NOTE
    snooze = body_of("/v1/incidents/{key}/snooze")
    assert set(snooze["properties"]) == {"by", "for"} and re.fullmatch(snooze["properties"]["for"]["pattern"].strip("^$"), "1h30m")
    assert body_of("/v1/incidents/{key}/priority")["properties"]["priority"]["enum"] == incident["properties"]["priority"]["enum"]
    assert schemas["AlertmanagerPayload"]["properties"]["version"]["enum"] == ["4"]
    for path, operations in spec["paths"].items():  # errors are problem documents, as they are sent
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert set(answer["content"]) & {PROBLEM, "text/html"}, f"{method} {path} {status}: {answer}"
                    assert "application/json" not in answer["content"], f"{method} {path} {status}"


@pytest.mark.parametrize(
    "raw",
    [b'{"policy": "payments", "key": "k1",', b"policy=payments&key=k1", b"\xff\xfe not utf-8"],
    ids=["truncated", "form-encoded", "binary"],
)
async def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    answer = await api.client.post("/v1/incidents", content=raw, headers={"content-type": "application/json"})
    body = assert_problem(answer, 400, says=("not valid JSON",))
    assert body["title"] == "Malformed JSON"
    answer = await api.client.post("/v1/incidents/k1/ack", content=raw, headers={"content-type": "application/json"})
    assert_problem(answer, 400)


async def test_responder_bodies_are_checked_before_anything_is_sent(api: Api) -> None:
    key = unique_key("api-bodies")
    assert (await api.client.post("/v1/incidents", json=new_incident(key))).status_code == 201
    cases = [
        ("ack", {}, "by"),
        ("ack", {"by": "   "}, "by"),
        ("resolve", {"by": "erin"}, "resolution"),
        ("escalate", {"by": "erin"}, "reason"),
        ("reassign", {"by": "erin", "reason": "db"}, "policy"),
        ("snooze", {"by": "erin", "for": "a while"}, "for"),
        ("notes", {"by": "erin"}, "note"),
        ("priority", {"by": "erin", "priority": "urgent"}, "priority"),
        ("sla-reason", {"by": "erin"}, "reason"),
    ]
    for action, body, field in cases:
        answer = await api.client.post(f"/v1/incidents/{key}/{action}", json=body)
        assert_problem(answer, 422, field=field)
    status = assert_status_json(await api.client.get(f"/v1/incidents/{key}"))
    assert status["status"] == "triggered" and status["priority"] == "P2" and "noted" not in json_kinds(status)


async def test_unknown_key_is_404_on_every_route(api: Api) -> None:
    key = unique_key("api-nobody")
    assert_problem(await api.client.get(f"/v1/incidents/{key}"), 404, says=(key,))
    actions = {
        "ack": {"by": "erin"},
        "resolve": {"by": "erin", "resolution": "fixed"},
        "escalate": {"by": "erin", "reason": "help"},
        "reassign": {"by": "erin", "policy": "database", "reason": "db"},
        "snooze": {"by": "erin", "for": "1h"},
        "notes": {"by": "erin", "note": "hello"},
        "priority": {"by": "erin", "priority": "P1"},
        "sla-reason": {"by": "erin", "reason": "late"},
        "wait": {"by": "erin", "reason": "asked the customer"},
        "resume": {"by": "erin"},
    }
    for action, body in actions.items():
        assert_problem(await api.client.post(f"/v1/incidents/{key}/{action}", json=body), 404, says=(key,))
    assert_problem(await api.client.get(f"/v1/incidents/{key}/review"), 404, says=(key,))
    assert_problem(await api.client.get("/v1/nothing-here"), 404, says=("/docs",))
    wrong_method = assert_problem(await api.client.delete(f"/v1/incidents/{key}"), 405)
    assert "GET" in wrong_method["detail"]
    assert (await api.client.delete(f"/v1/incidents/{key}")).headers["allow"] == "GET, HEAD"
    assert (await api.client.patch("/v1/incidents")).headers["allow"] == "GET, HEAD, POST", "every method of the path"


async def idle(handle: Any) -> bool:
    """Running, with no workflow task pending or under way."""
    description = await handle.describe()
    return bool(description.status == WorkflowExecutionStatus.RUNNING and not description.raw_description.HasField("pending_workflow_task"))


async def test_maintenance_refusals_name_what_was_refused_and_never_answer_500(time_env: WorkflowEnvironment, api: Api) -> None:
    client = api.client
    for params in ({"by": ""}, {"by": "   "}, {}):  # an empty by was a 500
        assert_problem(await client.delete("/v1/policies/payments/maintenance", params=params), 422, field="query.by")
    with pytest.raises(InvalidRequest, match="--by"):
        await api.escalations.end_maintenance("payments", by="")

    for answer in (
        await client.delete("/v1/policies/paymnts/maintenance", params={"by": "ben"}),
        await client.get("/v1/policies/paymnts/maintenance"),
    ):
        problem = assert_problem(answer, 404, says=("unknown policy 'paymnts'", "did you mean 'payments'"))
        assert problem["title"] == "No such policy"

    problem = assert_problem(
        await client.delete("/v1/policies/payments/maintenance", params={"by": "ben"}),
        409,
        says=("no maintenance window is on for policy 'payments'",),
    )
    assert problem["title"] == "No maintenance window"
    assert (await client.get("/v1/policies/payments/maintenance")).json() is None

    nope = unique_key("nope")
    answer = await client.post(f"/v1/policies/{nope}/maintenance", json={"by": "ben", "for": "1h", "reason": "typo"})
    problem = assert_problem(answer, 422, field="policy", says=(f"unknown policy {nope!r}",))
    assert problem["title"] == "Maintenance window not started"
    # The refused start's workflow waits a minute for a window that will not come: end it now,
    # idle (left on a queue with no worker, its timer would stall the time-skipping server).
    window = time_env.client.get_workflow_handle(maintenance_id(nope))
    await wait_for("the refused window's workflow to go idle", lambda: idle(window))
    await window.terminate("test finished")
    answer = await client.post("/v1/policies/payments/maintenance", json={"by": "ben", "for": "in a while", "reason": "x"})
    assert_problem(answer, 422, field="for", says=("is not a duration",))


# ── responders ───────────────────────────────────────────────────────────────────────────────


async def test_every_responder_route_changes_the_incident_and_answers_with_its_status(
    time_env: WorkflowEnvironment, api: Api
) -> None:
    key = unique_key("api-respond")
    client = api.client
    assert (await client.post("/v1/incidents", json=new_incident(key))).status_code == 201

    noted = assert_status_json(await client.post(f"/v1/incidents/{key}/notes", json={"by": "erin", "note": "Looking at the refund queue"}))
    assert noted["status"] == "triggered"
    assert (last(noted, "noted")["who"], last(noted, "noted")["detail"]) == ("erin", "Looking at the refund queue")

    raised = assert_status_json(await client.post(f"/v1/incidents/{key}/priority", json={"by": "erin", "priority": "critical"}))
    assert raised["priority"] == "P1"
    assert last(raised, "priority_changed")["detail"].startswith("P2 → P1")
    assert_problem(
        await client.post(f"/v1/incidents/{key}/priority", json={"by": "erin", "priority": "P1"}), 409, says=("already P1",)
    )

    up = assert_status_json(await client.post(f"/v1/incidents/{key}/escalate", json={"by": "erin", "reason": "needs engineering"}))
    assert (up["status"], up["tier"], up["tier_name"], sorted(up["owners"])) == (
        "triggered", 2, "L2 payments engineering", ["alice", "bob"]
    )
    assert last(up, "escalated")["who"] == "erin"

    acked = assert_status_json(await client.post(f"/v1/incidents/{key}/ack", json={"by": "alice", "note": "on it"}))
    assert (acked["status"], acked["acknowledged_by"], acked["owners"]) == ("acknowledged", "alice", ["alice"])
    assert_problem(
        await client.post(f"/v1/incidents/{key}/ack", json={"by": "bob"}), 409, says=("already acknowledged by alice",)
    )

    snoozed = assert_status_json(await client.post(f"/v1/incidents/{key}/snooze", json={"by": "alice", "for": "2h"}))
    assert snoozed["status"] == "snoozed"
    until = datetime.fromisoformat(snoozed["snoozed_until"])
    assert timedelta(hours=1, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=2)
    assert_problem(
        await client.post(f"/v1/incidents/{key}/snooze", json={"by": "alice", "for": "90d"}), 409, says=("cannot snooze for",)
    )

    assert_problem(
        await client.post(f"/v1/incidents/{key}/reassign", json={"by": "alice", "policy": "databse", "reason": "db"}),
        409,
        says=("did you mean 'database'",),
    )
    moved = assert_status_json(
        await client.post(f"/v1/incidents/{key}/reassign", json={"by": "alice", "policy": "database", "reason": "it is the database"})
    )
    assert (moved["policy"], moved["status"], moved["tier"], moved["tier_name"], sorted(moved["owners"])) == (
        "database", "triggered", 1, "DB on-call", ["ivan", "judy"]
    )

    assert_problem(
        await client.post(f"/v1/incidents/{key}/sla-reason", json={"by": "ivan", "reason": "late"}),
        409,
        says=("has not breached its resolution SLA",),
    )

    resolved = assert_status_json(
        await client.post(f"/v1/incidents/{key}/resolve", json={"by": "ivan", "resolution": "Vacuumed the refunds table"})
    )
    assert (resolved["status"], resolved["resolved_by"], resolved["resolution"]) == ("resolved", "ivan", "Vacuumed the refunds table")

    # An action the incident rejects: 409 with the workflow's own reason (while it closes, and after).
    refused = [("ack", {"by": "judy"}), ("notes", {"by": "judy", "note": "late"}), ("resolve", {"by": "judy", "resolution": "again"})]
    for action, body in refused:
        answer = await client.post(f"/v1/incidents/{key}/{action}", json=body)
        assert_problem(answer, 409, says=(f"incident {key} is already resolved (by ivan",))
    await wait_closed(time_env, key)
    problem = assert_problem(await client.post(f"/v1/incidents/{key}/ack", json={"by": "judy"}), 409)
    assert problem["detail"].startswith(f"incident {key} is already resolved (by ivan at ")
    assert problem["detail"].endswith("'Vacuumed the refunds table'): it cannot be acknowledged"), problem["detail"]
    final = assert_status_json(await client.get(f"/v1/incidents/{key}"))
    assert final["status"] == "resolved"
    for kind in ("triggered", "noted", "priority_changed", "escalated", "acknowledged", "snoozed", "reassigned", "resolved"):
        assert kind in json_kinds(final), kind

    review = await client.get(f"/v1/incidents/{key}/review")
    assert review.status_code == 200, review.text
    assert review.headers["content-type"].startswith("application/json")
    report = review.json()
    assert (report["key"], report["status"], report["resolved_by"]) == (key, "resolved", "ivan")
    assert [snapshot["policy"]["policy"] for snapshot in report["policies"]] == ["payments", "database"]
    assert report["replay"]["verified"], report["replay"]
    assert report["escalations"] >= 1

    page = await client.get(f"/v1/incidents/{key}/review", headers={"accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.lstrip().lower().startswith("<!doctype html") and key in page.text
    markdown = await client.get(f"/v1/incidents/{key}/review", params={"format": "md"})
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    assert key in markdown.text
    assert_problem(await client.get(f"/v1/incidents/{key}/review", params={"format": "pdf"}), 422, field="query.format")
    await save_history(time_env.client, key, "api_responder_routes")


async def test_wait_on_the_customer_then_resume(api: Api) -> None:
    key = unique_key("api-wait")
    client = api.client
    assert (await client.post("/v1/incidents", json=new_incident(key))).status_code == 201
    waiting = assert_status_json(
        await client.post(f"/v1/incidents/{key}/wait", json={"by": "erin", "reason": "Asked the customer for the refund ids"})
    )
    assert waiting["status"] == "waiting"
    assert waiting["next_escalation_at"] is None
    assert_problem(
        await client.post(f"/v1/incidents/{key}/wait", json={"by": "erin", "reason": "again"}),
        409,
        says=("already waiting on the customer",),
    )
    assert_problem(await client.post(f"/v1/incidents/{key}/wait", json={"by": "erin"}), 422, field="reason")
    resumed = assert_status_json(await client.post(f"/v1/incidents/{key}/resume", json={"by": "erin", "note": "Ids received"}))
    assert resumed["status"] == "triggered"
    assert resumed["next_escalation_at"] is not None
    assert_problem(
        await client.post(f"/v1/incidents/{key}/resume", json={"by": "erin"}), 409, says=("not waiting on the customer",)
    )


async def test_sla_reason_after_a_breach(time_env: WorkflowEnvironment, api: Api) -> None:
    key = unique_key("api-sla")
    client = api.client
    assert (await client.post("/v1/incidents", json=new_incident(key, priority="P1"))).status_code == 201
    assert (await client.post(f"/v1/incidents/{key}/ack", json={"by": "erin"})).status_code == 200
    await time_env.sleep(timedelta(hours=4, minutes=1))  # past the 4h resolution SLA of P1
    breached = assert_status_json(await client.get(f"/v1/incidents/{key}"))
    assert breached["sla_breached"] and "sla_breached" in json_kinds(breached)
    explained = assert_status_json(
        await client.post(f"/v1/incidents/{key}/sla-reason", json={"by": "dana", "reason": "Waiting on the card network"})
    )
    assert explained["sla_reason"] == "Waiting on the card network"
    assert (last(explained, "sla_reason")["who"], last(explained, "sla_reason")["detail"]) == ("dana", "Waiting on the card network")


# ── docs ─────────────────────────────────────────────────────────────────────────────────────


async def test_docs_and_openapi_describe_every_route(api: Api) -> None:
    docs = await api.client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text.lower()
    spec = (await api.client.get("/openapi.json")).json()
    routes = {(path, method) for path, item in spec["paths"].items() for method in item}
    expected = {("/v1/incidents", "post"), ("/v1/incidents", "get"), ("/v1/incidents/{key}", "get"), ("/v1/incidents/{key}/review", "get"),
                ("/v1/integrations/alertmanager", "post"), ("/v1/links/{token}", "get"), ("/v1/links/{token}", "post")}
    actions = ("ack", "resolve", "escalate", "reassign", "snooze", "notes", "priority", "sla-reason", "wait", "resume")
    expected |= {(f"/v1/incidents/{{key}}/{action}", "post") for action in actions}
    assert expected <= routes, f"missing from the OpenAPI document: {expected - routes}"


# ── the bearer token ─────────────────────────────────────────────────────────────────────────


async def test_bearer_token_is_required_when_set_and_compared_in_constant_time(
    time_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module the API's check calls
    settings = make_settings(api_token=TOKEN)
    key = unique_key("api-auth")
    async with worker(time_env, settings) as escalations, served(settings, escalations) as base:
        async with http_client(base) as anonymous:
            for headers in (
                {},
                {"authorization": "Bearer wrong-token"},
                {"authorization": f"Bearer {TOKEN[:-1]}"},
                {"authorization": f"Bearer {TOKEN}x"},
                {"authorization": f"Basic {TOKEN}"},
                {"authorization": TOKEN},
            ):
                for answer in (
                    await anonymous.post("/v1/incidents", json=new_incident(key), headers=headers),
                    await anonymous.get(f"/v1/incidents/{key}", headers=headers),
                    await anonymous.get("/v1/incidents", headers=headers),
                    await anonymous.post(f"/v1/incidents/{key}/ack", json={"by": "erin"}, headers=headers),
                    await anonymous.get(f"/v1/incidents/{key}/review", headers=headers),
                    await anonymous.post("/v1/integrations/alertmanager", json={"version": "4", "alerts": []}, headers=headers),
                ):
                    assert_problem(answer, 401, says=("Authorization: Bearer",))
                    assert answer.headers["www-authenticate"].startswith("Bearer")
            assert (await anonymous.get("/healthz")).status_code == 200
            assert (await anonymous.get("/docs")).status_code == 200
        assert any(b == TOKEN.encode() and a == b"wrong-token" for a, b in compared), "the token is compared with hmac.compare_digest"

        async with http_client(base, authorization=f"Bearer {TOKEN}") as client:
            assert_status_json(await client.post("/v1/incidents", json=new_incident(key)), 201)
            assert_status_json(await client.get(f"/v1/incidents/{key}"))
            async with http_client(base, authorization=f"bearer  {TOKEN}") as relaxed:
                assert_status_json(await relaxed.get(f"/v1/incidents/{key}"))
            assert_status_json(await client.post(f"/v1/incidents/{key}/ack", json={"by": "erin"}))
        assert (await escalations.status(key)).acknowledged_by == "erin"


# ── one-click links ──────────────────────────────────────────────────────────────────────────


async def test_a_page_carries_links_that_confirm_then_acknowledge_and_resolve(time_env: WorkflowEnvironment) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(link_secret=LINK_SECRET, api_url=base, api_token=TOKEN)
    key = unique_key("api-link")
    async with worker(time_env, settings) as escalations, served(settings, escalations, port):
        async with http_client(base, authorization=f"Bearer {TOKEN}") as api, http_client(base) as browser:
            with capture_logs() as logs:
                assert_status_json(await api.post("/v1/incidents", json=new_incident(key)), 201)

                async def erin_paged() -> Any:
                    return next(
                        (e for e in logs if e.get("event") == "notification" and e.get("incident") == key and e.get("who") == "erin"),
                        None,
                    )

                sent = await wait_for("erin's page in the worker log", erin_paged, timeout=15)
            # The page erin was actually sent carries both links, made for her, on this API.
            sent_links = links_in(sent["body"])
            assert set(sent_links) == {"ack", "resolve"}, sent["body"]
            assert all(link.startswith(f"{base}/v1/links/") for link in sent_links.values())

            # The same from the activities' own rendering of a page to erin.
            status = assert_status_json(await api.get(f"/v1/incidents/{key}"))
            note = Notification(
                idempotency_key=f"{key}/1/erin/email", kind="page", incident_key=key, policy="payments", priority="P2",
                summary=status["summary"], person="erin", channel="email", address="erin@example.com", tier=1,
                tier_name="L1 support", tier_count=3,
            )
            message = Templates().render(note, **EscalationActivities(settings).links_for(note))
            links = links_in(message.text)
            assert set(links) == {"ack", "resolve"}, message.text
            assert links["ack"] in message.html

            # Opening the link (as a mail scanner would) only asks to confirm: no token needed, nothing done.
            page = await browser.get(links["ack"])
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert f"Acknowledge incident <b>{key}</b> as <b>erin</b>?" in page.text
            assert '<form method="post">' in page.text
            assert (await escalations.status(key)).status == "triggered"

            # A changed link is refused: another person, another incident, a cut signature.
            payload, signature = links["ack"].rsplit("/", 1)[1].split(".")
            forged = make_token("another-secret", key, "ack", "erin", timedelta(hours=1))
            changed = (f"{payload}.{signature[:-2]}", f"{payload[:-2]}.{signature}", f"{payload}x.{signature}", payload, "garbage")
            for token in (forged, *changed):
                for answer in (await browser.get(f"{base}/v1/links/{token}"), await browser.post(f"{base}/v1/links/{token}")):
                    assert_problem(answer, 403, says=("this link is not valid",))
            assert (await escalations.status(key)).status == "triggered"

            done = await browser.post(links["ack"])
            assert done.status_code == 200, done.text
            assert f"Incident <b>{key}</b> is acknowledged by erin." in done.text
            acked = await escalations.status(key)
            assert (acked.status, acked.acknowledged_by) == ("acknowledged", "erin")
            assert acked.timeline[-1].detail == "acknowledged from a link"

            again = await browser.post(links["ack"])
            assert again.status_code == 409 and "already acknowledged by erin" in again.text

            resolve_page = await browser.get(links["resolve"])
            assert resolve_page.status_code == 200 and '<textarea name="resolution"' in resolve_page.text
            assert (await escalations.status(key)).status == "acknowledged"
            resolved = await browser.post(links["resolve"], data={"resolution": "Restarted the refund worker"})
            assert resolved.status_code == 200 and "is resolved by erin" in resolved.text, resolved.text
            final = await escalations.status(key)
            assert (final.status, final.resolved_by, final.resolution) == ("resolved", "erin", "Restarted the refund worker")

            late = await browser.post(links["resolve"], data={"resolution": "again"})
            assert late.status_code == 409 and "already resolved" in late.text
    await wait_closed(time_env, key)
    await save_history(time_env.client, key, "api_link_ack_then_resolve")


async def test_an_expired_link_is_refused_with_410(time_env: WorkflowEnvironment) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(link_secret=LINK_SECRET, api_url=base)
    key = unique_key("api-oldlink")
    async with worker(time_env, settings) as escalations, served(settings, escalations, port):
        async with http_client(base) as browser:
            assert (await browser.post("/v1/incidents", json=new_incident(key))).status_code == 201
            yesterday = datetime.now(UTC) - timedelta(days=1)
            for token in (
                make_token(LINK_SECRET, key, "ack", "erin", ttl=timedelta(hours=23), now=yesterday),
                make_token(LINK_SECRET, key, "resolve", "erin", ttl=timedelta(seconds=-1)),
            ):
                url = link_url(base, token)
                for answer in (await browser.get(url), await browser.post(url, data={"resolution": "x"})):
                    assert_problem(answer, 410, says=("this link expired at", "use the CLI or the API instead"))
                    assert answer.json()["title"] == "Link expired"
            assert (await escalations.status(key)).status == "triggered"
            # A fresh link for the same incident still works: the refusal was about age alone.
            fresh = make_token(LINK_SECRET, key, "ack", "frank", ttl=timedelta(minutes=5))
            assert (await browser.post(link_url(base, fresh))).status_code == 200
        assert (await escalations.status(key)).acknowledged_by == "frank"


async def test_links_are_off_without_a_link_secret(api: Api) -> None:
    token = make_token(LINK_SECRET, "whatever", "ack", "erin", ttl=timedelta(hours=1))
    assert_problem(await api.client.get(f"/v1/links/{token}"), 404, says=("ESCALATE_LINK_SECRET",))
    assert_problem(await api.client.post(f"/v1/links/{token}"), 404, says=("ESCALATE_LINK_SECRET",))
    note = Notification(
        idempotency_key="k/1/erin/email", kind="page", incident_key="k", policy="payments", priority="P2", summary="s",
        person="erin", channel="email", address="erin@example.com", tier=1, tier_name="L1 support", tier_count=3,
    )
    assert EscalationActivities(api.settings).links_for(note) == {}

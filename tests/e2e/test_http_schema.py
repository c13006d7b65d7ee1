"""The HTTP API driven through its own OpenAPI schema (schemathesis), the way a client generated
from the published schema would call it.

Every operation of the document the app serves gets generated requests, valid and invalid by
that document, against the real app served by uvicorn with the bearer token on, a real worker
and the real dev server behind it, an open incident and real policies to reach past the 404s.
Each answer must:

- never be a 5xx;
- have a status code, a content type, headers and a body that the document declares for it;
- refuse what the document does not allow (a 4xx);
- never refuse what the document allows as malformed (no 400, no 422 "Invalid request"): a
  refusal of a valid request comes from the incident, the policy or the window it is about
  (an unknown policy, an incident already acknowledged);
- and without the token, be a 401 (schemathesis' ``ignored_auth``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance
from temporalio.testing import WorkflowEnvironment

from starter.api import Escalations
from starter.web import create_app
from tests.support.http import TOKEN, served
from tests.support.temporal import make_settings, module_dev_env, needs_temporal
from worker import create_worker

pytestmark = pytest.mark.asyncio(loop_scope="session")

Case = schemathesis.Case[Any]

EXAMPLES = int(os.environ.get("ESCALATE_SCHEMA_EXAMPLES", "20"))
"""Generated requests per operation, for valid and for invalid input each (23 operations)."""

dev_env = module_dev_env
"""The real dev server (its visibility store answers the list route), for the module."""


# ── the run ──────────────────────────────────────────────────────────────────────────────────


@dataclass
class Fuzz:
    base: str
    session: requests.Session
    shared: str = ""
    """An open incident the generated valid requests act on, half of the time."""
    answers: dict[tuple[str, str], Counter[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def open_shared(self) -> None:
        self.shared = f"schema-{uuid.uuid4().hex[:8]}"
        body = {"policy": "payments", "key": self.shared, "priority": "P2", "summary": "Refunds stuck"}
        answer = self.session.post(f"{self.base}/v1/incidents", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 201, answer.text

    def aim(self, case: Case) -> None:
        """A valid request, pointed at real things: the open incident, a policy that exists."""
        if "key" in (case.path_parameters or {}):
            case.path_parameters["key"] = self.shared
        if "policy" in (case.path_parameters or {}):
            case.path_parameters["policy"] = "payments"
        if case.operation.label == "POST /v1/incidents" and isinstance(case.body, dict):
            case.body.update(policy="payments", key=f"schema-new-{uuid.uuid4().hex[:8]}")  # P4 and P5: refused by it

    def after(self, case: Case, response: schemathesis.Response) -> None:
        """Should a generated request have resolved the open incident, open another."""
        acted = case.method == "POST" and (case.path_parameters or {}).get("key") == self.shared
        if acted and response.status_code == 200 and response.json().get("status") == "resolved":
            self.open_shared()


def never_refused_as_malformed(ctx: CheckContext, response: Any, case: Case) -> bool | None:
    """What the schema allows is never refused as malformed: a refusal of valid input comes from
    what it is about (409, or a 422 titled for the incident, policy or window that refused)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code == 400 or (response.status_code == 422 and response.json().get("title") == "Invalid request"):
        raise AssertionError(f"a request valid by the schema was refused as malformed ({response.status_code}): {response.text[:800]}")
    return None


def run_operation(fuzz: Fuzz, operation: Any, mode: GenerationMode) -> None:
    answers = fuzz.answers.setdefault((operation.label, mode.value), Counter())
    positive = mode == GenerationMode.POSITIVE

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), aimed=st.booleans())
    def check(case: Case, aimed: bool) -> None:
        if positive and aimed:
            fuzz.aim(case)
        response = case.call(base_url=fuzz.base, session=fuzz.session)
        answers[response.status_code] += 1
        case.validate_response(
            response,
            excluded_checks=[positive_data_acceptance],
            additional_checks=[never_refused_as_malformed],
            transport_kwargs={"base_url": fuzz.base, "session": fuzz.session},
        )
        fuzz.after(case, response)

    try:
        check()
    except (Exception, BaseExceptionGroup) as err:  # every operation runs; the failures are reported together
        fuzz.failures.append(f"{operation.label} ({mode.value}):\n{err}")


def negatable(operation: dict[str, Any]) -> bool:
    """Whether a request to the operation can be invalid at all (GET /healthz cannot)."""
    parameters = operation.get("parameters", [])
    constrained = any(set(parameter["schema"]) - {"type", "title", "description", "examples"} for parameter in parameters)
    return bool(operation.get("security") or operation.get("requestBody") or constrained or any(p["in"] != "path" for p in parameters))


def run_all(document: dict[str, Any], base: str) -> Fuzz:
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"bearer": {"bearer": TOKEN}}}})
    schema = schemathesis.openapi.from_dict(document, config=config)
    session = requests.Session()
    session.trust_env = False  # loopback, whatever proxy the environment names
    fuzz = Fuzz(base, session)
    fuzz.open_shared()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        run_operation(fuzz, operation, GenerationMode.POSITIVE)
        if negatable(document["paths"][operation.path][operation.method.lower()]):
            run_operation(fuzz, operation, GenerationMode.NEGATIVE)
    return fuzz


# ── the test ─────────────────────────────────────────────────────────────────────────────────


@needs_temporal
async def test_every_operation_answers_as_the_published_schema_says(dev_env: WorkflowEnvironment) -> None:
    settings_ = make_settings()
    app_settings = settings_.model_copy(
        update={
            "api_token": SecretStr(TOKEN),
            "link_secret": SecretStr("schema-link-secret"),
            "encryption_key": SecretStr(base64.b64encode(os.urandom(32)).decode()),  # the codec endpoint is on
        }
    )
    escalations = Escalations(dev_env.client, settings_.task_queue)
    document = create_app(app_settings, escalations).openapi()
    began = time.monotonic()
    async with create_worker(dev_env.client, settings_), served(app_settings, escalations) as base:
        fuzz = await asyncio.to_thread(run_all, document, base)
    took = time.monotonic() - began

    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert len(operations) >= 23, sorted(operations)
    assert {label for label, _ in fuzz.answers} == {f"{method} {path}" for method, path in operations}, "every operation was driven"
    summary = "\n".join(f"  {label} [{mode}]: {dict(sorted(codes.items()))}" for (label, mode), codes in sorted(fuzz.answers.items()))
    print(f"\n[schema] {sum(sum(c.values()) for c in fuzz.answers.values())} requests in {took:.0f}s\n{summary}")
    assert not fuzz.failures, "\n\n".join(fuzz.failures) + f"\n\nanswers:\n{summary}"

    # The run reached past the refusals: incidents opened, the open one acted on, bodies refused.
    assert fuzz.answers[("POST /v1/incidents", "positive")][201] > 0, summary
    assert fuzz.answers[("POST /v1/incidents/{key}/notes", "positive")][200] > 0, summary
    assert fuzz.answers[("GET /v1/incidents", "positive")][200] > 0, summary
    for (label, mode), codes in fuzz.answers.items():
        assert not any(code >= 500 for code in codes), f"{label} [{mode}]: {codes}"
        if mode == "negative" and label.startswith("POST /v1/incidents"):
            assert codes[422] + codes[400] > 0, f"{label}: no invalid body was refused as such: {codes}"

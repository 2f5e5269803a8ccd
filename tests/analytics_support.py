"""The analytics service as the tests run it: its settings and the platform key they configure."""

from __future__ import annotations

from infrastructure import Endpoints
from pydantic import SecretStr
from support import own_groups

from services.analytics.settings import AnalyticsSettings

# The analytics platform key the tests configure (LOYALTY_ANALYTICS_API_KEY).
ANALYTICS_KEY = "analytics-platform-key-for-tests"


def analytics_settings(infrastructure: Endpoints) -> AnalyticsSettings:
    return AnalyticsSettings(
        consumer_group_prefix=own_groups(),
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(infrastructure.database_url),
        log_format="console",
        batch_timeout_ms=20,
        outbox_idle_poll_s=0.05,
        analytics_api_key=SecretStr(ANALYTICS_KEY),
    )

"""The services this package runs, by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faststream.asgi import AsgiFastStream

from services.analytics.bootstrap import bootstrap as analytics_bootstrap
from services.analytics.bootstrap import definition as analytics_definition
from services.analytics.settings import AnalyticsSettings
from services.console.bootstrap import bootstrap as console_bootstrap
from services.console.bootstrap import definition as console_definition
from services.console.settings import ConsoleSettings
from services.earn.bootstrap import bootstrap as earn_bootstrap
from services.earn.bootstrap import definition as earn_definition
from services.earn.settings import EarnSettings
from services.notify.bootstrap import bootstrap as notify_bootstrap
from services.notify.bootstrap import definition as notify_definition
from services.notify.settings import NotifySettings
from services.shops.bootstrap import bootstrap as shops_bootstrap
from services.shops.bootstrap import definition as shops_definition
from services.shops.settings import ShopsSettings
from services.tiering.bootstrap import bootstrap as tiering_bootstrap
from services.tiering.bootstrap import definition as tiering_definition
from services.tiering.settings import TieringSettings
from shared.runtime import Runtime, ServiceDefinition
from shared.settings import CommonSettings


@dataclass(frozen=True)
class ServiceEntry:
    settings: Callable[[], CommonSettings]
    definition: Callable[[CommonSettings], ServiceDefinition]
    bootstrap: Callable[[CommonSettings], tuple[AsgiFastStream, Runtime]]


SERVICES: dict[str, ServiceEntry] = {
    "earn": ServiceEntry(EarnSettings, earn_definition, earn_bootstrap),  # type: ignore[arg-type]
    "tiering": ServiceEntry(TieringSettings, tiering_definition, tiering_bootstrap),  # type: ignore[arg-type]
    "notify": ServiceEntry(NotifySettings, notify_definition, notify_bootstrap),  # type: ignore[arg-type]
    "analytics": ServiceEntry(AnalyticsSettings, analytics_definition, analytics_bootstrap),  # type: ignore[arg-type]
    "shops": ServiceEntry(ShopsSettings, shops_definition, shops_bootstrap),  # type: ignore[arg-type]
    "console": ServiceEntry(ConsoleSettings, console_definition, console_bootstrap),  # type: ignore[arg-type]
}

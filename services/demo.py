"""`loyalty demo`: every service as a process plus two simulated shops, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

from services.demo_shops import ACTOR, DEMO_SHOPS, DemoKeys, open_shops
from services.demo_storefront import Storefront, StorefrontShop, demo_secrets, storefront_app
from services.notify.settings import NotifySettings
from services.processes import ServiceDidNotStart, ServiceProcess, free_port
from services.registry import SERVICES
from services.shops.commands import in_shops
from services.shops.handlers import Change
from services.shops.settings import ShopsSettings
from services.simulate import run_simulation
from shared.clock import SystemClock
from shared.kafka_connection import KafkaConnection
from shared.logs import configure_logging
from shared.settings import CommonSettings

READY_TIMEOUT_S = 90.0
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MAIL_DIR = Path(".local") / "demo-mail"
CUSTOMERS = 50  # simulated, the same at each shop
STOREFRONT_PORT = 8010


def run_demo(*, rate: float, base_port: int | None = None) -> int:
    """Start the services, feed them until Ctrl-C or SIGTERM, then stop them in order.

    Returns 0 after a clean run, 1 when a service failed to start or died on the way.
    """
    settings = CommonSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="demo")
    # SIGTERM (from a supervisor or `timeout`) stops the demo the way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    # notify signs unsubscribe links; a demo without a configured secret gets a throwaway one.
    os.environ.setdefault("LOYALTY_UNSUBSCRIBE_SECRET", secrets.token_urlsafe(32))
    # ...and messages only the simulated customers ("sim-..."), whoever else uses the database.
    os.environ.setdefault("LOYALTY_WORKER_SCOPE", "sim-")
    # ...at any hour: with the default quiet hours (21:00-08:00 in each customer's zone) a demo
    # started in the evening or early morning would show no email until 08:00. (The demo's
    # shops leave their quiet hours to the deployment: demo_shops.py.)
    os.environ.setdefault("LOYALTY_QUIET_HOURS_START", "00:00")
    os.environ.setdefault("LOYALTY_QUIET_HOURS_END", "00:00")
    # The shops and their programmes are on loyalty.shops before any service starts.
    shops = ShopsSettings()
    change = Change(actor=ACTOR, now=SystemClock().now(), lead=shops.effective_lead)
    keys = asyncio.run(in_shops(shops, open_shops, change, announces=True))
    # The console reaches the other services with this run's platform key, where they run.
    os.environ.setdefault("LOYALTY_CONSOLE_API_KEY", keys.platform)
    if base_port:
        for n, name in enumerate(SERVICES):
            if name != "console":
                os.environ[f"LOYALTY_CONSOLE_{name.upper()}_URL"] = (
                    f"http://127.0.0.1:{base_port + n}"
                )
            else:  # the invitations' links (notify mails only links to this address)
                os.environ.setdefault(
                    "LOYALTY_CONSOLE_PUBLIC_URL", f"http://127.0.0.1:{base_port + n}"
                )
    sink = _mail_sink(NotifySettings())
    children = {
        name: ServiceProcess(
            name,
            port=base_port + n if base_port else entry.settings().http_port,
            own_session=True,
        ).launch()
        for n, (name, entry) in enumerate(SERVICES.items())
    }
    storefront: Storefront | None = None
    failed = False  # a Ctrl-C, even during start-up, is a clean stop; a dead service is not
    try:
        if _wait_until_ready(children):
            _until_in_force(keys)
            run_id = f"{int(time.time()):x}"
            storefront = _storefront(children["console"].url, run_id, base_port)
            _announce(
                children, keys, run_id, sink, _console_account(), storefront_url=storefront.url
            )
            kafka = KafkaConnection.from_settings(settings)
            failed = not asyncio.run(_feed(kafka, rate, children, run_id))
        else:
            failed = True
    except KeyboardInterrupt:
        pass
    finally:
        if storefront is not None:
            storefront.stop()
        for child in children.values():
            child.stop(timeout=45)
        if sink is not None:
            sink.stop()
            print(f"Emails the demo sent: {sink.count()} in {sink.directory}", flush=True)
    return 1 if failed else 0


DEMO_ACCOUNT = "demo@loyalty.example"


class MailSink:
    """A local SMTP server keeping every message it accepts as a file of a Maildir."""

    def __init__(self, host: str, port: int, directory: Path) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Mailbox

        self.directory = directory
        directory.parent.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(Mailbox(directory), hostname=host, port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def count(self) -> int:
        return sum(1 for _ in (self.directory / "new").iterdir())


def _mail_sink(settings: NotifySettings) -> MailSink | None:
    """Where the demo's emails go: a sink on notify's SMTP address when that is this machine
    and nothing answers there (`make run` has no mail server of its own); otherwise the server
    that answers. Without a sink notify would retry every email until it gives up."""
    host, port = settings.smtp_host, settings.smtp_port
    if host not in LOOPBACK or _answers(host, port):
        return None
    try:
        sink = MailSink(host, port, Path(os.environ.get("LOYALTY_DEMO_MAIL_DIR", MAIL_DIR)))
    except ImportError:  # aiosmtpd comes with the development tools (make setup)
        print(f"nothing answers on {host}:{port}: notify will retry its emails", file=sys.stderr)
        return None
    sink.start()
    print(f"Emails go to {sink.directory} (a local SMTP server on {host}:{port})", flush=True)
    return sink


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


async def _feed(
    kafka: KafkaConnection, rate: float, children: dict[str, ServiceProcess], run_id: str
) -> bool:
    """Run the shop until Ctrl-C or SIGTERM; False as soon as a service dies."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Inside the loop a signal only stops the shop: a KeyboardInterrupt here would make
    # asyncio.run cancel the Kafka clients' own tasks before the shop could close them.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    shops = [shop.sample for shop in DEMO_SHOPS]
    shop = asyncio.create_task(
        run_simulation(
            kafka, customers=CUSTOMERS, rate=rate, duration=0, shops=shops, run_id=run_id
        )
    )
    healthy = True
    while not shop.done() and not stop.is_set():
        dead = [name for name, child in children.items() if not child.running()]
        if dead:
            print(f"service(s) stopped unexpectedly: {', '.join(dead)}", file=sys.stderr)
            healthy = False
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    shop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await shop
    return healthy


def _announce(
    children: dict[str, ServiceProcess],
    keys: DemoKeys,
    run_id: str,
    sink: MailSink | None,
    console_password: str,
    *,
    storefront_url: str,
) -> None:
    print(
        "\nAll services are up:",
        *(
            f"  {name:8} {child.url}/healthz  /readyz  /metrics  /docs/asyncapi"
            for name, child in children.items()
        ),
        f"\nConsole  {children['console'].url}/sign-in   {DEMO_ACCOUNT} / {console_password}"
        " (owner of both shops; a new password each run)",
        "Storefront  "
        + "   ".join(f"{storefront_url}/{shop.shop_id}" for shop in DEMO_SHOPS)
        + "   (the member widget; ?customer=<id> for another customer)",
        *_shop_lines(children["earn"].url, keys, run_id, sink),
        _quiet_hours_note(NotifySettings()),
        "The simulated shops start now; Ctrl-C stops everything.\n",
        sep="\n",
        flush=True,
    )


def _console_account() -> str:
    """The demo's console account, owner of both shops: made the first time, given a new
    password each run (earlier runs' sessions end). Its password."""
    from services.console.commands import create_account, new_password
    from services.console.domain.roles import Role
    from services.console.settings import ConsoleSettings

    password = new_password()
    asyncio.run(
        create_account(
            ConsoleSettings(),
            email=DEMO_ACCOUNT,
            name="Demo",
            password=password,
            operator=False,
            shops={shop.shop_id: Role.OWNER for shop in DEMO_SHOPS},
            reset=True,
        )
    )
    return password


def _storefront(console_url: str, run_id: str, base_port: int | None) -> Storefront:
    """The demo storefront on 8010 (any free port beside a --base-port run), its secrets made."""
    port = free_port() if base_port else STOREFRONT_PORT
    url = f"http://127.0.0.1:{port}"
    settings = CommonSettings()
    made = asyncio.run(
        demo_secrets(
            settings.database_url.get_secret_value(),
            [shop.shop_id for shop in DEMO_SHOPS],
            origin=url,
            now=SystemClock().now(),
        )
    )
    shops = {
        shop.shop_id: StorefrontShop(
            shop.shop_id, shop.messages()["sender_name"], shop.sample.locale[:2], made[shop.shop_id]
        )
        for shop in DEMO_SHOPS
    }
    storefront = Storefront(storefront_app(console_url, shops, run_id_customer(run_id, 0)), port)
    storefront.start()
    return storefront


def _until_in_force(keys: DemoKeys) -> None:
    """Wait, when this run made the shops, until the versions it published are in force: the
    shops' first events then meet the demo's settings (no quiet hours), not the template's."""
    if keys.in_force is None:
        return
    wait = (keys.in_force - SystemClock().now()).total_seconds()
    if wait > 0:
        print(f"The new shops' programmes take effect in {wait:.0f} s: waiting.", flush=True)
        time.sleep(wait)


def _shop_lines(earn: str, keys: DemoKeys, run_id: str, sink: MailSink | None) -> list[str]:
    """The keys made for this run (earlier runs' are revoked), and per shop how to see a
    customer's points and which emails are its own."""
    mail = sink.directory / "new" if sink is not None else "notify's SMTP server"
    lines = [
        f"\nTwo shops, the same customers ({run_id_customer(run_id, 0)} to "
        f"{run_id_customer(run_id, CUSTOMERS - 1)}) at each; keys made for this run:",
        f"  platform key (every shop; name one with -H 'X-Shop-Id: <shop>'): {keys.platform}",
    ]
    for shop in DEMO_SHOPS:
        sender = shop.messages()
        key = keys.shops[shop.shop_id]
        lines += [
            f"  {shop.shop_id} ({shop.sample.currency}), read+redeem key {key}",
            f"    points: curl -H 'X-API-Key: {key}' "
            f"{earn}/v1/customers/{run_id_customer(run_id, 0)}/balance",
            f'    emails: in {mail}, from "{sender["sender_name"]}" <{sender["sender_address"]}>'
            f", written in {shop.sample.locale}",
        ]
    return lines


def run_id_customer(run_id: str, n: int) -> str:
    """The simulated customer `n` of a run (services/simulate.py names them so)."""
    return f"sim-{run_id}-{n:04d}"


def _quiet_hours_note(settings: NotifySettings) -> str:
    start, end = settings.quiet_hours_start, settings.quiet_hours_end
    if start == end:
        return "The demo's shops have no quiet hours: notify messages customers at any hour."
    return (
        f"Quiet hours {start:%H:%M}-{end:%H:%M} in each customer's time zone: "
        f"messages due then wait until {end:%H:%M} there."
    )


def _wait_until_ready(children: dict[str, ServiceProcess]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = set(children)
    try:
        while pending and time.monotonic() < deadline:
            pending -= {name for name in pending if children[name].ready()}
            time.sleep(0.5)
    except ServiceDidNotStart as exc:
        print(exc, file=sys.stderr)
        return False
    if pending:
        print(
            f"not ready after {READY_TIMEOUT_S:.0f}s: {', '.join(sorted(pending))}", file=sys.stderr
        )
    return not pending

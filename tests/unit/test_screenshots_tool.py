"""`make screenshots` finds the demo from what `make run` printed: the console's address, the
demo account and its password, the storefront's address, and the storefront's customer."""

from __future__ import annotations

import httpx
import pytest

from services.console.adapters.widget_settings import WidgetSecret
from services.demo import DEMO_ACCOUNT, _announce
from services.demo_shops import DEMO_SHOPS, DemoKeys
from services.demo_storefront import StorefrontShop, storefront_app
from services.processes import ServiceProcess
from services.registry import SERVICES
from tools.screenshots import STOREFRONT_CUSTOMER, Demo, demo_from_output


def test_the_demo_is_read_from_what_make_run_prints(capsys: pytest.CaptureFixture[str]) -> None:
    children = {name: ServiceProcess(name, port=18001 + n) for n, name in enumerate(SERVICES)}
    keys = DemoKeys("lk_platform", {shop.shop_id: f"lk_{shop.shop_id}" for shop in DEMO_SHOPS})
    password = "Zq3-x_Y0aB1cD2eF3gH4"
    _announce(children, keys, "6a1b2c3d", None, password, storefront_url="http://127.0.0.1:18055")
    printed = capsys.readouterr().out
    assert demo_from_output(printed) == Demo(
        children["console"].url, "http://127.0.0.1:18055", DEMO_ACCOUNT, password
    )


def test_output_without_the_console_line_is_refused() -> None:
    with pytest.raises(ValueError, match="make run"):
        demo_from_output("All services are up:\n  earn http://127.0.0.1:8001/healthz\n")


async def test_the_customer_shown_is_read_from_the_storefront_page() -> None:
    secret = WidgetSecret("vn-fashion", "kdemo", "lws_" + "d" * 43)
    shops = {"vn-fashion": StorefrontShop("vn-fashion", "Thời trang", "vi", secret)}
    app = storefront_app("http://127.0.0.1:8006", shops, "sim-6a1b2c3d-0000")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8010") as client:
        page = await client.get("/vn-fashion")
    found = STOREFRONT_CUSTOMER.search(page.text)
    assert found is not None
    assert found[1] == "sim-6a1b2c3d-0000"

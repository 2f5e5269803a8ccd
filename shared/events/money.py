"""ISO 4217 currencies with their minor units, and money as a decimal amount in one currency."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Annotated, Final, Self

from pydantic import GetCoreSchemaHandler, WithJsonSchema, model_validator
from pydantic_core import core_schema

from shared.events.fields import Contract

__all__ = [
    "CURRENCY_MINOR_UNITS",
    "Currency",
    "Money",
    "NonNegativeDecimal",
    "check_minor_units",
    "fits_minor_units",
    "minor_units",
]


def _codes(units: int, codes: str) -> dict[str, int]:
    return dict.fromkeys(codes.split(), units)


# ISO 4217 list one, edition published 2026-01-01. Codes whose minor unit is "N.A." (precious
# metals, SDR, bond-market units, XSU, XUA, XTS, XXX) are left out: no shop prices goods in them.
CURRENCY_MINOR_UNITS: Final[Mapping[str, int]] = MappingProxyType(
    _codes(0, "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF")
    | _codes(3, "BHD IQD JOD KWD LYD OMR TND")
    | _codes(4, "CLF UYW")
    | _codes(
        2,
        """
        AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
        CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
        GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK
        LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
        NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS
        SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST
        XAD XCD XCG YER ZAR ZMW ZWG
        """,
    )
)


def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit: 2 for USD, 0 for VND and JPY, 3 for KWD."""
    try:
        return CURRENCY_MINOR_UNITS[currency]
    except KeyError:
        msg = "unknown ISO 4217 currency code"
        raise ValueError(msg) from None


_QUANTUM: Final = {code: Decimal(1).scaleb(-units) for code, units in CURRENCY_MINOR_UNITS.items()}


def fits_minor_units(amount: Decimal, currency: str) -> bool:
    """Whether the amount is a whole number of the currency's minor units ("1.50" USD, not "1.505").

    The value counts, not how it is written: "1.500" USD is a whole number of cents.
    """
    try:
        quantum = _QUANTUM[currency]
    except KeyError:
        msg = "unknown ISO 4217 currency code"
        raise ValueError(msg) from None
    try:
        return amount == amount.quantize(quantum)
    except InvalidOperation:  # NaN, infinity, or more digits than the decimal context holds
        return False


def check_minor_units(amount: Decimal, currency: str, *, what: str = "amount") -> None:
    """Raise ValueError naming `what` when the amount is finer than the currency's minor unit."""
    if not fits_minor_units(amount, currency):
        places = minor_units(currency)
        msg = f"{what} has more decimal places than {currency} allows ({places})"
        raise ValueError(msg)


_UNKNOWN_CURRENCY: Final = "must be an active upper-case ISO 4217 currency code such as 'USD'"


class _KnownCurrency:
    """Annotated marker: one of the table's codes, looked up in pydantic-core rather than Python."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: object, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.custom_error_schema(
            core_schema.literal_schema(sorted(CURRENCY_MINOR_UNITS)),
            custom_error_type="currency",
            custom_error_message=_UNKNOWN_CURRENCY,
        )


Currency = Annotated[
    str,
    _KnownCurrency,
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(CURRENCY_MINOR_UNITS),
            "description": "Active ISO 4217 currency code.",
        }
    ),
]

_DECIMAL_TEXT: Final = r"^[0-9]{1,18}(\.[0-9]{1,18})?$"
_DECIMAL_TEXT_RE: Final = re.compile(_DECIMAL_TEXT)


def _python_decimal_input(value: object) -> object:
    # Text handed over from Python (a dict decoded elsewhere) obeys the wire rules; floats never do.
    if isinstance(value, str) and _DECIMAL_TEXT_RE.match(value) is None:
        msg = "must be a non-negative decimal string such as '12.50'"
        raise ValueError(msg)
    if isinstance(value, float | bool):
        msg = "must be a decimal string such as '12.50', not a number"
        raise ValueError(msg)  # noqa: TRY004 - pydantic turns ValueError into a validation error
    return value


def _plain_decimal(value: Decimal) -> str:
    # str(Decimal("1E+3")) is "1E+3", which the wire format refuses: always write plain digits.
    return format(value.copy_abs(), "f")


class _DecimalText:
    """Annotated marker: a non-negative finite Decimal that travels as a decimal string.

    In JSON only a string of digits is accepted: a JSON number goes through a binary float and can
    silently lose cents, and "1e3" or " 12" are not how money is written. The check runs inside
    pydantic-core. Python callers may pass Decimal, int, or text in the wire format.
    """

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: object, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        decimal = core_schema.decimal_schema(ge=Decimal(0), allow_inf_nan=False)
        text = core_schema.custom_error_schema(
            core_schema.str_schema(pattern=_DECIMAL_TEXT),
            custom_error_type="decimal_string",
            custom_error_message="must be a non-negative decimal string such as '12.50'",
        )
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema([text, decimal]),
            python_schema=core_schema.no_info_before_validator_function(
                _python_decimal_input, decimal
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                _plain_decimal, when_used="json"
            ),
        )


NonNegativeDecimal = Annotated[
    Decimal,
    _DecimalText,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _DECIMAL_TEXT,
            "description": "Non-negative decimal number written as a string, such as '12.50'.",
        }
    ),
]


class Money(Contract):
    """A decimal amount in an ISO 4217 currency, never finer than its minor unit."""

    amount: NonNegativeDecimal
    currency: Currency

    @model_validator(mode="after")
    def _fits_currency(self) -> Self:
        # Inlined fits_minor_units: this runs for every amount of every order parsed.
        try:
            fits = self.amount == self.amount.quantize(_QUANTUM[self.currency])
        except InvalidOperation:
            fits = False
        if not fits:
            check_minor_units(self.amount, self.currency)
        return self

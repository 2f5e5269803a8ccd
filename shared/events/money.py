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
    "AMOUNT_DIGITS",
    "CURRENCY_MINOR_UNITS",
    "Amount",
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


def _decimal_text(whole: int, fraction: int) -> str:
    return rf"^[0-9]{{1,{whole}}}(\.[0-9]{{1,{fraction}}})?$"


_DECIMAL_TEXT: Final = _decimal_text(18, 18)
# An amount a shop sends: under a trillion units (12 digits) with at most 8 decimals, ample for
# an order in any currency, and small enough that what is computed from it (line totals, points,
# sums) stays far inside PostgreSQL's bigint and numeric columns.
AMOUNT_DIGITS: Final = 12
_AMOUNT_TEXT: Final = _decimal_text(AMOUNT_DIGITS, 8)


def _python_decimal_input(
    pattern: re.Pattern[str], message: str
) -> core_schema.NoInfoValidatorFunction:
    def check(value: object) -> object:
        # Text handed over from Python (a dict decoded elsewhere) obeys the wire rules; floats
        # never do.
        if isinstance(value, str) and pattern.match(value) is None:
            raise ValueError(message)
        if isinstance(value, float | bool):
            msg = "must be a decimal string such as '12.50', not a number"
            raise ValueError(msg)  # noqa: TRY004 - pydantic turns ValueError into a validation error
        return value

    return check


def _plain_decimal(value: Decimal) -> str:
    # str(Decimal("1E+3")) is "1E+3", which the wire format refuses: always write plain digits.
    return format(value.copy_abs(), "f")


class _DecimalText:
    """Annotated marker: a non-negative finite Decimal that travels as a decimal string.

    In JSON only a string of digits is accepted: a JSON number goes through a binary float and can
    silently lose cents, and "1e3" or " 12" are not how money is written. The check runs inside
    pydantic-core. Python callers may pass Decimal, int, or text in the wire format; either way
    the value has at most `whole` digits before the point.
    """

    def __init__(self, whole: int, fraction: int) -> None:
        self.pattern = _decimal_text(whole, fraction)
        self.below = Decimal(10) ** whole
        self.message = (
            "must be a non-negative decimal string such as '12.50', with at most"
            f" {whole} digits before the point and {fraction} after"
        )

    def __get_pydantic_core_schema__(
        self, source: object, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        decimal = core_schema.decimal_schema(ge=Decimal(0), lt=self.below, allow_inf_nan=False)
        text = core_schema.custom_error_schema(
            core_schema.str_schema(pattern=self.pattern),
            custom_error_type="decimal_string",
            custom_error_message=self.message,
        )
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema([text, decimal]),
            python_schema=core_schema.no_info_before_validator_function(
                _python_decimal_input(re.compile(self.pattern), self.message), decimal
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                _plain_decimal, when_used="json"
            ),
        )


NonNegativeDecimal = Annotated[
    Decimal,
    _DecimalText(18, 18),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _DECIMAL_TEXT,
            "description": "Non-negative decimal number written as a string, such as '12.50'.",
        }
    ),
]

Amount = Annotated[
    Decimal,
    _DecimalText(AMOUNT_DIGITS, 8),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _AMOUNT_TEXT,
            "maxLength": AMOUNT_DIGITS + 9,
            "description": "Non-negative decimal amount written as a string, such as '12.50':"
            f" at most {AMOUNT_DIGITS} digits before the point and 8 after.",
        }
    ),
]


class Money(Contract):
    """A decimal amount in an ISO 4217 currency, never finer than its minor unit."""

    amount: Amount
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

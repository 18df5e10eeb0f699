"""A query result as text for `sluiceway query`: a table, CSV or JSON, money exact in each."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sluiceway.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

QUERY_FORMATS = ("table", "csv", "json")


def _plain(value: Any) -> Any:
    """A cell as printable text: decimals and floats positional, never `12.1` or `5.2e+12`."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float) and math.isfinite(value):
        return _float_text(value)
    return value


def _float_text(value: float) -> str:
    import numpy as np

    return np.format_float_positional(value, trim="-")


def _json_value(value: Any) -> str:
    import numpy as np
    import pandas as pd

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None or value is pd.NaT or (isinstance(value, float) and not math.isfinite(value)):
        return "null"
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else "null"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, Mapping):
        return (
            "{"
            + ", ".join(f"{json.dumps(str(k))}: {_json_value(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_json_value(v) for v in value) + "]"
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    if isinstance(value, bool | int | str):
        return json.dumps(value)
    return json.dumps(str(value))


def format_frame(frame: pd.DataFrame, output: str) -> str:
    """A query result as a text table, CSV or JSON records, with exact decimals in each.

    In JSON a DECIMAL is a number written with all its digits (`12.10`); read it with a parser
    that keeps decimals (e.g. Python's `json.loads(text, parse_float=decimal.Decimal)`).
    """
    if output == "json":
        rows = (
            "{" + ", ".join(f"{json.dumps(str(k))}: {_json_value(v)}" for k, v in row.items()) + "}"
            for row in frame.to_dict(orient="records")
        )
        return "[" + ", ".join(rows) + "]\n"
    plain = frame.map(_plain) if len(frame) else frame
    if output == "csv":
        return str(plain.to_csv(index=False))
    if output == "table":
        return (plain.to_string(index=False) if len(frame) else "(no rows)") + "\n"
    raise ConfigurationError(f"unknown format {output!r}; choose one of {', '.join(QUERY_FORMATS)}")

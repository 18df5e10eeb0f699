"""A handler from its name: `financial`, `http`, `noop`, `module:attribute` or
`lambda:module:function` (the `--handler` option). Apart from handlers.py, which every handler
module imports: the names lead to those modules."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from sluiceway.errors import ConfigurationError
from sluiceway.processing.handlers import FunctionHandler, Handler
from sluiceway.processing.lambda_handler import LAMBDA_PREFIX, LambdaHandler

BUILTIN_HANDLERS = {
    "financial": "sluiceway.processing.financial:FinancialHandler",
    "http": "sluiceway.processing.http_endpoint:HttpHandler",
    "noop": "sluiceway.processing.handlers:NoopHandler",
}


def resolve_handler(spec: str, options: Mapping[str, str] | None = None) -> Handler:
    """`financial` | `http` | `noop` | `module:attribute` | `lambda:module:function`.

    `module:attribute` may name a Handler subclass, a Handler instance or a plain function
    `records -> results`. The module must be importable on the executors too (on Glue, ship
    it with --extra-py-files).
    """
    options = dict(options or {})
    if spec.startswith(LAMBDA_PREFIX):
        function = _load(spec[len(LAMBDA_PREFIX) :])
        return LambdaHandler(function, name=spec, batch_input=options)
    target = _load(BUILTIN_HANDLERS.get(spec, spec))
    if inspect.isclass(target) and issubclass(target, Handler):
        handler = target.from_options(options)
    elif isinstance(target, Handler):
        handler = target
    elif callable(target):
        handler = FunctionHandler(target)
    else:
        raise ConfigurationError(
            f"handler {spec!r} is a {type(target).__name__}; name a Handler subclass or instance, "
            "a function records -> results, or lambda:module:function"
        )
    if spec not in BUILTIN_HANDLERS:
        handler.name = spec
    return handler


def _load(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ConfigurationError(
            f"unknown handler {spec!r}; use one of {', '.join(BUILTIN_HANDLERS)}, "
            "module:attribute or lambda:module:function"
        )
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(
            f"cannot load handler {spec!r}: {error}; check the module is on PYTHONPATH "
            "(and shipped to the executors)"
        ) from error

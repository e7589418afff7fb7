"""The Python worker's checks of a function's parameters and annotations against its bindings."""

from __future__ import annotations

import collections.abc
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from tools.devhost.errors import FunctionLoadError

# typing's private alias classes: the worker's vendored typing_inspect treats exactly these as generic,
# so `func.Out[list[str]]` (a types.GenericAlias) is rejected while `func.Out[typing.List[str]]` passes.
_ALIAS_TYPES = tuple(t for t in (getattr(typing, "_GenericAlias", None), getattr(typing, "_SpecialGenericAlias", None))
                     if isinstance(t, type))


@dataclass(frozen=True)
class ParamInfo:
    """How the worker binds one parameter: the converter's binding name and the annotated type."""

    binding: str  # a binding type, or "generic" for str/bytes annotations
    pytype: Any
    is_out: bool


@dataclass(frozen=True)
class Signature:
    """The worker's view of a function: its parameters, context and return binding."""

    params: dict[str, ParamInfo]
    requires_context: bool
    has_return: bool
    return_binding: str | None
    is_async: bool


def check_signature(name: str, fn: Callable[..., Any], bindings: Mapping[str, Mapping[str, Any]],
                    *, http_streams: bool) -> Signature:
    """Validate like the worker's Registry.add_indexed_function; raises FunctionLoadError."""
    for binding_name, binding in bindings.items():
        direction = str(binding.get("direction", "")).upper()
        if direction == "INOUT":
            raise FunctionLoadError(name, '"inout" bindings are not supported')
        if binding_name == "$return" and direction != "OUT":
            raise FunctionLoadError(name, '"$return" binding must have direction set to "out"')
    params = dict(inspect.signature(fn).parameters)
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # any failure here comes from the app's annotations
        raise FunctionLoadError(name, f"its annotations cannot be resolved: {exc!r}") from exc
    bound = {k: v for k, v in bindings.items() if k != "$return"}
    requires_context = "context" in params and "context" not in bound
    if requires_context:
        params.pop("context")
        anno = hints.get("context")
        if "context" in hints and (not isinstance(anno, type) or anno.__name__ != "Context"):
            raise FunctionLoadError(name, "the \"context\" parameter is expected to be of type "
                                          f"azure.functions.Context, got {anno!r}")
    if set(params) - set(bound):
        raise FunctionLoadError(name, "the following parameters are declared in Python but not in "
                                      f"function.json: {set(params) - set(bound)!r}")
    if set(bound) - set(params):
        raise FunctionLoadError(name, "the following parameters are declared in function.json but not in "
                                      f"Python: {set(bound) - set(params)!r}")
    infos = {p: _param_info(name, p, bound[p], hints, http_streams) for p in params}
    return_binding = str(bindings["$return"]["type"]) if "$return" in bindings else None
    if return_binding is not None and "return" in hints:
        _check_return(name, hints["return"], return_binding, http_streams)
    return Signature(infos, requires_context, return_binding is not None, return_binding,
                     inspect.iscoroutinefunction(fn))


def _param_info(name: str, param: str, binding: Mapping[str, Any], hints: Mapping[str, Any],
                http_streams: bool) -> ParamInfo:
    has_anno = param in hints
    anno = hints.get(param)
    is_out = has_anno and _is_out(anno)
    pytype = anno
    if is_out:
        args = typing.get_args(anno)
        if len(args) != 1:
            raise FunctionLoadError(name, f"binding {param} has invalid Out annotation {anno!r}")
        pytype = args[0]
    if has_anno and not isinstance(pytype, type) and not is_generic_type(pytype):
        raise FunctionLoadError(name, f"binding {param} has invalid non-type annotation {anno!r}")
    is_binding_out = str(binding.get("direction", "")).upper() == "OUT"
    if is_binding_out and has_anno and not is_out:
        raise FunctionLoadError(name, f'binding {param} is declared to have the "out" direction, but its '
                                      "annotation in Python is not a subclass of azure.functions.Out")
    if not is_binding_out and is_out:
        raise FunctionLoadError(name, f'binding {param} is declared to have the "in" direction in function.json,'
                                      " but its annotation is azure.functions.Out in Python")
    kind = str(binding["type"])
    # str/bytes annotations bind through the worker's generic binding (no converter involved).
    bind_as = "generic" if has_anno and pytype in (str, bytes) else kind
    if has_anno:
        ok = (check_output(name, bind_as, pytype, http_streams) if is_out
              else check_input(name, bind_as, pytype, http_streams))
        if not ok:
            raise FunctionLoadError(name, f'type of {param} binding in function.json "{kind}" does not match its '
                                          f'Python annotation "{getattr(pytype, "__name__", pytype)}"')
    return ParamInfo(bind_as, pytype if has_anno else None, is_binding_out)


def _check_return(name: str, anno: Any, binding: str, http_streams: bool) -> None:
    origin = typing.get_origin(anno)
    if is_generic_type(anno) and getattr(origin, "__name__", "") == "Out":
        raise FunctionLoadError(name, "return annotation should not be azure.functions.Out")
    if not isinstance(anno, type):
        raise FunctionLoadError(name, f"has invalid non-type return annotation {anno!r}")
    if not check_output(name, binding, anno, http_streams):
        raise FunctionLoadError(name, f'Python return annotation "{anno.__name__}" does not match binding type '
                                      f'"{binding}"')


def check_input(name: str, binding: str, pytype: Any, http_streams: bool) -> bool:
    """The worker's check_input_type_annotation, including its HTTP-streams override."""
    if binding == "httpTrigger" and http_streams:
        from azurefunctions.extensions.base import RequestTrackerMeta

        return bool(RequestTrackerMeta.check_type(pytype))
    converter = func.get_binding_registry().get(binding)
    return _issubclass_check(name, lambda: converter.check_input_type_annotation(pytype) if converter
                             else issubclass(pytype, (str, bytes)))


def check_output(name: str, binding: str, pytype: Any, http_streams: bool) -> bool:
    """The worker's check_output_type_annotation, including its HTTP-streams override."""
    if binding == "http" and http_streams:
        from azurefunctions.extensions.base import ResponseTrackerMeta

        return bool(ResponseTrackerMeta.check_type(pytype))
    converter = func.get_binding_registry().get(binding)
    return _issubclass_check(name, lambda: converter.check_output_type_annotation(pytype) if converter
                             else issubclass(pytype, (str, bytes, bytearray)))


def _issubclass_check(name: str, check: Callable[[], Any]) -> bool:
    try:
        return bool(check())
    except TypeError as exc:  # the worker fails indexing the same way: issubclass() on a generic alias
        raise FunctionLoadError(name, f"TypeError: {exc}") from exc


def _is_out(anno: Any) -> bool:
    origin = typing.get_origin(anno)
    target = origin if origin is not None else anno
    return isinstance(target, type) and target.__name__ == "Out"


def is_generic_type(tp: Any) -> bool:
    """The worker's vendored typing_inspect.is_generic_type (Python 3.9+ branch)."""
    if isinstance(tp, type) and issubclass(tp, typing.Generic):
        return True
    return isinstance(tp, _ALIAS_TYPES) and getattr(tp, "__origin__", None) not in (
        typing.Union, tuple, typing.ClassVar, collections.abc.Callable)

"""The one strict reader of what users write: config files, annotations, EnergyProfiles.

Every document a user hands to energysched goes through here: the scheduler's
config file, the monitor's config file and its node annotation override, and
EnergyProfile objects (from the API server or from files). Each is described
by pydantic models deriving from :class:`StrictModel`, and every violation
comes back as a :class:`Problem`: the field's path as the user wrote it
(``profiles[0].hybrid.bufferWatts``), what is wrong, and the offending value,
shortened for a log line, an Event or a status condition. All problems of a
document are found at once, not just the first.

Strict means: no coercion (``"0.5"`` is not a number, ``"false"`` is not a
boolean, ``1`` is not a string), no NaN or infinity, unknown fields are errors
(a typo such as ``powerWats`` must not pass silently), and YAML that cannot be
read (a syntax error, nesting deeper than Python's stack, an integer of more
than 4,300 digits) is a problem like any other, never an exception from deep
inside a parser.

Why pydantic and not hand-written checks: the three hand-written validators
this replaces each had their own path format, error shape and corner cases
(booleans passing as numbers in one, huge integers overflowing in another);
pydantic's strict mode does these uniformly and reports every error. The
rules a schema cannot say (label syntax, watts under load >= idle watts, the
leader-election timing order) are validators on the models.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """A document section: camelCase keys as written, no coercion, no extras, finite."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        alias_generator=to_camel,
        validate_by_name=False,
        validate_by_alias=True,
    )


class _Repr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        # repr() refuses integers of more than 4,300 digits (ValueError); say what it is
        # instead, whether the integer stands alone or inside a list or mapping.
        if x.bit_length() > 4000:
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_SHOW = _Repr()  # keyword arguments only from Python 3.12
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 80, 80
_SHOW.maxlist = _SHOW.maxdict = 4
_SHOW.maxlong = 40  # a 400-digit number is shown shortened (repr() refuses > 4,300 digits)


def show(value: object) -> str:
    """A short, safe rendering of any parsed value (deep nesting, huge numbers, long text)."""
    return _SHOW.repr(value)


@dataclass(frozen=True, slots=True)
class Problem:
    """One violated rule: where (the path as written), and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DocumentError(ValueError):
    """A document that cannot be used; ``problems`` holds every reason found."""

    def __init__(self, problems: Iterable[Problem], where: str = "", note: str = "") -> None:
        self.problems = tuple(problems)
        self.where = where
        text = "; ".join(str(p) for p in self.problems) or "invalid"
        if note:  # e.g. "keeping the last good config"
            text += f"; {note}"
        super().__init__(f"{where}: {text}" if where else text)


#: A key shown as ``.key``; any other (a label key such as ``kubernetes.io/hostname``, a
#: host name with dots, "0") is shown quoted, ``['kubernetes.io/hostname']``, so that the
#: path cannot be read as more levels than it has.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def join_path(prefix: str, loc: Iterable[int | str]) -> str:
    """``("profiles", 0, "mode")`` -> ``profiles[0].mode`` (after ``prefix``)."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            path += f"[{part!r}]"
        else:
            path = f"{path}.{part}" if path else part
    return path


#: Errors whose input is not worth showing, or must not be shown: an unknown
#: field may be a misspelt password (``pasword: hunter2``). A validator's own
#: message (value_error) names the offending value itself when it should.
_NO_INPUT = {"missing", "extra_forbidden", "value_error", "assertion_error"}


def problems_of(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> list[Problem]:
    """Pydantic's errors as problems: path as written, message, the offending value."""
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            path = join_path(prefix, loc)
            message = "unknown field"
            parent = _model_at(model, loc[:-1])
            if parent is not None:
                message += f"; allowed: {', '.join(_keys(parent))}"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            # pydantic names the model class here; the user wrote YAML, not Python
            path = join_path(prefix, loc)
            message = f"must be an object, got {show(err['input'])}"
        elif kind == "invalid_key":
            path = join_path(prefix, loc[:-1])
            message = f"key {show(err['input'])} is not a string"
        elif loc[-1:] == ("[key]",):  # a map's key, e.g. a node name YAML read as a number
            path = join_path(prefix, loc[:-2])
            message = f"key {show(err['input'])} " + (
                "is not a string" if kind == "string_type" else _lower_first(err["msg"])
            )
        else:
            path = join_path(prefix, loc)
            message = _lower_first(err["msg"])
            if kind not in _NO_INPUT:
                message += f", got {show(err['input'])}"
        out.append(Problem(path, message))
    return out


def _lower_first(text: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    return text[:1].lower() + text[1:]


def _keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that validates the object at ``loc`` (for unknown-field hints)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part), None
            )
            if field is None:
                return None
            current = field.annotation
        else:  # a list item or a mapping value
            args = [a for a in get_args(current) if a is not type(None)]
            if not args:
                return None
            current = args[-1]
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` -> X."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        args = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) in (Union, UnionType) and len(args) == 1:
            tp = args[0]
            continue
        return tp


def validate(
    model: type[M],
    doc: Any,
    *,
    where: str = "",
    prefix: str = "",
    root: str = "",
    context: Any = None,
) -> M:
    """``doc`` (parsed YAML/JSON) as ``model``, or DocumentError naming every problem.

    ``prefix`` is put before every path (a section of a larger document); ``root``
    names a problem of the document as a whole (e.g. "config")."""
    try:
        return model.model_validate(doc, context=context)
    except ValidationError as exc:
        found = problems_of(exc, model, prefix)
    except (RecursionError, OverflowError) as exc:  # a document nested or sized beyond reason
        found = [Problem(prefix, f"not usable: {type(exc).__name__}")]
    raise DocumentError([Problem(p.path or root, p.message) for p in found], where)


def load_yaml(data: bytes | str, where: str = "") -> Any:
    """The parsed document (YAML is a superset of JSON), or DocumentError saying why not."""
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        reason = f"not valid YAML: {_shorten(str(exc))}"
    except RecursionError:  # PyYAML composes nested nodes recursively
        reason = "not usable YAML: nested too deeply"
    except (ValueError, TypeError, OverflowError) as exc:
        # e.g. an integer of more than 4,300 digits (Python's int() limit), a bad date
        reason = f"not usable YAML: {_shorten(str(exc))}"
    raise DocumentError([Problem("", reason)], where)


def load_json(text: str, where: str = "") -> Any:
    """The parsed JSON document, or DocumentError saying why not (with the text shown)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"not JSON ({exc.msg}): {show(text)}"
    except RecursionError:
        reason = f"not usable JSON (nested too deeply): {show(text)}"
    except ValueError:  # not a JSONDecodeError: an integer longer than int() converts
        reason = f"not usable JSON (a number of more than 4300 digits): {show(text)}"
    raise DocumentError([Problem("", reason)], where)


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}..."

"""params.yaml's reader: the typed readers, the Section base class and the one-line error for a bad key.

One convention: a stage (or the app, or the CLI) reads the file with `load_params`, takes a section
with `section(params, key, source)` and builds its settings with `X.from_params(that_section, source)`
(`read(params, X)` does both). Every section forbids unknown keys and checks types strictly (a quoted
"0.2" is not a number, `true` is not 1), so any bad key stops the first stage that reads its section
with one line such as

    params.yaml: prepare.test_size: must be greater than 0 and less than 1 (got 1.5)

The sections themselves, which document params.yaml key by key, are in `churn.settings`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import yaml
from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

log = logging.getLogger(__name__)


class ParamsError(ValueError):
    """A params.yaml key is missing or breaks a rule; the message names the file, key and rule."""


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml into a dict; a missing or malformed file raises ParamsError naming it."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        with path.open() as fh:
            params = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: must be a mapping of sections, got {type(params).__name__}")
    return params


def section(params: dict[str, Any], key: str, source: str = "params.yaml") -> Any:
    """params[key] for a dotted key, or ParamsError naming the file and the missing key."""
    node: Any = params
    walked = []
    for part in key.split("."):
        walked.append(part)
        if not isinstance(node, dict) or part not in node:
            raise ParamsError(line(source, ".".join(walked), "is missing"))
        node = node[part]
    return node


def line(source: str, key: str, rule: str, *got: Any) -> str:
    """The one-line error: `<file>: <dotted key>: <rule> (got <value>)`."""
    text = f"{source}: {key}: {rule}"
    return text + (f" (got {_shown(got[0])})" if got else "")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- typed readers: each a type whose error states the whole rule ---------------------------------


def fail(rule: str) -> PydanticCustomError:
    """The error of a key that breaks its own `rule` (rendered as the one-line params error)."""
    return PydanticCustomError("params_rule", "{rule}", {"rule": rule})


def _range_text(ge: float | None, gt: float | None, le: float | None, lt: float | None) -> str:
    parts = []
    if ge is not None:
        parts.append(f"at least {ge:g}")
    if gt is not None:
        parts.append(f"greater than {gt:g}")
    if le is not None:
        parts.append(f"at most {le:g}")
    if lt is not None:
        parts.append(f"less than {lt:g}")
    return " and ".join(parts)


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def number(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    whole: bool = False,
    nullable: bool = False,
) -> Any:
    """A number (`whole`: an int) within the bounds; `nullable` also takes null (a disabled gate)."""
    bounds = _range_text(ge, gt, le, lt)
    kind = "a whole number" if whole else "a number"
    null = "null or " if nullable else ""

    def check(v: Any) -> Any:
        if v is None and nullable:
            return None
        if not _is_number(v) or (whole and not isinstance(v, int)):
            raise fail(f"must be {null}{kind}" + (f" {bounds}" if bounds else ""))
        if (
            (ge is not None and v < ge)
            or (gt is not None and v <= gt)
            or (le is not None and v > le)
            or (lt is not None and v >= lt)
        ):
            raise fail(f"must be {bounds}")
        return v if whole else float(v)

    return PlainValidator(check)


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise fail("must be non-empty text")
    return v


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise fail("must be true or false")
    return v


def choice(*options: str) -> Any:
    """One of `options`."""

    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in options:
            raise fail(f"must be one of {', '.join(options)}")
        return v

    return PlainValidator(check)


def names(*, allowed: tuple[str, ...] | None = None, banned: tuple[str, ...] = ()) -> Any:
    """A non-empty list of names (each one of `allowed` if given, none of `banned`)."""

    def check(v: Any) -> tuple[str, ...]:
        if not isinstance(v, list | tuple) or not v or not all(isinstance(x, str) and x.strip() for x in v):
            raise fail("must be a non-empty list of names")
        bad = [x for x in v if x in banned]
        if bad:
            raise fail(f"must not list {', '.join(bad)} (demographics or history)")
        unknown = [x for x in v if allowed is not None and x not in allowed]
        if unknown:
            raise fail(f"lists {', '.join(unknown)}; allowed: {', '.join(allowed or ())}")
        return tuple(v)

    return PlainValidator(check)


def shares() -> Any:
    """A non-empty list of numbers greater than 0 and at most 1 (perturbation levels)."""
    rule = "must be a non-empty list of numbers greater than 0 and at most 1"

    def check(v: Any) -> list[float]:
        if not isinstance(v, list) or not v or not all(_is_number(x) and 0 < x <= 1 for x in v):
            raise fail(rule)
        return [float(x) for x in v]

    return PlainValidator(check)


Text = Annotated[str, PlainValidator(_text)]
Flag = Annotated[bool, PlainValidator(_flag)]
Probability = Annotated[float, number(ge=0, le=1)]
OpenProbability = Annotated[float, number(gt=0, lt=1)]
Positive = Annotated[int, number(ge=1, whole=True)]


# -- sections -------------------------------------------------------------------------------------


class Section(BaseModel):
    """A params.yaml section (or sub-section): checked keys, nothing unknown, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)
    #: Its dotted place in params.yaml, the prefix of every error about it.
    KEY: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise fail("must be a mapping of keys")
        if cls.model_config.get("extra") == "forbid":
            for key in data:
                if key not in cls.model_fields:
                    raise PydanticCustomError(
                        "params_unknown",
                        "unknown key (allowed: {allowed})",
                        {"key": str(key), "allowed": ", ".join(cls.model_fields)},
                    )
        return data

    @classmethod
    def from_params(cls, section: Any, source: str = "params.yaml", key: str | None = None) -> Self:
        """The checked settings of `section` (a dict from params.yaml; None keeps every default where
        all keys have one); ParamsError with one line naming `source`, the dotted key and the rule."""
        if section is None and all(not f.is_required() for f in cls.model_fields.values()):
            section = {}
        try:
            return cls.model_validate(section)
        except ValidationError as exc:
            raise ParamsError(render(exc, source, cls.KEY if key is None else key)) from None


def render(exc: ValidationError, source: str, prefix: str) -> str:
    """A pydantic ValidationError as the one-line params error (its first problem, and a count)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    ctx = first.get("ctx") or {}
    parts = [prefix] if prefix else []
    for part in first["loc"]:
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        else:
            parts.append(str(part))
    kind = first["type"]
    if kind == "params_unknown":
        parts.append(ctx["key"])
        text = line(source, ".".join(parts), first["msg"])
    elif kind == "missing":
        text = line(source, ".".join(parts), "is missing")
    elif kind == "params_rule":
        if ctx.get("key"):
            parts.append(ctx["key"])
        got = (ctx["got"],) if "got" in ctx else (first["input"],)
        text = line(source, ".".join(parts), first["msg"], *got)
    else:  # a rule pydantic states itself (kept so no error is ever lost)
        text = line(source, ".".join(parts), first["msg"], first["input"])
    more = len(errors) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def fail_on(rule: str, key: str, got: Any) -> PydanticCustomError:
    """A rule between keys (checked after each key's own), reported on `key`."""
    return PydanticCustomError("params_rule", "{rule}", {"rule": rule, "key": key, "got": got})


def read(params: dict[str, Any], cls: type[Section], source: str = "params.yaml") -> Any:
    """`cls.from_params(section(params, cls.KEY, source), source)`: a whole section, checked."""
    return cls.from_params(section(params, cls.KEY, source), source)

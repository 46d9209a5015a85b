"""Declaring configuration options: a pydantic model per config section.

A section is a subclass of `Section` with one field per option, each declared
with `option` (default, one-line documentation, bounds, backend tag). From
that one declaration follow: validation of an INI file (`validate_section`,
used by `l1db.config.load_config`), the one-line `ConfigError` naming the
file, section and key (or the command-line flag), the command-line arguments
of a tool (`add_arguments`), and the option table of docs/configuration.md
(`markdown_table`). See `l1db.config` for how to add an option.
"""

from __future__ import annotations

import argparse
import contextvars
import textwrap
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError, PydanticUndefined

__all__ = [
    "ConfigError",
    "Section",
    "option",
    "Switch",
    "INT_TEXT",
    "aliased",
    "bad_value",
    "option_error",
    "option_fields",
    "option_backend",
    "allowed_text",
    "default_text",
    "validate_section",
    "flag",
    "add_arguments",
    "comment",
    "markdown_table",
]


_M = TypeVar("_M", bound=BaseModel)


_IN_VALIDATE_SECTION: contextvars.ContextVar[bool] = contextvars.ContextVar("_IN_VALIDATE_SECTION", default=False)


class ConfigError(ValueError):
    """A configuration file or option that cannot be used, with a message naming where."""


def _int_text(value: Any) -> Any:
    # A choice among integers (0 | 1) read from text: pydantic compares literals without converting.
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return value
    return value


#: Integers read from text, for a choice among integers or a union with words
#: (``Annotated[Literal["auto"] | Annotated[int, Field(ge=0)], INT_TEXT]``).
INT_TEXT = BeforeValidator(_int_text)

#: An on/off option written 0 or 1 (kept an int: the code and the files say 0 and 1).
Switch = Annotated[Literal[0, 1], INT_TEXT]


def aliased(aliases: Mapping[str, str]) -> BeforeValidator:
    """A validator accepting old spellings of a value (``Annotated[Literal[...], aliased({...})]``)."""

    def translate(value: Any) -> Any:
        return aliases.get(value.strip(), value) if isinstance(value, str) else value

    return BeforeValidator(translate)


def option(
    default: Any = PydanticUndefined,
    doc: str = "",
    *,
    backend: str | None = None,
    allowed: str | None = None,
    metavar: str | None = None,
    short: str | None = None,
    alias: str | None = None,
    internal: bool = False,
    **constraints: Any,
) -> Any:
    """Declare one option: a pydantic field with the option's documentation.

    Parameters
    ----------
    default
        The default (validated like a given value); leave out for a required option.
    doc : `str`
        One line for ``--help``, docs/configuration.md and the config files.
    backend : `str`, optional
        ``sql`` or ``cassandra``: the backend the option means something for;
        giving it in a config of the other backend is an error.
    allowed : `str`, optional
        Description of the allowed values, where the type and bounds do not
        say it (e.g. a format); by default generated from them.
    metavar, short : `str`, optional
        Command-line presentation: the value's placeholder, a short flag (``-i``).
    alias : `str`, optional
        The key in a file and on the command line, when the attribute is named otherwise.
    internal : `bool`
        A model field that is not a user option (no key, no flag, not documented).
    **constraints
        Bounds for `pydantic.Field` (``ge``, ``gt``, ``le``, ``lt``).
    """
    extra = {"backend": backend, "allowed": allowed, "metavar": metavar, "short": short, "internal": internal}
    return Field(default, description=doc, alias=alias, json_schema_extra={k: v for k, v in extra.items() if v},
                 **constraints)


def _extra(field: FieldInfo) -> Mapping[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, Mapping) else {}


def option_error(key: str, text: str) -> PydanticCustomError:
    """The error a model validator raises for option ``key`` (reported as ``WHERE-OF-KEY: text``)."""
    return PydanticCustomError("bad_option", "{text}", {"key": key, "text": text})


def bad_value(key: str, value: Any, allowed: str, detail: str = "") -> PydanticCustomError:
    """A cross-field validator's error for ``key``: ``bad value V [detail]; allowed: ...``."""
    return option_error(key, f"bad value {value!r}{' ' + detail if detail else ''}; allowed: {allowed}")


class Section(BaseModel):
    """Base of a config section's model: one field per option, declared with `option`.

    Values are validated when a model is made (from a file, the command line
    or code), defaults included; models are immutable.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        str_strip_whitespace=True,
        validate_default=True,
        validate_by_name=True,
        validate_by_alias=True,
        arbitrary_types_allowed=True,
    )

    def __init__(self, /, **data: Any) -> None:
        # Made in code (SimConfig(detection_fraction=2)): the same one-line error, naming the class.
        # (pydantic calls a custom __init__ from model_validate too: there validate_section names the place.)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            if _IN_VALIDATE_SECTION.get():
                raise
            name = type(self).__name__
            raise _config_error(exc, type(self), lambda key: f"{name} {key}" if key else name) from None

    def _backend(self, info: ValidationInfo) -> tuple[str | None, str]:
        """The backend the options are for and its URL (password hidden), from the validation context."""
        context = info.context if isinstance(info.context, Mapping) else {}
        return context.get("backend"), context.get("url", "")

    @model_validator(mode="after")
    def _check_backend(self, info: ValidationInfo) -> Section:
        backend, url = self._backend(info)
        if backend is None:
            return self
        for name in self.model_fields_set:
            field = type(self).model_fields[name]
            if option_backend(field) not in (None, backend):
                raise option_error(field.alias or name, f"means nothing for the {backend} backend"
                                   + (f" of url {url}" if url else "") + "; remove it")
        return self


def option_backend(field: FieldInfo) -> str | None:
    """The backend an option means something for (``sql``, ``cassandra``), `None` for every backend."""
    return _extra(field).get("backend")


def option_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The user options of a section model, by key (alias or name), in declaration order."""
    return {(f.alias or name): f for name, f in model.model_fields.items() if not _extra(f).get("internal")}


def _choices(annotation: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    return None


def _number(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def allowed_text(field: FieldInfo) -> str:
    """Human-readable allowed values of an option (``0 | 1``, ``an integer >= 1``, ...)."""
    extra = _extra(field)
    if "allowed" in extra:
        return str(extra["allowed"])
    choices = _choices(field.annotation)
    if choices is not None:
        return " | ".join(str(c) for c in choices)
    kind = "an integer" if field.annotation is int else "a number" if field.annotation is float else "a string"
    low: tuple[str, Any] | None = None  # (operator, bound)
    high: tuple[str, Any] | None = None
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = (">=", bound.ge)
        elif isinstance(bound, annotated_types.Gt):
            low = (">", bound.gt)
        elif isinstance(bound, annotated_types.Le):
            high = ("<=", bound.le)
        elif isinstance(bound, annotated_types.Lt):
            high = ("<", bound.lt)
    if low and high and low[0] == ">=" and high[0] == "<=":
        return f"{kind} from {_number(low[1])} to {_number(high[1])}"
    parts = [f"{op} {_number(value)}" for op, value in filter(None, (low, high))]
    return " ".join([kind, " and ".join(parts)]) if parts else kind


def default_text(field: FieldInfo) -> str:
    """The default of an option as a user writes it (``(required)`` if it has none)."""
    if field.is_required():
        return "(required)"
    return '""' if field.default in ("", None) else str(field.default)


def _message(error: Mapping[str, Any], model: type[BaseModel]) -> tuple[str | None, str]:
    """(key, message) of one pydantic error."""
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    ctx = error.get("ctx") or {}
    loc = error.get("loc") or ()
    key = ctx.get("key") or (str(loc[0]) if loc else None)
    kind = error["type"]
    if kind == "bad_option":
        return key, ctx["text"]
    if kind == "value_error":
        return key, str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return key, "missing (required)" + (f"; allowed: {allowed_text(fields[key])}" if key in fields else "")
    if kind == "extra_forbidden":
        return None, f"unknown key {key!r}; allowed: {', '.join(option_fields(model))}"
    allowed = allowed_text(fields[key]) if key in fields else error["msg"]
    return key, f"bad value {error.get('input')!r}; allowed: {allowed}"


def validate_section(
    model: type[_M],
    values: Mapping[str, Any],
    where: Callable[[str | None], str],
    context: Mapping[str, Any] | None = None,
) -> _M:
    """Make a section model from ``values`` (text or values), or raise a one-line `ConfigError`.

    Parameters
    ----------
    model : `type`
        The section's model.
    values : mapping
        Option values by key (alias or attribute name).
    where : callable
        The place of a key for the message (``FILE: [section] key``, ``--flag``),
        or of the whole section when called with `None`.
    context : mapping, optional
        Validation context (``backend``: the URL's backend).

    Raises
    ------
    ConfigError
        ``WHERE: bad value 'x'; allowed: ...`` for the first bad value.
    """
    token = _IN_VALIDATE_SECTION.set(True)
    try:
        return model.model_validate(dict(values), context=dict(context or {}))
    except ValidationError as exc:
        raise _config_error(exc, model, where) from None
    finally:
        _IN_VALIDATE_SECTION.reset(token)


def _config_error(exc: ValidationError, model: type[BaseModel], where: Callable[[str | None], str]) -> ConfigError:
    key, message = _message(exc.errors(include_url=False)[0], model)
    return ConfigError(f"{where(key)}: {message}")


def flag(key: str) -> str:
    """The long command-line flag of an option key (``--start-visit-id``)."""
    return "--" + key.replace("_", "-")


def _metavar(field: FieldInfo) -> str:
    extra = _extra(field)
    if "metavar" in extra:
        return str(extra["metavar"])
    choices = _choices(field.annotation)
    if choices is not None:
        return "{" + ",".join(str(c) for c in choices) + "}"
    return "N" if field.annotation is int else "X"


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, model: type[BaseModel]) -> None:
    """Add a command-line option for every option of ``model``, its help from the declaration.

    Every argument's value is the text given (`None` if not given, so that a
    config file's value applies); validate with `validate_section`.
    """
    for key, field in option_fields(model).items():
        flags = [f for f in (_extra(field).get("short"), flag(key)) if f]
        default = default_text(field).replace('""', "none")
        text = f"{field.description} (default {default}; allowed: {allowed_text(field)})"
        parser.add_argument(*flags, dest=key, default=None, metavar=_metavar(field), help=text.replace("%", "%%"))


def comment(field: FieldInfo, width: int = 88) -> list[str]:
    """The comment lines above an option in an example config file (doc, allowed values, default)."""
    text = f"{field.description}. Allowed: {allowed_text(field)}. Default: {field.default!r}."
    return textwrap.wrap(text, width, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)


def markdown_table(sections: Iterable[tuple[str, type[BaseModel]]]) -> str:
    """The option table of docs/configuration.md: one row per option of every section, in declaration order."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| section | key | default | allowed | meaning |", "|---|---|---|---|---|"]
    for section, model in sections:
        for key, field in option_fields(model).items():
            lines.append(f"| [{section}] | `{key}` | `{default_text(field)}` | {cell(allowed_text(field))} | "
                         f"{cell(field.description or '')} |")
    return "\n".join(lines) + "\n"

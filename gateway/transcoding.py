"""JSON ⇄ protobuf for the gateway: proto3 JSON mapping plus three REST spelling rules.

`google.protobuf.json_format` does the mapping; this module adds what the seed
documents promise on top of it, generically for every message:

- Enum values are lower case without the enum type's prefix:
  `JobState.JOB_STATE_PENDING` is `"pending"`. Requests accept that, the full
  name in any case, the number, and the seed's spelling `"cancelled"`.
- Responses use the proto field names (snake_case) and print fields without
  presence (`result: ""`, `progress: 0`), so every key a client reads is
  always there. Message fields are absent while unset: a job that has not
  started has no `started_at`, as in the seed examples.
- 64-bit integers are JSON numbers (proto3 JSON allows strings or numbers on
  input; OpenAI clients need `created` as a number).

Requests accept the proto or the lowerCamel JSON name of each field.

Request JSON is held to two rules json.loads does not enforce (`parse_json`):
it nests at most MAX_JSON_DEPTH levels, and its strings are valid Unicode
(I-JSON, RFC 7493: no unpaired surrogates, which no UTF-8 encoder accepts,
so one would fail the first time the gateway or the coordinator encodes it).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from gateway.errors import invalid_argument
from gateway.routes import RestRoute

M = TypeVar("M", bound=Message)
JsonObject = dict[str, Any]

# Spellings the seed documents use for enum values that the proto spells otherwise.
ENUM_ALIASES = {"CANCELLED": "CANCELED", "CANCELLING": "CANCELING"}
# `?state_spelling=british` answers enum values as the seed's poll loops expect them ("cancelled").
STATE_SPELLING_PARAMETER = "state_spelling"
BRITISH_SPELLINGS = {"canceled": "cancelled", "canceling": "cancelling"}
SPELLINGS = ("american", "british")

# Well-known types have a JSON form of their own (a Timestamp is a string), not an object of fields.
_WELL_KNOWN_PREFIX = "google.protobuf."

_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}

# The requests nest four levels at most (a chat message in a job); far deeper
# JSON is hostile, and past ~1000 levels json and json_format, which recurse,
# exhaust the interpreter's stack.
MAX_JSON_DEPTH: Final = 32


@functools.cache
def enum_prefix(enum: EnumDescriptor) -> str:
    """`JobState` → `JOB_STATE_`: the prefix buf's ENUM_VALUE_PREFIX lint rule asks for."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", enum.name).upper() + "_"


def enum_to_json(enum: EnumDescriptor, name: str) -> str:
    prefix = enum_prefix(enum)
    return (name[len(prefix) :] if name.startswith(prefix) else name).lower()


def enum_from_json(enum: EnumDescriptor, value: object, field: str) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        upper = value.upper()
        upper = ENUM_ALIASES.get(upper, upper)
        for candidate in (upper, enum_prefix(enum) + upper):
            if candidate in enum.values_by_name:
                return candidate
    expected = ", ".join(enum_to_json(enum, member.name) for member in enum.values if member.number != 0)
    raise invalid_argument(f"{field}: unknown value {value!r}; expected one of {expected}", field)


@functools.cache
def _fields(descriptor: Descriptor) -> Mapping[str, FieldDescriptor]:
    """Fields by proto name and by JSON name."""
    fields: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        fields[field.name] = field
        fields[field.json_name] = field
    return fields


def _map_values(field: FieldDescriptor) -> FieldDescriptor | None:
    """The value field of a map field's entry; None for other fields."""
    entry = field.message_type
    return entry.fields_by_name["value"] if entry is not None and entry.GetOptions().map_entry else None


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated and _map_values(field) is None


# (enum, value, field path) -> the value to put in its place.
EnumRewrite = Callable[[EnumDescriptor, Any, str], Any]


def _rewrite_enums(descriptor: Descriptor, data: Any, rewrite: EnumRewrite, path: str, *, strict: bool) -> Any:
    """`data` with every enum value passed through `rewrite`; with `strict`, unknown fields are an error."""
    if not isinstance(data, dict) or descriptor.full_name.startswith(_WELL_KNOWN_PREFIX):
        return data
    rewritten: JsonObject = {}
    for key, value in data.items():
        field = _fields(descriptor).get(key)
        field_path = f"{path}.{key}" if path else key
        if field is None:
            if strict:
                raise invalid_argument(f"{descriptor.name} has no field {key!r}", field_path)
            rewritten[key] = value
            continue
        rewritten[key] = _rewrite_value(field, value, rewrite, field_path, strict=strict)
    return rewritten


def _rewrite_value(field: FieldDescriptor, value: Any, rewrite: EnumRewrite, path: str, *, strict: bool) -> Any:
    value_field = _map_values(field)
    if value_field is not None:
        if isinstance(value, dict):
            return {
                key: _rewrite_value(value_field, item, rewrite, f"{path}.{key}", strict=strict)
                for key, item in value.items()
            }
        return value
    if _is_repeated(field) and isinstance(value, list):
        return [_rewrite_single(field, item, rewrite, path, strict=strict) for item in value]
    return _rewrite_single(field, value, rewrite, path, strict=strict)


def _rewrite_single(field: FieldDescriptor, value: Any, rewrite: EnumRewrite, path: str, *, strict: bool) -> Any:
    if field.enum_type is not None and value is not None:
        return rewrite(field.enum_type, value, path)
    if field.message_type is not None:
        return _rewrite_enums(field.message_type, value, rewrite, path, strict=strict)
    return value


def _descriptor(message: Message | type[Message]) -> Descriptor:
    # types-protobuf types DESCRIPTOR as a union with upb's class of the same name.
    return cast(Descriptor, message.DESCRIPTOR)


def message_to_json(message: Message, *, british: bool = False) -> JsonObject:
    data = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )

    def spell(enum: EnumDescriptor, name: Any, _: str) -> str:
        value = enum_to_json(enum, name)
        return BRITISH_SPELLINGS.get(value, value) if british else value

    result: JsonObject = _rewrite_enums(_descriptor(message), data, spell, "", strict=False)
    return result


def take_spelling(query: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], bool]:
    """The query without `state_spelling`, and whether it asked for British spellings; a gateway parameter
    (like Grpc-Timeout) that applies to every route, so no request message has to carry it."""
    spelling = [value for name, value in query if name == STATE_SPELLING_PARAMETER]
    rest = [(name, value) for name, value in query if name != STATE_SPELLING_PARAMETER]
    if not spelling:
        return rest, False
    if len(spelling) > 1 or spelling[0].lower() not in SPELLINGS:
        given = ", ".join(repr(value) for value in spelling)
        raise invalid_argument(
            f"{STATE_SPELLING_PARAMETER}: expected american or british, got {given}", STATE_SPELLING_PARAMETER
        )
    return rest, spelling[0].lower() == "british"


def message_from_json(data: object, message_type: type[M]) -> M:
    """Parse a decoded JSON value into a new message; bad input is a 400 naming the field."""
    if not isinstance(data, dict):
        raise invalid_argument(f"expected a JSON object, got {type(data).__name__}")
    normalized = _rewrite_enums(_descriptor(message_type), data, enum_from_json, "", strict=True)
    message = message_type()
    try:
        json_format.ParseDict(normalized, message)
    except json_format.ParseError as error:
        # json_format ends its message with "at Message.field.path."; name the field as other errors do.
        located = _PARSE_ERROR_AT.search(str(error))
        field = located.group(1) if located else None
        raise invalid_argument(f"{field}: {error}" if field else str(error), field) from None
    return message


_PARSE_ERROR_AT = re.compile(r" at \w+\.([\w.]+?)\.?$")


def parse_json(text: str | bytes, what: str) -> object:
    """`text` as JSON held to the rules in the module docstring; a 400 naming the problem otherwise."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise invalid_argument(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:
        # Also UnicodeDecodeError, and the int() limit on a number of thousands of digits.
        raise invalid_argument(f"{what} is not valid JSON: {error}") from None
    _check_json(value, what)
    return value


def _check_json(value: object, what: str) -> None:
    """Depth and strings of a decoded value, without recursion: it may be the deep value itself."""
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item, what)
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise invalid_argument(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            if isinstance(item, dict):
                for key in item:
                    _check_text(key, what)
            pending.extend((child, depth + 1) for child in children)


def _check_text(text: str, what: str) -> None:
    if text.isascii():
        return
    try:
        text.encode()
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        raise invalid_argument(f"{what} has an unpaired surrogate (\\u{code:04x}) in a string") from None


def decode_json_body(body: bytes) -> object:
    """The request body as JSON; an empty body is an empty object."""
    if not body.strip():
        return {}
    return parse_json(body, "request body")


def _field_path(descriptor: Descriptor, dotted: str) -> list[FieldDescriptor]:
    """The fields along `a.b.c`, each found by its proto or JSON name."""
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for name in dotted.split("."):
        field = None if current is None else _fields(current).get(name)
        if field is None:
            raise invalid_argument(f"{descriptor.name} has no field {dotted!r}", dotted)
        fields.append(field)
        current = field.message_type
    return fields


def _set_path(target: JsonObject, fields: list[FieldDescriptor], value: Any) -> None:
    for field in fields[:-1]:
        nested = target.setdefault(field.name, {})
        if not isinstance(nested, dict):
            raise invalid_argument(f"{field.name} is given twice", field.name)
        target = nested
    target[fields[-1].name] = value


def _text_value(field: FieldDescriptor, text: str, path: str) -> Any:
    """A path or query string as the JSON value json_format expects for the field.

    Numbers, enums, bytes and well-known types parse from strings already;
    only booleans need converting.
    """
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text.lower() not in _BOOLEANS:
            raise invalid_argument(f"{path}: expected true or false, got {text!r}", path)
        return _BOOLEANS[text.lower()]
    return text


def request_from_http(
    route: RestRoute,
    captures: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> Message:
    """Build the request message: body, then query parameters, then path captures (which win)."""
    descriptor = route.method.input_type
    data: JsonObject = {}
    if route.body == "*":
        decoded = decode_json_body(body)
        if not isinstance(decoded, dict):
            raise invalid_argument(f"expected a JSON object, got {type(decoded).__name__}")
        data = decoded
    elif route.body:
        data[route.body] = decode_json_body(body)

    parameters: dict[str, list[str]] = {}
    for name, value in query:
        parameters.setdefault(name, []).append(value)
    if parameters and route.body == "*":
        names = ", ".join(sorted(parameters))
        raise invalid_argument(f"query parameters ({names}) are not accepted: the body carries the whole request")
    for name, values in parameters.items():
        fields = _field_path(descriptor, name)
        leaf = fields[-1]
        if leaf.message_type is not None and not leaf.message_type.full_name.startswith(_WELL_KNOWN_PREFIX):
            raise invalid_argument(f"{name} is a message: set its fields as {name}.FIELD", name)
        if not _is_repeated(leaf) and len(values) > 1:
            raise invalid_argument(f"{name} is given {len(values)} times but is not repeated", name)
        converted = [_text_value(leaf, value, name) for value in values]
        _set_path(data, fields, converted if _is_repeated(leaf) else converted[0])

    for name, value in captures.items():
        fields = _field_path(descriptor, name)
        _set_path(data, fields, _text_value(fields[-1], value, name))
    return message_from_json(data, GetMessageClass(descriptor))


def response_to_json(route: RestRoute, message: Message, *, british: bool = False) -> Any:
    """The HTTP body of a response: the whole message, or its `response_body` field."""
    data = message_to_json(message, british=british)
    if not route.response_body:
        return data
    return data.get(route.response_body, {})

"""A call as the gateway's REST API spells it, read from the method's `google.api.http` annotation.

The gateway builds its routes from the same annotations (gateway/routes.py), so this is its mirror
image: a request message becomes a verb, a path, query parameters and a JSON body; the JSON answer,
whose enums are lower case without their prefix (`"pending"`), becomes the response message again;
an error body `{"detail", "error_code", "field"?, "advice"?}` with its status and `Retry-After` becomes the same
`AitbcApiError` the gRPC transport raises. Nothing here does I/O.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

from google.api import annotations_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from aitbc.client._status import StatusCode, code_for_http
from aitbc.client._transport import M
from aitbc.client.errors import AitbcApiError

SSE_MEDIA_TYPE = "text/event-stream"
# grpc-gateway's header for a call's deadline, in gRPC's own format; the gateway honours it.
TIMEOUT_HEADER = "Grpc-Timeout"
_VARIABLE = re.compile(r"\{([^}=]+)(=[^}]*)?\}")
_WELL_KNOWN_PREFIX = "google.protobuf."


@dataclass(frozen=True, slots=True)
class RestCall:
    verb: str
    # Relative to the base URL, e.g. "/v1/jobs/job_1/cancel".
    path: str
    query: tuple[tuple[str, str], ...] = ()
    # The JSON body, or None for none.
    body: dict[str, Any] | None = None
    # The response field that is the whole HTTP body ("job"), or "" for the whole response.
    response_body: str = ""


def rest_call(method: MethodDescriptor, request: Message) -> RestCall:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        raise ValueError(f"{method.full_name} has no HTTP route")
    rule = options.Extensions[annotations_pb2.http]
    pattern = rule.WhichOneof("pattern")
    if pattern == "custom":
        verb, template = rule.custom.kind.upper(), rule.custom.path
    else:
        verb, template = str(pattern).upper(), getattr(rule, str(pattern))
    # Set fields only, by their proto names; enums by name, which the gateway accepts.
    data = json_format.MessageToDict(request, preserving_proto_field_name=True)
    path = _VARIABLE.sub(lambda variable: _path_value(data, variable), template)
    if rule.body == "*":
        return RestCall(verb, path, body=data, response_body=rule.response_body)
    body = data.pop(rule.body, {}) if rule.body else None
    return RestCall(verb, path, tuple(_query(data)), body, rule.response_body)


def _path_value(data: dict[str, Any], variable: re.Match[str]) -> str:
    """The field a path variable names, taken out of `data` (a path capture is not sent twice)."""
    *parents, leaf = variable.group(1).split(".")
    holder = data
    for name in parents:
        holder = holder.get(name, {})
    value = holder.pop(leaf, "")
    if value == "":
        # Without it the path would name another route; the coordinator says the same over gRPC.
        raise AitbcApiError(
            StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", f"{variable.group(1)}: is required", variable.group(1)
        )
    # `{name=a/*}` captures slashes; a plain `{name}` is one segment.
    return quote(str(value), safe="/" if variable.group(2) else "")


def _query(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, str]]:
    """Fields as query parameters: nested ones by dotted names, repeated ones repeated."""
    for name, value in data.items():
        if isinstance(value, dict):
            yield from _query(value, f"{prefix}{name}.")
        else:
            for item in value if isinstance(value, list) else [value]:
                yield f"{prefix}{name}", json.dumps(item) if isinstance(item, bool) else str(item)


def parse_response(call: RestCall, data: object, response_type: type[M]) -> M:
    return from_json({call.response_body: data} if call.response_body else data, response_type)


def from_json(data: object, message_type: type[M]) -> M:
    """A message from the gateway's JSON; fields this SDK does not know yet are ignored."""
    message = message_type()
    # types-protobuf types DESCRIPTOR as a union with upb's class of the same name.
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    try:
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        json_format.ParseDict(_enums_by_name(descriptor, data), message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, AttributeError) as error:
        detail = f"the gateway answered JSON that is no {descriptor.name}: {error}"
        raise AitbcApiError(StatusCode.INTERNAL, "INTERNAL", detail) from None
    return message


@functools.cache
def _enum_prefix(enum: EnumDescriptor) -> str:
    """`JobState` → `JOB_STATE_`, the prefix REST leaves out."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", enum.name).upper() + "_"


def _enums_by_name(descriptor: Descriptor, data: Any) -> Any:
    """`data` with each REST enum spelling (`"pending"`) turned back into its value name."""
    if not isinstance(data, dict) or descriptor.full_name.startswith(_WELL_KNOWN_PREFIX):
        return data
    fields = descriptor.fields_by_name
    return {name: _value_by_name(fields[name], value) if name in fields else value for name, value in data.items()}


def _value_by_name(field: FieldDescriptor, value: object) -> object:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        value_field = entry.fields_by_name["value"]
        if isinstance(value, dict):
            return {key: _single_by_name(value_field, item) for key, item in value.items()}
        return value
    if field.is_repeated and isinstance(value, list):
        return [_single_by_name(field, item) for item in value]
    return _single_by_name(field, value)


def _single_by_name(field: FieldDescriptor, value: object) -> object:
    if field.enum_type is not None and isinstance(value, str):
        name = _enum_prefix(field.enum_type) + value.upper()
        return name if name in field.enum_type.values_by_name else value
    if field.message_type is not None:
        return _enums_by_name(field.message_type, value)
    return value


def error_from_http(status: int, body: bytes, retry_after: str | None) -> AitbcApiError:
    """The error an HTTP error response stands for; a body not in the gateway's shape (a proxy's page)
    keeps its status's code and its text."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("error_code"), str):
        code = code_for_http(status)
        detail = body.decode(errors="replace").strip()[:200] or f"HTTP {status}"
        return AitbcApiError(code, code.name, detail, retry_after=_seconds(retry_after))
    return error_from_body(data, status, _seconds(retry_after))


def error_from_body(data: Mapping[str, Any], status: int, retry_after: float | None = None) -> AitbcApiError:
    """An error body `{"detail", "error_code", "field"?, "advice"?}` that came with `status`."""
    reason = str(data.get("error_code") or "")
    code = code_for_http(status, reason)
    return AitbcApiError(
        code, reason or code.name, _text(data, "detail") or "", _text(data, "field"), retry_after, _text(data, "advice")
    )


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _seconds(retry_after: str | None) -> float | None:
    """`Retry-After` in seconds; the gateway sends whole seconds (an HTTP date is not used here)."""
    try:
        seconds = float(retry_after) if retry_after is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def timeout_header(seconds: float) -> dict[str, str]:
    """`Grpc-Timeout` for a deadline `seconds` away: at most 8 digits, in milliseconds or else seconds."""
    milliseconds = max(1, math.ceil(seconds * 1000))
    value = f"{milliseconds}m" if milliseconds < 10**8 else f"{min(math.ceil(seconds), 10**8 - 1)}S"
    return {TIMEOUT_HEADER: value}


# The gateway's last event of a stream that ran its course (its data is `{}`).
END_EVENT = "end"


@dataclass
class SseDecoder:
    """Server-Sent Events, line by line: `feed` returns (event name, data) at each event's end."""

    _event: str = "message"
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> tuple[str, str] | None:
        if not line:
            if not self._data:
                return None
            event = (self._event, "\n".join(self._data))
            self._event, self._data = "message", []
            return event
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


def stream_message(event: str, data: str, response_type: type[M]) -> M:
    """One SSE event of a stream as its message; an `error` event (the stream failed after it began)
    raises, with the HTTP status the gateway says the error would have had."""
    try:
        decoded = json.loads(data)
    except ValueError:
        detail = f"the gateway sent an event that is no JSON: {data[:200]}"
        raise AitbcApiError(StatusCode.INTERNAL, "INTERNAL", detail) from None
    if event == "error":
        if not isinstance(decoded, dict):
            raise AitbcApiError(StatusCode.UNKNOWN, "UNKNOWN", str(decoded)[:200])
        status = decoded.get("status")
        raise error_from_body(decoded, status if isinstance(status, int) else 500)
    return from_json(decoded, response_type)

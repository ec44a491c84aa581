"""The REST route table, read from the `google.api.http` annotations of the aitbc.v1 descriptors.

Nothing here names a service or a path: an annotated RPC added to a .proto
file under aitbc/v1 gets a route the next time the gateway starts.

Path templates follow google/api/http.proto:

    Template = "/" Segments [ ":" Verb ]
    Segment  = "*" | "**" | LITERAL | "{" FieldPath [ "=" Segments ] "}"

`{field}` is `{field=*}` (one segment); `**` matches the rest of the path and
may only come last. Where several templates match a path, the most specific
wins: templates are compared segment by segment, a literal beating `*`
beating `**`, so `/v1/jobs/available` wins over `/v1/jobs/{job_id}` whatever
the order of the declarations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor, MethodDescriptor

from aitbc.api_descriptors import is_keyless

log = logging.getLogger(__name__)

# RPCs whose names start with one of these answer 201 Created on success.
CREATED_PREFIXES = ("Create", "Submit", "Register")


class SegmentKind(IntEnum):
    """Also the rank in specificity: lower is more specific."""

    LITERAL = 0
    ANY = 1  # `*`: exactly one segment
    REST = 2  # `**`: zero or more segments, only at the end


@dataclass(frozen=True, slots=True)
class Segment:
    kind: SegmentKind
    literal: str = ""


@dataclass(frozen=True, slots=True)
class Variable:
    """A `{field.path=...}` capture over segments[start:end] (end None: to the end)."""

    field_path: str
    start: int
    end: int | None


_WILDCARDS = {SegmentKind.ANY: "*", SegmentKind.REST: "**"}


class AnnotationError(ValueError):
    """An HTTP annotation the gateway cannot serve: a bad template or a field the message lacks."""


@dataclass(frozen=True, slots=True)
class PathTemplate:
    text: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        return _TemplateParser(text).parse()

    @property
    def specificity(self) -> tuple[int, ...]:
        # A verb makes a template more specific than the same path without one.
        return (*(segment.kind for segment in self.segments), 0 if self.verb else 1)

    def match(self, path: str) -> dict[str, str] | None:
        """The captured field values, or None when `path` does not match."""
        if self.verb:
            path, colon, verb = path.rpartition(":")
            if not colon or verb != self.verb:
                return None
        if not path.startswith("/"):
            return None
        parts = path[1:].split("/")
        if not self._segments_match(parts):
            return None
        return {variable.field_path: "/".join(parts[variable.start : variable.end]) for variable in self.variables}

    def _segments_match(self, parts: list[str]) -> bool:
        for index, segment in enumerate(self.segments):
            if segment.kind is SegmentKind.REST:
                return True
            if index >= len(parts):
                return False
            if segment.kind is SegmentKind.LITERAL and parts[index] != segment.literal:
                return False
            if segment.kind is SegmentKind.ANY and not parts[index]:
                return False
        return len(parts) == len(self.segments)

    def openapi_path(self) -> str:
        """The template in OpenAPI's spelling: every variable as `{field.path}`."""
        starts = {variable.start: variable for variable in self.variables}
        parts: list[str] = []
        index = 0
        while index < len(self.segments):
            variable = starts.get(index)
            if variable is None:
                segment = self.segments[index]
                parts.append(segment.literal or _WILDCARDS[segment.kind])
                index += 1
            else:
                parts.append("{" + variable.field_path + "}")
                index = len(self.segments) if variable.end is None else variable.end
        return "/" + "/".join(parts) + (f":{self.verb}" if self.verb else "")


class _TemplateParser:
    """Recursive descent over the grammar in the module docstring."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._segments: list[Segment] = []
        self._variables: list[Variable] = []

    def parse(self) -> PathTemplate:
        self._expect("/")
        self._parse_segments(inside_variable=False)
        verb = ""
        if self._peek() == ":":
            self._pos += 1
            verb = self._literal()
        if self._pos != len(self._text):
            self._fail("unexpected character")
        for segment in self._segments[:-1]:
            if segment.kind is SegmentKind.REST:
                self._fail("`**` must be the last segment")
        return PathTemplate(self._text, tuple(self._segments), tuple(self._variables), verb)

    def _parse_segments(self, *, inside_variable: bool) -> None:
        while True:
            self._parse_segment(inside_variable=inside_variable)
            if self._peek() != "/":
                return
            self._pos += 1

    def _parse_segment(self, *, inside_variable: bool) -> None:
        if self._text.startswith("**", self._pos):
            self._pos += 2
            self._segments.append(Segment(SegmentKind.REST))
        elif self._peek() == "*":
            self._pos += 1
            self._segments.append(Segment(SegmentKind.ANY))
        elif self._peek() == "{":
            if inside_variable:
                self._fail("variables cannot nest")
            self._parse_variable()
        else:
            self._segments.append(Segment(SegmentKind.LITERAL, self._literal()))

    def _parse_variable(self) -> None:
        self._expect("{")
        start = self._pos
        while self._peek() not in ("}", "=", ""):
            self._pos += 1
        field_path = self._text[start : self._pos]
        if not field_path or not all(part.isidentifier() for part in field_path.split(".")):
            self._fail(f"bad field path {field_path!r}")
        first = len(self._segments)
        if self._peek() == "=":
            self._pos += 1
            self._parse_segments(inside_variable=True)
        else:
            self._segments.append(Segment(SegmentKind.ANY))
        self._expect("}")
        end = None if self._segments[-1].kind is SegmentKind.REST else len(self._segments)
        self._variables.append(Variable(field_path, first, end))

    def _literal(self) -> str:
        start = self._pos
        while self._peek() not in ("/", ":", "{", "}", "*", "=", ""):
            self._pos += 1
        if self._pos == start:
            self._fail("empty segment")
        return self._text[start : self._pos]

    def _peek(self) -> str:
        return self._text[self._pos : self._pos + 1]

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            self._fail(f"expected {char!r}")
        self._pos += 1

    def _fail(self, problem: str) -> None:
        raise AnnotationError(f"path template {self._text!r}, position {self._pos}: {problem}")


@dataclass(frozen=True, slots=True)
class RestRoute:
    """One HTTP binding of one RPC."""

    http_method: str
    template: PathTemplate
    method: MethodDescriptor
    # "" (no body), "*" (the whole request) or a top-level request field.
    body: str
    # "" (the whole response) or the response field that is the HTTP body.
    response_body: str
    operation_id: str

    @property
    def server_streaming(self) -> bool:
        return bool(self.method.server_streaming)

    @property
    def keyless(self) -> bool:
        """Public: the route asks for no API key (`option (aitbc.v1.keyless)` on its method)."""
        return is_keyless(self.method)

    @property
    def success_status(self) -> int:
        return 201 if self.method.name.startswith(CREATED_PREFIXES) else 200


def _rule_bindings(rule: http_pb2.HttpRule) -> Iterator[tuple[str, str, http_pb2.HttpRule]]:
    for binding in (rule, *rule.additional_bindings):
        pattern = binding.WhichOneof("pattern")
        if pattern is None:
            continue
        if pattern == "custom":
            yield binding.custom.kind.upper(), binding.custom.path, binding
        else:
            yield pattern.upper(), getattr(binding, pattern), binding


def field_at(message: Descriptor, dotted: str) -> FieldDescriptor:
    """The field `a.b.c` names in `message`, through message fields; KeyError when there is none."""
    *parents, leaf = dotted.split(".")
    current: Descriptor | None = message
    for name in parents:
        current = current.fields_by_name[name].message_type if current is not None else None
    if current is None:
        raise KeyError(dotted)
    return current.fields_by_name[leaf]


def _check_fields(route: RestRoute) -> RestRoute:
    method = route.method
    named = [(method.input_type, variable.field_path) for variable in route.template.variables]
    if route.body not in ("", "*"):
        named.append((method.input_type, route.body))
    if route.response_body:
        named.append((method.output_type, route.response_body))
    for message, dotted in named:
        try:
            field_at(message, dotted)
        except KeyError:
            raise AnnotationError(f"{method.full_name}: {message.full_name} has no field {dotted!r}") from None
    return route


def routes_for_method(method: MethodDescriptor) -> list[RestRoute]:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    if method.client_streaming:
        # HTTP/1.1 request bodies are not a message stream; such RPCs stay gRPC-only.
        log.warning("%s is client-streaming: its HTTP annotation is ignored", method.full_name)
        return []
    base_id = f"{method.containing_service.name}_{method.name}"
    return [
        _check_fields(
            RestRoute(
                http_method=http_method,
                template=PathTemplate.parse(path),
                method=method,
                body=binding.body,
                response_body=binding.response_body,
                operation_id=base_id if index == 0 else f"{base_id}{index + 1}",
            )
        )
        for index, (http_method, path, binding) in enumerate(_rule_bindings(options.Extensions[annotations_pb2.http]))
    ]


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: RestRoute
    captures: dict[str, str]


@dataclass(frozen=True, slots=True)
class MethodNotAllowed:
    allowed: frozenset[str]


class RouteTable:
    def __init__(self, routes: Iterable[RestRoute]) -> None:
        # Stable sort: among equally specific templates the declaration order decides.
        self.routes: tuple[RestRoute, ...] = tuple(sorted(routes, key=lambda route: route.template.specificity))

    @classmethod
    def from_files(cls, files: Iterable[FileDescriptor]) -> RouteTable:
        return cls(
            route
            for file in files
            for service in file.services_by_name.values()
            for method in service.methods
            for route in routes_for_method(method)
        )

    def match(self, http_method: str, path: str) -> RouteMatch | MethodNotAllowed | None:
        """The route for `http_method` of the most specific template that matches `path`.

        The most specific template is the resource: `/v1/jobs/available` is not a job, so DELETE there is
        405 (Allow: GET), not a delete of job "available" through `/v1/jobs/{job_id}`.
        """
        resource: str | None = None
        allowed: set[str] = set()
        for route in self.routes:
            if resource is not None and route.template.text != resource:
                continue
            captures = route.template.match(path)
            if captures is None:
                continue
            resource = route.template.text
            if route.http_method == http_method:
                return RouteMatch(route, captures)
            allowed.add(route.http_method)
        return MethodNotAllowed(frozenset(allowed)) if allowed else None

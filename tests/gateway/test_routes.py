"""The route table: read from the real descriptors, complete, and most-specific-first."""

from __future__ import annotations

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor

import aitbc.v1
from aitbc.api_descriptors import api_files
from aitbc.v1 import jobs_pb2
from gateway.routes import AnnotationError, MethodNotAllowed, PathTemplate, RestRoute, RouteMatch, RouteTable

GET_JOB = jobs_pb2.DESCRIPTOR.services_by_name["JobService"].methods_by_name["GetJob"]


def annotated_bindings(files: list[FileDescriptor]) -> set[tuple[str, str, str]]:
    """(HTTP method, path, RPC) for every binding of every annotated method, read independently of gateway.routes."""
    bindings = set()
    for file in files:
        for service in file.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if not options.HasExtension(annotations_pb2.http):
                    continue
                rule = options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    bindings.add((verb.upper(), getattr(binding, verb), method.full_name))
    return bindings


def table_bindings(table: RouteTable) -> set[tuple[str, str, str]]:
    return {(route.http_method, route.template.text, route.method.full_name) for route in table.routes}


def test_every_annotated_method_of_aitbc_v1_has_a_route() -> None:
    files = api_files(aitbc.v1)
    assert {file.name for file in files} >= {"aitbc/v1/jobs.proto", "aitbc/v1/models.proto", "aitbc/v1/miner.proto"}
    table = RouteTable.from_files(files)
    assert table_bindings(table) == annotated_bindings(files)
    assert {(verb, path) for verb, path, _ in table_bindings(table)} >= {
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/{job_id}"),
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs/{job_id}/cancel"),
        ("GET", "/v1/jobs/{job_id}/stream"),
        ("GET", "/v1/catalog"),
    }


def _annotated_file(name: str, *methods: tuple[str, str, str]) -> FileDescriptor:
    """A .proto added after the gateway was written, with (RPC, HTTP verb, path) methods on GetJob's messages."""
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"tests/gateway/{name}.proto",
        package=f"aitbc.gatewaytest.{name}",
        syntax="proto3",
        dependency=["google/api/annotations.proto", "aitbc/v1/jobs.proto"],
    )
    service = proto.service.add(name="MinerHttpService")
    for rpc, verb, path in methods:
        method = service.method.add(
            name=rpc, input_type=".aitbc.v1.GetJobRequest", output_type=".aitbc.v1.GetJobResponse"
        )
        method.options.Extensions[annotations_pb2.http].CopyFrom(http_pb2.HttpRule(**{verb: path, "body": "*"}))
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(proto.name)
    except KeyError:
        pool.Add(proto)
        return pool.FindFileByName(proto.name)


def test_an_rpc_annotated_later_is_routed_with_no_gateway_code() -> None:
    extra = _annotated_file(
        "extra",
        ("LeaseJob", "post", "/v1/jobs/{job_id}/lease"),
        ("ClaimableJobs", "get", "/v1/jobs/claimable"),
        ("RegisterRig", "post", "/v1/rigs/register"),
    )
    files = [*api_files(aitbc.v1), extra]
    table = RouteTable.from_files(files)
    assert table_bindings(table) == annotated_bindings(files)

    # The literal path wins over JobService's GET /v1/jobs/{job_id}, declared in a file read earlier.
    found = table.match("GET", "/v1/jobs/claimable")
    assert isinstance(found, RouteMatch)
    assert found.route.method.name == "ClaimableJobs"
    lease = table.match("POST", "/v1/jobs/job_1/lease")
    assert isinstance(lease, RouteMatch)
    assert (lease.route.method.name, lease.captures) == ("LeaseJob", {"job_id": "job_1"})
    register = table.match("POST", "/v1/rigs/register")
    assert isinstance(register, RouteMatch)
    assert register.route.success_status == 201


def test_an_annotation_naming_a_missing_field_fails_at_start_up() -> None:
    bad = _annotated_file("bad", ("LeaseJob", "post", "/v1/jobs/{job}/lease"))
    with pytest.raises(AnnotationError, match="GetJobRequest has no field 'job'"):
        RouteTable.from_files([bad])


def _route(path: str, method: MethodDescriptor = GET_JOB, http_method: str = "GET") -> RestRoute:
    return RestRoute(http_method, PathTemplate.parse(path), method, "", "", "test")


@pytest.mark.parametrize("reverse", [False, True])
def test_literal_segments_win_over_captures_whatever_the_order(reverse: bool) -> None:
    routes = [
        _route("/v1/{rest=**}"),
        _route("/v1/jobs/{job_id}"),
        _route("/v1/jobs/available"),
        _route("/v1/{kind}/available"),
    ]
    table = RouteTable(reversed(routes) if reverse else routes)

    def winner(path: str) -> str:
        found = table.match("GET", path)
        assert isinstance(found, RouteMatch)
        return found.route.template.text

    assert winner("/v1/jobs/available") == "/v1/jobs/available"
    assert winner("/v1/jobs/job_1") == "/v1/jobs/{job_id}"
    assert winner("/v1/miners/available") == "/v1/{kind}/available"
    assert winner("/v1/miners/m1/jobs") == "/v1/{rest=**}"


def test_wrong_method_lists_the_allowed_ones() -> None:
    table = RouteTable([_route("/v1/jobs/{job_id}"), _route("/v1/jobs/{job_id}", http_method="DELETE")])
    assert table.match("POST", "/v1/jobs/job_1") == MethodNotAllowed(frozenset({"GET", "DELETE"}))
    assert table.match("GET", "/v1/other") is None


def test_a_literal_path_is_its_own_resource() -> None:
    table = RouteTable(
        [
            _route("/v1/jobs/{job_id}"),
            _route("/v1/jobs/{job_id}", http_method="DELETE"),
            _route("/v1/jobs/available"),
        ]
    )
    # Not a delete of job "available": /v1/jobs/available answers GET only.
    assert table.match("DELETE", "/v1/jobs/available") == MethodNotAllowed(frozenset({"GET"}))
    assert isinstance(table.match("DELETE", "/v1/jobs/job_1"), RouteMatch)


@pytest.mark.parametrize(
    ("template", "path", "captures"),
    [
        ("/v1/jobs/{job_id}", "/v1/jobs/job_1", {"job_id": "job_1"}),
        ("/v1/jobs/{job_id}", "/v1/jobs/", None),
        ("/v1/jobs/{job_id}", "/v1/jobs/a/b", None),
        ("/v1/{job.owner}/jobs/{job.id}", "/v1/me/jobs/j", {"job.owner": "me", "job.id": "j"}),
        ("/v1/{name=shelves/*}/books", "/v1/shelves/s1/books", {"name": "shelves/s1"}),
        ("/v1/{name=shelves/*}/books", "/v1/racks/s1/books", None),
        ("/v1/files/{path=**}", "/v1/files/a/b/c", {"path": "a/b/c"}),
        ("/v1/jobs/{job_id}:cancel", "/v1/jobs/job_1:cancel", {"job_id": "job_1"}),
        ("/v1/jobs/{job_id}:cancel", "/v1/jobs/job_1", None),
        ("/v1/*/jobs", "/v1/anything/jobs", {}),
    ],
)
def test_template_matching(template: str, path: str, captures: dict[str, str] | None) -> None:
    assert PathTemplate.parse(template).match(path) == captures


@pytest.mark.parametrize(
    ("template", "openapi_path"),
    [
        ("/v1/{name=shelves/*}/books/{book.id}:get", "/v1/{name}/books/{book.id}:get"),
        ("/v1/files/{path=**}", "/v1/files/{path}"),
        ("/v1/*/jobs", "/v1/*/jobs"),
    ],
)
def test_openapi_spelling_of_templates(template: str, openapi_path: str) -> None:
    assert PathTemplate.parse(template).openapi_path() == openapi_path


@pytest.mark.parametrize(
    "template", ["v1/jobs", "/v1/{job_id", "/v1/{a={b}}", "/v1/**/jobs", "/v1//jobs", "/v1/{bad-name}", "/v1/{x}}"]
)
def test_bad_templates_are_rejected(template: str) -> None:
    with pytest.raises(AnnotationError):
        PathTemplate.parse(template)

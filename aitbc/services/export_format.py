"""An export as a document: jobs as a JSON array or as CSV (RFC 4180, a header row), in HttpBody chunks.

Rows are encoded as they come and sent in chunks of about CHUNK_BYTES, so an export of any length holds
one page of jobs and one chunk at a time. The same bytes go over gRPC and, unchanged, over HTTP.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

from google.api import httpbody_pb2

from aitbc.domain.history import EXPORT_COLUMNS, export_row
from aitbc.domain.jobs import JobRecord

CHUNK_BYTES = 64 * 1024
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8; header=present"}


def _csv_lines(rows: Iterable[dict[str, Any]], *, header: bool) -> str:
    buffer = io.StringIO()
    # RFC 4180: CRLF line ends, fields with commas, quotes or line breaks quoted, quotes doubled.
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


async def encode_export(
    pages: AsyncIterable[list[tuple[JobRecord, int]]], export_format: str
) -> AsyncIterator[httpbody_pb2.HttpBody]:
    """The document in chunks of at most CHUNK_BYTES (a chunk may end inside a UTF-8 character: the
    document is the concatenation of the bytes); the first chunk carries the content type, as HttpBody has it."""
    content_type = CONTENT_TYPES[export_format]
    buffer = bytearray(b"[" if export_format == "json" else _csv_lines((), header=True).encode())
    first_row = True
    sent_any = False

    def chunk(size: int) -> httpbody_pb2.HttpBody:
        nonlocal sent_any
        body = httpbody_pb2.HttpBody(content_type="" if sent_any else content_type, data=bytes(buffer[:size]))
        del buffer[:size]
        sent_any = True
        return body

    async for page in pages:
        rows = [export_row(job, cost) for job, cost in page]
        if export_format == "csv":
            text = _csv_lines(rows, header=False)
        else:
            text = ("\n" if first_row else ",\n") + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
        first_row = first_row and not rows
        buffer += text.encode()
        while len(buffer) >= CHUNK_BYTES:
            yield chunk(CHUNK_BYTES)
    if export_format == "json":
        buffer += b"]\n" if first_row else b"\n]\n"
    yield chunk(len(buffer))

"""A finished job's result package: its files, their checksums, and the zip that carries them.

Pure: the package is a function of the stored job, its events and its receipt, so the checksums the
coordinator records when the job finishes are the checksums of every later download of the same job
(`output.json` holds nothing that changes afterwards: no retention date, no progress estimate).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aitbc.domain.canonical import format_time, sha256_hex
from aitbc.domain.errors import invalid_argument
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.receipts import Receipt

OUTPUT_JSON = "output.json"
RESULT_TXT = "result.txt"
STDOUT_LOG = "logs/stdout.log"
STDERR_LOG = "logs/stderr.log"
RECEIPT_JSON = "receipt.json"
# Binary outputs will go here once jobs have them; today the folder is always empty.
ARTIFACTS_DIR = "artifacts/"
# A zip's entries carry a time; a fixed one keeps the bytes of a download the same every time.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class ResultFormat(StrEnum):
    ZIP = "zip"
    JSON = "json"
    TXT = "txt"

    @classmethod
    def parse(cls, text: str) -> ResultFormat:
        """`text` as a format ("" is zip); INVALID_ARGUMENT naming `format` otherwise."""
        if not text:
            return cls.ZIP
        try:
            return cls(text.lower())
        except ValueError:
            expected = ", ".join(member.value for member in cls)
            raise invalid_argument("format", f"unknown format {text!r}; expected one of {expected}") from None


@dataclass(frozen=True, slots=True)
class PackedFile:
    """One form of a result as a file: its name, media type and bytes."""

    filename: str
    media_type: str
    data: bytes


def package_files(job: JobRecord, events: Sequence[JobEvent], receipt: Receipt | None) -> dict[str, bytes]:
    """The package's files by path (the artifacts folder has none yet), in the order a zip lists them."""
    files = {
        OUTPUT_JSON: _json_bytes(output_document(job)),
        RESULT_TXT: job.result.encode(),
        STDOUT_LOG: stdout_log(events).encode(),
        STDERR_LOG: stderr_log(events).encode(),
    }
    if receipt is not None:
        files[RECEIPT_JSON] = _json_bytes(receipt.to_json())
    return files


def checksums(files: Mapping[str, bytes]) -> dict[str, str]:
    """sha256 hex of each file, by path."""
    return {path: sha256_hex(data) for path, data in files.items()}


def sha256sum_lines(sums: Mapping[str, str]) -> str:
    """What `sha256sum` prints for these files (hash, two spaces, path), which `sha256sum -c` reads back."""
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(sums.items()))


def packed(job: JobRecord, files: Mapping[str, bytes], form: ResultFormat) -> PackedFile:
    """The package in one form: the zip, output.json with the result (json), or the result alone (txt)."""
    stem = f"job_{job.job_id.removeprefix('job_')}"
    if form is ResultFormat.TXT:
        return PackedFile(f"{stem}.txt", "text/plain; charset=utf-8", files[RESULT_TXT])
    if form is ResultFormat.JSON:
        document = {**json.loads(files[OUTPUT_JSON]), "result": job.result}
        return PackedFile(f"{stem}.json", "application/json", _json_bytes(document))
    return PackedFile(f"{stem}.zip", "application/zip", zip_bytes(files))


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, _ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
        folder = zipfile.ZipInfo(ARTIFACTS_DIR, _ZIP_TIME)
        folder.external_attr = 0o40755 << 16 | 0x10  # a directory, for unzip and for Windows
        archive.writestr(folder, b"")
    return buffer.getvalue()


def output_document(job: JobRecord) -> dict[str, Any]:
    """output.json: the job's metadata and final status, without its prompt or output."""
    return {
        "job_id": job.job_id,
        "status": job.state.value,
        "model": job.spec.model,
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "completed_at": _time(job.completed_at),
        "miner_id": job.miner_id,
        "attempts": job.attempt,
        "finish_reason": job.finish_reason,
        "error": job.error,
        "usage": {"prompt_tokens": job.prompt_tokens, "completion_tokens": job.completion_tokens},
        "input_hash": job.spec.input_hash(),
        "receipt_id": job.receipt_id,
        "files": {
            "result": RESULT_TXT,
            "stdout": STDOUT_LOG,
            "stderr": STDERR_LOG,
            "receipt": RECEIPT_JSON if job.receipt_id else None,
            "artifacts": ARTIFACTS_DIR,
        },
    }


def stdout_log(events: Sequence[JobEvent]) -> str:
    """What the miners produced: each chunk of tokens as it arrived, with its time and attempt."""
    lines = [
        f"{format_time(event.time)} attempt={event.attempt} seq={event.seq} tokens={event.token_count} "
        f"{json.dumps(event.text, ensure_ascii=False)}\n"
        for event in events
        if event.kind is EventKind.TOKENS
    ]
    return "".join(lines)


def stderr_log(events: Sequence[JobEvent]) -> str:
    """How the job went: each state change with its time, attempt, miner, token counts and error."""
    lines: list[str] = []
    for event in events:
        if event.kind is not EventKind.STATE or event.state is None:
            continue
        parts = [format_time(event.time), event.state.value, f"attempt={event.attempt}"]
        if event.miner_id:
            parts.append(f"miner={event.miner_id}")
        if event.state.is_terminal:
            parts.append(f"prompt_tokens={event.prompt_tokens} completion_tokens={event.completion_tokens}")
        if event.finish_reason:
            parts.append(f"finish_reason={event.finish_reason}")
        if event.error:
            parts.append(f"error={json.dumps(event.error, ensure_ascii=False)}")
        lines.append(" ".join(parts) + "\n")
    return "".join(lines)


def _json_bytes(document: Mapping[str, Any]) -> bytes:
    # Indented and with sorted keys: readable in an editor, and the same bytes for the same job every time.
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _time(moment: Any) -> str | None:
    return None if moment is None else format_time(moment)

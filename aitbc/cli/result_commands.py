"""The result verbs: download, verify, share, delete (docs/results.md).

Each exists in the long form of the seed's results guide (`aitbc client download --job-id ID`) and, except
`verify` (`aitbc verify` checks receipts), in the short form (`aitbc download ID`). They call the
coordinator's `ResultService` over gRPC; `verify` checks here, the coordinator only supplies its checksums.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TypeVar

from aitbc import config
from aitbc.cli.reporting import CommandError, reports_errors
from aitbc.cli.tls_options import add_tls_options, coordinator_channel
from aitbc.client.errors import translate_rpc_errors
from aitbc.domain.blocks import ReceiptProof
from aitbc.domain.errors import AitbcError
from aitbc.domain.receipts import Receipt
from aitbc.domain.result_package import RECEIPT_JSON, RESULT_TXT, sha256sum_lines
from aitbc.domain.signing import decode_key
from aitbc.domain.verify import verify_receipt
from aitbc.services.ledger_convert import proof_from_proto
from aitbc.v1 import receipts_pb2, receipts_pb2_grpc, results_pb2, results_pb2_grpc

ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)
_CALL_TIMEOUT = 30.0
CHECKSUM_FILE = "output.sha256"


def add_result_verbs(subparsers: argparse._SubParsersAction[ParserT], *, long_form: bool) -> None:
    """Add download, share, delete (and, in the long form, verify) to `aitbc` or `aitbc client`."""

    def add(name: str, help_text: str, handler: object) -> ParserT:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        if long_form:
            parser.add_argument("--job-id", required=True, metavar="JOB_ID")
        else:
            parser.add_argument("job_id", metavar="JOB_ID")
        parser.add_argument("--coordinator", metavar="HOST:PORT", help="coordinator gRPC address")
        parser.add_argument(
            "--api-key", metavar="KEY", help=f"client API key (default: ${config.ENV_API_KEY} or the saved key)"
        )
        add_tls_options(parser)
        parser.set_defaults(handler=handler)
        return parser

    download = add("download", "download a finished job's result package and unpack it into a folder", _download)
    download.add_argument(
        "--output", type=Path, default=Path("."), metavar="DIR", help="the folder to unpack into (default: .)"
    )
    download.add_argument(
        "--checksum",
        action="store_true",
        help=f"also write {CHECKSUM_FILE} there, for `sha256sum -c {CHECKSUM_FILE}` run in that folder",
    )
    download.add_argument(
        "--format",
        choices=["zip", "json", "txt"],
        default="zip",
        help="zip: the whole package, unpacked; json or txt: one file (default: zip)",
    )
    if long_form:
        verify = add("verify", "check downloaded files against the coordinator's checksums, and the receipt", _verify)
        verify.add_argument(
            "--dir", type=Path, default=Path("."), metavar="DIR", help="where the package was unpacked (default: .)"
        )
        verify.add_argument(
            "--coordinator-key",
            metavar="KEY",
            help="pin the coordinator's public key (base64url; --coordinator-key=KEY) (default: the one it reports)",
        )
    share = add("share", "print a link anyone can open without a key, until it expires", _share)
    share.add_argument("--expires", default="7d", metavar="DURATION", help="30m, 12h, 7d, ... (default: %(default)s)")
    share.add_argument("--list", action="store_true", help="list the job's links instead of making one")
    share.add_argument("--revoke", metavar="SHARE_ID", help="revoke a link (its id from --list) instead")
    delete = add("delete", "delete a finished job's prompt, result and logs; its record stays", _delete)
    delete.add_argument("--force", action="store_true", help="cancel the job first if it has not finished")


@contextmanager
def _stub(ns: argparse.Namespace) -> Iterator[tuple[results_pb2_grpc.ResultServiceStub, tuple[tuple[str, str]]]]:
    key = config.api_key(ns.api_key)
    if key is None:
        raise CommandError(f"no API key: pass --api-key KEY or set {config.ENV_API_KEY}")
    with coordinator_channel(ns) as channel, translate_rpc_errors():
        yield results_pb2_grpc.ResultServiceStub(channel), ((config.API_KEY_METADATA, key),)


def _receipt_proof(ns: argparse.Namespace, receipt_id: str) -> ReceiptProof | None:
    """The proof of the receipt's block, fetched (a receipt is public); None while it is not sealed yet."""
    with coordinator_channel(ns) as channel, translate_rpc_errors():
        stub = receipts_pb2_grpc.ReceiptServiceStub(channel)
        answer = stub.GetReceipt(receipts_pb2.GetReceiptRequest(receipt_id=receipt_id), timeout=_CALL_TIMEOUT)
    return proof_from_proto(answer.proof) if answer.HasField("proof") else None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_path(name: str) -> PurePosixPath:
    """A zip entry's path, refused if it would land outside the folder (zip slip)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise CommandError(f"the package holds an unsafe path {name!r}; nothing was written")
    return path


def _package_files(body: bytes) -> tuple[dict[str, bytes], list[str]]:
    """The files of a zip package by path, and its folders."""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            entries = archive.infolist()
            files = {info.filename: archive.read(info) for info in entries if not info.is_dir()}
            folders = [info.filename for info in entries if info.is_dir()]
    except zipfile.BadZipFile as problem:
        raise CommandError(f"the coordinator sent no valid zip: {problem}") from None
    for name in (*files, *folders):
        _safe_path(name)
    return files, folders


def _filename(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The file name a download's `content-disposition` metadata gives ("" without one)."""
    for key, value in metadata or ():
        if key == "content-disposition":
            text = value.decode() if isinstance(value, bytes) else str(value)
            return PurePosixPath(text.partition('filename="')[2].rstrip('"')).name
    return ""


@reports_errors
def _download(ns: argparse.Namespace) -> int:
    with _stub(ns) as (stub, metadata):
        request = results_pb2.DownloadJobResultRequest(job_id=ns.job_id, format=ns.format)
        body, call = stub.DownloadJobResult.with_call(request, metadata=metadata, timeout=_CALL_TIMEOUT)
    if ns.format == "zip":
        files, folders = _package_files(body.data)
    else:
        files, folders = {_filename(call.initial_metadata()) or f"{ns.job_id}.{ns.format}": body.data}, []
    output: Path = ns.output
    try:
        for folder in folders:
            (output / folder).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = output / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if ns.checksum:
            sums = {name: _sha256(data) for name, data in files.items()}
            (output / CHECKSUM_FILE).write_text(sha256sum_lines(sums), encoding="utf-8")
    except OSError as problem:
        raise CommandError(f"cannot write into {output}: {problem.strerror or problem}") from None
    written = sorted(files) + ([CHECKSUM_FILE] if ns.checksum else [])
    print(f"job {ns.job_id}: {', '.join(written)} in {output}")
    if ns.checksum and output != Path("."):
        print(f"check them with: cd {output} && sha256sum -c {CHECKSUM_FILE}", file=sys.stderr)
    return 0


@reports_errors
def _verify(ns: argparse.Namespace) -> int:
    with _stub(ns) as (stub, metadata):
        request = results_pb2.GetResultChecksumsRequest(job_id=ns.job_id)
        recorded = stub.GetResultChecksums(request, metadata=metadata, timeout=_CALL_TIMEOUT)
    folder: Path = ns.dir
    differ: list[str] = []
    for item in recorded.files:
        path = folder / _safe_path(item.path)
        try:
            status = "ok" if _sha256(path.read_bytes()) == item.sha256 else "differs"
        except FileNotFoundError:
            status = "missing"
        if status != "ok":
            differ.append(item.path)
        print(f"{item.path:<22} {status}")
    receipt_ok = _verify_receipt(ns, recorded, folder)
    if differ:
        print(f"error: differ from the checksums recorded at completion: {', '.join(differ)}", file=sys.stderr)
    return 0 if not differ and receipt_ok else 1


def _verify_receipt(ns: argparse.Namespace, recorded: results_pb2.GetResultChecksumsResponse, folder: Path) -> bool:
    """Check receipt.json (signature, amounts, the hash of result.txt) when the job has a receipt."""
    if not recorded.receipt_id:
        print(f"{'receipt':<22} skipped  the job was not charged, so it has no receipt")
        return True
    try:
        receipt = Receipt.from_json(json.loads((folder / RECEIPT_JSON).read_text(encoding="utf-8")))
        output = (folder / RESULT_TXT).read_text(encoding="utf-8")
        key = decode_key(ns.coordinator_key or recorded.coordinator_public_key, field="--coordinator-key")
    except (OSError, ValueError, AitbcError) as problem:
        print(f"{'receipt':<22} failed   {getattr(problem, 'message', problem)}")
        return False
    if receipt.receipt_id != recorded.receipt_id:
        print(f"{'receipt':<22} failed   {RECEIPT_JSON} is {receipt.receipt_id}, the job's is {recorded.receipt_id}")
        return False
    # The package holds the receipt as it was signed at the job's end; its block came later.
    proof = _receipt_proof(ns, receipt.receipt_id)
    verification = verify_receipt(receipt, coordinator_key=key, output_text=output, proof=proof)
    for check in verification.checks:
        print(f"{'receipt.' + check.name:<22} {check.status.value:<8} {check.detail}")
    return verification.ok


def _link_line(link: results_pb2.ShareLink) -> str:
    return f"{link.share_id}  {link.status:<8} expires {link.expires_at.ToJsonString()}"


@reports_errors
def _share(ns: argparse.Namespace) -> int:
    with _stub(ns) as (stub, metadata):
        if ns.list:
            request = results_pb2.ListShareLinksRequest(job_id=ns.job_id)
            for link in stub.ListShareLinks(request, metadata=metadata, timeout=_CALL_TIMEOUT).links:
                print(_link_line(link))
            return 0
        if ns.revoke:
            revoke = results_pb2.RevokeShareLinkRequest(job_id=ns.job_id, share_id=ns.revoke)
            print(_link_line(stub.RevokeShareLink(revoke, metadata=metadata, timeout=_CALL_TIMEOUT).link))
            return 0
        create = results_pb2.CreateShareLinkRequest(job_id=ns.job_id, expires=ns.expires)
        created = stub.CreateShareLink(create, metadata=metadata, timeout=_CALL_TIMEOUT)
    print(created.url)
    note = f"link {created.link.share_id} expires {created.link.expires_at.ToJsonString()}; shown once"
    print(note, file=sys.stderr)
    return 0


@reports_errors
def _delete(ns: argparse.Namespace) -> int:
    with _stub(ns) as (stub, metadata):
        request = results_pb2.DeleteJobResultRequest(job_id=ns.job_id, force=ns.force)
        deleted = stub.DeleteJobResult(request, metadata=metadata, timeout=_CALL_TIMEOUT)
    print(f"{deleted.job_id}: {deleted.status}, result deleted {deleted.deleted_at.ToJsonString()}")
    return 0

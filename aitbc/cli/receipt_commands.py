"""`aitbc verify`: check a receipt offline, one line per check, exit 1 if any check fails.

The receipt comes from a file (`aitbc verify receipt.json`: nothing is fetched; the file holds the signed
receipt, or what `GET /v1/receipts/{id}` answered: the receipt and its block's proof) or, by id, from the
coordinator, with the proof of its block. A receipt is public, so fetching one needs no key; `--job-id`
does, to read the job's result. Verification runs here, with `aitbc.domain.verify`: the coordinator is
asked for data at most, never for a verdict. Its public key is best pinned with `--coordinator-key`;
without it the key the coordinator reports is used, and the output says so. A receipt is sealed into a
block within a block interval (5 s by default) of its job's end; a fetched receipt not sealed yet is asked
for again until `--wait` runs out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf import json_format

from aitbc import config
from aitbc.client import Client
from aitbc.client.errors import AitbcApiError, translate_rpc_errors
from aitbc.domain.blocks import ReceiptProof
from aitbc.domain.errors import AitbcError
from aitbc.domain.receipts import Receipt
from aitbc.domain.signing import decode_key
from aitbc.domain.verify import verify_receipt
from aitbc.services.ledger_convert import proof_from_proto, receipt_from_proto
from aitbc.v1 import receipts_pb2, receipts_pb2_grpc

ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)
_CALL_TIMEOUT = 10.0
DEFAULT_SEAL_WAIT = 15.0
_SEAL_POLL = 0.5


def register_receipt_commands(subparsers: argparse._SubParsersAction[ParserT]) -> None:
    verify = subparsers.add_parser(
        "verify", help="verify a receipt offline, one line per check", description=__doc__.splitlines()[0]
    )
    verify.add_argument(
        "receipt", metavar="RECEIPT", nargs="?", help="a receipt id, or a file holding the receipt's JSON"
    )
    verify.add_argument(
        "--job-id", metavar="ID", help="verify this job's receipt, and its result against the receipt (default: none)"
    )
    verify.add_argument(
        "--coordinator-key",
        metavar="KEY",
        help="the coordinator's public key (base64url; write --coordinator-key=KEY, as a key may start with '-')",
    )
    verify.add_argument("--output-file", type=Path, metavar="PATH", help="the job's result text, to check its hash")
    verify.add_argument(
        "--miner-key", metavar="KEY", help="the miner's registered public key (base64url; --miner-key=KEY)"
    )
    verify.add_argument("--require-miner-signature", action="store_true", help="fail a receipt the miner did not sign")
    verify.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_SEAL_WAIT,
        metavar="SECONDS",
        help=f"how long to wait for a fetched receipt's block to be sealed (default: {DEFAULT_SEAL_WAIT:g})",
    )
    verify.add_argument("--coordinator", metavar="HOST:PORT", help="coordinator address, to fetch a receipt by id")
    verify.add_argument(
        "--api-key", metavar="KEY", help=f"API key, for --job-id (default: ${config.ENV_API_KEY} or the saved key)"
    )
    verify.set_defaults(handler=_verify)


def _verify(ns: argparse.Namespace) -> int:
    try:
        receipt, reported_key, proof = _load(ns)
        pinned = ns.coordinator_key
        key_text = pinned or reported_key
        if key_text is None:
            raise _Problem("a receipt read from a file needs --coordinator-key")
        coordinator_key = decode_key(key_text, field="--coordinator-key")
        miner_key = decode_key(ns.miner_key, field="--miner-key") if ns.miner_key else None
        output = ns.output_file.read_text(encoding="utf-8") if ns.output_file else ns.job_result
    except (_Problem, AitbcError, AitbcApiError, OSError, ValueError) as error:
        print(f"error: {getattr(error, 'message', error)}", file=sys.stderr)
        return 2
    if not pinned:
        note = f"note: using the key the coordinator reports, {key_text}; pin it with --coordinator-key=KEY"
        print(note, file=sys.stderr)
    verification = verify_receipt(
        receipt,
        coordinator_key=coordinator_key,
        output_text=output,
        miner_key=miner_key,
        require_miner_signature=ns.require_miner_signature,
        proof=proof,
    )
    for check in verification.checks:
        print(f"{check.name:<22} {check.status.value:<8} {check.detail}")
    return 0 if verification.ok else 1


class _Problem(Exception):
    pass


def _load(ns: argparse.Namespace) -> tuple[Receipt, str | None, ReceiptProof | None]:
    """The receipt, the coordinator key that came with it (None from a file), and its block's proof."""
    ns.job_result = None
    if (ns.receipt is None) == (ns.job_id is None):
        raise _Problem("name a receipt (its id, or a file) or pass --job-id, not both")
    if ns.job_id is not None:
        ns.receipt, ns.job_result = _receipt_of_job(ns)
    path = Path(ns.receipt)
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "receipt" in data:
            # What GET /v1/receipts/{id} answers: the receipt, with its block's proof once sealed. The key in
            # it is not used: a key read from the same file as the receipt proves nothing.
            response = json_format.ParseDict(data, receipts_pb2.GetReceiptResponse())
            return receipt_from_proto(response.receipt), None, _proof_of(response)
        return Receipt.from_json(data), None, None
    return _fetch(ns)


def _proof_of(response: receipts_pb2.GetReceiptResponse) -> ReceiptProof | None:
    return proof_from_proto(response.proof) if response.HasField("proof") else None


def _fetch(ns: argparse.Namespace) -> tuple[Receipt, str | None, ReceiptProof | None]:
    deadline = time.monotonic() + max(0.0, ns.wait)
    waiting = False
    with grpc.insecure_channel(config.coordinator_address(ns.coordinator)) as channel, translate_rpc_errors():
        stub = receipts_pb2_grpc.ReceiptServiceStub(channel)
        while True:
            request = receipts_pb2.GetReceiptRequest(receipt_id=ns.receipt)
            response = stub.GetReceipt(request, timeout=_CALL_TIMEOUT)
            if response.HasField("proof") or time.monotonic() >= deadline:
                break
            if not waiting:
                print(f"waiting up to {ns.wait:g} s for receipt {ns.receipt}'s block to be sealed", file=sys.stderr)
                waiting = True
            time.sleep(_SEAL_POLL)
    return receipt_from_proto(response.receipt), response.coordinator_public_key, _proof_of(response)


def _receipt_of_job(ns: argparse.Namespace) -> tuple[str, str]:
    """The receipt id of a job and its result, whose hash the receipt must carry."""
    key = config.api_key(ns.api_key)
    if key is None:
        raise _Problem(f"--job-id needs the job owner's key: pass --api-key KEY or set {config.ENV_API_KEY}")
    with Client(ns.coordinator, key) as client:
        job = client.get_job(ns.job_id)
    if not job.receipt_id:
        state = job.status.value
        raise _Problem(f"job {ns.job_id} has no receipt: it is {state} (only charged jobs that ended get one)")
    return job.receipt_id, job.result

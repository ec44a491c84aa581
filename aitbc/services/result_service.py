"""ResultService: result packages, checksums, deletes and share links, translated onto the coordinator."""

from __future__ import annotations

from google.api import httpbody_pb2

from aitbc.coordinator.engine import Coordinator
from aitbc.domain.errors import invalid_argument
from aitbc.domain.signing import encode_key
from aitbc.services.convert import timestamp
from aitbc.services.interceptors import Context, current_principal
from aitbc.store.result_records import ShareLinkRecord
from aitbc.v1 import results_pb2, results_pb2_grpc

# The response metadata that names a download's file; the gateway sends it on as the HTTP header.
CONTENT_DISPOSITION = "content-disposition"


def _job_id(job_id: str) -> str:
    if not job_id:
        raise invalid_argument("job_id", "is required")
    return job_id


class ResultService(results_pb2_grpc.ResultServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    def _link(self, link: ShareLinkRecord) -> results_pb2.ShareLink:
        return results_pb2.ShareLink(
            share_id=link.share_id,
            job_id=link.job_id,
            created_at=timestamp(link.created_at),
            expires_at=timestamp(link.expires_at),
            revoked_at=timestamp(link.revoked_at),
            status=self._coordinator.results.status_of(link).value,
        )

    async def DownloadJobResult(
        self, request: results_pb2.DownloadJobResultRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        principal = current_principal()
        file = await self._coordinator.results.download(principal, _job_id(request.job_id), request.format)
        await context.send_initial_metadata(((CONTENT_DISPOSITION, f'attachment; filename="{file.filename}"'),))
        return httpbody_pb2.HttpBody(content_type=file.media_type, data=file.data)

    async def GetResultChecksums(
        self, request: results_pb2.GetResultChecksumsRequest, context: Context
    ) -> results_pb2.GetResultChecksumsResponse:
        job, recorded = await self._coordinator.results.checksums(current_principal(), _job_id(request.job_id))
        return results_pb2.GetResultChecksumsResponse(
            job_id=job.job_id,
            files=[
                results_pb2.FileChecksum(path=path, sha256=digest) for path, digest in sorted(recorded.files.items())
            ],
            recorded_at=timestamp(recorded.recorded_at),
            receipt_id=job.receipt_id,
            coordinator_public_key=encode_key(self._coordinator.public_key),
        )

    async def DeleteJobResult(
        self, request: results_pb2.DeleteJobResultRequest, context: Context
    ) -> results_pb2.DeleteJobResultResponse:
        job = await self._coordinator.results.delete(current_principal(), _job_id(request.job_id), force=request.force)
        return results_pb2.DeleteJobResultResponse(
            job_id=job.job_id,
            status=job.state.value,
            deleted_at=timestamp(job.result_deleted_at),
            receipt_id=job.receipt_id,
        )

    async def CreateShareLink(
        self, request: results_pb2.CreateShareLinkRequest, context: Context
    ) -> results_pb2.CreateShareLinkResponse:
        results = self._coordinator.results
        link, token = await results.share(current_principal(), _job_id(request.job_id), request.expires)
        return results_pb2.CreateShareLinkResponse(
            link=self._link(link), token=token, path=results.link_path(token), url=results.link_url(token)
        )

    async def ListShareLinks(
        self, request: results_pb2.ListShareLinksRequest, context: Context
    ) -> results_pb2.ListShareLinksResponse:
        links = await self._coordinator.results.share_links(current_principal(), _job_id(request.job_id))
        return results_pb2.ListShareLinksResponse(links=[self._link(link) for link in links])

    async def RevokeShareLink(
        self, request: results_pb2.RevokeShareLinkRequest, context: Context
    ) -> results_pb2.RevokeShareLinkResponse:
        principal = current_principal()
        link = await self._coordinator.results.revoke(principal, _job_id(request.job_id), request.share_id)
        return results_pb2.RevokeShareLinkResponse(link=self._link(link))

    async def GetSharedResult(
        self, request: results_pb2.GetSharedResultRequest, context: Context
    ) -> results_pb2.GetSharedResultResponse:
        # Keyless (`option (keyless)` in results.proto): no principal; the token alone decides.
        job, link = await self._coordinator.results.shared(request.token)
        return results_pb2.GetSharedResultResponse(
            job_id=job.job_id,
            status=job.state.value,
            result=job.result,
            finish_reason=job.finish_reason,
            completed_at=timestamp(job.completed_at),
            link_expires_at=timestamp(link.expires_at),
        )

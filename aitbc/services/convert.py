"""Protos to domain objects and back. No decisions here, only translation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from aitbc.coordinator.account_feed import FeedStarted, FeedUpdate, JobProgress
from aitbc.coordinator.history import HistoryQuery
from aitbc.coordinator.miners import Assign, Cancel, Drain, GpuSpec, MinerCommand, MinerInfo, Welcome
from aitbc.domain.errors import invalid_argument
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.history import JobFilter, JobStatsRecord
from aitbc.domain.jobs import ChatMessage, JobRecord, JobSpec, SamplingParams
from aitbc.domain.priority import Priority
from aitbc.domain.routing import Price
from aitbc.domain.states import JobState
from aitbc.domain.units import parse_memory
from aitbc.v1 import jobs_pb2, miner_pb2

STATE_TO_PROTO: dict[JobState, jobs_pb2.JobState] = {
    JobState.PENDING: jobs_pb2.JOB_STATE_PENDING,
    JobState.ASSIGNED: jobs_pb2.JOB_STATE_ASSIGNED,
    JobState.RUNNING: jobs_pb2.JOB_STATE_RUNNING,
    JobState.COMPLETED: jobs_pb2.JOB_STATE_COMPLETED,
    JobState.FAILED: jobs_pb2.JOB_STATE_FAILED,
    JobState.CANCELED: jobs_pb2.JOB_STATE_CANCELED,
}
STATE_FROM_PROTO: dict[int, JobState] = {value: key for key, value in STATE_TO_PROTO.items()}

PRIORITY_TO_PROTO: dict[Priority, jobs_pb2.JobPriority] = {
    Priority.HIGH: jobs_pb2.JOB_PRIORITY_HIGH,
    Priority.NORMAL: jobs_pb2.JOB_PRIORITY_NORMAL,
    Priority.LOW: jobs_pb2.JOB_PRIORITY_LOW,
}
PRIORITY_FROM_PROTO: dict[int, Priority] = {
    **{value: key for key, value in PRIORITY_TO_PROTO.items()},
    jobs_pb2.JOB_PRIORITY_UNSPECIFIED: Priority.NORMAL,
}


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def spec_from_submit(request: jobs_pb2.SubmitJobRequest, *, default_model: str) -> JobSpec:
    """The job a SubmitJob asks for; a request that names no model gets `default_model`."""
    params = request.params
    sampling = SamplingParams.build(
        max_tokens=params.max_tokens if params.HasField("max_tokens") else None,
        temperature=params.temperature if params.HasField("temperature") else None,
        top_p=params.top_p if params.HasField("top_p") else None,
        stream=params.stream,
        stop=tuple(params.stop),
    )
    return JobSpec.build(
        prompt=request.prompt,
        model=request.model or default_model,
        params=sampling,
        messages=tuple(ChatMessage(role=m.role, content=m.content) for m in request.messages),
        raw=request.raw,
        priority=_priority(request.priority),
        max_price=request.max_price if request.HasField("max_price") else None,
        idempotency_key=request.idempotency_key,
        ttl=request.ttl.ToTimedelta() if request.HasField("ttl") else None,
    )


def _priority(value: int) -> Priority:
    try:
        return PRIORITY_FROM_PROTO[value]
    except KeyError:
        raise invalid_argument("priority", f"unknown priority {value}; expected high, normal or low") from None


def params_to_proto(params: SamplingParams) -> jobs_pb2.SamplingParams:
    return jobs_pb2.SamplingParams(
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        stream=params.stream,
        stop=params.stop,
    )


def messages_to_proto(messages: tuple[ChatMessage, ...]) -> list[jobs_pb2.ChatMessage]:
    return [jobs_pb2.ChatMessage(role=message.role, content=message.content) for message in messages]


def state_filter(value: int) -> JobState | None:
    return STATE_FROM_PROTO.get(value)


def _moment(message: Message, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=UTC)


def history_query(
    request: jobs_pb2.ListJobsRequest | jobs_pb2.ExportJobsRequest | jobs_pb2.GetJobStatsRequest,
) -> HistoryQuery:
    """The filters of ListJobs, ExportJobs and GetJobStats (which has no state filter)."""
    state = None
    if not isinstance(request, jobs_pb2.GetJobStatsRequest) and request.status:
        state = state_filter(request.status)
        if state is None:
            # `canceling` is never stored: such a job is running, with cancel_requested set.
            raise invalid_argument("status", f"cannot filter by {jobs_pb2.JobState.Name(request.status)}; use running")
    return HistoryQuery(
        state=state,
        model=request.model,
        created_after=_moment(request, "created_after"),
        created_before=_moment(request, "created_before"),
        days=request.days,
    )


def stats_to_proto(job_filter: JobFilter, stats: JobStatsRecord) -> jobs_pb2.JobStats:
    counts = {state.value: stats.counts.get(state, 0) for state in JobState}
    return jobs_pb2.JobStats(
        created_after=timestamp(job_filter.created_after),
        created_before=timestamp(job_filter.created_before),
        total_jobs=stats.total_jobs,
        counts=jobs_pb2.JobStateCounts(**counts),
        finished_jobs=stats.finished_jobs,
        success_rate=stats.success_rate,
        mean_completion_seconds=stats.mean_completion_seconds,
        p50_completion_seconds=stats.p50_completion_seconds,
        p95_completion_seconds=stats.p95_completion_seconds,
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        total_spent=stats.total_spent,
    )


def job_to_proto(record: JobRecord) -> jobs_pb2.Job:
    canceling = record.cancel_requested and not record.state.is_terminal
    return jobs_pb2.Job(
        job_id=record.job_id,
        status=jobs_pb2.JOB_STATE_CANCELING if canceling else STATE_TO_PROTO[record.state],
        cancel_requested=canceling,
        prompt=record.spec.prompt,
        model=record.spec.model,
        params=params_to_proto(record.spec.params),
        result=record.result,
        progress=record.progress,
        miner_id=record.miner_id,
        created_at=timestamp(record.created_at),
        started_at=timestamp(record.started_at),
        completed_at=timestamp(record.completed_at),
        estimated_completion=timestamp(record.estimated_completion),
        attempt=record.attempt,
        usage=jobs_pb2.Usage(prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens),
        error=record.error,
        messages=messages_to_proto(record.spec.messages),
        raw=record.spec.raw,
        finish_reason=record.finish_reason,
        routing=jobs_pb2.RoutingDecision(
            miner_id=record.miner_id,
            miner_reputation=record.miner_reputation,
            estimated_cost=record.estimated_cost,
            # A deleted job's prompt is gone, and with it its hash (its receipt keeps the one it was charged for).
            input_hash=record.spec.input_hash() if record.result_deleted_at is None else "",
            queue_position=record.queue_position or 0,
            estimated_start=timestamp(record.estimated_start),
        ),
        priority=PRIORITY_TO_PROTO[record.spec.priority],
        max_price=record.spec.max_price,
        idempotency_key=record.spec.idempotency_key,
        expires_at=timestamp(record.expires_at),
        receipt_id=record.receipt_id,
        result_expires_at=timestamp(record.result_expires_at),
    )


def event_to_proto(event: JobEvent) -> jobs_pb2.WatchJobResponse:
    response = jobs_pb2.WatchJobResponse(seq=event.seq, time=timestamp(event.time))
    if event.kind is EventKind.TOKENS:
        response.tokens.CopyFrom(jobs_pb2.TokenChunk(text=event.text, token_count=event.token_count))
    else:
        assert event.state is not None
        response.state_change.CopyFrom(
            jobs_pb2.JobStateChange(
                status=STATE_TO_PROTO[event.state],
                miner_id=event.miner_id,
                attempt=event.attempt,
                error=event.error,
                usage=jobs_pb2.Usage(prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens),
                finish_reason=event.finish_reason,
            )
        )
    return response


def feed_update_to_proto(update: FeedUpdate) -> jobs_pb2.WatchAccountJobsResponse:
    match update:
        case FeedStarted(time=time):
            return jobs_pb2.WatchAccountJobsResponse(started=timestamp(time))
        case JobProgress():
            progress = jobs_pb2.JobProgress(
                seq=update.seq,
                time=timestamp(update.time),
                completion_tokens=update.completion_tokens,
                progress=update.progress,
            )
            return jobs_pb2.WatchAccountJobsResponse(job_id=update.job_id, progress=progress)
        case JobEvent():
            return jobs_pb2.WatchAccountJobsResponse(job_id=update.job_id, event=event_to_proto(update))


def miner_info_from_hello(hello: miner_pb2.MinerHello) -> MinerInfo:
    return MinerInfo(
        miner_id=hello.miner_id,
        models=frozenset(hello.models),
        max_concurrency=hello.max_concurrency,
        gpus=tuple(GpuSpec(name=gpu.name, vram_bytes=gpu.vram_bytes, count=gpu.count) for gpu in hello.gpus),
        backend=hello.backend,
        version=hello.version,
        prices=_prices(hello.prices),
        public_key=hello.public_key,
        payout_address=hello.payout_address,
    )


def _prices(prices: Iterable[miner_pb2.ModelPrice]) -> tuple[tuple[str, Price], ...]:
    return tuple((price.model, Price(price.input_per_1k, price.output_per_1k)) for price in prices)


def command_to_proto(command: MinerCommand) -> miner_pb2.ConnectResponse:
    match command:
        case Welcome(miner_id=miner_id, heartbeat_interval=interval):
            every = duration_pb2.Duration()
            every.FromTimedelta(interval)
            return miner_pb2.ConnectResponse(welcome=miner_pb2.Welcome(miner_id=miner_id, heartbeat_interval=every))
        case Assign():
            return miner_pb2.ConnectResponse(assign=assign_to_proto(command))
        case Cancel(job_id=job_id, attempt=attempt):
            return miner_pb2.ConnectResponse(cancel=miner_pb2.CancelAssignment(job_id=job_id, attempt=attempt))
        case Drain(reason=reason):
            return miner_pb2.ConnectResponse(drain=miner_pb2.Drain(reason=reason))


def assign_to_proto(command: Assign) -> miner_pb2.AssignJob:
    return miner_pb2.AssignJob(
        job_id=command.job_id,
        attempt=command.attempt,
        prompt=command.spec.prompt,
        model=command.spec.model,
        params=params_to_proto(command.spec.params),
        resume_text=command.resume_text,
        resume_tokens=command.resume_tokens,
        messages=messages_to_proto(command.spec.messages),
        raw=command.spec.raw,
    )


def available_job_to_proto(record: JobRecord) -> miner_pb2.AvailableJob:
    spec = record.spec
    return miner_pb2.AvailableJob(
        job_id=record.job_id,
        model=spec.model,
        prompt=spec.prompt,
        messages=messages_to_proto(spec.messages),
        raw=spec.raw,
        params=params_to_proto(spec.params),
        created_at=timestamp(record.created_at),
    )


def miner_info_from_registration(request: miner_pb2.RegisterMinerRequest) -> MinerInfo:
    gpus: tuple[GpuSpec, ...] = ()
    if request.HasField("gpu_info"):
        gpu = request.gpu_info
        vram = parse_memory(gpu.memory, field="gpu_info.memory") if gpu.memory else 0
        gpus = (GpuSpec(name=gpu.name, vram_bytes=vram, count=1),)
    return MinerInfo(
        miner_id=request.miner_id,
        models=frozenset(request.capabilities),
        max_concurrency=request.max_concurrency or 1,
        gpus=gpus,
        backend="polling",
        prices=_prices(request.prices),
        public_key=request.public_key,
        payout_address=request.payout_address,
    )

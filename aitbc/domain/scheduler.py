"""Planning dispatch: which queued jobs start now, and on which miners.

`plan_assignments` takes as many jobs off a FairQueue as the candidates' free
slots allow:

- Models take turns in the queue's cross-model order (`FairQueue.next_model`:
  priority class, then the oldest next job).
- A model's next job in dispatch order goes to `routing.choose`'s pick. When
  it has no eligible miner now (its max_price fits only a busy miner, say),
  the model's following jobs are tried, up to `lookahead` jobs in all, so one
  picky job does not hold back the whole model; it keeps its place.
- A model whose first `lookahead` jobs all have nowhere to go is done for
  this plan. Slots only run out during a plan, so a job with nowhere to go
  stays that way and is not routed again.

So the plan is work-conserving up to the lookahead: afterwards no job among
the first `lookahead` of any model could start on the candidates' remaining
slots. It never exceeds a miner's free slots and never picks a miner routing
deems ineligible (draining, wrong model, tier, VRAM or price). The same queue
and candidates, in any order, give the same plan.

The queue's model names and `RouteRequest.model.id` must both be canonical
catalog ids.

The candidates come as a `CandidateIndex` (the coordinator keeps one up to
date as miners change, so a plan costs O(jobs placed * log miners) rather
than O(miners)) or as any iterable of candidates, indexed here first. A plan
takes slots in the index it is given (`CandidateIndex.take_slot`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aitbc.domain.candidate_index import CandidateIndex
from aitbc.domain.fair_queue import FairQueue
from aitbc.domain.routing import Candidate, RouteRequest

DEFAULT_LOOKAHEAD = 32


def plan_assignments(
    queue: FairQueue,
    candidates: CandidateIndex | Iterable[Candidate],
    route_for: Callable[[str], RouteRequest],
    *,
    lookahead: int = DEFAULT_LOOKAHEAD,
) -> list[tuple[str, str]]:
    """Take the jobs that can start now off `queue`: (job_id, miner_id) pairs in dispatch order."""
    if lookahead < 1:
        raise ValueError(f"lookahead must be at least 1, got {lookahead}")
    # The index holds each candidate with the slots the plan has left it.
    index = candidates if isinstance(candidates, CandidateIndex) else CandidateIndex(candidates)
    open_models = set(queue.models())
    stuck: set[str] = set()
    plan: list[tuple[str, str]] = []
    while (model := queue.next_model(open_models)) is not None:
        # Cheap check first: when every slot for the model is taken there is nothing to route.
        placed = _place_one(queue, model, index, route_for, lookahead, stuck) if index.has_room(model) else None
        if placed is None:
            open_models.discard(model)
            continue
        job_id, miner = placed
        index.take_slot(miner.miner_id)
        plan.append((job_id, miner.miner_id))
    return plan


def _place_one(
    queue: FairQueue,
    model: str,
    index: CandidateIndex,
    route_for: Callable[[str], RouteRequest],
    lookahead: int,
    stuck: set[str],
) -> tuple[str, Candidate] | None:
    """Dispatch the first of the model's next `lookahead` jobs that some taker can start."""
    for job_id in queue.peek([model], lookahead):
        if job_id in stuck:
            continue
        miner = index.best(model, route_for(job_id))
        if miner is None:
            stuck.add(job_id)
            continue
        queue.take(job_id)
        return job_id, miner
    return None

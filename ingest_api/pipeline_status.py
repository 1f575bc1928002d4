"""``python -m ingest_api.pipeline_status``: the pipeline's consumer groups, as ``/readyz``
judges them (``make status`` runs it).

It samples every group for ``--window-s`` seconds (the API's monitor watches for longer), then
applies :func:`domain.consumer_lag.assess` with the thresholds of ``KEEPER_HEALTH_*`` capped
at the window: a group whose offsets did not move in the whole window while records waited is
stalled, one without members is halted. Prints members, lag, last progress and the verdict
per group; exits 1 when a group halted, stalled or falls behind, 2 when the broker cannot be
sampled.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import defaultdict
from dataclasses import replace

from domain.consumer_lag import GroupSample, GroupVerdict, LagPolicy, assess
from ingest_api.pipeline_health import PipelineHealthSettings, PipelineSampler


async def sample_window(
    settings: PipelineHealthSettings, window_s: float, interval_s: float
) -> dict[str, list[GroupSample]]:
    sampler = PipelineSampler(
        settings.kafka_bootstrap_servers, settings.groups(), timeout_s=settings.request_timeout_s
    )
    await sampler.start()
    history: dict[str, list[GroupSample]] = defaultdict(list)
    try:
        deadline = time.monotonic() + window_s
        while True:
            for sample in await sampler.sample():
                history[sample.group_id].append(sample)
            if time.monotonic() >= deadline:
                return dict(history)
            await asyncio.sleep(interval_s)
    finally:
        await sampler.close()


def window_policy(policy: LagPolicy, samples: list[GroupSample]) -> LagPolicy:
    """The policy with its durations capped at what the samples span."""
    span_s = samples[-1].at_s - samples[0].at_s
    return replace(
        policy,
        stall_after_s=min(policy.stall_after_s, span_s),
        no_member_grace_s=min(policy.no_member_grace_s, span_s),
        growth_samples=max(2, min(policy.growth_samples, len(samples) - 1)),
    )


def render(verdicts: list[GroupVerdict]) -> str:
    lines = [f"{'part':<16}{'group':<40}{'members':>8}{'lag':>10}  {'last progress':<14}verdict"]
    for v in verdicts:
        progress = (
            time.strftime("%H:%M:%S", time.localtime(v.last_progress_s))
            if v.last_progress_s
            else "-"
        )
        members = "?" if v.members is None else str(v.members)
        lines.append(
            f"{v.label:<16}{v.group_id:<40}{members:>8}{v.lag:>10}  {progress:<14}"
            f"{v.verdict.value}: {v.reason}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest_api.pipeline_status")
    parser.add_argument("--window-s", type=float, default=6.0, help="how long to watch")
    parser.add_argument("--interval-s", type=float, default=1.0, help="time between samples")
    args = parser.parse_args(argv)
    settings = PipelineHealthSettings()
    try:
        history = asyncio.run(sample_window(settings, args.window_s, args.interval_s))
    except Exception as exc:
        print(f"pipeline: cannot sample the broker: {type(exc).__name__}: {exc}")
        return 2
    policy = settings.policy()
    verdicts = [assess(samples, window_policy(policy, samples)) for samples in history.values()]
    print(render(verdicts))
    failing = [v for v in verdicts if v.failing]
    if failing:
        print("pipeline: NOT READY: " + ", ".join(f"{v.label} {v.verdict.value}" for v in failing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

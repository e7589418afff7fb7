"""The routing set with a route's second opinion (docs/routing.md#a-second-opinion), asked of a real model.

`python -m bench.routing_judge --base-url URL --model NAME [--api-key-env VAR] [--band LOW HIGH]`:
each request the scorer places inside the band is judged by the model behind URL (any OpenAI-compatible
chat completions API: OpenAI's `https://api.openai.com/v1`, Azure OpenAI's v1 API
`https://<resource>.openai.azure.com/openai/v1` with the deployment as NAME, or this gateway's
`<app>/api/v1`), asked exactly as the gateway asks it (shared/routing/second_opinion.py). Prints, beside
the scorer alone on the same requests, the figures of `python -m bench routing` with the judge's verdicts
deciding inside the band and the judge's own calls charged against the saving, both targets marked.

No model is reachable from the machine this repository is built on: its simulator answers with words of
the prompt, so the figures it gives here (the test runs it) say nothing of a real judge.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import httpx2
import openai
from pydantic import ValidationError

from bench.routing import (
    LARGE,
    LIST_PRICES,
    TARGET_COMPLEX_TO_SMALL,
    TARGET_SAVED,
    Outcome,
    Request,
    cost,
    evaluate,
    load_set,
    mark,
    prices,
    scores_of,
    upper_bound,
)
from shared.core.routes import SecondOpinion
from shared.core.settings import ModelPrice
from shared.routing.scorer import default_weights
from shared.routing.second_opinion import MAX_TOKENS, SEED, Verdict, judge_prompt, verdict

CONCURRENCY = 8


@dataclass(frozen=True)
class Judged:
    """One request's second opinion: the verdict (None: the answer named no tier) and the call's usage."""

    verdict: Verdict | None
    prompt_tokens: int
    completion_tokens: int


async def judge(client: openai.AsyncOpenAI, model: str, requests: Sequence[Request]) -> list[Judged]:
    """Each request's second opinion, CONCURRENCY at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(request: Request) -> Judged:
        async with gate:
            answer = await client.chat.completions.create(
                model=model, max_tokens=MAX_TOKENS, temperature=0.0, seed=SEED,
                messages=[{"role": "system", "content": text} if role == "system" else {"role": "user", "content": text}
                          for role, text in judge_prompt(request.messages)])
        usage = answer.usage
        return Judged(verdict(answer.choices[0].message.content or ""), usage.prompt_tokens if usage else 0,
                      usage.completion_tokens if usage else 0)

    return list(await asyncio.gather(*(one(r) for r in requests)))


def line(name: str, outcome: Outcome, saved: float, complex_count: int) -> str:
    missed = round(outcome.complex_to_small * complex_count)
    return (f"  {name:<24} accuracy {outcome.accuracy:>6.1%}  complex->small {outcome.complex_to_small:>6.1%} "
            f"({missed} of {complex_count}, 95% upper bound {upper_bound(missed, complex_count):.1%}; target <= "
            f"{TARGET_COMPLEX_TO_SMALL:.0%}: {mark(outcome.complex_to_small <= TARGET_COMPLEX_TO_SMALL)})  "
            f"simple->large {outcome.simple_to_large:>6.1%}  saved {saved:>6.1%} (target >= {TARGET_SAVED:.0%}: "
            f"{mark(saved >= TARGET_SAVED)})")


async def run(args: argparse.Namespace, http_client: httpx2.AsyncClient | None = None) -> int:
    """Judge the set's in-band requests and print the figures."""
    band = SecondOpinion(model=args.model, band=(args.band[0], args.band[1]))
    judge_price = ModelPrice(input_per_1m=args.judge_price[0], output_per_1m=args.judge_price[1]) \
        if args.judge_price else LIST_PRICES.get(args.model)
    if judge_price is None:
        print(f"no list price for {args.model!r}: give --judge-price IN OUT (USD per 1M tokens)", file=sys.stderr)
        return 2
    weights = default_weights()
    threshold = float(weights.meta.get("threshold", 0.5))
    price, source = prices()
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key=os.environ.get(args.api_key_env, "none"),
                                max_retries=2, http_client=http_client)
    print(f"judge: {args.model} at {args.base_url}, band [{band.band[0]}, {band.band[1]}), price "
          f"${judge_price.input_per_1m}/${judge_price.output_per_1m} per 1M in/out; tiers priced {source}")
    for name in (["bare", "realistic"] if args.which == "both" else [args.which]):
        requests = [r for r in load_set(name) if args.split in ("all", r.split)
                    and (args.batch is None or r.batch in args.batch)]
        scores = scores_of(requests, weights)
        inside = [i for i, s in enumerate(scores) if band.covers(s)]
        opinions = dict(zip(inside, await judge(client, args.model, [requests[i] for i in inside]), strict=True))
        judged = [s if i not in opinions or opinions[i].verdict is None else float(opinions[i].verdict == "complex")
                  for i, s in enumerate(scores)]
        always = sum(cost(r, price[LARGE]) for r in requests)
        spent = sum((o.prompt_tokens * judge_price.input_per_1m + o.completion_tokens * judge_price.output_per_1m) / 1e6
                    for o in opinions.values())
        alone = evaluate(requests, scores, threshold, price)
        # A verdict is a score of 1 (complex) or 0 (simple): at the route's threshold (in (0, 1]) it routes as it says.
        with_judge = evaluate(requests, judged, threshold, price)
        agreed = sum(opinions[i].verdict == ("complex" if requests[i].complex else "simple") for i in opinions)
        unsaid = sum(o.verdict is None for o in opinions.values())
        complex_count = sum(r.complex for r in requests)
        print(f"\n=== set {name}: split {args.split}, {len(requests)} requests ({complex_count} complex); "
              f"{len(inside)} inside the band, judged ===")
        print(f"  the judge agreed with the label on {agreed} of {len(inside)}; {unsaid} answers named no tier "
              f"(the score decided); its calls cost {spent:.4f} USD, {spent / always:.1%} of always gpt-4o")
        print(line("scorer alone", alone, alone.saved, complex_count))
        print(line("with the second opinion", with_judge, with_judge.saved - spent / always, complex_count))
    return 0


def main(argv: list[str] | None = None, http_client: httpx2.AsyncClient | None = None) -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.routing_judge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="an OpenAI-compatible API's base URL, ending in /v1")
    parser.add_argument("--model", required=True, help="the judging model (on Azure: its deployment's name)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="the variable holding the API key")
    parser.add_argument("--band", type=float, nargs=2, default=(0.3, 0.7), metavar=("LOW", "HIGH"))
    parser.add_argument("--judge-price", type=float, nargs=2, metavar=("IN", "OUT"),
                        help="the judging model's USD per 1M tokens (default: its list price, if known)")
    parser.add_argument("--split", choices=["test", "train", "all"], default="test")
    parser.add_argument("--set", choices=["bare", "realistic", "both"], default="realistic", dest="which")
    parser.add_argument("--batch", action="append", default=None, help="only this batch, repeatable")
    args = parser.parse_args(argv)
    try:
        SecondOpinion(model=args.model, band=(args.band[0], args.band[1]))
    except ValidationError as err:
        parser.error(str(err.errors()[0]["msg"]).removeprefix("Value error, "))
    return asyncio.run(run(args, http_client))


if __name__ == "__main__":
    sys.exit(main())

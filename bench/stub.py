"""A fixed-latency OpenAI-compatible upstream for `python -m bench overhead`: `python -m bench.stub --port P`.

Raw asyncio HTTP/1.1 with keep-alive and nothing else, so it takes as little CPU as possible from the
gateways it is measuring: every chat completion (any path ending in /chat/completions) waits the fixed
latency and answers a complete `chat.completion` whose usage is what such a prompt would be billed
(about 4 characters per token plus the chat framing). The answer is a 16-token sentence that ends
(`finish_reason: stop`, so a gateway may cache it; a truncated answer is not cacheable); a smaller
`max_tokens` cuts it (`length`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from typing import Any

ANSWER = ("The", " ferry", " leaves", " at", " nine", " and", " returns", " by", " noon", ",", " weather",
          " permitting", ",", " from", " pier", " four.")  # 16 tokens
COUNTER = itertools.count()


def prompt_tokens(body: dict[str, Any]) -> int:
    """3 framing tokens per message, its text at 4 characters a token, 3 for the reply."""
    total = 3
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        text = content if isinstance(content, str) else json.dumps(content or "")
        total += 4 + max(1, len(text) // 4)
    return total


def completion(body: dict[str, Any]) -> bytes:
    cap = body.get("max_tokens") or body.get("max_completion_tokens") or len(ANSWER)
    tokens = max(1, min(int(cap), len(ANSWER)))
    prompt = prompt_tokens(body)
    answer = {
        "id": f"chatcmpl-stub-{next(COUNTER)}", "object": "chat.completion", "created": int(time.time()),
        "model": str(body.get("model") or "gpt-4o-mini"), "system_fingerprint": "fp_stub",
        "choices": [{"index": 0, "finish_reason": "stop" if tokens == len(ANSWER) else "length", "logprobs": None,
                     "message": {"role": "assistant", "refusal": None, "annotations": [],
                                 "content": "".join(ANSWER[:tokens])}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0,
                                                "rejected_prediction_tokens": 0}},
    }
    return json.dumps(answer, separators=(",", ":")).encode()


def response(status: str, body: bytes) -> bytes:
    head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: keep-alive\r\n\r\n")
    return head.encode() + body


class Stub:
    """One connection handler; the latency is the only thing it adds."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                               if line.lower().startswith("content-length:")), 0)
                raw = await reader.readexactly(length) if length else b""
                if method == "POST" and path.split("?")[0].endswith("/chat/completions"):
                    await asyncio.sleep(self.latency_s)
                    writer.write(response("200 OK", completion(json.loads(raw or b"{}"))))
                else:
                    writer.write(response("404 Not Found", b'{"error":{"message":"not found"}}'))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass  # the client closed its keep-alive connection
        finally:
            writer.close()


async def serve(host: str, port: int, latency_s: float) -> None:
    server = await asyncio.start_server(Stub(latency_s).handle, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.latency_ms / 1000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The wrapper users write in front of a model server, as the GLM-4.6V-Flash-WEB articles show it:
FastAPI + uvicorn, one shared httpx.AsyncClient, the OpenAI route passed through, StreamingResponse
for text/event-stream, a /health for the load balancer. Written the way those articles recommend
(async handlers, a client reused across requests, a generous timeout), not deliberately slow.

    UPSTREAM=http://127.0.0.1:8000/v1 uvicorn fastapi_proxy:app --port 9000 --no-access-log

bench/proxy runs it as the baseline (uvloop and httptools installed, as `uvicorn[standard]` does).
"""
import os
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8000/v1")

client = httpx.AsyncClient(base_url=UPSTREAM, timeout=httpx.Timeout(300.0), limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))


@asynccontextmanager
async def lifespan(_app: FastAPI):
    yield
    await client.aclose()


app = FastAPI(title="GLM-4.6V-Flash Inference API", lifespan=lifespan)


@app.get("/health")
def health():
    return {"status": "ok", "model_loaded": True}


@app.post("/v1/chat/completions")
async def chat_completions(request: Request):
    body = await request.json()
    if body.get("stream"):
        upstream = await client.send(client.build_request("POST", "/chat/completions", json=body), stream=True)
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, media_type="text/event-stream", background=BackgroundTask(upstream.aclose))
    upstream = await client.post("/chat/completions", json=body)
    return JSONResponse(upstream.json(), status_code=upstream.status_code)

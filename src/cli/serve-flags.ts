import { Option } from 'commander';

/** Flags that map 1:1 onto config keys (commander camel-cases them). */
export const SERVE_FLAGS: Array<[flags: string, description: string]> = [
  ['--host <addr>', 'address to bind (default 127.0.0.1)'],
  ['--port <n>', 'port (default 8080)'],
  [
    '--workers <n>',
    'HTTP server processes on the one port (default 1; auto = one per CPU core); the embedded model still loads once',
  ],
  ['--engine <name>', 'embedded | upstream | simulated (default embedded)'],
  [
    '--model <profile|idOrDir>',
    'model for the embedded engine: a profile (glm-ocr, smolvlm, qwen2.5-vl-3b), a Hugging Face model id or a local directory; same as --model-path',
  ],
  ['--model-path <idOrDir>', 'Hugging Face model id or local directory for the embedded engine (or a profile name)'],
  ['--model-name <name>', 'name the model is served under'],
  ['--upstream <urls>', 'comma-separated OpenAI-compatible base URLs, e.g. http://gpu1:8000/v1'],
  ['--upstream-model <name>', 'model name to ask upstreams for, e.g. zai-org/GLM-4.6V-Flash'],
  [
    '--upstream-routes <list>',
    'more models from other pools: name=url|url,name=url (each pool serves its model under that name)',
  ],
  ['--upstream-api-key <key>', 'bearer token for upstreams'],
  ['--device <d>', 'cpu | cuda | auto'],
  ['--cache-dir <dir>', 'where downloaded models are kept (default ~/.cache/glimpse/models)'],
  [
    '--state-dir <dir>',
    'where async jobs, batches and their files are kept without Redis (default ~/.local/state/glimpse)',
  ],
  ['--offline', 'never contact the model hub; load from --model-path or the cache only'],
  ['--hub-url <url>', 'Hugging Face-compatible hub to download from (default https://huggingface.co or HF_ENDPOINT)'],
  ['--model-revision <rev>', 'branch, tag or commit of the model repository (default main)'],
  [
    '--dtype <t>',
    'auto | fp32 | fp16 | q8 | int8 | uint8 | q4 | q4f16 | bnb4 (default auto: quantized q8 from the hub)',
  ],
  ['--warmup <bool>', 'one short generation before /ready turns 200 (default true)'],
  ['--embedded-workers <n>', 'model worker threads for the embedded engine (default 1)'],
  ['--embedded-threads <n>', 'onnxruntime threads per worker (default: cores / workers)'],
  [
    '--embedded-vision-batch <n>',
    'image tiles per vision-encoder run (default 2; fewer = lower memory peak, same output; 0 = all at once)',
  ],
  [
    '--stream-interval-ms <ms>',
    'embedded engine: tokens within this many ms of the last piece sent go out together; the first never waits (default 20, 0 = every token alone)',
  ],
  [
    '--max-in-flight <n>',
    'ceiling on generations in flight (default: what the engines can run; 4 for engines that do not say)',
  ],
  ['--max-batch-size <n>', 'deprecated: old name of --max-in-flight'],
  ['--max-queue <n>', 'requests waiting beyond what can run at once'],
  ['--queue-timeout <s>', 'seconds a request may wait in the queue'],
  ['--max-context-length <n>', 'context window in tokens'],
  ['--request-timeout <s>', 'total seconds per request'],
  ['--idle-timeout <s>', 'seconds allowed between tokens'],
  ['--heartbeat-interval <s>', 'seconds between SSE comment heartbeats'],
  ['--grace-shutdown-seconds <s>', 'on SIGTERM, seconds in-flight requests may finish'],
  ['--ws-ping-interval <s>', 'seconds between WebSocket pings'],
  [
    '--upstream-thinking-param <how>',
    "how a client's thinking on/off reaches upstreams: both | chat_template_kwargs | thinking | none",
  ],
  ['--upstream-health-interval <s>', 'seconds between upstream health checks (0: off)'],
  [
    '--upstream-limits <list>',
    'requests each upstream replica may have at once, url=n,url=n (also url#max=n); others learn theirs from /metrics or adaptively',
  ],
  [
    '--upstream-metrics-interval <s>',
    "seconds between reads of each replica's /metrics, which teach its limit (default 1; 0: adaptive only)",
  ],
  ['--upstream-initial-limit <n>', 'limit of a replica before one is learned (default 8)'],
  ['--upstream-max-limit <n>', 'highest limit learning may give a replica (default 1024)'],
  [
    '--upstream-affinity <bool>',
    'send a request whose image was seen recently to the replica that saw it (default true)',
  ],
  [
    '--upstream-affinity-load-factor <x>',
    'how far over its fair share a replica may go to keep an image (default 1.25)',
  ],
  [
    '--upstream-affinity-max-skips <n>',
    "times a queued request may be passed over for one whose image's replica has room (default 8; 0: strict order)",
  ],
  ['--upstream-breaker-threshold <n>', 'consecutive failures that eject an upstream'],
  ['--upstream-breaker-cooldown <s>', 'seconds before an ejected upstream gets a probe request'],
  ['--upstream-retries <n>', 'extra upstream attempts before the first byte'],
  ['--upstream-retry-backoff-ms <ms>', 'base of the jittered backoff between upstream attempts'],
  ['--upstream-connect-timeout <s>', 'seconds to connect to an upstream'],
  ['--upstream-headers-timeout <s>', "seconds to wait for an upstream's response headers"],
  ['--ws-max-buffered-bytes <n>', 'bytes queued to a slow WebSocket client before pausing its tokens'],
  ['--ws-max-requests-per-connection <n>', 'requests running or queued per WebSocket connection'],
  ['--fallback-models <names>', 'comma-separated upstream models to fall back to'],
  ['--fallback-upstream <urls>', 'comma-separated base URLs of a fallback pool'],
  ['--fallback-upstream-model <name>', 'model to ask the fallback pool for'],
  ['--fallback-upstream-api-key <key>', 'bearer token for the fallback pool'],
  ['--degraded-answer <text>', 'answer sent when every engine is down'],
  ['--log-level <level>', 'fatal | error | warn | info | debug | trace | silent'],
  ['--log-format <fmt>', 'json | pretty'],
  ['--api-keys <keys>', 'comma-separated API keys, each name:secret or secret; model routes then need one'],
  ['--api-keys-file <file>', 'file with one API key (name:secret) a line'],
  ['--api-keys-reload-seconds <s>', 're-read the API keys file this often (default 10; 0 = only on SIGHUP)'],
  ['--allow-public-without-auth', 'allow a non-loopback bind without API keys'],
  [
    '--cors-origins <list>',
    'comma-separated origins whose pages may call the API from a browser, e.g. https://app.example.com (default: none)',
  ],
  [
    '--cors-any-origin',
    'let pages on any origin call the API (Access-Control-Allow-Origin: *, never with credentials)',
  ],
  ['--cors-max-age <s>', 'seconds a browser may reuse a CORS preflight answer (default 600)'],
  ['--redact <kinds>', 'mask personal data in answers: pii (all) or a list of id_card, bank_card, phone, email'],
  ['--redact-prompts', 'also mask those kinds in request text before it reaches an engine'],
  [
    '--trust-proxy <list>',
    'comma-separated proxy addresses/CIDRs (e.g. 127.0.0.1) whose X-Forwarded-For is believed in logs',
  ],
  [
    '--redis-url <url>',
    'keep the answer cache, quota counts and stored responses in Redis (redis://host:port/db) instead of memory, and run async jobs',
  ],
];

/** Flags for one-level nested settings (images.*, cache.*, quotas.*, jobs.*, responses.*, moderation.*): [flags, description, group, key]. Every other nested setting is GLIMPSE_<GROUP>_<KEY> or --config. */
export const NESTED_SERVE_FLAGS: Array<
  [
    flags: string,
    description: string,
    group: 'images' | 'cache' | 'quotas' | 'jobs' | 'responses' | 'moderation',
    key: string,
  ]
> = [
  ['--image-max-bytes <n>', 'largest encoded image in bytes (default 10 MiB)', 'images', 'maxBytes'],
  [
    '--image-max-pixels <n>',
    'largest width x height, checked from the header (default 50000000)',
    'images',
    'maxPixels',
  ],
  ['--image-max-edge <px>', 'shrink images so the longest edge is at most this (default 1024)', 'images', 'maxEdge'],
  [
    '--image-max-edge-by-model <list>',
    'model profiles: a longest edge per model id, id=px,id=px (e.g. Qwen2-VL-2B-Instruct=448)',
    'images',
    'maxEdgeByModel',
  ],
  ['--max-images-per-request <n>', 'images one request may carry (default 8)', 'images', 'maxImagesPerRequest'],
  [
    '--image-decode-timeout <s>',
    'seconds one image may take to decode and resize before it is refused (default 10; 0 = no limit)',
    'images',
    'decodeTimeoutSeconds',
  ],
  [
    '--image-allow-domains <list>',
    'comma-separated domains image URLs must be on (default: any public host)',
    'images',
    'allowDomains',
  ],
  ['--image-deny-domains <list>', 'comma-separated domains image URLs may not be on', 'images', 'denyDomains'],
  [
    '--image-allow-private-networks',
    'let image URLs reach loopback / private / CGNAT / ULA addresses (storage on your LAN)',
    'images',
    'allowPrivateNetworks',
  ],
  ['--cache-max-bytes <n>', 'bytes of answers the in-memory cache keeps (default 64 MiB)', 'cache', 'maxBytes'],
  ['--cache-ttl-seconds <s>', 'seconds an answer stays cached (default 3600)', 'cache', 'ttlSeconds'],
  [
    '--cache-near-duplicate-distance <bits>',
    'reuse answers for images within this many perceptual-hash bits (default 0: off)',
    'cache',
    'nearDuplicateDistance',
  ],
  ['--no-cache', 'turn the answer cache off', 'cache', 'enabled'],
  [
    '--responses-max-bytes <n>',
    'bytes of stored Responses API answers kept in memory (default 64 MiB; Redis with --redis-url)',
    'responses',
    'maxBytes',
  ],
  [
    '--responses-ttl-seconds <s>',
    'seconds a stored response is kept after its last use (default 86400)',
    'responses',
    'ttlSeconds',
  ],
  [
    '--no-responses-store',
    'keep no Responses API answers (previous_response_id is then refused)',
    'responses',
    'store',
  ],
  ['--jobs-workers <n>', 'async job workers in this instance (default 1; 0 = accept jobs only)', 'jobs', 'workers'],
  [
    '--jobs-webhook-secret <secret>',
    'sign job webhooks (Standard Webhooks): base64 of 16+ random bytes, optionally prefixed whsec_',
    'jobs',
    'webhookSecret',
  ],
  [
    '--jobs-webhook-allow-private-networks',
    'let job webhooks reach loopback / private addresses (receivers on your own network)',
    'jobs',
    'webhookAllowPrivateNetworks',
  ],
  [
    '--moderation-url <url>',
    "check each request's text with a moderation service in OpenAI's /v1/moderations shape; flagged: 400 content_flagged",
    'moderation',
    'url',
  ],
  [
    '--moderation-model <name>',
    'model the moderation service is asked to use (e.g. omni-moderation-latest)',
    'moderation',
    'model',
  ],
  ['--moderation-api-key <key>', 'bearer token for the moderation service', 'moderation', 'apiKey'],
  [
    '--moderation-answers',
    'also check each complete answer; a flagged one ends with a content_flagged error',
    'moderation',
    'answers',
  ],
  [
    '--moderation-fail-mode <mode>',
    'when the service cannot answer: closed (refuse, 503 moderation_unavailable; default) | open (let through)',
    'moderation',
    'failMode',
  ],
  ['--moderation-timeout-ms <ms>', 'time one moderation check may take (default 3000)', 'moderation', 'timeoutMs'],
  [
    '--moderation-allow-private-networks',
    'let the moderation URL reach loopback / private addresses (a service on your own network)',
    'moderation',
    'allowPrivateNetworks',
  ],
  [
    '--quota-requests-per-minute <n>',
    'requests one API key may start per minute (default 0: no limit)',
    'quotas',
    'requestsPerMinute',
  ],
  [
    '--quota-tokens-per-minute <n>',
    'prompt + completion tokens one API key may use per minute (default 0: no limit)',
    'quotas',
    'tokensPerMinute',
  ],
];

/** Move nested flags (commander's camelCase names) into their config groups. */
export function nestFlags(opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...opts };
  const groups: Record<string, Record<string, unknown>> = {};
  // Negated flags first: --no-cache's attribute name ("cache") is also the group's name.
  const ordered = [...NESTED_SERVE_FLAGS].sort(
    (a, b) => Number(b[0].startsWith('--no-')) - Number(a[0].startsWith('--no-')),
  );
  for (const [flags, , group, key] of ordered) {
    const name = new Option(flags).attributeName();
    if (!(name in out)) continue;
    const value = out[name];
    delete out[name];
    // commander defaults --no-x to true; only an explicit --no-cache turns the cache off
    if (flags.startsWith('--no-') && value !== false) continue;
    (groups[group] ??= {})[key] = value;
  }
  for (const [group, values] of Object.entries(groups)) out[group] = values;
  return out;
}

import { Type } from 'typebox';

/** Config fields: API keys, proxies, CORS, redaction, timeouts and WebSocket limits. */
export const httpFields = {
  apiKeys: Type.Array(Type.String(), {
    default: [],
    description: 'API keys, each `name:secret` or `secret`; when any is set, model routes need one.',
  }),
  apiKeysFile: Type.Optional(Type.String({ description: 'File with one API key (`name:secret`) a line.' })),
  apiKeysReloadSeconds: Type.Number({
    minimum: 0,
    // Timers cannot wait longer (Node would fire them at once instead).
    maximum: 2_147_483,
    default: 10,
    description:
      'Seconds between re-reads of the API keys file, so rotated keys (a rewritten file, a changed Kubernetes Secret) apply without a restart; SIGHUP re-reads at once; 0: only on SIGHUP.',
  }),
  apiKeyJwt: Type.Object(
    {
      clockSkewSeconds: Type.Integer({
        minimum: 0,
        maximum: 3600,
        default: 30,
        description:
          "Seconds a JWT signed from an `id.secret` API key (Zhipu's SDKs) may be past its exp, or issued ahead of this server's clock.",
      }),
      maxLifetimeSeconds: Type.Integer({
        minimum: 1,
        maximum: 86_400 * 30,
        default: 3600,
        description: 'Longest a JWT may be valid for, from its timestamp (issue time) to its exp.',
      }),
    },
    { default: {} },
  ),
  trustProxy: Type.Array(Type.String(), {
    default: [],
    description:
      "Addresses or CIDR ranges of the proxies in front (e.g. 127.0.0.1 for nginx on the same host) whose X-Forwarded-For and X-Forwarded-Proto are believed, so logs show the client's address. Empty: the connecting peer is the client.",
  }),
  corsOrigins: Type.Array(
    Type.String({
      pattern: '^https?://(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$',
      errorMessage:
        'must be an origin, scheme://host[:port] with no path and no trailing slash (e.g. https://app.example.com); for any origin use --cors-any-origin',
    }),
    {
      default: [],
      description:
        'Origins whose browser pages may call the API (CORS), e.g. https://app.example.com,https://b.example.com. Empty (the default): pages on other origins are refused by their browsers.',
    },
  ),
  corsAnyOrigin: Type.Boolean({
    default: false,
    description:
      'Let a page on any origin call the API (Access-Control-Allow-Origin: *). Credentials (cookies) are never allowed; API keys still apply.',
  }),
  corsMaxAge: Type.Integer({
    minimum: 0,
    maximum: 86_400,
    default: 600,
    description: 'Seconds a browser may reuse a preflight answer (Chromium caps this at 7200).',
  }),
  redact: Type.Array(Type.Enum(['pii', 'id_card', 'bank_card', 'phone', 'email']), {
    default: [],
    description:
      'Personal data to mask in answers, streamed or not: pii (all of them) or a list of id_card (mainland ID numbers, check digit validated; first 6 and last 4 kept), bank_card (Luhn; first 6 and last 4 kept), phone (mainland mobile numbers: 138****8000), email. Empty: nothing is masked.',
  }),
  redactPrompts: Type.Boolean({
    default: false,
    description: 'Also mask the --redact kinds in the text of requests before an engine (an upstream) sees them.',
  }),
  allowPublicWithoutAuth: Type.Boolean({
    default: false,
    description: 'Allow binding a non-loopback address without API keys.',
  }),
  defaultMaxTokens: Type.Integer({ minimum: 1, default: 512 }),
  requestTimeout: Type.Number({ exclusiveMinimum: 0, default: 300, description: 'Total seconds per request.' }),
  idleTimeout: Type.Number({ exclusiveMinimum: 0, default: 60, description: 'Seconds allowed between two tokens.' }),
  streamIntervalMs: Type.Number({
    minimum: 0,
    maximum: 1000,
    default: 20,
    description:
      'Tokens the embedded engine makes within this many ms of the last piece it sent go out together (the first token never waits); 0 sends every token on its own. When tokens come faster than anyone reads, fewer larger pieces spare the CPU that generation needs.',
  }),
  heartbeatInterval: Type.Number({
    exclusiveMinimum: 0,
    default: 15,
    description: 'Seconds between SSE comment heartbeats.',
  }),
  graceShutdownSeconds: Type.Number({
    minimum: 0,
    default: 25,
    description:
      'On SIGTERM: seconds in-flight requests may finish before they are cancelled with a shutting_down error (under the 30 s Kubernetes gives by default before SIGKILL, so the cancel events still go out).',
  }),
  wsPingInterval: Type.Number({
    exclusiveMinimum: 0,
    default: 30,
    description: 'Seconds between WebSocket pings; a peer that missed the previous pong is dropped.',
  }),
  wsMaxBufferedBytes: Type.Integer({
    minimum: 1024,
    default: 1024 * 1024,
    description: 'Bytes queued to a slow WebSocket client before glimpse stops pulling tokens for it.',
  }),
  wsMaxRequestsPerConnection: Type.Integer({
    minimum: 1,
    default: 8,
    description: 'Requests one WebSocket connection may have running or queued at once.',
  }),
};

import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import type { Config } from '../config/index.js';
import { GlimpseError, type Engine } from '../core/index.js';
import { randomHex } from '../core/ids.js';
import type { Logger } from '../observability/index.js';
import { maxEdgeFor } from '../images/index.js';
import { sendError, toRequestError, type ErrorFormat } from './errors.js';
import { checkJsonDepth } from './json-depth.js';
import { createPipeline, type GenerationPipeline } from './pipeline.js';
import { registerGlmRoutes } from './routes/glm.js';
import { registerHealthRoutes, type Lifecycle } from './routes/health.js';
import { registerOpenAIRoutes } from './routes/openai.js';
import { registerResponsesRoutes } from './routes/responses.js';
import { registerAnthropicRoutes } from './routes/anthropic.js';
import { registerZhipuRoutes, ZHIPU_CHAT_PATH } from './routes/zhipu.js';
import { chatJobRunner, registerJobRoutes } from './routes/jobs.js';
import { registerFileRoutes } from './routes/files.js';
import { registerBatchRoutes } from './routes/batches.js';
import { jobRunnerByKind, responsesJobRunner } from './routes/batch-lines.js';
import { responsesSchema } from '../protocols/responses/schema.js';
import { Batches } from '../jobs/batches.js';
import { EmbeddedBatchStore } from '../jobs/batch-store.js';
import { RedisBatchStore } from '../jobs/batch-store-redis.js';
import { createJobQueue, type JobQueue } from '../jobs/index.js';
import { resolveStateDir } from '../config/index.js';
import { createResponseStore } from '../responses/index.js';
import { chatSchemas } from '../protocols/openai-chat/schema.js';
import { glmSchemas } from '../protocols/glm-web/schema.js';
import { registerWsRoutes, type WsRegistry } from './routes/ws.js';
import {
  ApiKeyRing,
  memoryCounter,
  Quotas,
  quotasEnabled,
  redisCounter,
  registerApiKeys,
  type ReloadOutcome,
} from '../auth/index.js';
import { createMetrics, traceIdOf } from '../observability/index.js';
import { redisHealth } from '../observability/redis-health.js';
import { registerWebUi } from '../webui/index.js';
import { DOCS_CSP, registerSecurity } from '../security/index.js';
import { createRedaction } from '../redact/index.js';
import { createModeration } from '../moderation/index.js';
import { requestDefaults } from '../protocols/defaults.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    errorFormat?: ErrorFormat;
  }
}

const OPS_PATHS = new Set(['/health', '/livez', '/ready', '/metrics']);

/**
 * Routes that start a generation. When the queue is full they are refused in onRequest, before
 * the body is read: an overloaded server must not parse a 20 MB image only to say 429.
 */
const GENERATION_ROUTES = new Set([
  '/v1/chat/completions',
  '/v1/responses',
  '/v1/messages',
  '/v1/messages/count_tokens',
  ZHIPU_CHAT_PATH,
  '/v1/multimodal/completions',
  '/infer',
  '/v1/chat',
  '/api/v1/infer',
]);

const REQUEST_ID_RE = /^[\w.:-]{1,128}$/;

export interface App {
  app: FastifyInstance;
  pipeline: GenerationPipeline;
  lifecycle: Lifecycle;
  /** Open WebSocket connections (closed last on shutdown). */
  ws: WsRegistry;
  /** Async job workers: told to take no new jobs when shutdown begins. */
  jobs: JobQueue;
  /** Re-read the API keys file now (SIGHUP); the outcome is logged too. */
  reloadApiKeys(): ReloadOutcome;
}

/** Quotas count per API key; with no keys configured there is nothing to count against. */
function createQuotas(config: Config, logger: Logger): Quotas | undefined {
  if (!quotasEnabled(config.quotas)) return undefined;
  if (config.apiKeys.length === 0 && config.apiKeysFile === undefined) {
    logger.warn('quotas are set but no API keys are: quotas count per key, so they are off');
    return undefined;
  }
  // With Redis the counts are shared by every instance; if it cannot be reached, requests go through (logged).
  const warn = (err: Error) =>
    logger.warn({ err: err.message }, 'quota counters (Redis) unavailable; not enforcing quotas meanwhile');
  return new Quotas(config.quotas, config.redisUrl ? redisCounter(config.redisUrl, warn) : memoryCounter(), warn);
}

export async function buildApp(
  config: Config,
  engine: Engine,
  logger: Logger,
  /** False in a cluster worker that forwards jobs, files and batches to the state directory's owner (src/cluster/state-owner.ts). */
  opts: { stateOwner?: boolean } = {},
): Promise<App> {
  const app = Fastify({
    loggerInstance: logger as unknown as FastifyBaseLogger,
    // Every log line of a request that came with a W3C traceparent carries its trace id.
    childLoggerFactory(parent, bindings, opts, rawReq) {
      const traceId = traceIdOf(rawReq.headers.traceparent);
      return parent.child(traceId ? { ...bindings, traceId } : bindings, opts);
    },
    bodyLimit: config.bodyLimit,
    // Behind nginx every peer is the proxy; believe X-Forwarded-For from the proxies named, and only them.
    trustProxy: config.trustProxy.length ? config.trustProxy : false,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomHex(16); // 32 hex digits, like nginx's $request_id
    },
    // allErrors stays off: collecting every issue lets a 2 MB body of wrong array items cost seconds
    // of CPU and hundreds of MB. The first issue is enough (errors.ts picks the union branch meant).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  // JSON and multipart only: a text/plain body is a client mistake worth a 415, not a schema error.
  app.removeContentTypeParser('text/plain');
  // JSON as fastify parses it (prototype poisoning refused), after a check of its nesting on the
  // text: a value nested thousands deep would overflow the stack wherever it is copied or hashed.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, text, done) => {
    try {
      checkJsonDepth(text as string, config.maxJsonDepth, 'the request body');
    } catch (err) {
      done(err as Error, undefined);
      return;
    }
    void parseJson(request, text as string, done);
  });
  const lifecycle: Lifecycle = { draining: false };
  // What a request leaves out (model, max tokens), decided once for every shape.
  // The model is read when a request comes: an upstream pool learns the models it serves from its servers after start.
  const defaults = requestDefaults(config, {
    get model() {
      return engine.info().model;
    },
  });
  const bare = createPipeline(config, engine, logger);
  const metrics = createMetrics(engine, () => bare.stats());
  // Masking wraps the pipeline itself, so every shape, jobs and cache replays included, gets it.
  const masked = createRedaction(config, metrics.registry)?.wrap(bare) ?? bare;
  // Moderation outside masking: the service sees a request as its client sent it, an answer as its client gets it.
  const moderation = createModeration(config.moderation, { logger, registry: metrics.registry });
  const unmetered = moderation?.wrap(masked) ?? masked;
  const quotas = createQuotas(config, logger);
  // Quotas outermost: a request over its key's quota is refused before it counts as a generation.
  const metered = metrics.meter(unmetered);
  const pipeline = quotas ? quotas.guard(metered) : metered;
  // Jobs run through the metered pipeline: their submission already counted against the key's quota.
  // On local disk under the state directory, or in Redis (shared by instances) with --redis-url.
  // A job is a Chat Completions body (/v1/jobs, chat batches) or a Responses one (responses batches).
  const runJob = jobRunnerByKind({
    chat: chatJobRunner(defaults, chatSchemas(config).chatCompletions, metered),
    responses: responsesJobRunner(responsesSchema(config), defaults, metered),
  });
  const jobs = createJobQueue(
    { redisUrl: config.redisUrl, stateDir: resolveStateDir(config.stateDir) },
    config.jobs,
    runJob,
    logger,
  );
  // Batches and their files beside the jobs (same place), told when each line ends; before start.
  const stateDir = resolveStateDir(config.stateDir);
  const batchStore = config.redisUrl ? new RedisBatchStore(config.redisUrl) : new EmbeddedBatchStore(stateDir);
  const batches = new Batches(batchStore, jobs, { ...config.batches, maxQueued: config.jobs.maxQueued }, logger);
  // Another worker owns the state directory: this one neither runs its jobs nor sweeps its batches.
  if (opts.stateOwner !== false) {
    jobs.start();
    batches.start();
  }
  metrics.meterJobs(jobs);
  metrics.register(app);
  app.addHook('onClose', async () => {
    // Workers first: a running job goes back to the queue before the pipeline stops.
    await jobs.close();
    await batches.close();
    await batchStore.close();
    await quotas?.close();
    await pipeline.close();
    await moderation?.close();
  });
  // Give Redis a moment to connect so the first requests can use the cache; never block startup on it.
  if (!(await pipeline.cacheReady()))
    logger.warn('answer cache (Redis) not reachable yet; serving without it until it is');
  const schemas = chatSchemas(config);
  // Registered before any onRequest hook of ours, so a WebSocket upgrade that a hook refuses (no
  // API key, shutting down) is already marked as one and its socket is destroyed after the answer.
  await app.register(websocket, { options: { maxPayload: config.bodyLimit } });
  // CORS and security headers before every other hook, so refusals and 404s carry them too.
  await registerSecurity(app, config);
  const keys = new ApiKeyRing(config.apiKeys, config.apiKeysFile);
  const reportKeys = (r: ReloadOutcome): ReloadOutcome => {
    if (r.outcome === 'error') logger.error({ keys: r.keys }, r.error);
    else if (config.apiKeysFile === undefined) logger.info('no API keys file to re-read');
    else
      logger.info(
        { keys: r.keys, file: config.apiKeysFile },
        r.outcome === 'reloaded' ? 'API keys reloaded' : 'API keys file unchanged',
      );
    return r;
  };
  keys.watch(config.apiKeysReloadSeconds, reportKeys);
  app.addHook('onClose', async () => keys.close());
  metrics.meterKeys(keys);
  registerApiKeys(app, keys, config.apiKeyJwt);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // Once shutdown began, only the probes answer: /ready says 503 so balancers move away,
    // everything else is refused at once with a code clients can retry elsewhere on.
    if (lifecycle.draining && !OPS_PATHS.has(request.url.split('?')[0] ?? '')) {
      return sendError(
        reply,
        request.routeOptions.config?.errorFormat ?? 'openai',
        new GlimpseError('shutting_down', 'The server is shutting down; retry on another instance.', {
          retryAfterSeconds: 1,
        }),
      );
    }
    if (request.method === 'POST' && GENERATION_ROUTES.has(request.routeOptions.url ?? '')) {
      try {
        pipeline.checkAdmission();
      } catch (err) {
        if (!(err instanceof GlimpseError)) throw err;
        request.log.info({ code: err.code }, 'request refused before reading its body');
        // A large body is not read: close the connection after answering rather than drain it.
        if (Number(request.headers['content-length'] ?? 0) > 65536 || request.headers['transfer-encoding'])
          reply.header('connection', 'close');
        return sendError(reply, request.routeOptions.config?.errorFormat ?? 'openai', err);
      }
    }
  });

  app.setErrorHandler((err, request, reply) => {
    const e = toRequestError(err, request);
    const format = request.routeOptions.config.errorFormat ?? 'openai';
    if (e.status >= 500) request.log.error({ err, code: e.code }, 'request failed');
    else request.log.info({ code: e.code, msg: e.message }, 'request refused');
    return sendError(reply, format, e);
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      'openai',
      new GlimpseError('not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`),
    ),
  );

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'glimpse',
        version: '0.1.0',
        description:
          'Vision-language model serving: OpenAI-compatible API plus the GLM-4.6V-Flash-WEB shapes. Errors carry a stable `code`.',
      },
      tags: [
        { name: 'OpenAI', description: 'OpenAI-compatible endpoints' },
        { name: 'GLM-WEB', description: 'Shapes GLM-4.6V-Flash-WEB users already call' },
        { name: 'Anthropic', description: "Anthropic's Messages API" },
        { name: 'Zhipu', description: "Zhipu's chat API, where its SDKs call it" },
        { name: 'Ops', description: 'Health and readiness' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP });
  await app.register(multipart, { limits: { fileSize: config.bodyLimit, files: 4, fields: 16 } });

  const redis = config.redisUrl ? redisHealth(config.redisUrl) : undefined;
  if (redis) app.addHook('onClose', () => redis.close());
  registerHealthRoutes(app, { engine, lifecycle, pipeline, ...(redis ? { redis: redis.view } : {}) });
  registerOpenAIRoutes(app, { config, defaults, engine, pipeline, schemas });
  // Kept in Redis with --redis-url, so any instance can continue a conversation another answered.
  const responseStore = config.responses.store
    ? createResponseStore({ ...config.responses, redisUrl: config.redisUrl }, (err) =>
        logger.warn({ err: err.message }, 'store of responses (Redis) unavailable'),
      )
    : undefined;
  app.addHook('onClose', async () => responseStore?.close());
  registerResponsesRoutes(app, { config, defaults, pipeline, store: responseStore });
  registerAnthropicRoutes(app, { config, defaults, pipeline });
  registerZhipuRoutes(app, { config, defaults, pipeline });
  registerGlmRoutes(app, { config, defaults, pipeline, schemas: glmSchemas(config) });
  const ws: WsRegistry = { sockets: new Set() };
  registerWsRoutes(app, { config, defaults, pipeline, registry: ws });
  registerJobRoutes(app, { config, defaults, pipeline, jobs, quotas, schemas });
  registerFileRoutes(app, { batches, maxFileBytes: config.batches.maxFileBytes });
  registerBatchRoutes(app, {
    batches,
    defaults,
    pipeline,
    quotas,
    schemas: { chat: schemas.chatCompletions, responses: responsesSchema(config) },
  });
  // The page at `/` (web/dist); the API routes above keep precedence.
  await registerWebUi(app, {
    heartbeatInterval: config.heartbeatInterval,
    // The page talks to the default model, so it shrinks to that model's bound before upload.
    imageMaxEdge: maxEdgeFor(
      config.images,
      engine.info().model,
      engine.info().models.find((m) => m.id === engine.info().model)?.profile,
    ),
    imageMaxBytes: config.images.maxBytes,
    maxImagesPerMessage: config.images.maxImagesPerRequest,
  });

  return { app, pipeline, lifecycle, ws, jobs, reloadApiKeys: () => reportKeys(keys.reload()) };
}

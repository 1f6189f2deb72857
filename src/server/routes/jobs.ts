/**
 * Async jobs: POST /v1/jobs takes a Chat Completions body and answers 202 with a job id at once;
 * GET /v1/jobs/:id gives its status and, once done, the chat.completion (or the error);
 * DELETE /v1/jobs/:id cancels it. Jobs live on local disk, or in Redis with --redis-url so any instance may run them (src/jobs).
 * With `webhook: "<https URL>"` in the body, the job's end is also POSTed there, signed.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Config } from '../../config/index.js';
import { GlimpseError } from '../../core/index.js';
import type { RequestDefaults } from '../../protocols/defaults.js';
import { generationOf, type GenerationPipeline } from '../pipeline.js';
import { checkWebhookUrl, type JobQueue, type JobRunner } from '../../jobs/index.js';
import type { Quotas } from '../../auth/index.js';
import { chatRequest } from '../../protocols/openai-chat/request.js';
import type { ChatBody, chatSchemas } from '../../protocols/openai-chat/schema.js';
import { chatCompletion, chatMeta } from '../../protocols/openai-chat/encode.js';
import { collectAnswer } from '../../streaming/index.js';
import { Compile } from 'typebox/compile';

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

type JobBody = ChatBody & { webhook?: unknown };

export function registerJobRoutes(
  app: FastifyInstance,
  deps: {
    config: Config;
    defaults: RequestDefaults;
    pipeline: GenerationPipeline;
    jobs: JobQueue;
    quotas: Quotas | undefined;
    schemas: ReturnType<typeof chatSchemas>;
  },
): void {
  const { config, defaults, pipeline, jobs, quotas, schemas } = deps;
  const queue = (): JobQueue => jobs;
  const common = { config: { errorFormat: 'openai' as const } };

  app.post<{ Body: JobBody }>(
    '/v1/jobs',
    {
      ...common,
      schema: {
        tags: ['OpenAI'],
        summary: 'Queue a chat completion to run in the background; answers 202 with the job',
        body: schemas.job,
      },
    },
    async (request, reply) => {
      const q = queue();
      // Checked now, so a bad body is a 400 here rather than a failed job later.
      const { webhook, ...chat } = request.body;
      const req = chatRequest(chat, { id: String(request.id), keyId: request.keyId }, defaults);
      pipeline.checkModel(req);
      const webhookUrl =
        webhook === undefined
          ? undefined
          : checkWebhookUrl(webhook, { allowPrivateNetworks: config.jobs.webhookAllowPrivateNetworks });
      // A submission counts as a request against the key's quota; the run itself is not counted again.
      if (quotas && request.keyId !== undefined) reply.headers(await quotas.admit(request.keyId));
      const job = await q.submit({ ...chat, stream: false }, { keyId: request.keyId, model: req.model }, webhookUrl);
      return reply.code(202).header('location', `/v1/jobs/${job.id}`).send(job);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id',
    {
      ...common,
      schema: {
        tags: ['OpenAI'],
        summary: 'A job: its status, and its chat.completion or error once done',
        params: IdParams,
      },
    },
    async (request) => queue().get(request.params.id, request.keyId),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/jobs/:id',
    {
      ...common,
      schema: {
        tags: ['OpenAI'],
        summary: 'Cancel a job (a queued one never runs; a running one stops)',
        params: IdParams,
      },
    },
    async (request) => queue().cancel(request.params.id, request.keyId),
  );
}

/**
 * Runs a job: its body is a Chat Completions request, its result the chat.completion object. The
 * body was checked at submission, but what Redis hands back is only JSON (written by any instance,
 * of any version): it is checked against the schema again rather than cast.
 */
export function chatJobRunner(
  defaults: RequestDefaults,
  schema: ReturnType<typeof chatSchemas>['chatCompletions'],
  pipeline: GenerationPipeline,
): JobRunner {
  const validator = Compile(schema);
  return async (job, signal) => {
    const body: unknown = job.body;
    if (!validator.Check(body))
      throw new GlimpseError(
        'invalid_request',
        'The stored job is not a Chat Completions request this server can run.',
      );
    const req = chatRequest(body, { id: job.id, keyId: job.keyId }, defaults);
    // Jobs come second to interactive requests for engine slots, and wait for one without a timeout.
    const answer = await collectAnswer(generationOf(await pipeline.open(req, signal, { background: true })));
    return chatCompletion(chatMeta(req), answer, req.messages);
  };
}

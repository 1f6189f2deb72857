/**
 * OpenAI's Batch API: POST /v1/batches (input_file_id, endpoint, completion_window "24h",
 * metadata), GET /v1/batches/:id, GET /v1/batches (newest first, `after` and `limit`),
 * POST /v1/batches/:id/cancel. Each line runs as a background job through the normal pipeline
 * (src/jobs/batches.ts); the batch belongs to the API key that created it.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Quotas } from '../../auth/index.js';
import type { Batches } from '../../jobs/batches.js';
import type { RequestDefaults } from '../../protocols/defaults.js';
import type { GenerationPipeline } from '../pipeline.js';
import { batchLineChecker } from './batch-lines.js';
import type { chatSchemas } from '../../protocols/openai-chat/schema.js';
import type { responsesSchema } from '../../protocols/responses/schema.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const CreateBody = Type.Object({
  input_file_id: Type.String({ maxLength: 64 }),
  endpoint: Type.String({ maxLength: 64 }),
  completion_window: Type.String({ maxLength: 16 }),
  metadata: Type.Optional(
    Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), { maxProperties: 16 }),
  ),
});
const ListQuery = Type.Object({
  after: Type.Optional(Type.String({ maxLength: 64 })),
  limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$', description: '1 to 100' })),
});

export function registerBatchRoutes(
  app: FastifyInstance,
  deps: {
    batches: Batches;
    defaults: RequestDefaults;
    pipeline: GenerationPipeline;
    quotas: Quotas | undefined;
    schemas: { chat: ReturnType<typeof chatSchemas>['chatCompletions']; responses: ReturnType<typeof responsesSchema> };
  },
): void {
  const { batches, quotas } = deps;
  const checkLine = batchLineChecker(deps.schemas, deps.defaults, deps.pipeline);
  const common = { config: { errorFormat: 'openai' as const } };
  const owner = (request: { keyId?: string }) => request.keyId ?? '';

  app.post<{
    Body: { input_file_id: string; endpoint: string; completion_window: string; metadata?: Record<string, string> };
  }>(
    '/v1/batches',
    {
      ...common,
      schema: {
        tags: ['OpenAI'],
        summary: 'Run every request of an uploaded JSONL file in the background',
        body: CreateBody,
      },
    },
    async (request) => {
      // Each line is checked as its endpoint would check it, now: a bad line refuses the batch whole.
      const check = (endpoint: string, body: Record<string, unknown>) =>
        checkLine(endpoint, body, { id: String(request.id), keyId: request.keyId });
      // Creating a batch counts as one request against the key's quota, as submitting a job does.
      if (quotas && request.keyId !== undefined) await quotas.admit(request.keyId);
      return batches.create({ keyId: request.keyId }, request.body, check);
    },
  );

  app.get<{ Querystring: { after?: string; limit?: string } }>(
    '/v1/batches',
    { ...common, schema: { tags: ['OpenAI'], summary: "This key's batches, newest first", querystring: ListQuery } },
    async (request) => batches.list(owner(request), request.query.after, Number(request.query.limit ?? 20)),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/batches/:id',
    {
      ...common,
      schema: {
        tags: ['OpenAI'],
        summary: 'A batch: status, request_counts, output and error files',
        params: IdParams,
      },
    },
    async (request) => batches.get(owner(request), request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/batches/:id/cancel',
    {
      ...common,
      schema: {
        tags: ['OpenAI'],
        summary: 'Cancel a batch (queued requests never run; it ends with what was answered)',
        params: IdParams,
      },
    },
    async (request) => batches.cancel(owner(request), request.params.id),
  );
}

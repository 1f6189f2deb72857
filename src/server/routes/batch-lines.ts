/**
 * What a batch line is, per endpoint: how it is checked when the batch is created (schema, then
 * the endpoint's own mapping and the model) and how it runs as a job. A Chat Completions line runs
 * as /v1/jobs do (chatJobRunner); a Responses line is stateless: no previous_response_id or
 * item_reference (a batch line cannot see another's answer), never stored, answered as the
 * `response` object POST /v1/responses returns.
 */
import { Compile } from 'typebox/compile';
import { GlimpseError } from '../../core/index.js';
import type { JobKind, JobRunner } from '../../jobs/index.js';
import type { RequestDefaults, RequestOrigin } from '../../protocols/defaults.js';
import { chatRequest } from '../../protocols/openai-chat/request.js';
import type { chatSchemas } from '../../protocols/openai-chat/schema.js';
import { completedResponse } from '../../protocols/responses/encode.js';
import { hex, inputItems, resolveItemReferences, responsesRequest } from '../../protocols/responses/request.js';
import type { InputItem, ResponsesBody, responsesSchema } from '../../protocols/responses/schema.js';
import { collectAnswer } from '../../streaming/index.js';
import { generationOf, type GenerationPipeline } from '../pipeline.js';

type Schemas = {
  chat: ReturnType<typeof chatSchemas>['chatCompletions'];
  responses: ReturnType<typeof responsesSchema>;
};

function checked<T>(
  validator: { Check(v: unknown): boolean; Errors(v: unknown): Array<{ instancePath?: string; message: string }> },
  body: unknown,
  what: string,
): T {
  if (validator.Check(body)) return body as T;
  const first = validator.Errors(body)[0];
  throw new GlimpseError(
    'invalid_request',
    `the body is not a ${what} request: ${first ? `${first.instancePath || 'body'} ${first.message}` : 'invalid'}.`,
  );
}

async function statelessRequest(b: ResponsesBody, origin: RequestOrigin, defaults: RequestDefaults) {
  if (b.previous_response_id)
    throw new GlimpseError(
      'invalid_request',
      'previous_response_id is not taken in a batch: each line is its own conversation. Send the turns as input.',
      { param: 'previous_response_id' },
    );
  const input = await resolveItemReferences(inputItems(b), () => {
    throw new GlimpseError('invalid_request', 'item_reference is not taken in a batch: send the items themselves.', {
      param: 'input',
    });
  });
  return responsesRequest(b, input as InputItem[], 0, origin, defaults);
}

/** Check one line's body for `endpoint`; returns the job kind and the model it runs on. */
export function batchLineChecker(schemas: Schemas, defaults: RequestDefaults, pipeline: GenerationPipeline) {
  const chat = Compile(schemas.chat);
  const responses = Compile(schemas.responses);
  return async (
    endpoint: string,
    body: Record<string, unknown>,
    origin: RequestOrigin,
  ): Promise<{ kind: JobKind; model: string }> => {
    const req =
      endpoint === '/v1/responses'
        ? await statelessRequest(checked<ResponsesBody>(responses, body, 'Responses API'), origin, defaults)
        : chatRequest(checked(chat, body, 'Chat Completions'), origin, defaults);
    pipeline.checkModel(req);
    return { kind: endpoint === '/v1/responses' ? 'responses' : 'chat', model: req.model };
  };
}

/** Runs a Responses line (checked again: what the store hands back is only JSON). */
export function responsesJobRunner(
  schema: ReturnType<typeof responsesSchema>,
  defaults: RequestDefaults,
  pipeline: GenerationPipeline,
): JobRunner {
  const validator = Compile(schema);
  return async (job, signal) => {
    const b = checked<ResponsesBody>(validator, job.body, 'Responses API');
    const req = await statelessRequest({ ...b, stream: false }, { id: job.id, keyId: job.keyId }, defaults);
    const answer = await collectAnswer(generationOf(await pipeline.open(req, signal, { background: true })));
    return completedResponse(
      {
        id: 'resp_' + hex(),
        created: Math.floor(Date.now() / 1000),
        model: req.model,
        body: b,
        store: false,
        summary: b.reasoning?.summary != null,
        keep: async () => {},
      },
      answer,
    );
  };
}

/** One runner for every job kind. */
export function jobRunnerByKind(runners: Record<JobKind, JobRunner>): JobRunner {
  return (job, signal) => runners[job.kind](job, signal);
}

/**
 * OpenAI Responses API (`POST /v1/responses`), the shape the OpenAI Agents SDK and newer clients
 * call: `input` as a string or messages with `input_text` / `input_image` parts, `instructions`,
 * `max_output_tokens`, sampling, `reasoning.effort` (thinking on or off), `text.format` (structured
 * output, passed on as chat's response_format), `stream`. The answer is a `response` object whose
 * `output` holds a `reasoning` item (when the model thinks) and a `message` item; streamed, it is the same object
 * built up through typed events (response.created, output_item.added, content_part.added,
 * output_text.delta, ..., response.completed / response.incomplete / response.failed), each with
 * its sequence number.
 *
 * Function tools work as on chat completions (engines that support them: upstream servers):
 * `tools` in the Responses shape, `function_call` items out (streamed as
 * function_call_arguments deltas), and `function_call` / `function_call_output` items in the
 * next turn's input.
 *
 * Responses are stored (`store`, true unless the client or --no-responses-store says otherwise) in
 * memory or Redis (src/responses): `previous_response_id` continues a stored conversation (its
 * turns' input and output come before the new input; `instructions` and tools are not carried
 * over, as in OpenAI's API), and `GET /v1/responses/{id}`, `.../input_items` and `DELETE` work on
 * what the caller's API key stored. A response is stored before its last event or body is sent, so
 * a client may continue it the moment it has it.
 *
 * This file is the wiring (store, routes); the dialect itself (schema, input → request, encoder)
 * is protocols/responses.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Config } from '../../config/index.js';
import { GlimpseError } from '../../core/index.js';
import { collectAnswer } from '../../streaming/index.js';
import type { RequestDefaults } from '../../protocols/defaults.js';
import { responsesSchema, type InputItem, type ResponsesBody } from '../../protocols/responses/schema.js';
import { hex, inputItems, responsesRequest } from '../../protocols/responses/request.js';
import { completedResponse, responsesSseEncoder, type Meta } from '../../protocols/responses/encode.js';
import type { ResponseStore, StoredResponse } from '../../responses/index.js';
import { origin } from '../http.js';
import { openForBody, streamSse } from '../respond.js';
import type { GenerationPipeline } from '../pipeline.js';

export function registerResponsesRoutes(app: FastifyInstance, deps: { config: Config; defaults: RequestDefaults; pipeline: GenerationPipeline; store?: ResponseStore }): void {
  const { config, defaults, pipeline, store } = deps;
  const schema = responsesSchema(config);
  const owner = (keyId: string | undefined) => keyId ?? null;
  const idParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 256 }) });

  app.post<{ Body: ResponsesBody }>(
    '/v1/responses',
    { schema: { tags: ['OpenAI'], summary: 'OpenAI Responses API: text and image input, text output; typed SSE events when stream is true', body: schema }, config: { errorFormat: 'openai' } },
    async (request, reply) => {
      const b = request.body;
      const input = inputItems(b);
      let history: InputItem[] = [];
      if (b.previous_response_id) {
        if (!store) throw new GlimpseError('invalid_request', 'This server keeps no responses (--no-responses-store): send the whole conversation as input instead of previous_response_id.', { param: 'previous_response_id' });
        history = (await store.history(b.previous_response_id, owner(request.keyId), config.maxMessages)) as InputItem[];
        if (history.length + input.length > config.maxMessages) {
          throw new GlimpseError('invalid_request', `The conversation behind previous_response_id and this input hold ${history.length + input.length} items; at most ${config.maxMessages} are taken. Start a new conversation, or send the turns that matter as input.`, { param: 'previous_response_id' });
        }
      }
      const req = responsesRequest(b, [...history, ...input], history.length, origin(request), defaults);
      const keeping = store !== undefined && b.store !== false;
      const meta: Meta = {
        id: 'resp_' + hex(),
        created: Math.floor(Date.now() / 1000),
        model: req.model,
        body: b,
        store: keeping,
        keep: async (response) => {
          if (!keeping) return;
          try {
            const kept = await store.put({ owner: owner(request.keyId), previousId: b.previous_response_id ?? null, input, response });
            if (!kept) request.log.warn({ response: response.id }, 'response too large to keep; previous_response_id to it will not be found');
          } catch (err) {
            request.log.warn({ err, response: response.id }, 'response could not be kept');
          }
        },
      };
      if (b.stream !== true) return completedResponse(meta, await collectAnswer(await openForBody(pipeline, request, reply, req)));

      await streamSse({ pipeline, config }, request, reply, req, responsesSseEncoder(meta));
    },
  );

  const stored = async (id: string, keyId: string | undefined): Promise<StoredResponse> => {
    const r = store ? await store.get(id, owner(keyId)) : undefined;
    if (!r) throw new GlimpseError('response_not_found', `No stored response '${id}' (never stored, expired, deleted, or made with another API key).`, { param: 'id' });
    return r;
  };

  app.get<{ Params: Static<typeof idParams> }>(
    '/v1/responses/:id',
    { schema: { tags: ['OpenAI'], summary: 'A stored response, as it was answered', params: idParams }, config: { errorFormat: 'openai' } },
    async (request) => (await stored(request.params.id, request.keyId)).response,
  );

  const listQuery = Type.Object({
    order: Type.Optional(Type.Enum(['asc', 'desc'])),
    // Query strings are text; the route reads the number itself (1..100).
    limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$', description: 'Items per page, 1..100 (default 20).' })),
    after: Type.Optional(Type.String({ maxLength: 256 })),
  });
  app.get<{ Params: Static<typeof idParams>; Querystring: Static<typeof listQuery> }>(
    '/v1/responses/:id/input_items',
    { schema: { tags: ['OpenAI'], summary: "A stored response's input items (this turn's; newest first unless order=asc)", params: idParams, querystring: listQuery }, config: { errorFormat: 'openai' } },
    async (request) => {
      const { order = 'desc', after } = request.query;
      const limit = Number(request.query.limit ?? 20);
      const items = (await stored(request.params.id, request.keyId)).input;
      const ordered = order === 'asc' ? items : [...items].reverse();
      const from = after === undefined ? 0 : ordered.findIndex((it) => it.id === after) + 1;
      if (after !== undefined && from === 0) throw new GlimpseError('invalid_request', `'after' names no input item of this response.`, { param: 'after' });
      const page = ordered.slice(from, from + limit);
      return { object: 'list', data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: from + limit < ordered.length };
    },
  );

  app.delete<{ Params: Static<typeof idParams> }>(
    '/v1/responses/:id',
    { schema: { tags: ['OpenAI'], summary: 'Forget a stored response', params: idParams }, config: { errorFormat: 'openai' } },
    async (request) => {
      const { id } = request.params;
      if (!store || !(await store.delete(id, owner(request.keyId)))) throw new GlimpseError('response_not_found', `No stored response '${id}'.`, { param: 'id' });
      return { id, object: 'response', deleted: true };
    },
  );
}

/**
 * Anthropic's Messages API: `POST /v1/messages` (whole, or streamed as Anthropic's events) and
 * `POST /v1/messages/count_tokens`. Wiring only: the dialect lives in protocols/anthropic. The key
 * comes as `x-api-key` (or Bearer); `anthropic-version` is accepted, whatever version it names.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/index.js';
import type { RequestDefaults } from '../../protocols/defaults.js';
import { anthropicSchemas, type CountTokensBody, type MessagesBody } from '../../protocols/anthropic/schema.js';
import { countTokensRequest, messagesRequest } from '../../protocols/anthropic/request.js';
import { anthropicMessage, anthropicSseEncoder, messageId } from '../../protocols/anthropic/encode.js';
import { origin } from '../http.js';
import { answerForBody, streamSse } from '../respond.js';
import type { GenerationPipeline } from '../pipeline.js';

export function registerAnthropicRoutes(
  app: FastifyInstance,
  deps: { config: Config; defaults: RequestDefaults; pipeline: GenerationPipeline },
): void {
  const { config, defaults, pipeline } = deps;
  const schemas = anthropicSchemas(config);

  app.post<{ Body: MessagesBody }>(
    '/v1/messages',
    {
      schema: {
        tags: ['Anthropic'],
        summary: 'Anthropic Messages: text and image blocks, tools, thinking; Anthropic events when stream is true',
        body: schemas.messages,
      },
      config: { errorFormat: 'anthropic' },
    },
    async (request, reply) => {
      const b = request.body;
      const req = messagesRequest(b, origin(request), defaults);
      const meta = { id: messageId(), model: req.model };
      if (b.stream !== true)
        return anthropicMessage(meta, await answerForBody(pipeline, request, reply, req), req.messages);
      await streamSse({ pipeline, config }, request, reply, req, anthropicSseEncoder(meta, req.messages));
    },
  );

  app.post<{ Body: CountTokensBody }>(
    '/v1/messages/count_tokens',
    {
      schema: {
        tags: ['Anthropic'],
        summary:
          'Input tokens of a Messages prompt, as the engine counts them (the prompt is read by the model with one token to generate)',
        body: schemas.countTokens,
      },
      config: { errorFormat: 'anthropic' },
    },
    async (request, reply) => {
      const answer = await answerForBody(
        pipeline,
        request,
        reply,
        countTokensRequest(request.body, origin(request), defaults),
      );
      return { input_tokens: answer.usage.promptTokens };
    },
  );
}

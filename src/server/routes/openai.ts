/** OpenAI's model list and Chat Completions: wiring only (the dialect lives in protocols/openai-chat). */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/index.js';
import { GlimpseError, type Engine } from '../../core/index.js';
import type { RequestDefaults } from '../../protocols/defaults.js';
import { chatRequest } from '../../protocols/openai-chat/request.js';
import { chatCompletion, chatMeta, chatSseEncoder } from '../../protocols/openai-chat/encode.js';
import type { ChatBody, chatSchemas } from '../../protocols/openai-chat/schema.js';
import { origin } from '../http.js';
import { answerForBody, streamSse } from '../respond.js';
import type { GenerationPipeline } from '../pipeline.js';

export function registerOpenAIRoutes(
  app: FastifyInstance,
  deps: {
    config: Config;
    defaults: RequestDefaults;
    engine: Engine;
    pipeline: GenerationPipeline;
    schemas: ReturnType<typeof chatSchemas>;
  },
): void {
  const { config, defaults, engine, pipeline, schemas } = deps;

  const modelCards = () => {
    const info = engine.info();
    const created = Math.floor(Date.now() / 1000);
    return info.models.map((m) => ({
      id: m.id,
      object: 'model' as const,
      created,
      owned_by: m.ownedBy,
      ...(info.simulated ? { simulated: true } : {}),
      ...(m.contextLength ? { max_model_len: m.contextLength } : {}),
      // The profile's name, what it is good at and its one-click tasks (the page's model picker shows them).
      ...(m.profile ? { description: m.profile.description, profile: m.profile } : {}),
    }));
  };

  app.get(
    '/v1/models',
    { schema: { tags: ['OpenAI'], summary: 'Models this server answers to' }, config: { errorFormat: 'openai' } },
    async () => ({ object: 'list', data: modelCards() }),
  );

  // One model (the SDKs' models.retrieve). Ids may hold slashes (zai-org/GLM-4.6V-Flash), sent as is or encoded.
  app.get<{ Params: { '*': string } }>(
    '/v1/models/*',
    { schema: { tags: ['OpenAI'], summary: 'One model this server answers to' }, config: { errorFormat: 'openai' } },
    async (request) => {
      // The router has already percent-decoded the wildcard (zai-org%2FGLM-4.6V-Flash arrives with its slash).
      const id = request.params['*'];
      const card = modelCards().find((m) => m.id === id);
      if (!card)
        throw new GlimpseError(
          'model_not_found',
          `The model '${id}' does not exist here. Available: ${pipeline.modelIds().join(', ')}.`,
          { param: 'model' },
        );
      return card;
    },
  );

  app.post<{ Body: ChatBody }>(
    '/v1/chat/completions',
    {
      schema: {
        tags: ['OpenAI'],
        summary: 'OpenAI Chat Completions with image_url parts; SSE when stream is true',
        body: schemas.chatCompletions,
      },
      config: { errorFormat: 'openai' },
    },
    async (request, reply) => {
      const b = request.body;
      const req = chatRequest(b, origin(request), defaults);
      const meta = chatMeta(req);
      if (b.stream !== true)
        return chatCompletion(meta, await answerForBody(pipeline, request, reply, req), req.messages);
      await streamSse(
        { pipeline, config },
        request,
        reply,
        req,
        chatSseEncoder(meta, {
          logprobs: !!req.logprobs,
          includeUsage: b.stream_options?.include_usage === true,
          messages: req.messages,
        }),
      );
    },
  );
}

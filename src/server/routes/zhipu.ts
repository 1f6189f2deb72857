/**
 * Zhipu's chat API where its SDKs call it: `POST /api/paas/v4/chat/completions`. The key comes as
 * Bearer, raw or as the HS256 JWT Zhipu's SDKs sign from an `id.secret` key (auth/jwt.ts). Wiring
 * only: the dialect lives in protocols/zhipu.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/index.js';
import type { RequestDefaults } from '../../protocols/defaults.js';
import { zhipuSchema, type ZhipuBody } from '../../protocols/zhipu/schema.js';
import { zhipuRequest } from '../../protocols/zhipu/request.js';
import { zhipuCompletion, zhipuSseEncoder, type ZhipuMeta } from '../../protocols/zhipu/encode.js';
import { completionId } from '../../protocols/openai-chat/encode.js';
import { origin } from '../http.js';
import { answerForBody, streamSse } from '../respond.js';
import type { GenerationPipeline } from '../pipeline.js';

export const ZHIPU_CHAT_PATH = '/api/paas/v4/chat/completions';

export function registerZhipuRoutes(
  app: FastifyInstance,
  deps: { config: Config; defaults: RequestDefaults; pipeline: GenerationPipeline },
): void {
  const { config, defaults, pipeline } = deps;
  app.post<{ Body: ZhipuBody }>(
    ZHIPU_CHAT_PATH,
    {
      schema: {
        tags: ['Zhipu'],
        summary: "Zhipu's chat completions (its SDKs' base URL: /api/paas/v4); SSE when stream is true",
        body: zhipuSchema(config),
      },
      config: { errorFormat: 'zhipu' },
    },
    async (request, reply) => {
      const b = request.body;
      const req = zhipuRequest(b, origin(request), defaults);
      if (b.request_id) reply.header('x-request-id', b.request_id);
      if (req.endUser) request.log.info({ userId: req.endUser }, 'zhipu end user');
      const meta: ZhipuMeta = {
        id: completionId(''),
        requestId: req.id,
        created: Math.floor(Date.now() / 1000),
        model: req.model,
      };
      if (b.stream !== true)
        return zhipuCompletion(meta, await answerForBody(pipeline, request, reply, req), req.messages);
      await streamSse({ pipeline, config }, request, reply, req, zhipuSseEncoder(meta, req.messages));
    },
  );
}

/**
 * The shapes GLM-4.6V-Flash-WEB users already call, each answered exactly as they expect:
 *   POST /v1/multimodal/completions  {image, prompt, max_new_tokens, temperature} → multimodal.completion
 *   POST /infer                      multipart image + prompt → {result, code: 0, cost_time}
 *   POST /v1/chat                    {image_url, prompt} → {response}
 *   POST /api/v1/infer               {image, prompt} → SSE `data: <text piece>` … `data: [END]`
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MultipartFile } from '@fastify/multipart';
import type { Config } from '../../config/index.js';
import { GlimpseError, toGlimpseError, type ContentPart } from '../../core/index.js';
import type { RequestDefaults } from '../../protocols/defaults.js';
import { glmRequest, inferRequest } from '../../protocols/glm-web/request.js';
import { uploadedPart } from '../../protocols/images.js';
import { apiInferSseEncoder, glmChatBody, inferBody, multimodalCompletion } from '../../protocols/glm-web/encode.js';
import type { ApiInferBody, GlmChatBody, glmSchemas, MultimodalBody } from '../../protocols/glm-web/schema.js';
import { origin } from '../http.js';
import { answerForBody, streamSse } from '../respond.js';
import { sendError } from '../errors.js';
import type { GenerationPipeline } from '../pipeline.js';

export function registerGlmRoutes(
  app: FastifyInstance,
  deps: {
    config: Config;
    defaults: RequestDefaults;
    pipeline: GenerationPipeline;
    schemas: ReturnType<typeof glmSchemas>;
  },
): void {
  const { config, defaults, pipeline, schemas } = deps;

  app.post<{ Body: MultimodalBody }>(
    '/v1/multimodal/completions',
    {
      schema: {
        tags: ['GLM-WEB'],
        summary: 'One image, one prompt, one answer (GLM-4.6V-Flash-WEB shape)',
        body: schemas.multimodal,
      },
      config: { errorFormat: 'openai' },
    },
    async (request, reply) => {
      const b = request.body;
      const req = glmRequest(b, { value: b.image, param: 'image' }, origin(request), defaults);
      return multimodalCompletion(req.model, await answerForBody(pipeline, request, reply, req), req.messages);
    },
  );

  app.post<{ Body: GlmChatBody }>(
    '/v1/chat',
    {
      schema: { tags: ['GLM-WEB'], summary: 'Image URL or base64 plus prompt → {response}', body: schemas.glmChat },
      config: { errorFormat: 'openai' },
    },
    async (request, reply) => {
      const b = request.body;
      const req = glmRequest(b, { value: b.image_url, param: 'image_url' }, origin(request), defaults);
      return glmChatBody(await answerForBody(pipeline, request, reply, req), req.messages);
    },
  );

  app.post<{ Body: ApiInferBody }>(
    '/api/v1/infer',
    {
      schema: {
        tags: ['GLM-WEB'],
        summary: 'Streamed answer as SSE text pieces, ending with data: [END]',
        body: schemas.apiInfer,
      },
      config: { errorFormat: 'openai' },
    },
    async (request, reply) => {
      const b = request.body;
      const req = glmRequest(b, { value: b.image, param: 'image' }, origin(request), defaults);
      await streamSse({ pipeline, config }, request, reply, req, apiInferSseEncoder(req.messages));
    },
  );

  // Multipart: errors keep the {result, code, msg, cost_time} shape, so this route answers its own.
  app.post(
    '/infer',
    {
      schema: {
        tags: ['GLM-WEB'],
        summary: 'multipart/form-data: image (file) + prompt (field) → {result, code: 0, cost_time}',
        consumes: ['multipart/form-data'],
      },
      config: { errorFormat: 'infer' },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const started = performance.now();
      const costTime = () => Number(((performance.now() - started) / 1000).toFixed(3));
      try {
        if (!request.isMultipart())
          throw new GlimpseError(
            'unsupported_media_type',
            "This endpoint takes multipart/form-data with an 'image' file and a 'prompt' field.",
          );
        const fields: Record<string, string> = {};
        let image: ContentPart | undefined;
        for await (const part of request.parts({
          limits: { fileSize: config.bodyLimit, files: 1, fields: 16, fieldSize: config.maxPromptChars * 4 },
        })) {
          if (part.type === 'file') {
            const file = part as MultipartFile;
            if (!['image', 'file', 'document', 'video'].includes(file.fieldname)) {
              await file.toBuffer();
              continue;
            }
            const data = await file.toBuffer();
            if (file.file.truncated)
              throw new GlimpseError('image_too_large', `The uploaded file is larger than ${config.bodyLimit} bytes.`, {
                param: 'image',
              });
            // A PDF, Office file or video is taken as such, whichever field it came in.
            image = uploadedPart(data, file.filename);
          } else if (typeof part.value === 'string') {
            fields[part.fieldname] = part.value;
          }
        }
        const req = inferRequest(fields, image, origin(request), defaults);
        const answer = await answerForBody(pipeline, request, reply, req);
        return inferBody(answer, costTime(), req.messages);
      } catch (err) {
        const e = err instanceof GlimpseError ? err : toGlimpseErrorFromMultipart(err);
        return sendError(reply, 'infer', e, { costTime: costTime() });
      }
    },
  );
}

function toGlimpseErrorFromMultipart(err: unknown): GlimpseError {
  const code = (err as { code?: string }).code;
  if (code === 'FST_REQ_FILE_TOO_LARGE')
    return new GlimpseError('image_too_large', 'The uploaded image is larger than the limit.', { param: 'image' });
  if (code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT')
    return new GlimpseError('invalid_request', 'Too many multipart parts: send one image and a prompt.');
  if (code === 'FST_INVALID_MULTIPART_CONTENT_TYPE')
    return new GlimpseError('unsupported_media_type', 'This endpoint takes multipart/form-data.');
  if (err instanceof Error && /Unexpected end of form|Malformed part header|boundary/i.test(err.message)) {
    return new GlimpseError('invalid_request', `The multipart body is malformed: ${err.message}.`);
  }
  return toGlimpseError(err);
}

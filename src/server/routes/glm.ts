/**
 * The shapes GLM-4.6V-Flash-WEB users already call, each answered exactly as they expect:
 *   POST /v1/multimodal/completions  {image, prompt, max_new_tokens, temperature} → multimodal.completion
 *   POST /infer                      multipart image + prompt → {result, code: 0, cost_time}
 *   POST /v1/chat                    {image_url, prompt} → {response}
 *   POST /api/v1/infer               {image, prompt} → SSE `data: <text piece>` … `data: [END]`
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MultipartFile } from '@fastify/multipart';
import type { Static } from 'typebox';
import type { Config } from '../../config/index.js';
import { GlimpseError, toGlimpseError, type ImageSource, type SamplingParams } from '../../core/index.js';
import { collectAnswer, completionId, openAIUsage } from '../../streaming/index.js';
import { glmSampling, imageSourceFromString, makeRequest, origin, singleTurn } from '../common.js';
import { openForBody, streamSse } from '../respond.js';
import { sendError } from '../errors.js';
import type { GenerationPipeline } from '../pipeline.js';
import type { buildSchemas } from '../schemas.js';
import type { RequestDefaults } from '../../protocols/defaults.js';

type Schemas = ReturnType<typeof buildSchemas>;

export function registerGlmRoutes(app: FastifyInstance, deps: { config: Config; defaults: RequestDefaults; pipeline: GenerationPipeline; schemas: Schemas }): void {
  const { config, defaults, pipeline, schemas } = deps;
  // The same fields, names and defaults as multipart /infer and WebSocket messages; the schema has checked them already.
  const sampling = (b: { max_new_tokens?: number; max_tokens?: number; temperature?: number; top_p?: number; seed?: number }): SamplingParams => ({ ...glmSampling(b, defaults), seed: b.seed });

  app.post<{ Body: Static<Schemas['multimodal']> }>(
    '/v1/multimodal/completions',
    { schema: { tags: ['GLM-WEB'], summary: 'One image, one prompt, one answer (GLM-4.6V-Flash-WEB shape)', body: schemas.multimodal }, config: { errorFormat: 'openai' } },
    async (request, reply) => {
      const b = request.body;
      const req = makeRequest(origin(request), defaults, { model: b.model, messages: singleTurn(b.prompt, imageSourceFromString(b.image, 'image')), sampling: sampling(b), stream: false });
      const answer = await collectAnswer(await openForBody(pipeline, request, reply, req));
      return {
        id: completionId('cmpl-'),
        object: 'multimodal.completion',
        created: Math.floor(Date.now() / 1000),
        model: req.model,
        choices: [{ index: 0, message: { role: 'assistant', content: answer.text }, finish_reason: answer.finishReason }],
        usage: openAIUsage(answer.usage),
      };
    },
  );

  app.post<{ Body: Static<Schemas['glmChat']> }>(
    '/v1/chat',
    { schema: { tags: ['GLM-WEB'], summary: 'Image URL or base64 plus prompt → {response}', body: schemas.glmChat }, config: { errorFormat: 'openai' } },
    async (request, reply) => {
      const b = request.body;
      const req = makeRequest(origin(request), defaults, { messages: singleTurn(b.prompt, imageSourceFromString(b.image_url, 'image_url')), sampling: sampling(b), stream: false });
      const answer = await collectAnswer(await openForBody(pipeline, request, reply, req));
      return { response: answer.text };
    },
  );

  app.post<{ Body: Static<Schemas['apiInfer']> }>(
    '/api/v1/infer',
    {
      schema: { tags: ['GLM-WEB'], summary: 'Streamed answer as SSE text pieces, ending with data: [END]', body: schemas.apiInfer },
      config: { errorFormat: 'openai' },
    },
    async (request, reply) => {
      const b = request.body;
      const req = makeRequest(origin(request), defaults, { messages: singleTurn(b.prompt, imageSourceFromString(b.image, 'image')), sampling: sampling(b), stream: true });
      // Pieces of text as they come, then [END]; an error is one JSON data event before [END].
      await streamSse({ pipeline, config }, request, reply, req, {
        terminator: '[END]',
        event: async (sse, ev) => {
          if (ev.type === 'token') await sse.data(ev.text);
        },
        error: (sse, err) => sse.json(err.toOpenAI()),
      });
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
        if (!request.isMultipart()) throw new GlimpseError('unsupported_media_type', "This endpoint takes multipart/form-data with an 'image' file and a 'prompt' field.");
        const fields: Record<string, string> = {};
        let image: ImageSource | undefined;
        for await (const part of request.parts({ limits: { fileSize: config.bodyLimit, files: 1, fields: 16, fieldSize: config.maxPromptChars * 4 } })) {
          if (part.type === 'file') {
            const file = part as MultipartFile;
            if (file.fieldname !== 'image' && file.fieldname !== 'file') {
              await file.toBuffer();
              continue;
            }
            const data = await file.toBuffer();
            if (file.file.truncated) throw new GlimpseError('image_too_large', `The uploaded image is larger than ${config.bodyLimit} bytes.`, { param: 'image' });
            image = { kind: 'bytes', data, filename: file.filename };
          } else if (typeof part.value === 'string') {
            fields[part.fieldname] = part.value;
          }
        }
        if (!image && fields.image) image = imageSourceFromString(fields.image, 'image');
        if (!image) throw new GlimpseError('missing_image', "Send the image as a multipart file field named 'image'.", { param: 'image' });
        const prompt = (fields.prompt ?? fields.question ?? '').trim();
        if (!prompt) throw new GlimpseError('missing_prompt', "Send the question as a multipart field named 'prompt'.", { param: 'prompt' });
        if (prompt.length > config.maxPromptChars) throw new GlimpseError('invalid_request', `'prompt' is longer than ${config.maxPromptChars} characters.`, { param: 'prompt' });
        const req = makeRequest(origin(request), defaults, { messages: singleTurn(prompt, image), sampling: glmSampling(fields, defaults, { fromStrings: true }), stream: false });
        const answer = await collectAnswer(await openForBody(pipeline, request, reply, req));
        return { result: answer.text, code: 0, cost_time: costTime() };
      } catch (err) {
        const e = err instanceof GlimpseError ? err : toGlimpseErrorFromMultipart(err);
        return sendError(reply, 'infer', e, { costTime: costTime() });
      }
    },
  );

}

function toGlimpseErrorFromMultipart(err: unknown): GlimpseError {
  const code = (err as { code?: string }).code;
  if (code === 'FST_REQ_FILE_TOO_LARGE') return new GlimpseError('image_too_large', 'The uploaded image is larger than the limit.', { param: 'image' });
  if (code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') return new GlimpseError('invalid_request', 'Too many multipart parts: send one image and a prompt.');
  if (code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') return new GlimpseError('unsupported_media_type', 'This endpoint takes multipart/form-data.');
  if (err instanceof Error && /Unexpected end of form|Malformed part header|boundary/i.test(err.message)) {
    return new GlimpseError('invalid_request', `The multipart body is malformed: ${err.message}.`);
  }
  return toGlimpseError(err);
}

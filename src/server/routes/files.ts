/**
 * OpenAI's Files API, for batch input: POST /v1/files (multipart `file` + `purpose: "batch"`, the
 * JSONL checked line by line before anything is kept), GET /v1/files, GET /v1/files/:id,
 * GET /v1/files/:id/content, DELETE /v1/files/:id. Files belong to the API key that uploaded them
 * (src/jobs/batches.ts); a batch's output and error files are listed here too.
 */
import type { FastifyInstance } from 'fastify';
import type { MultipartFile } from '@fastify/multipart';
import { Type } from 'typebox';
import { GlimpseError } from '../../core/index.js';
import { fileView, type Batches } from '../../jobs/batches.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

export function registerFileRoutes(app: FastifyInstance, deps: { batches: Batches; maxFileBytes: number }): void {
  const { batches, maxFileBytes } = deps;
  const common = { config: { errorFormat: 'openai' as const } };
  const owner = (request: { keyId?: string }) => request.keyId ?? '';

  app.post(
    '/v1/files',
    {
      ...common,
      schema: {
        tags: ['OpenAI'],
        summary: 'Upload a JSONL file of requests for a batch (multipart: file, purpose=batch)',
      },
    },
    async (request) => {
      if (!request.isMultipart())
        throw new GlimpseError(
          'unsupported_media_type',
          "This endpoint takes multipart/form-data with a 'file' and a 'purpose' field.",
        );
      const fields: Record<string, string> = {};
      let file: { data: Buffer; filename: string } | undefined;
      try {
        for await (const part of request.parts({
          limits: { fileSize: maxFileBytes, files: 1, fields: 8, fieldSize: 1024 },
        })) {
          if (part.type === 'file') {
            const data = await (part as MultipartFile).toBuffer();
            if (part.fieldname === 'file') file = { data, filename: part.filename };
          } else if (typeof part.value === 'string') fields[part.fieldname] = part.value;
        }
      } catch (err) {
        if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE')
          throw new GlimpseError(
            'file_too_large',
            `The file is larger than batches.maxFileBytes (${maxFileBytes} bytes).`,
            { param: 'file' },
          );
        throw err;
      }
      if (!file)
        throw new GlimpseError('invalid_request', "Send the JSONL as a multipart file field named 'file'.", {
          param: 'file',
        });
      if (fields.purpose === undefined)
        throw new GlimpseError('invalid_request', 'Send \'purpose\' ("batch").', { param: 'purpose' });
      return batches.createFile(owner(request), file.filename, fields.purpose, file.data);
    },
  );

  app.get(
    '/v1/files',
    { ...common, schema: { tags: ['OpenAI'], summary: "This key's files, newest first" } },
    async (request) => ({ object: 'list', data: await batches.files(owner(request)), has_more: false }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/files/:id',
    { ...common, schema: { tags: ['OpenAI'], summary: 'A file', params: IdParams } },
    async (request) => fileView(await batches.file(owner(request), request.params.id)),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/files/:id/content',
    { ...common, schema: { tags: ['OpenAI'], summary: "A file's content (JSONL)", params: IdParams } },
    async (request, reply) =>
      reply.type('application/jsonl').send(await batches.fileContent(owner(request), request.params.id)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/files/:id',
    { ...common, schema: { tags: ['OpenAI'], summary: 'Delete a file', params: IdParams } },
    async (request) => batches.deleteFile(owner(request), request.params.id),
  );
}

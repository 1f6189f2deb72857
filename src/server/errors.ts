/**
 * Fastify's own errors (validation, body parsing, multipart) become GlimpseErrors with stable
 * codes here, once; each route family then writes them in its own wire shape.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { GlimpseError, toGlimpseError, type ErrorCode } from '../core/index.js';

export type ErrorFormat = 'openai' | 'infer' | 'plain';

interface AjvIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

const FIELD_CODES: Record<string, ErrorCode> = {
  max_tokens: 'invalid_max_tokens',
  max_completion_tokens: 'invalid_max_tokens',
  max_new_tokens: 'invalid_max_tokens',
  temperature: 'invalid_temperature',
  top_p: 'invalid_top_p',
  prompt: 'missing_prompt',
  image: 'missing_image',
  image_url: 'missing_image',
  messages: 'empty_messages',
  webhook: 'invalid_webhook_url',
};

function valueAt(body: unknown, pointer: string): unknown {
  let cur: unknown = body;
  for (const seg of pointer.split('/').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function fromValidation(issues: AjvIssue[], body: unknown): GlimpseError {
  const first = issues[0] ?? {};
  const path = first.instancePath ?? '';
  const segs = path.split('/').filter(Boolean);
  if (first.keyword === 'required') {
    const missing = String(first.params?.missingProperty ?? first.params?.requiredProperties ?? '');
    const field = [...segs, missing].join('.');
    const code = segs.length === 0 ? (FIELD_CODES[missing] ?? 'invalid_request') : 'invalid_request';
    return new GlimpseError(code, `Missing required field '${field}'.`, { param: field });
  }
  if (path === '' && first.keyword === 'type') return new GlimpseError('invalid_request', 'The request body must be a JSON object.');
  const top = segs[0] ?? '';
  const field = segs.join('.');
  const got = JSON.stringify(valueAt(body, path)) ?? 'nothing';
  let code: ErrorCode = segs.length === 1 ? (FIELD_CODES[top] ?? 'invalid_request') : 'invalid_request';
  if (top === 'messages' && segs.length === 1 && first.keyword !== 'minItems') code = 'invalid_request';
  const detail = issues
    .filter((i) => i.instancePath === path && i.keyword !== 'anyOf' && !(i.keyword === 'type' && i.params?.type === 'null'))
    .map((i) => i.message)
    .filter(Boolean);
  const why = [...new Set(detail)].join(', ') || first.message || 'is invalid';
  const text = code === 'empty_messages' ? "'messages' must hold at least one message." : `'${field}' ${why} (got ${got.length > 80 ? got.slice(0, 80) + '…' : got}).`;
  return new GlimpseError(code, text, { param: field || null });
}

export function toRequestError(err: unknown, request: FastifyRequest): GlimpseError {
  if (err instanceof GlimpseError) return err;
  const fe = err as FastifyError & { validation?: AjvIssue[] };
  if (fe && Array.isArray(fe.validation)) return fromValidation(fe.validation, request.body);
  switch (fe?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GlimpseError('invalid_json', `The request body is not valid JSON: ${fe.message}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GlimpseError('unsupported_media_type', `Unsupported Content-Type '${request.headers['content-type'] ?? ''}'.`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GlimpseError('payload_too_large', `The request body is larger than the limit.`);
    case 'FST_REQ_FILE_TOO_LARGE':
      return new GlimpseError('image_too_large', 'The uploaded file is larger than the limit.', { param: 'image' });
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new GlimpseError('unsupported_media_type', 'This endpoint takes multipart/form-data.');
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new GlimpseError('invalid_request', `Too many multipart parts: ${fe.message}`);
  }
  if (err instanceof SyntaxError) return new GlimpseError('invalid_json', `The request body is not valid JSON: ${err.message}`);
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new GlimpseError(fe.statusCode === 413 ? 'payload_too_large' : fe.statusCode === 415 ? 'unsupported_media_type' : 'invalid_request', fe.message);
  }
  return toGlimpseError(err);
}

/** Body of an error in each route family's own shape. */
export function errorBody(format: ErrorFormat, e: GlimpseError, extra: { costTime?: number } = {}): unknown {
  switch (format) {
    case 'openai':
      return e.toOpenAI();
    case 'infer':
      return { result: null, code: e.status, error_code: e.code, msg: e.message, cost_time: extra.costTime ?? 0 };
    case 'plain':
      return { error: { message: e.message, code: e.code } };
  }
}

export function sendError(reply: FastifyReply, format: ErrorFormat, e: GlimpseError, extra: { costTime?: number } = {}): FastifyReply {
  for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
  return reply.code(e.status).type('application/json; charset=utf-8').send(errorBody(format, e, extra));
}

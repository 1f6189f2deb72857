/**
 * Fastify's own errors (validation, body parsing, multipart) become GlimpseErrors with stable
 * codes here, once; each route family then writes them in its own wire shape.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { GlimpseError, toGlimpseError, type ErrorCode } from '../core/index.js';
import { errorBody as openAIErrorBody } from '../protocols/openai-chat/encode.js';
import { inferErrorBody } from '../protocols/glm-web/encode.js';
import { anthropicErrorBody, anthropicStatus } from '../protocols/anthropic/encode.js';
import { zhipuErrorBody, zhipuStatus } from '../protocols/zhipu/encode.js';

export type ErrorFormat = 'openai' | 'infer' | 'plain' | 'anthropic' | 'zhipu';

interface AjvIssue {
  instancePath?: string;
  schemaPath?: string;
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

const PIXEL_BOUNDS = new Set(['min_pixels', 'max_pixels']);

function valueAt(body: unknown, pointer: string): unknown {
  let cur: unknown = body;
  for (const seg of pointer.split('/').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** The part of a JSON schema a validation issue's schemaPath (`#/properties/a/anyOf`) points at. */
function schemaAt(root: unknown, schemaPath: string): unknown {
  let cur = root;
  for (const raw of schemaPath.replace(/^#/, '').split('/').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

type SchemaNode = {
  type?: unknown;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, SchemaNode>;
  required?: string[];
};

const jsonType = (v: unknown) =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'array'
      : typeof v === 'number'
        ? Number.isInteger(v)
          ? 'integer'
          : 'number'
        : typeof v;

/** A union branch's tag: the `type` or `role` property it fixes with const or enum, and the values it allows. */
function branchTag(branch: SchemaNode): { key: string; allowed: unknown[]; required: boolean } | undefined {
  for (const key of ['type', 'role']) {
    const p = branch.properties?.[key];
    if (p && ('const' in p || Array.isArray(p.enum)))
      return { key, allowed: 'const' in p ? [p.const] : p.enum!, required: branch.required?.includes(key) ?? false };
  }
  return undefined;
}

/** Whether a union branch is the one a value means: by its tag when it has one, else by JSON type or by the kind of its allowed words. */
function branchFits(branch: SchemaNode, value: unknown): boolean {
  const tag = branchTag(branch);
  if (tag) {
    if (jsonType(value) !== 'object') return false;
    const v = (value as Record<string, unknown>)[tag.key];
    return v === undefined ? !tag.required : tag.allowed.includes(v);
  }
  if (typeof branch.type === 'string')
    return branch.type === jsonType(value) || (branch.type === 'number' && jsonType(value) === 'integer');
  if (Array.isArray(branch.enum)) return branch.enum.some((w) => typeof w === typeof value);
  return true;
}

/**
 * Ajv reports a failed union (anyOf) as every branch's first issue, in branch order, then the
 * union's own. Only the branch the client meant is worth telling them about: the one whose `type`
 * or `role` tag the value has (so a json_schema format without a name says the name is missing,
 * not 'type must be text'), or whose JSON type it has (an array given to a string-or-array field
 * reports the array's problem). When the value has no branch's tag, one issue lists every tag.
 */
function relevantIssues(issues: AjvIssue[], body: unknown, schema: unknown): AjvIssue[] {
  let kept = issues;
  const unions = issues
    .filter((i) => i.keyword === 'anyOf')
    .sort((x, y) => (x.schemaPath ?? '').length - (y.schemaPath ?? '').length);
  for (const union of unions) {
    if (!kept.includes(union)) continue; // inside a branch an outer union already set aside
    const branches = schemaAt(schema, union.schemaPath ?? '');
    if (!Array.isArray(branches)) continue;
    const value = valueAt(body, union.instancePath ?? '');
    const prefix = `${union.schemaPath}/`;
    const branchOf = (i: AjvIssue) =>
      (i.schemaPath ?? '').startsWith(prefix)
        ? Number((i.schemaPath ?? '').slice(prefix.length).split('/')[0])
        : undefined;
    const fits = (branches as SchemaNode[]).map((b) => branchFits(b, value));
    if (fits.some(Boolean)) {
      kept = kept.filter((i) => i !== union && (branchOf(i) === undefined || fits[branchOf(i)!]));
      continue;
    }
    const tags = (branches as SchemaNode[]).map(branchTag);
    if (jsonType(value) === 'object' && tags.every(Boolean)) {
      const key = tags[0]!.key;
      const one: AjvIssue = {
        instancePath: `${union.instancePath}/${key}`,
        keyword: 'enum',
        params: { allowedValues: [...new Set(tags.flatMap((t) => t!.allowed))] },
      };
      kept = kept.flatMap((i) => (i === union ? [one] : branchOf(i) !== undefined ? [] : [i]));
    }
  }
  return kept;
}

/** The start of a value as JSON, for an error message: huge arrays and strings (at any depth) are cut before they are serialised to show 80 characters. */
function preview(v: unknown): string {
  return (
    JSON.stringify(v, (_key, x: unknown) =>
      Array.isArray(x) && x.length > 8 ? x.slice(0, 8) : typeof x === 'string' && x.length > 100 ? x.slice(0, 100) : x,
    ) ?? 'nothing'
  );
}

function fromValidation(all: AjvIssue[], body: unknown, schema: unknown): GlimpseError {
  const issues = relevantIssues(all, body, schema);
  const first = issues[0] ?? {};
  const path = first.instancePath ?? '';
  const segs = path.split('/').filter(Boolean);
  if (first.keyword === 'required') {
    const missing = String(first.params?.missingProperty ?? first.params?.requiredProperties ?? '');
    const field = [...segs, missing].join('.');
    const code = segs.length === 0 ? (FIELD_CODES[missing] ?? 'invalid_request') : 'invalid_request';
    return new GlimpseError(code, `Missing required field '${field}'.`, { param: field });
  }
  if (path === '' && first.keyword === 'type')
    return new GlimpseError('invalid_request', 'The request body must be a JSON object.');
  const top = segs[0] ?? '';
  const field = segs.join('.');
  const got = preview(valueAt(body, path));
  let code: ErrorCode = segs.length === 1 ? (FIELD_CODES[top] ?? 'invalid_request') : 'invalid_request';
  // Image bounds have one code wherever they are given: top level or inside an image part.
  if (PIXEL_BOUNDS.has(segs.at(-1) ?? '')) code = 'invalid_image_budget';
  if (top === 'messages' && segs.length === 1 && first.keyword !== 'minItems') code = 'invalid_request';
  const detail = issues
    .filter(
      (i) => i.instancePath === path && i.keyword !== 'anyOf' && !(i.keyword === 'type' && i.params?.type === 'null'),
    )
    .map((i) =>
      i.keyword === 'enum' && Array.isArray(i.params?.allowedValues)
        ? `must be one of ${i.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`
        : i.message,
    )
    .filter(Boolean);
  const why = [...new Set(detail)].join(', ') || first.message || 'is invalid';
  const text =
    code === 'empty_messages'
      ? "'messages' must hold at least one message."
      : `'${field}' ${why} (got ${got.length > 80 ? got.slice(0, 80) + '…' : got}).`;
  return new GlimpseError(code, text, { param: field || null });
}

export function toRequestError(err: unknown, request: FastifyRequest): GlimpseError {
  if (err instanceof GlimpseError) return err;
  const fe = err as FastifyError & { validation?: AjvIssue[] };
  if (fe && Array.isArray(fe.validation))
    return fromValidation(fe.validation, request.body, request.routeOptions.schema?.body);
  switch (fe?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GlimpseError('invalid_json', `The request body is not valid JSON: ${fe.message}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GlimpseError(
        'unsupported_media_type',
        `Unsupported Content-Type '${request.headers['content-type'] ?? ''}'.`,
      );
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
  if (err instanceof SyntaxError)
    return new GlimpseError('invalid_json', `The request body is not valid JSON: ${err.message}`);
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new GlimpseError(
      fe.statusCode === 413
        ? 'payload_too_large'
        : fe.statusCode === 415
          ? 'unsupported_media_type'
          : 'invalid_request',
      fe.message,
    );
  }
  return toGlimpseError(err);
}

/** Body of an error in each HTTP route family's own shape (WebSocket messages: protocols/websocket). */
export function errorBody(format: ErrorFormat, e: GlimpseError, extra: { costTime?: number } = {}): unknown {
  switch (format) {
    case 'openai':
      return openAIErrorBody(e);
    case 'infer':
      return inferErrorBody(e, extra.costTime);
    case 'plain':
      return { error: { message: e.message, code: e.code } };
    case 'anthropic':
      return anthropicErrorBody(e);
    case 'zhipu':
      return zhipuErrorBody(e);
  }
}

/** The HTTP status an error is answered with: the code's own, or where a dialect has its own (Anthropic's 529, Zhipu's 400 for business errors). */
export function errorStatus(format: ErrorFormat, e: GlimpseError): number {
  return format === 'anthropic' ? anthropicStatus(e) : format === 'zhipu' ? zhipuStatus(e) : e.status;
}

/** The headers an error answer carries: its own (x-ratelimit-*) and Retry-After when a retry has a time. */
export function errorHeaders(e: GlimpseError): Record<string, string> {
  return e.retryAfterSeconds === undefined ? e.headers : { ...e.headers, 'Retry-After': String(e.retryAfterSeconds) };
}

export function sendError(
  reply: FastifyReply,
  format: ErrorFormat,
  e: GlimpseError,
  extra: { costTime?: number } = {},
): FastifyReply {
  reply.headers(errorHeaders(e));
  return reply
    .code(errorStatus(format, e))
    .type('application/json; charset=utf-8')
    .send(errorBody(format, e, extra));
}

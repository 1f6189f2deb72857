/**
 * Fastify's own errors (validation, body parsing, multipart) become GlimpseErrors with stable
 * codes here, once; each route family then writes them in its own wire shape.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { GlimpseError, toGlimpseError, type ErrorCode } from '../core/index.js';

export type ErrorFormat = 'openai' | 'infer' | 'plain';

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

function valueAt(body: unknown, pointer: string): unknown {
  let cur: unknown = body;
  for (const seg of pointer.split('/').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** A union branch's tag check: the branch (`...anyOf/N`) and whether it checks `type` or `role`. */
const TAG_CHECK = /^(.*\/anyOf\/)(\d+)\/properties\/(?:type|role)\/(?:const|enum)$/;
/** A union branch whose JSON type the value does not have (a string branch given an array, ...). */
const TYPE_CHECK = /^(.*\/anyOf\/)(\d+)\/type$/;
/** A union branch of allowed words (tool_choice's 'auto' | 'none' | ...), wrong when the value is not even a word. */
const ENUM_CHECK = /^(.*\/anyOf\/)(\d+)\/enum$/;

/**
 * Ajv reports every branch of a union (allErrors), in branch order. For unions told apart by a
 * `type` or `role` tag, only one branch's issues are about what the client meant: the branch whose
 * tag the value has (so a json_schema format without a name says 'name is missing', not 'type must
 * be text'); when no branch has it, one issue listing every allowed tag. Branches of another JSON
 * type than the value's (a string branch for an array) are not what the client meant either.
 */
function relevantIssues(issues: AjvIssue[], body: unknown): AjvIssue[] {
  const wrongBranches = new Map<string, Set<string>>();
  const otherKind = (i: AjvIssue) => typeof valueAt(body, i.instancePath ?? '') !== typeof (i.params?.allowedValues as unknown[] | undefined)?.[0];
  for (const i of issues) {
    const enumBranch = ENUM_CHECK.exec(i.schemaPath ?? '');
    const m = TAG_CHECK.exec(i.schemaPath ?? '') ?? TYPE_CHECK.exec(i.schemaPath ?? '') ?? (enumBranch && otherKind(i) ? enumBranch : null);
    if (!m) continue;
    const set = wrongBranches.get(m[1]!) ?? new Set<string>();
    wrongBranches.set(m[1]!, set.add(m[2]!));
  }
  let kept = issues;
  for (const [union, wrong] of wrongBranches) {
    const branchOf = (i: AjvIssue) => ((i.schemaPath ?? '').startsWith(union) ? (i.schemaPath ?? '').slice(union.length).split('/')[0] : undefined);
    const matched = kept.filter((i) => branchOf(i) !== undefined && !wrong.has(branchOf(i)!));
    if (matched.length) {
      kept = kept.filter((i) => branchOf(i) === undefined || !wrong.has(branchOf(i)!));
      continue;
    }
    const tags = kept.filter((i) => branchOf(i) !== undefined && TAG_CHECK.test(i.schemaPath ?? ''));
    if (!tags.length) continue; // no branch has the value's JSON type: every branch's type is listed
    const allowed = tags.flatMap((i) => (i.keyword === 'const' ? [i.params?.allowedValue] : ((i.params?.allowedValues as unknown[]) ?? [])));
    const one: AjvIssue = { ...tags[0], keyword: 'enum', params: { allowedValues: allowed } };
    kept = kept.flatMap((i) => (i === tags[0] ? [one] : branchOf(i) !== undefined ? [] : [i]));
  }
  return kept;
}

function fromValidation(all: AjvIssue[], body: unknown): GlimpseError {
  const issues = relevantIssues(all, body);
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
    .map((i) => (i.keyword === 'enum' && Array.isArray(i.params?.allowedValues) ? `must be one of ${i.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}` : i.message))
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

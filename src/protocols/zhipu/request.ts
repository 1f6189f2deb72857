/** Zhipu's chat body → GenerateRequest: the chat mapping, with do_sample, request_id and user_id read as Zhipu means them. */
import type { GenerateRequest } from '../../core/index.js';
import type { RequestDefaults, RequestOrigin } from '../defaults.js';
import { chatRequest } from '../openai-chat/request.js';
import type { ZhipuBody } from './schema.js';

export function zhipuRequest(b: ZhipuBody, origin: RequestOrigin, defaults: RequestDefaults): GenerateRequest {
  // Zhipu's clients send tool_choice "auto" with no tools (Zhipu's only choice, always sent); it means nothing then.
  const body = b.tools?.length ? b : { ...b, tool_choice: undefined };
  const req = chatRequest(body, { ...origin, id: b.request_id ?? origin.id }, defaults);
  // do_sample false: the one most likely token each step, whatever temperature says.
  if (b.do_sample === false) req.sampling = { ...req.sampling, temperature: 0, topP: 1 };
  if (b.user_id) req.endUser = b.user_id;
  return req;
}

/** A WebSocket `request` message → GenerateRequest. Nothing in it is checked before this (no JSON schema sees it). */
import { GlimpseError, type GenerateRequest } from '../../core/index.js';
import type { RequestDefaults, RequestOrigin } from '../defaults.js';
import { imageSourceFromString } from '../images.js';
import { checkPrompt } from '../messages.js';
import { glmSampling, single } from '../glm-web/request.js';
import type { WsRequestMessage } from './messages.js';

export function wsRequest(msg: WsRequestMessage, origin: RequestOrigin, defaults: RequestDefaults): GenerateRequest {
  const prompt = checkPrompt(
    msg.prompt,
    defaults.maxPromptChars,
    "Send the question as 'prompt' (a non-empty string).",
  );
  if (msg.image !== undefined && typeof msg.image !== 'string')
    throw new GlimpseError('invalid_image_url', "'image' must be a data URL, an http(s) URL or base64.", {
      param: 'image',
    });
  if (msg.system !== undefined && typeof msg.system !== 'string')
    throw new GlimpseError('invalid_request', "'system' must be a string.", { param: 'system' });
  if (msg.model !== undefined && typeof msg.model !== 'string')
    throw new GlimpseError('invalid_request', "'model' must be a string.", { param: 'model' });
  const sampling = glmSampling(msg, defaults);
  const image = typeof msg.image === 'string' ? imageSourceFromString(msg.image, 'image') : undefined;
  return single(origin, defaults, {
    model: msg.model as string | undefined,
    prompt,
    image,
    system: msg.system as string | undefined,
    sampling,
    thinking: typeof msg.thinking === 'boolean' ? msg.thinking : undefined,
  });
}

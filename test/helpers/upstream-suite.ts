/**
 * For a describe block: the vLLM double, a glimpse in front of it on the upstream engine (serving
 * it as `glm-4.6v-flash`), and an openai SDK client for that glimpse; each test sets what the
 * double answers with `suite.script = {...}`.
 */
import OpenAI from 'openai';
import { startGlimpse, type RunningGlimpse } from './glimpse.js';
import { startFakeVllm, type FakeVllm, type Script } from './fake-vllm.js';

export interface UpstreamSuite {
  vllm: FakeVllm;
  glimpse: RunningGlimpse;
  client: OpenAI;
  script: Script;
}

export function upstreamSuite(
  hooks: { before: (fn: () => Promise<void>) => void; after: (fn: () => Promise<void>) => void },
  flags: Record<string, unknown> = {},
): UpstreamSuite {
  const suite = { script: {} } as UpstreamSuite;
  hooks.before(async () => {
    suite.vllm = await startFakeVllm({ script: () => suite.script });
    suite.glimpse = await startGlimpse({
      engine: 'upstream',
      upstream: [suite.vllm.url],
      upstreamModel: suite.vllm.model,
      modelName: 'glm-4.6v-flash',
      upstreamHealthInterval: 0,
      ...flags,
    });
    suite.client = new OpenAI({ baseURL: suite.glimpse.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  });
  hooks.after(async () => {
    await suite.glimpse?.close();
    await suite.vllm?.close();
  });
  return suite;
}

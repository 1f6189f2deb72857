import { Command, InvalidArgumentError, Option } from 'commander';
import { isIP } from 'node:net';
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { runPrimary, workerCount } from '../cluster/index.js';
import { runServer } from './run-server.js';
import { createLogger } from '../observability/index.js';
import { askCommand } from './ask.js';
import { batchCommand } from './batch.js';
import { NESTED_SERVE_FLAGS, SERVE_FLAGS, nestFlags } from './serve-flags.js';
import { parseApiKeys, type ApiKey } from '../auth/index.js';

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export async function serve(config: Config): Promise<number> {
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  let keys: ApiKey[];
  try {
    keys = parseApiKeys(config.apiKeys, config.apiKeysFile);
  } catch (err) {
    logger.fatal((err as Error).message);
    return 2;
  }
  if (!isLoopback(config.host) && !keys.length && !config.allowPublicWithoutAuth) {
    logger.fatal(
      `Refusing to bind ${config.host} without API keys: anyone on the network could use the model. ` +
        'Set --api-keys (or --api-keys-file), bind 127.0.0.1 behind a proxy, or pass --allow-public-without-auth if something else guards it.',
    );
    return 2;
  }
  const workers = workerCount(config.workers);
  if (workers > 1) return runPrimary(config, logger, workers);
  return runServer(config, logger);
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('glimpse')
    .description('Serve vision-language models to people and programs.')
    .exitOverride();
  let result: Promise<number> = Promise.resolve(0);

  const serveCmd = program
    .command('serve')
    .description(
      'Run the server (API, docs at /docs). Every flag can also be set as GLIMPSE_<FLAG> or in --config FILE.',
    )
    .option('--config <file>', 'YAML or JSON config file');
  for (const [flags, description] of SERVE_FLAGS) serveCmd.addOption(new Option(flags, description));
  for (const [flags, description] of NESTED_SERVE_FLAGS) serveCmd.addOption(new Option(flags, description));
  serveCmd.action((opts: Record<string, unknown>) => {
    const { config: file, ...flags } = nestFlags(opts);
    try {
      const config = loadConfig({ flags, file: file as string | undefined });
      result = serve(config);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`glimpse: ${err.message}\n`);
        result = Promise.resolve(2);
      } else throw err;
    }
  });

  program
    .command('ask')
    .description('Ask a running glimpse about an image and stream the answer to the terminal.')
    .argument('<image>', 'image file path or http(s) URL')
    .argument('<prompt>', 'question about the image')
    .option('--server <url>', 'glimpse base URL', process.env.GLIMPSE_SERVER ?? 'http://127.0.0.1:8080')
    .option('--api-key <key>', 'API key', process.env.GLIMPSE_API_KEY)
    .option('--model <name>', 'model to ask (default: the server default)')
    .option('--max-tokens <n>', 'tokens to generate', positiveInt)
    .action(
      (
        image: string,
        prompt: string,
        opts: { server: string; apiKey?: string; model?: string; maxTokens?: number },
      ) => {
        result = askCommand({ image, prompt, ...opts });
      },
    );

  program
    .command('batch')
    .description(
      'Run a JSONL of requests (OpenAI batch lines, or "IMAGE PROMPT" lines) N at a time, writing answers as they finish; run again to resume.',
    )
    .argument('<input>', 'JSONL file of requests')
    .option('--output <file>', 'where answers go, one OpenAI batch output line each (default INPUT.out.jsonl)')
    .option('--server <url>', 'glimpse base URL (default $GLIMPSE_SERVER or http://127.0.0.1:8080)')
    .option(
      '--in-process',
      'start glimpse in this process (configured by --config and GLIMPSE_* variables) instead of using a server',
      false,
    )
    .option('--config <file>', 'config file for --in-process')
    .option('--api-key <key>', 'API key', process.env.GLIMPSE_API_KEY)
    .option('--concurrency <n>', 'requests at once (default 4)', positiveInt, 4)
    .action(
      (
        input: string,
        opts: {
          output?: string;
          server?: string;
          inProcess: boolean;
          config?: string;
          apiKey?: string;
          concurrency: number;
        },
      ) => {
        result = batchCommand({ input, ...opts });
      },
    );

  try {
    await program.parseAsync(['node', 'glimpse', ...argv]);
  } catch (err) {
    const code = (err as { exitCode?: number; code?: string }).exitCode;
    if (typeof code === 'number')
      return (err as { code?: string }).code === 'commander.helpDisplayed' ||
        (err as { code?: string }).code === 'commander.version'
        ? 0
        : code || 2;
    throw err;
  }
  if (!argv.length) {
    program.outputHelp();
    return 2;
  }
  return result;
}

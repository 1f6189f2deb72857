import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON logs by default (one object per line, for log shippers); pretty for humans on a terminal. */
export function createLogger(opts: { level: string; format: 'json' | 'pretty' }): Logger {
  if (opts.format === 'pretty') {
    return pino({
      level: opts.level,
      transport: {
        target: 'pino-pretty',
        options: { colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l' },
      },
    });
  }
  return pino({ level: opts.level, base: { service: 'glimpse' }, timestamp: pino.stdTimeFunctions.isoTime });
}

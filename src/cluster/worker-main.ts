/**
 * Entry of an HTTP worker process (`glimpse serve --workers N` forks N of these). It asks the
 * primary for its setup instead of reading flags, so every worker runs the exact config the
 * primary validated; then it serves on the shared port like a single glimpse, with the primary's
 * model behind a remote engine when the primary owns one.
 */
import { runServer } from '../cli/run-server.js';
import { holdReloads } from '../cli/reload-signal.js';
import { createLogger } from '../observability/index.js';
import { answerMetricsThroughPrimary } from '../observability/cluster-metrics.js';
import { isGlimpseMessage, type PrimaryMessage, type WorkerMessage } from './protocol.js';
import { createRemoteEngine, type Channel } from './remote-engine.js';

type Setup = Extract<PrimaryMessage, { type: 'glimpse:setup' }>;

if (!process.send) {
  process.stderr.write('glimpse: this is a worker process; run `glimpse serve --workers N` instead.\n');
  process.exit(2);
}

const channel: Channel = {
  // A send racing the channel's close is answered by the 'disconnect' handlers, not thrown.
  send: (msg: WorkerMessage) => void process.send!(msg, undefined, undefined, () => {}),
  get connected() {
    return process.connected;
  },
  on: (event: 'message' | 'disconnect', fn: (msg?: unknown) => void) => void process.on(event, fn),
};

// A reload reaches a worker only once it listens, but one passed on as it starts must not end it.
holdReloads();

const orphaned = () => process.exit(1);
process.once('disconnect', orphaned);
const setup = await new Promise<Setup>((resolve) => {
  const onMessage = (msg: unknown) => {
    if (!isGlimpseMessage<PrimaryMessage>(msg) || msg.type !== 'glimpse:setup') return;
    process.off('message', onMessage);
    resolve(msg);
  };
  process.on('message', onMessage);
  channel.send({ type: 'glimpse:hello' });
});
process.off('disconnect', orphaned);

answerMetricsThroughPrimary();
const { config } = setup;
const logger = createLogger({ level: config.logLevel, format: config.logFormat }).child({ worker: setup.worker });
const engine = setup.engine ? createRemoteEngine(setup.engine, channel) : undefined;
process.exitCode = await runServer(config, logger, {
  engine,
  worker: setup.worker,
  // The primary gone (killed with SIGKILL, crashed): drain what runs here, then go too.
  stopWhen: (stop) => process.once('disconnect', () => stop('primary exited')),
});
// The IPC channel would keep this process alive; the primary sees the exit code.
if (process.connected) process.disconnect();

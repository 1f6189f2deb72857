export { createLogger, type Logger } from './logger.js';
export { createMetrics, type Metrics } from './metrics.js';
export { traceContext, traceIdOf, type TraceContext } from './trace.js';

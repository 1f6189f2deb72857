/**
 * A job's end announced to its webhook, the same way by either store: the `job.<status>` event,
 * signed and retried by ./webhook.ts, and the fields that record how it went.
 */
import { deliverWebhook, type WebhookTransport } from './webhook.js';
import { ENDED_STATUSES, jobView, webhookSettings, type JobSettings, type JobStatus, type Log } from './types.js';

/**
 * Deliver the event of an ended job whose webhook is pending. Returns the fields to store, or
 * undefined when there was nothing to deliver; throws when `signal` (shutdown) cut it short.
 */
export async function announceJob(
  id: string,
  h: Record<string, string>,
  settings: JobSettings,
  transport: WebhookTransport,
  signal: AbortSignal,
  log: Log,
): Promise<{ fields: Record<string, string>; delivered: boolean } | undefined> {
  if (!h.webhook || h.webhook_status !== 'pending' || !ENDED_STATUSES.has(h.status as JobStatus)) return undefined;
  const job = jobView(id, h);
  const event = {
    id: 'evt_' + id.slice('job_'.length),
    object: 'event',
    type: `job.${job.status}`,
    created_at: Math.floor(Date.now() / 1000),
    data: job,
  };
  const delivery = await deliverWebhook(h.webhook, event.id, event, webhookSettings(settings), transport, signal);
  const tries = Number(h.webhook_attempts ?? 0) + delivery.attempts;
  if (delivery.delivered) {
    log.info({ job: id, event: event.type, attempts: tries }, 'job webhook delivered');
    return { fields: { webhook_status: 'delivered', webhook_attempts: String(tries) }, delivered: true };
  }
  log.warn(
    {
      job: id,
      event: event.type,
      attempts: tries,
      err: delivery.error,
      ...(delivery.detail ? { detail: delivery.detail } : {}),
    },
    'job webhook not delivered',
  );
  return {
    fields: { webhook_status: 'failed', webhook_attempts: String(tries), webhook_error: delivery.error },
    delivered: false,
  };
}

import type { Client } from '@temporalio/client';
import type { BootEventSink } from '../activities/boot-events';
import type { NetbootTable } from '../activities/netboot-table';
import type { BootEvent } from '../schemas/rollout';
import { bootEventSignal } from '../workflows/messages';

export interface Logger {
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
}

/**
 * Delivers boot events of armed hosts to their reprovision workflow as `boot-event` signals, in
 * order, retrying while Temporal is unreachable. Events of unarmed MACs are only logged.
 */
export class SignalingEventSink implements BootEventSink {
  /** One chain per MAC: a host's events arrive in order, hosts do not wait for each other. */
  private readonly queues = new Map<string, Promise<void>>();
  private pending = 0;

  constructor(
    private readonly client: Client,
    private readonly netboot: NetbootTable,
    private readonly logger: Logger,
    private readonly retryMs = 1000,
  ) {}

  emit(event: BootEvent): void {
    this.pending += 1;
    const next = (this.queues.get(event.mac) ?? Promise.resolve())
      .then(() => this.deliver(event))
      .catch((err: unknown) => this.logger.warn('boot event not delivered', { error: String(err) }))
      .finally(() => {
        this.pending -= 1;
        if (this.queues.get(event.mac) === next) this.queues.delete(event.mac);
      });
    this.queues.set(event.mac, next);
  }

  private async deliver(event: BootEvent): Promise<void> {
    const armed = await this.netboot.lookup(event.mac);
    if (!armed) {
      this.logger.info('boot event of an unarmed host', { ...event });
      return;
    }
    const withStage: BootEvent = { ...event, stage: event.stage ?? armed.stage };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.workflow.getHandle(armed.workflowId).signal(bootEventSignal, withStage);
        return;
      } catch (err) {
        const message = (err as Error).message;
        if (/not found|already completed|closed/i.test(message)) {
          this.logger.warn('boot event for a closed workflow dropped', {
            workflowId: armed.workflowId,
            kind: event.kind,
          });
          return;
        }
        if (attempt === 1) this.logger.warn('boot event delivery failing, retrying', { error: message });
        await new Promise((resolve) => setTimeout(resolve, this.retryMs));
      }
    }
  }

  /** Resolves when every event emitted so far was delivered or dropped. */
  async drain(): Promise<void> {
    while (this.pending > 0) await Promise.all(this.queues.values());
  }
}

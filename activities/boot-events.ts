import type { BootEvent } from '../schemas/rollout';

/** Where the protocol servers (and the sim BMC) report what a machine did on the boot network. */
export interface BootEventSink {
  emit(event: BootEvent): void;
}

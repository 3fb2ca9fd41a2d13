export type PowerState = 'on' | 'off' | 'unknown';
export type BootDevice = 'pxe' | 'disk';

/** Lights-out control of one machine. Implementations: ipmi-power, redfish-power, ssh-power, command-power, sim-power. */
export interface PowerDriver {
  powerState(): Promise<PowerState>;
  powerOn(): Promise<void>;
  powerOff(): Promise<void>;
  powerCycle(): Promise<void>;
  softOff(): Promise<void>;
  setNextBoot(device: BootDevice): Promise<void>;
}

/** The machine a driver acts on, as the agent knows it. */
export interface PowerTarget {
  site: string;
  host: string;
  mac: string;
}

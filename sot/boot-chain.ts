import { parse as parseYaml } from 'yaml';
import type { Host } from '../schemas/host';
import type { Image } from '../schemas/image';
import type { Job } from '../schemas/jobs';
import type { Model } from '../schemas/model';
import { bootInterface } from '../schemas/host';
import { hostContext, renderString, renderTemplate, type HostContext } from './render';
import { mirrorAgents, servingAgent } from './serving-agent';
import { own } from '../schemas/common';
import { fastLoad } from './fast-yaml';

/** What a host boots at one stage: what a plan compares. */
export interface RenderedBoot {
  stage: number;
  profile: string;
  os: string;
  kernel: string;
  initrds: string[];
  cmdline: string;
  unattended?: { type: string; template: string; content: string };
  /** The image the deploy ramdisk writes at this stage, its URL at the serving agent. */
  image?: Image & { url: string };
  context: HostContext;
}

export interface RenderedStage extends RenderedBoot {
  preShutdown: Job[];
  validation: Job[];
  /**
   * The command line as each of `context.urls.mirrors` renders it (its unattended and checkpoint
   * URLs first): what the script's fallback kernel line passes, so an OS whose kernel came from
   * another agent than the script's also fetches its config there.
   */
  mirrorCmdlines: string[];
}

const JOB_TEMPLATE_FIELDS = ['url', 'body', 'command', 'host'] as const;

/** A job with its templated fields (URL, body, command, arguments, headers, env) rendered for one host. */
export function renderJob(model: Model, job: Job, context: HostContext, what: string): Job {
  const render = (text: string, field: string) => renderString(model, text, context, `${what}: ${field}`);
  const out: Record<string, unknown> = { ...job };
  for (const field of JOB_TEMPLATE_FIELDS) {
    const value = out[field];
    if (typeof value === 'string') out[field] = render(value, field);
  }
  if ('args' in job) out.args = job.args.map((a, i) => render(a, `args[${i}]`));
  for (const field of ['headers', 'env'] as const) {
    const map = (job as Record<string, unknown>)[field] as Record<string, string> | undefined;
    if (map)
      out[field] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, render(v, `${field}.${k}`)]));
  }
  return out as Job;
}

/** The command line rendered by each of the host's mirror agents, in `urls.mirrors` order. */
function mirrorCmdlines(
  ...[model, siteId, host, stage, boot, token, agent]: [
    Model,
    string,
    Host,
    number,
    RenderedBoot,
    string?,
    string?,
  ]
): string[] {
  const site = own(model.sites, siteId)?.site;
  const os = own(model.os, boot.os);
  if (boot.context.urls.mirrors.length === 0 || !site || !os) return [];
  const subnet = bootInterface(host).subnet;
  return mirrorAgents(site, subnet, servingAgent(site, subnet, agent)).map((peer) => {
    const context = hostContext(model, siteId, host, stage, token, peer.name);
    const cmdline = renderString(model, os.cmdline, context, `os/${os.id}: cmdline`).trim();
    // A deploy booted through a mirror fetches its image from, and reports to, that mirror first.
    const image = own(model.profiles, boot.profile)?.image;
    return image ? withImageArgs(cmdline, stageImage(image, context), context) : cmdline;
  });
}

/**
 * What the deploy ramdisk reads from its kernel command line (scripts/install-lab.sh): the image, its
 * format, checksum and disk, and where it reports (the stage's image URL at each agent of the subnet).
 */
function withImageArgs(cmdline: string, image: Image, context: HostContext): string {
  const reports = context.urls.checkpoints.map((u) => u.replace('/checkpoint/', '/image/'));
  return [
    cmdline,
    `vaquero.image=${image.url}`,
    `vaquero.image.format=${image.format}`,
    `vaquero.image.checksum=${image.checksum}`,
    `vaquero.image.disk=${image.disk}`,
    `vaquero.image.report=${reports.join(',')}`,
  ]
    .filter(Boolean)
    .join(' ');
}

/** The profile's image with its URL at the agent of `context`. */
function stageImage(image: Image, context: HostContext): Image {
  return { ...image, url: `${context.urls.assets}${image.url}` };
}

/** Renders what a host boots at one stage (0-based), without its jobs. */
function renderBoot(model: Model, siteId: string, host: Host, stage: number, token?: string, agent?: string) {
  const context = hostContext(model, siteId, host, stage, token, agent);
  const profile = own(model.profiles, context.profile.id);
  const os = own(model.os, context.os.id);
  if (!profile || !os) throw new Error(`host ${host.name}: boot stage ${stage + 1} is not resolvable`);
  const image = profile.image && stageImage(profile.image, context);
  const osCmdline = renderString(model, os.cmdline, context, `os/${os.id}: cmdline`).trim();
  const cmdline = image ? withImageArgs(osCmdline, image, context) : osCmdline;
  const boot: RenderedBoot = {
    stage: stage + 1,
    profile: profile.id,
    os: os.id,
    kernel: context.urls.kernel,
    initrds: context.urls.initrds,
    cmdline,
    ...(image ? { image } : {}),
    context,
  };
  if (profile.unattended) {
    const content = renderTemplate(model, profile.unattended.template, context);
    boot.unattended = { type: profile.unattended.type, template: profile.unattended.template, content };
  }
  return { boot, profile };
}

/**
 * Renders what a host boots at one stage (0-based), its URLs carrying the boot token it was armed
 * with (a placeholder without one); throws TemplateError on a template problem.
 */
export function renderStage(
  model: Model,
  siteId: string,
  host: Host,
  stage: number,
  token?: string,
  /** The agent serving the request: its URLs when it serves the host's subnet. */
  agent?: string,
): RenderedStage {
  const { boot, profile } = renderBoot(model, siteId, host, stage, token, agent);
  const what = `boot/${profile.id}`;
  return {
    ...boot,
    mirrorCmdlines: mirrorCmdlines(model, siteId, host, stage, boot, token, agent),
    preShutdown: profile.pre_shutdown.map((job, i) =>
      renderJob(model, job, boot.context, `${what}: pre_shutdown[${i}]`),
    ),
    validation: profile.validation.map((job, i) =>
      renderJob(model, job, boot.context, `${what}: validation[${i}]`),
    ),
  };
}

/** What a host boots at each stage, without the jobs: a plan compares these, once per host and model. */
export function renderBootChain(model: Model, siteId: string, host: Host): RenderedBoot[] {
  const group = own(model.groups, host.group);
  return (group?.boots ?? []).map((_, i) => renderBoot(model, siteId, host, i).boot);
}

function basename(url: string): string {
  return url.split('?')[0]?.split('/').pop() || 'initrd';
}

/**
 * A URL served by the stage's agent and the same path at each of the subnet's other agents (their
 * mirrors): one URL when it is not the agent's (an absolute kernel elsewhere) or there is no other.
 */
export function urlAlternatives(stage: RenderedBoot, url: string): string[] {
  const { assets, mirrors } = stage.context.urls;
  if (!assets || !url.startsWith(`${assets}/`)) return [url];
  return [url, ...(mirrors ?? []).map((m) => `${m}${url.slice(assets.length)}`)];
}

/**
 * `cmd urlA || cmd urlB …`: iPXE runs the next only when the one before failed (its agent is down).
 * `cmd` gets the alternative's index: 0 the script's agent, i the mirror i - 1.
 */
function withFallbacks(stage: RenderedBoot, url: string, cmd: (url: string, i: number) => string): string {
  return urlAlternatives(stage, url)
    .map((u, i) => cmd(u, i).trimEnd())
    .join(' || ');
}

/**
 * The iPXE script of an armed host. EFI kernels need `initrd=<name>` on the command line to find it.
 * Each kernel and initrd falls back to the subnet's other agents: a host whose agent dies after it
 * took this script still boots from another one, which knows the arming (site-wide boot state).
 */
export function ipxeScript(stage: RenderedStage): string {
  const initrdNames = stage.initrds.map(basename);
  const initrdArgs = initrdNames.map((n) => `initrd=${n}`).join(' ');
  const cmdline = (i: number) =>
    [initrdArgs, (i > 0 && stage.mirrorCmdlines[i - 1]) || stage.cmdline].filter(Boolean).join(' ');
  const host = stage.context.host;
  return [
    '#!ipxe',
    `# vaquero: ${host.name} (${host.mac}) stage ${stage.stage}/${stage.context.boot.stages}: ${stage.profile} / ${stage.os}`,
    withFallbacks(stage, stage.kernel, (u, i) => `kernel ${u} ${cmdline(i)}`),
    ...stage.initrds.map((url, i) =>
      withFallbacks(stage, url, (u) => `initrd --name ${initrdNames[i] ?? 'initrd'} ${u}`),
    ),
    'boot || goto failed',
    ':failed',
    'echo vaquero: boot failed, trying the next boot device in 10 s',
    'sleep 10',
    'exit 1',
    '',
  ].join('\n');
}

/**
 * How an iPXE script leaves for the firmware's next boot device (the disk). Under UEFI, ipxe.efi
 * returning 0 is EFI_SUCCESS, on which the boot manager stops at its menu instead of trying the next
 * boot option (UEFI spec, "Boot Manager"; EDK2's BdsDxe, OVMF); a non-zero status makes it go on
 * (in the lab: "BdsDxe: failed to start Boot0002 "UEFI PXEv4 …"", then the disk). BIOS firmware
 * goes on either way.
 */
export const LEAVE_FOR_DISK = ['iseq ${platform} efi || exit', 'exit 1'];

/**
 * Set by the local-boot script before it leaves: under UEFI its non-zero exit fails the `chain` of
 * /boot.ipxe, whose `||` list must then stop (`isset ${vaquero-local}`) rather than ask the next
 * agent, which may still hold an arming this one no longer has (a partitioned agent serves its cache).
 */
export const LOCAL_BOOT_SETTING = 'vaquero-local';

/** What an unarmed host gets: leave iPXE so the firmware boots the next device (the disk), no PXE loop. */
export function localBootScript(hostName?: string): string {
  return [
    '#!ipxe',
    `# vaquero: ${hostName ?? 'host'} is not armed for network boot; booting from local disk`,
    `set ${LOCAL_BOOT_SETTING} 1`,
    ...LEAVE_FOR_DISK,
    '',
  ].join('\n');
}

/** The 1-based line of an offset in a text. */
function lineAt(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

function renderedLine(line: number | undefined): string {
  return line === undefined ? '' : ` (line ${line} of the rendered config)`;
}

// Any character but a quote, a backslash or a control character, or an escape.
const JSON_STRING = /"(?:[\x20\x21\x23-\x5b\x5d-\uffff]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const JSON_WORD = /true|false|null/y;

/**
 * The offset of the first JSON syntax error, found by scanning, for V8 messages without a position
 * ("Unexpected token ']', "<excerpt>" is not valid JSON"); undefined if the scan finds none.
 */
function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const skip = () => {
    while (/[ \t\n\r]/.test(text[i] ?? '')) i++;
  };
  const eat = (char: string): boolean => {
    skip();
    if (text[i] !== char) return false;
    i++;
    return true;
  };
  const token = (re: RegExp): boolean => {
    skip();
    re.lastIndex = i;
    const match = re.exec(text);
    if (match) i += match[0].length;
    return match !== null;
  };
  const items = (open: string, close: string, item: () => boolean): boolean => {
    eat(open);
    if (eat(close)) return true;
    do if (!item()) return false;
    while (eat(','));
    return eat(close);
  };
  const member = (): boolean => token(JSON_STRING) && eat(':') && value();
  const value = (): boolean => {
    skip();
    const c = text[i] ?? '';
    if (c === '{') return items('{', '}', member);
    if (c === '[') return items('[', ']', value);
    return token(c === '"' ? JSON_STRING : /[-\d]/.test(c) ? JSON_NUMBER : JSON_WORD);
  };
  try {
    if (!value()) return i;
    skip();
    return i < text.length ? i : undefined;
  } catch {
    return undefined; // nested deeper than the stack allows: no line then
  }
}

/** V8's JSON.parse message, in one line, and the offset of the error when it gives one. */
function parseJsonError(message: string): { reason: string; offset?: number } {
  if (/^"[\s\S]*" is not valid JSON$/.test(message)) return { reason: 'not a JSON value' };
  // Node 20 quotes an excerpt of the config, newlines and all, instead of a position.
  const token = /^(Unexpected token '[\s\S]'), [\s\S]* is not valid JSON$/.exec(message)?.[1];
  if (token) return { reason: token };
  const position = /(?: in JSON)? at position (\d+).*$/s.exec(message);
  const reason = position ? message.slice(0, position.index) : message;
  return { reason: reason.split('\n')[0] ?? reason, offset: position ? Number(position[1]) : undefined };
}

function ignitionProblem(content: string): string | undefined {
  let data: unknown;
  try {
    data = JSON.parse(content);
  } catch (err) {
    const { reason, offset = jsonErrorOffset(content) } = parseJsonError((err as Error).message);
    const line = offset === undefined ? undefined : lineAt(content, offset);
    return `ignition config is not valid JSON${renderedLine(line)}: ${reason}`;
  }
  const version = (data as { ignition?: { version?: unknown } } | null)?.ignition?.version;
  if (typeof version !== 'string') return 'ignition config must have ignition.version';
  return undefined;
}

function cloudConfigProblem(content: string): string | undefined {
  if (!content.startsWith('#cloud-config')) return 'cloud-config must start with a "#cloud-config" line';
  // Validation reads one per host: js-yaml when it reads the text as `yaml` would, `yaml` for the rest.
  let data = fastLoad(content)?.value;
  try {
    // Without pretty errors the message is the reason alone; the line is computed from the offset.
    data ??= parseYaml(content, { prettyErrors: false, logLevel: 'error' });
  } catch (err) {
    const { message, pos } = err as { message: string; pos?: [number, number] };
    const line = pos ? lineAt(content, pos[0]) : undefined;
    return `cloud-config is not valid YAML${renderedLine(line)}: ${message.split('\n')[0]}`;
  }
  if (data !== null && (typeof data !== 'object' || Array.isArray(data)))
    return 'cloud-config must be a YAML mapping';
  return undefined;
}

/** Why an unattended config is not well-formed for its type, or undefined when it is. */
export function unattendedProblem(type: string, content: string): string | undefined {
  if (type === 'cloud-config') return cloudConfigProblem(content);
  if (type === 'ignition') return ignitionProblem(content);
  if ((type === 'kickstart' || type === 'preseed') && content.trim() === '') return `${type} config is empty`;
  return undefined;
}

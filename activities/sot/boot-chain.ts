import { parse as parseYaml } from 'yaml';
import type { Host } from '../../schemas/host';
import type { Job } from '../../schemas/jobs';
import type { Model } from '../../schemas/model';
import { hostContext, renderString, renderTemplate, type HostContext } from './render';

export interface RenderedStage {
  stage: number;
  profile: string;
  os: string;
  kernel: string;
  initrds: string[];
  cmdline: string;
  unattended?: { type: string; template: string; content: string };
  preShutdown: Job[];
  validation: Job[];
  context: HostContext;
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

/** Renders what a host boots at one stage (0-based); throws TemplateError on a template problem. */
export function renderStage(model: Model, siteId: string, host: Host, stage: number): RenderedStage {
  const context = hostContext(model, siteId, host, stage);
  const profile = model.profiles[context.profile.id];
  const os = model.os[context.os.id];
  if (!profile || !os) throw new Error(`host ${host.name}: boot stage ${stage + 1} is not resolvable`);
  const cmdline = renderString(model, os.cmdline, context, `os/${os.id}: cmdline`).trim();
  const rendered: RenderedStage = {
    stage: stage + 1,
    profile: profile.id,
    os: os.id,
    kernel: context.urls.kernel,
    initrds: context.urls.initrds,
    cmdline,
    preShutdown: [],
    validation: [],
    context,
  };
  if (profile.unattended) {
    const content = renderTemplate(model, profile.unattended.template, context);
    rendered.unattended = { type: profile.unattended.type, template: profile.unattended.template, content };
  }
  rendered.preShutdown = profile.pre_shutdown.map((job, i) =>
    renderJob(model, job, context, `boot/${profile.id}: pre_shutdown[${i}]`),
  );
  rendered.validation = profile.validation.map((job, i) =>
    renderJob(model, job, context, `boot/${profile.id}: validation[${i}]`),
  );
  return rendered;
}

export function renderBootChain(model: Model, siteId: string, host: Host): RenderedStage[] {
  const group = model.groups[host.group];
  return (group?.boots ?? []).map((_, i) => renderStage(model, siteId, host, i));
}

function basename(url: string): string {
  return url.split('?')[0]?.split('/').pop() || 'initrd';
}

/** The iPXE script of an armed host. EFI kernels need `initrd=<name>` on the command line to find it. */
export function ipxeScript(stage: RenderedStage): string {
  const initrdNames = stage.initrds.map(basename);
  const initrdArgs = initrdNames.map((n) => `initrd=${n}`).join(' ');
  const cmdline = [initrdArgs, stage.cmdline].filter(Boolean).join(' ');
  const host = stage.context.host;
  return [
    '#!ipxe',
    `# vaquero: ${host.name} (${host.mac}) stage ${stage.stage}/${stage.context.boot.stages}: ${stage.profile} / ${stage.os}`,
    `kernel ${stage.kernel} ${cmdline}`.trimEnd(),
    ...stage.initrds.map((url, i) => `initrd --name ${initrdNames[i] ?? 'initrd'} ${url}`),
    'boot || goto failed',
    ':failed',
    'echo vaquero: boot failed, trying the next boot device in 10 s',
    'sleep 10',
    'exit 1',
    '',
  ].join('\n');
}

/** What an unarmed host gets: leave iPXE so the firmware boots the next device (the disk), no PXE loop. */
export function localBootScript(hostName?: string): string {
  return [
    '#!ipxe',
    `# vaquero: ${hostName ?? 'host'} is not armed for network boot; booting from local disk`,
    'exit',
    '',
  ].join('\n');
}

/** Why an unattended config is not well-formed for its type, or undefined when it is. */
export function unattendedProblem(type: string, content: string): string | undefined {
  if (type === 'cloud-config') {
    if (!content.startsWith('#cloud-config')) return 'cloud-config must start with a "#cloud-config" line';
    try {
      const data: unknown = parseYaml(content);
      if (data !== null && (typeof data !== 'object' || Array.isArray(data)))
        return 'cloud-config must be a YAML mapping';
    } catch (err) {
      return `cloud-config is not valid YAML: ${(err as Error).message.split('\n')[0]}`;
    }
    return undefined;
  }
  if (type === 'ignition') {
    let data: unknown;
    try {
      data = JSON.parse(content);
    } catch (err) {
      const message = (err as Error).message;
      const pos = /at position (\d+)/.exec(message)?.[1];
      const line = pos ? content.slice(0, Number.parseInt(pos, 10)).split('\n').length : undefined;
      const where = line ? ` (line ${line} of the rendered config)` : '';
      return `ignition config is not valid JSON${where}: ${message.replace(/ in JSON at position \d+.*$/, '')}`;
    }
    const version = (data as { ignition?: { version?: unknown } } | null)?.ignition?.version;
    if (typeof version !== 'string') return 'ignition config must have ignition.version';
    return undefined;
  }
  if ((type === 'kickstart' || type === 'preseed') && content.trim() === '') return `${type} config is empty`;
  return undefined;
}

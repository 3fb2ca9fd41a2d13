import { open } from 'node:fs/promises';
import type { SecretRef } from '../../schemas/common';
import { own } from '../../schemas/common';
import { JobError, SecretError } from './errors';
import type { JobRunnerDeps } from './types';

/** Secret files are keys and tokens; anything larger is a wrong path (a log, an image), not a secret. */
export const SECRET_FILE_MAX_BYTES = 64 * 1024;

export type SecretResolver = (ref: SecretRef) => Promise<string>;

/**
 * Resolves SoT secret references: `{ env: VAR }` from the given environment (the entry point passes
 * its own) and `{ file: path }` from disk, trimmed. Errors name the variable or file, never a value.
 */
export function createSecretResolver(env: Record<string, string | undefined>): SecretResolver {
  return async (ref) => ('env' in ref ? fromEnv(env, ref.env) : fromFile(ref.file));
}

/**
 * Resolves a job's secret through the injected resolver. A resolver that fails without saying whether
 * another try could help (not a JobError) is taken as transient; its message is kept, as resolvers
 * must not put values in their messages.
 */
export async function resolveJobSecret(deps: JobRunnerDeps, ref: SecretRef, field: string): Promise<string> {
  try {
    return await deps.resolveSecret(ref);
  } catch (err) {
    if (err instanceof SecretError) throw new SecretError(`${field}: ${err.message}`, { cause: err });
    if (err instanceof JobError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new JobError(`${field}: ${message}`, true, { cause: err });
  }
}

function fromEnv(env: Record<string, string | undefined>, name: string): string {
  const value = own(env, name);
  if (value === undefined) throw new SecretError(`secret environment variable ${name} is not set`);
  if (value.trim() === '') throw new SecretError(`secret environment variable ${name} is empty`);
  return value;
}

async function fromFile(file: string): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new SecretError(`cannot open secret file ${file}: ${reason(err)}`, { cause: err });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new SecretError(`secret file ${file} is not a regular file`);
    if (stat.size > SECRET_FILE_MAX_BYTES)
      throw new SecretError(
        `secret file ${file} is ${stat.size} bytes, larger than the ${SECRET_FILE_MAX_BYTES / 1024} KiB a secret may be`,
      );
    // Read one byte past the limit: a file that grew after stat() is still refused.
    const buffer = Buffer.alloc(SECRET_FILE_MAX_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > SECRET_FILE_MAX_BYTES)
      throw new SecretError(`secret file ${file} is larger than ${SECRET_FILE_MAX_BYTES / 1024} KiB`);
    const value = buffer.subarray(0, bytesRead).toString('utf8').trim();
    if (value === '') throw new SecretError(`secret file ${file} is empty`);
    return value;
  } catch (err) {
    if (err instanceof SecretError) throw err;
    throw new SecretError(`cannot read secret file ${file}: ${reason(err)}`, { cause: err });
  } finally {
    await handle.close();
  }
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return code ?? (err instanceof Error ? err.message : String(err));
}

import { z } from 'zod';
import { IdSchema } from './common';

export const OsSchema = z.strictObject({
  id: IdSchema,
  name: z.string().optional(),
  kernel: z.string().min(1),
  initrds: z.array(z.string().min(1)).default([]),
  /** A template: rendered per host, so it may refer to the host, its site and the boot URLs. */
  cmdline: z.string().default(''),
});
export type Os = z.infer<typeof OsSchema>;

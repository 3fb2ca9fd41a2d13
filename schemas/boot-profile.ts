import { z } from 'zod';
import { IdSchema } from './common';
import { ImageSchema } from './image';
import { JobSchema } from './jobs';

export const UNATTENDED_TYPES = ['cloud-config', 'ignition', 'kickstart', 'preseed', 'untyped'] as const;

export const UnattendedSchema = z.strictObject({
  type: z.enum(UNATTENDED_TYPES),
  /** Path under `assets/`, a template rendered per host. */
  template: z.string().min(1),
});
export type Unattended = z.infer<typeof UnattendedSchema>;

export const BootProfileSchema = z.strictObject({
  id: IdSchema,
  os: IdSchema,
  unattended: UnattendedSchema.optional(),
  /** Write this image to this disk: the profile's OS is then the deploy ramdisk (docs/images.md). */
  image: ImageSchema.optional(),
  pre_shutdown: z.array(JobSchema).default([]),
  validation: z.array(JobSchema).default([]),
});
export type BootProfile = z.infer<typeof BootProfileSchema>;

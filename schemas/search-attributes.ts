import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Registered on the Temporal namespace (scripts/temporal-dev.sh does it for the dev server). */
export const SiteAttribute = defineSearchAttributeKey('VaqueroSite', SearchAttributeType.KEYWORD);
export const CommitAttribute = defineSearchAttributeKey('VaqueroCommit', SearchAttributeType.KEYWORD);
export const PhaseAttribute = defineSearchAttributeKey('VaqueroPhase', SearchAttributeType.KEYWORD);
export const HostGroupAttribute = defineSearchAttributeKey('VaqueroHostGroup', SearchAttributeType.KEYWORD);

/** `--search-attribute` flags for `temporal server start-dev` and `temporal operator search-attribute create`. */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword'> = {
  VaqueroSite: 'Keyword',
  VaqueroCommit: 'Keyword',
  VaqueroPhase: 'Keyword',
  VaqueroHostGroup: 'Keyword',
};

// The worker's workflowsPath and the CI bundle start here; name every workflow explicitly.
export { applyCommitWorkflow } from './apply-commit';
export { reprovisionHostWorkflow } from './reprovision-host';
export { siteRolloutWorkflow } from './site-rollout';
export { pingWorkflow } from './smoke';

// The worker's workflowsPath and the CI bundle start here; name every workflow explicitly.
export { applyCommitWorkflow } from './apply-commit';
export { reprovisionHostWorkflow, reprovisionHostWorkflowV2 } from './reprovision-host';
export { siteRolloutWorkflow } from './site-rollout';
export { pingWorkflow } from './smoke';

// The worker's workflowsPath and the CI bundle start here; name every workflow explicitly.
import { setWorkflowOptions } from '@temporalio/workflow';
import { applyCommitWorkflow } from './apply-commit';
import { reprovisionHostWorkflow, reprovisionHostWorkflowV2 } from './reprovision-host';
import { siteRolloutWorkflow } from './site-rollout';

// Worker Versioning (docs/design.md, "Versions of the workers"): a host workflow finishes on the
// version it started on; the long-lived rollout and apply workflows move to the current version at
// their next task, so their code changes stay replay-safe behind patched().
setWorkflowOptions({ versioningBehavior: 'PINNED' }, reprovisionHostWorkflow);
setWorkflowOptions({ versioningBehavior: 'PINNED' }, reprovisionHostWorkflowV2);
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, siteRolloutWorkflow);
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, applyCommitWorkflow);

export { applyCommitWorkflow, reprovisionHostWorkflow, reprovisionHostWorkflowV2, siteRolloutWorkflow };
export { pingWorkflow } from './smoke';

// The worker's workflowsPath and the CI bundle start here; name every workflow explicitly.
export { pingWorkflow } from './smoke';
